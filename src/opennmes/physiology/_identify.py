"""Identification of a person's force (and fatigue) model from a recorded force trace.

Only what the trace can determine is reported. The fit (lmfit's bounded least squares on the
compiled kernel) runs over variables scaled to the published values, inside physiological
ranges with their sources (:data:`~opennmes.physiology._fitspace.BOUNDS`). Then:

1. **Start**: the force scale ``a_rest`` (and, for Ding 2003 with varying pulse amplitudes,
   the recruitment threshold) from a linear least-squares scale of the published model.
2. **Fresh stage**: with a fatigue model, the force parameters are fitted first on the fresh
   start of the trace (Ding et al. 2000, 2003).
3. **Which parameters the data determine**: the Fisher information of the fit variables (see
   ``_identify_stats``); a parameter whose expected 95 % half-width exceeds ``precision`` of its
   value is fixed at its published value (or ``initial``'s) and listed in ``fixed``; the rest
   are fitted jointly and judged again at the optimum, until the set is stable.
4. **Intervals**: profile likelihood, widened for autocorrelated residuals; open at a bound.
5. **Diagnostics** become ``warnings``: correlated residuals, a poor R^2, estimates at a
   bound, fixed parameters, amplitudes that could not be used.

Ding 2003 with per-pulse amplitudes that vary (ramps) weights each pulse by a logistic
recruitment curve of its amplitude (NerveModel's curve: ``threshold``, ``q50``, ``slope``),
normalised to 1 at the trace's strongest pulse: ``a_rest`` is then the force scale at that
pulse. Ding 2007 uses the widths and Hmed 2018 the amplitudes through their own published
curves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from opennmes.errors import ModelError
from opennmes.physiology._ding import DingParameters, default_parameters
from opennmes.physiology._fitspace import (
    BOUNDS,
    RECRUITMENT_DEFAULTS,
    RECRUITMENT_PARAMETERS,
    Bound,
    Forward,
    from_theta,
    theta_bounds,
    to_theta,
)
from opennmes.physiology._identify_stats import (
    LeastSquares,
    autocorrelation,
    fisher_se,
    jacobian,
    profile_interval,
    select_determined,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["identify", "IdentificationResult", "FORCE_PARAMETERS", "FATIGUE_PARAMETERS"]

FORCE_PARAMETERS: tuple[str, ...] = ("a_rest", "tau1_rest", "tau2", "km_rest")
FATIGUE_PARAMETERS: tuple[str, ...] = ("alpha_a", "alpha_km", "alpha_tau1", "tau_fat")
Progress = Callable[[str, int, int], None]
MAX_FIT_RATE = 250.0
"""Highest sampling rate the fit uses, Hz: a faster trace is fitted on every k-th sample
(the force's fastest time constant, tau_c, is 11-20 ms); R^2, RMSE and ``fitted`` use all."""
FIT_HMAX = 4e-3
"""Longest integration step while fitting, s."""


@dataclass(frozen=True)
class IdentificationResult:
    """Fitted parameters with confidence intervals, what was fixed, and diagnostics.

    Attributes
    ----------
    params : DingParameters
        The full model (fitted values plus the fixed ones).
    estimates : dict
        ``name -> (value, ci_low, ci_high)`` for every parameter the trace determined, SI
        units (recruitment: ``threshold`` in A, ``q50`` and ``slope`` in multiples of it).
    confidence : float
        Level of the intervals.
    rmse : float
        Root-mean-square error of the final fit, N.
    r2 : float
        Coefficient of determination of the final fit.
    residual_autocorrelation : float
        Lag-1 autocorrelation of the residuals.
    n_samples : int
        Samples used.
    fitted : numpy.ndarray
        Model force at the trace's samples, N.
    fixed : dict
        ``name -> (value, reason)`` for every parameter the trace did not determine.
    warnings : tuple of str
        Diagnostics a person should read before trusting the fit.
    open_ends : dict
        ``name -> (low_open, high_open)``: an interval end that reached a physiological bound.
    """

    params: DingParameters
    estimates: dict[str, tuple[float, float, float]]
    confidence: float
    rmse: float
    r2: float
    residual_autocorrelation: float
    n_samples: int
    fitted: np.ndarray = field(repr=False)
    fixed: dict[str, tuple[float, str]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    open_ends: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    def to_pandas(self) -> pd.DataFrame:
        """One row per parameter: value, ci_low, ci_high, unit, determined."""
        import pandas as pd

        rows = [{"parameter": k, "value": v[0], "ci_low": v[1], "ci_high": v[2],
                 "unit": BOUNDS[k].unit, "determined": True} for k, v in self.estimates.items()]
        rows += [{"parameter": k, "value": v[0], "ci_low": math.nan, "ci_high": math.nan,
                  "unit": BOUNDS[k].unit, "determined": False} for k, v in self.fixed.items()]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """A plain-text table of the estimates, the fixed parameters and the warnings."""
        pct = round(self.confidence * 100)
        lines = [f"model {self.params.name}: RMSE {self.rmse:.4g} N, R^2 {self.r2:.5f}, "
                 f"{self.n_samples} samples", f"{'parameter':<12} {'value':>12} "
                 f"{'CI' + str(pct) + ' low':>12} {'CI' + str(pct) + ' high':>12}  unit"]
        for k, (v, lo, hi) in self.estimates.items():
            lo_open, hi_open = self.open_ends.get(k, (False, False))
            lines.append(f"{k:<12} {v:>12.6g} {('<=' if lo_open else '') + f'{lo:.6g}':>12} "
                         f"{('>=' if hi_open else '') + f'{hi:.6g}':>12}  {BOUNDS[k].unit}")
        if self.fixed:
            lines.append("not determinable from this trace (fixed):")
            for k, (v, why) in self.fixed.items():
                lines.append(f"  {k:<12} {v:>12.6g} {BOUNDS[k].unit:<10} {why}")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)


def _validate(t: np.ndarray, force: np.ndarray, pt: np.ndarray) -> float:
    for name, arr in (("t", t), ("force", force), ("pulse_times", pt)):
        if arr.ndim != 1:
            raise ModelError(f"{name} must be one-dimensional")
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            raise ModelError(f"{name}[{i}] = {float(arr[i])!r} is not a finite number; remove "
                             "or interpolate missing samples before identification")
    if t.size != force.size:
        raise ModelError(f"t has {t.size} samples but force has {force.size}")
    if t.size < 20:
        raise ModelError(f"the trace has {t.size} samples; identification needs at least 20")
    dt = np.diff(t)
    if (dt <= 0).any():
        i = int(np.argmax(dt <= 0)) + 1
        raise ModelError(f"t[{i}] = {float(t[i])!r} s does not increase; the trace must be "
                         "sorted")
    step = float(np.median(dt))
    if np.max(np.abs(dt - step)) > 0.01 * step:
        raise ModelError("the trace is not uniformly sampled (intervals vary by more than "
                         "1 %); resample it first")
    if pt.size == 0:
        raise ModelError("no pulse times given")
    if pt[0] < 0:
        raise ModelError(f"pulse_times[0] = {float(pt[0])!r} s is negative")
    d = np.diff(pt)
    if (d < 0).any():
        i = int(np.argmax(d < 0)) + 1
        raise ModelError(f"pulse_times[{i}] = {float(pt[i])!r} s is earlier than the pulse "
                         "before it; pulse times must be sorted")
    if pt[0] >= t[-1]:
        raise ModelError(f"the first pulse (at {float(pt[0]):.6g} s) comes after the trace ends "
                         f"({float(t[-1]):.6g} s): check the time origin of the pulses")
    return 1.0 / step


def _per_pulse(name: str, v: npt.ArrayLike | None, n: int) -> np.ndarray:
    if v is None:
        return np.full(n, np.nan)
    arr = np.atleast_1d(np.asarray(v, dtype=np.float64))
    if arr.size not in (1, n):
        raise ModelError(f"{name} has {arr.size} values for {n} pulses")
    if not np.all(np.isfinite(arr)):
        i = int(np.argmax(~np.isfinite(arr)))
        raise ModelError(f"{name}[{i}] = {float(arr[i])!r} is not a finite number")
    return np.broadcast_to(arr, (n,)).copy()


def _noise_sd(force: np.ndarray) -> float:
    """Robust white-noise level from the first differences (MAD), N."""
    d = np.diff(force)
    return float(np.median(np.abs(d - np.median(d))) / 0.6745 / math.sqrt(2.0))


class _Problem:
    """The fit variables of one trace: references, bounds, residual."""

    def __init__(self, fwd: Forward, force: np.ndarray, refs: dict[str, float],
                 bounds: dict[str, Bound]) -> None:
        self.fwd, self.force, self.refs, self.bounds = fwd, force, refs, bounds
        self.penalty = 10.0 * float(np.max(np.abs(force)) + 1.0)

    def values(self, theta: Mapping[str, float]) -> dict[str, float]:
        return {k: from_theta(k, v, self.refs[k]) for k, v in theta.items()}

    def residual(self, theta: Mapping[str, float]) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                f = self.fwd.force(self.values(theta))
            except (OverflowError, ValueError, ZeroDivisionError):
                f = None
        if f is None:
            return np.full(self.force.size, self.penalty)
        return f - self.force

    def theta(self, name: str, value: float) -> float:
        lo, hi = theta_bounds(name, self.refs[name], self.bounds[name])
        return float(np.clip(to_theta(name, value, self.refs[name]), lo, hi))

    def ls(self, names: Sequence[str]) -> LeastSquares:
        return LeastSquares(self.residual, {k: theta_bounds(k, self.refs[k], self.bounds[k])
                                            for k in names})


def _start_scale(fwd: Forward, force: np.ndarray, base: DingParameters,
                 thresholds: Sequence[float] | None) -> tuple[float, float | None]:
    """Least-squares force scale of the model (and the best recruitment threshold)."""
    best: tuple[float, float, float | None] = (math.inf, base.a_rest, None)
    for thr in (list(thresholds) if thresholds is not None else [None]):
        vals = {} if thr is None else {"threshold": thr}
        f = fwd.force(vals)
        if f is None or not np.any(f > 0):
            continue
        c = float(f @ force) / float(f @ f)
        sse = float(np.sum((c * f - force) ** 2))
        if sse < best[0]:
            best = (sse, base.a_rest * c, thr)
    if not math.isfinite(best[0]):
        raise ModelError("the model gives no force for these pulses (every pulse is below the "
                         "recruitment threshold or after the trace): nothing to fit")
    if best[1] <= 0:
        raise ModelError("the force does not rise with the pulses (a negative best scale): "
                         "check that the pulse times belong to this trace and the force sign")
    return best[1], best[2]


def identify(
    t: npt.ArrayLike,
    force: npt.ArrayLike,
    pulse_times: npt.ArrayLike,
    *,
    model: str = "ding2003-fatigue",
    pulse_widths: npt.ArrayLike | None = None,
    amplitudes: npt.ArrayLike | None = None,
    fresh_window: float | None = None,
    initial: DingParameters | None = None,
    fit: Sequence[str] | None = None,
    confidence: float = 0.95,
    min_r2: float = 0.5,
    precision: float = 0.1,
    progress: Progress | None = None,
) -> IdentificationResult:
    """Fit a Ding-family model to a force trace recorded with known pulse times.

    Parameters
    ----------
    t : array_like
        Sample times of the trace, s (uniform sampling; the stimulation starts at 0).
    force : array_like
        Measured force, N (or torque in N m: the fitted ``a_rest`` then has units N m/s).
    pulse_times : array_like
        Pulse onsets, s, sorted.
    model : str
        ``ding2003``, ``ding2007`` or ``hmed2018``, with ``-fatigue`` to fit the fatigue model.
    pulse_widths, amplitudes : array_like, optional
        Per-pulse phase widths (s) and amplitudes (A). Ding 2007 needs the widths, Hmed 2018
        the amplitudes; Ding 2003 uses varying amplitudes through a recruitment curve.
    fresh_window : float, optional
        Length (s) of the start of the trace used for the fresh force stage; by default the
        first 10 % of the trace, at least 2 s.
    initial : DingParameters, optional
        Start values, and the values of parameters the trace does not determine (published
        defaults otherwise).
    fit : sequence of str, optional
        Candidate parameters; by default the force parameters, plus the fatigue ones when the
        model has fatigue, plus the recruitment curve where it applies.
    confidence : float
        Level of the intervals (and of the determinability judgement).
    min_r2 : float
        Below this R^2 the trace is declared not fittable (ModelError).
    precision : float
        A parameter is reported only when its expected interval half-width is within this
        fraction of its value (Fisher information); otherwise it is fixed.
    progress : callable, optional
        ``progress(stage, done, total)`` while working.

    Raises
    ------
    ModelError
        Bad input (NaN, unsorted times, too short), a flat trace, a trace the model cannot fit,
        or one that determines no parameter.
    """
    from scipy import stats

    def tell(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    if not (0.5 <= confidence < 1.0):
        raise ModelError(f"confidence = {confidence!r} must be within [0.5, 1)")
    if not (0.0 < precision <= 1.0):
        raise ModelError(f"precision = {precision!r} must be within (0, 1]")
    tt = np.asarray(t, dtype=np.float64)
    ff = np.asarray(force, dtype=np.float64)
    pt = np.asarray(pulse_times, dtype=np.float64)
    sfreq = _validate(tt, ff, pt)
    p0 = initial if initial is not None else default_parameters(model)
    if initial is not None and model.endswith("-fatigue") and not p0.fatigue:
        p0 = p0.replace(fatigue=True)
    n = pt.size
    pw = _per_pulse("pulse_widths", pulse_widths, n)
    amp = _per_pulse("amplitudes", amplitudes, n)
    if p0.model == "ding2007" and pulse_widths is None:
        raise ModelError("ding2007 identification needs the pulse widths")
    if p0.model == "hmed2018" and amplitudes is None:
        raise ModelError("hmed2018 identification needs the pulse amplitudes")
    k0 = int(round(tt[0] * sfreq))
    if abs(k0 / sfreq - tt[0]) > 0.01 / sfreq:
        raise ModelError(f"t[0] = {tt[0]!r} s is not on the sampling grid k/{sfreq:.6g} Hz")
    notes: list[str] = []
    recruit = (p0.model == "ding2003" and amplitudes is not None
               and float(np.ptp(amp)) > 0.01 * float(np.max(np.abs(amp))))
    if p0.model == "ding2003" and amplitudes is not None and not recruit:
        notes.append("the amplitudes are all equal: their recruitment is folded into a_rest")
    if recruit and np.any(amp <= 0):
        raise ModelError("amplitudes must be > 0 A to weight pulses by recruitment")
    allowed = FORCE_PARAMETERS + (FATIGUE_PARAMETERS if p0.fatigue else ()) + \
        (RECRUITMENT_PARAMETERS if recruit else ())
    names = tuple(fit) if fit is not None else allowed
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        if not p0.fatigue and set(unknown) & set(FATIGUE_PARAMETERS):
            raise ModelError("fatigue parameters need a '-fatigue' model")
        raise ModelError(f"cannot fit {unknown}; fittable here: {list(allowed)}")
    span = float(np.ptp(ff))
    if not span > 0:
        raise ModelError(f"the force trace is flat ({float(ff[0]):.4g} N everywhere): nothing "
                         "to fit")
    noise = _noise_sd(ff)
    if span < 6.0 * noise:
        raise ModelError(f"the force varies by {span:.3g} N, within its noise ({noise:.3g} N "
                         "rms): the muscle's response is not visible, nothing to fit")

    bounds = dict(BOUNDS)
    refs = {k: float(getattr(p0, k)) for k in names if k not in RECRUITMENT_PARAMETERS}
    if recruit:
        top = float(np.max(amp))
        bounds["threshold"] = Bound(0.05 * top, 0.995 * top, "A", "log",
                                    BOUNDS["threshold"].source)
        refs.update(threshold=0.5 * top, **RECRUITMENT_DEFAULTS)
    for k, ref in list(refs.items()):
        if ref == 0:  # a fatigue coefficient set to 0: scale by the range instead
            refs[k] = bounds[k].upper if bounds[k].upper != 0 else bounds[k].lower
    # fit on every k-th sample at <= MAX_FIT_RATE (honest: the statistics use only these)
    step = max(1, int(math.floor(sfreq / MAX_FIT_RATE + 1e-9)))
    if step > 1 and k0 % step:
        step = 1
    fs = sfreq / step
    fsub = ff[::step]
    n_all = fsub.size
    fwd = Forward(p0, pt, amp, pw, k0 // step, n_all, fs, recruit, hmax=FIT_HMAX)
    prob = _Problem(fwd, fsub, refs, bounds)
    tell("start", 0, 1)
    a0, thr0 = _start_scale(fwd, fsub, p0, list(np.linspace(0.1, 0.95, 12)
                                                * float(np.max(amp))) if recruit else None)
    theta = {k: prob.theta(k, float(getattr(p0, k))) for k in names
             if k not in RECRUITMENT_PARAMETERS}
    if "a_rest" in names:
        theta["a_rest"] = prob.theta("a_rest", a0)
    if recruit:
        theta.update(threshold=prob.theta("threshold", thr0 or refs["threshold"]),
                     q50=prob.theta("q50", RECRUITMENT_DEFAULTS["q50"]),
                     slope=prob.theta("slope", RECRUITMENT_DEFAULTS["slope"]))
    # where a parameter is fixed when the trace does not determine it (a_rest: its scale)
    published = dict(theta)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    transforms = {k: bounds[k].transform for k in names}
    floor = (1e-3 * span) ** 2  # no sensor resolves better than 0.1 % of the range

    # fresh stage: force parameters on the start of a fatiguing trace
    force_keys = [k for k in names if k in FORCE_PARAMETERS or k in RECRUITMENT_PARAMETERS]
    if p0.fatigue and force_keys and len(force_keys) < len(names):
        win = fresh_window if fresh_window is not None else max(2.0, 0.1 * (tt[-1] - tt[0]))
        n_fresh = min(max(int(np.searchsorted(tt, tt[0] + win)), 20), n_all)
        n_fresh = max(n_fresh // step, 20)
        fresh = Forward(p0, pt, amp, pw, k0 // step, n_fresh, fs, recruit, hmax=FIT_HMAX)
        fprob = _Problem(fresh, fsub[:n_fresh], refs, bounds)
        tell("fresh-muscle fit", 0, 1)
        jac = jacobian(fprob.residual, theta, force_keys, fprob.ls(force_keys).bounds)
        keep, _ = select_determined(jac, force_keys, theta, transforms,
                                    max(noise**2, floor), z, 10 * precision)
        theta, _ = fprob.ls(keep).fit(theta, keep, {k: v for k, v in theta.items()
                                                    if k not in keep})

    # which parameters the trace determines, fitted jointly until the set is stable
    free = list(names)
    dropped: dict[str, float] = {}
    ss = math.inf
    for rnd in range(5):
        tell("determinability", rnd, 5)
        r = prob.residual(theta)
        s2 = max(float(r @ r) / max(n_all - len(free), 1), floor)
        jac = jacobian(prob.residual, theta, list(names), prob.ls(names).bounds)
        keep, drop = select_determined(jac, names, theta, transforms, s2, z,
                                       precision if rnd else 10 * precision)
        if rnd and keep == free:
            break
        free = keep
        dropped = drop
        for k in names:
            if k not in free:
                theta[k] = published[k]
        theta, ss = prob.ls(free).fit(theta, free, {k: v for k, v in theta.items()
                                                    if k not in free})
    if not free:
        raise ModelError(f"the trace determines none of the parameters of {p0.name} to within "
                         f"{precision:.0%} (too short, too noisy or too little stimulation); "
                         "record more contractions or fit fewer parameters")
    res = prob.residual(theta)
    ss = float(res @ res)
    full = Forward(p0, pt, amp, pw, k0, tt.size, sfreq, recruit).force(prob.values(theta))
    fitted = full if full is not None else np.full(tt.size, np.nan)
    rmse = float(np.sqrt(np.mean((fitted - ff) ** 2)))
    ss_tot = float(np.sum((ff - ff.mean()) ** 2))
    r2 = 1.0 - float(np.sum((fitted - ff) ** 2)) / ss_tot if ss_tot > 0 else 0.0
    if not np.isfinite(r2) or r2 < min_r2:
        raise ModelError(
            f"could not fit {p0.name} to the trace: R^2 = {r2:.3f} (needs >= {min_r2}), "
            f"RMSE = {rmse:.4g} N. Check that the pulse times belong to this trace (same "
            "time origin), that the force is in N and that the muscle responded.")

    # intervals: profile likelihood, widened for correlated residuals
    rho = autocorrelation(res)
    inflate = (1 + rho) / (1 - rho) if 0 < rho < 0.999 else (1000.0 if rho >= 0.999 else 1.0)
    s2 = max(ss / max(n_all - len(free), 1), floor)
    threshold = float(stats.chi2.ppf(confidence, 1)) * s2 * inflate
    cols = [list(names).index(k) for k in free]
    se = fisher_se(jac[:, cols], s2 * inflate)
    ls = prob.ls(free)
    estimates: dict[str, tuple[float, float, float]] = {}
    open_ends: dict[str, tuple[bool, bool]] = {}
    for i, k in enumerate(free):
        tell("intervals", i, len(free))
        lo, hi, lo_open, hi_open = profile_interval(ls, theta, free, k, ss, threshold,
                                                    z * float(se[i]))
        v = from_theta(k, theta[k], refs[k])
        a, b = from_theta(k, lo, refs[k]), from_theta(k, hi, refs[k])
        if a > b:
            a, b, lo_open, hi_open = b, a, hi_open, lo_open
        estimates[k] = (v, min(a, v), max(b, v))
        open_ends[k] = (lo_open, hi_open)
    tell("intervals", len(free), len(free))

    values = prob.values(theta)
    params = p0.replace(**{k: v for k, v in values.items() if k not in RECRUITMENT_PARAMETERS})
    fixed: dict[str, tuple[float, str]] = {}
    for k in names:
        if k in free:
            continue
        why = ("recruitment-curve default (modelling choice, no published value)"
               if k in RECRUITMENT_PARAMETERS else
               "initial value" if initial is not None else "published value")
        width = dropped.get(k, math.inf)
        how = "not seen by the data" if not math.isfinite(width) or width > 1e3 else \
            f"expected +-{width:.0%}"
        fixed[k] = (values[k] if k in values else float(getattr(p0, k)), f"{why} ({how})")
    warnings = list(notes)
    if fixed:
        warnings.append(f"{len(fixed)} parameter(s) not determinable from this trace to within "
                        f"{precision:.0%}, fixed: {', '.join(fixed)}")
    if rho > 0.5:
        warnings.append(f"residuals are correlated (lag-1 r = {rho:.2f}): the model misses "
                        "structure in the trace (transducer filtering, an unmodelled ramp or "
                        f"movement); intervals widened x{math.sqrt(inflate):.2g}")
    if r2 < 0.9:
        warnings.append(f"R^2 = {r2:.3f}: the model explains little of the trace")
    for k in free:
        lo_b, hi_b = ls.bounds[k]
        if min(theta[k] - lo_b, hi_b - theta[k]) < 1e-6:
            warnings.append(f"{k} ended at its physiological bound ({BOUNDS[k].source}); the "
                            "trace may not follow this model")
        elif any(open_ends[k]):
            warnings.append(f"the {round(confidence * 100)} % interval of {k} reaches its "
                            "physiological bound: weakly determined")
    tell("done", 1, 1)
    return IdentificationResult(params, estimates, confidence, rmse, r2, rho, tt.size, fitted,
                                fixed, tuple(warnings), open_ends)

def read_trace(path: str, column: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read ``t`` and a force (or torque) column from a CSV file.

    The time column is ``t`` (or ``time``), in s; the force column is ``column`` or the first
    of ``force``, ``torque`` or the second column.
    """
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the trace: {exc}") from exc
    tcol = next((c for c in ("t", "time") if c in df.columns), None)
    if tcol is None:
        raise ModelError(f"{path}: no time column 't' (seconds); columns: {list(df.columns)}")
    if column is None:
        column = next((c for c in ("force", "torque") if c in df.columns),
                      [c for c in df.columns if c != tcol][0] if df.shape[1] > 1 else None)
    if column is None or column not in df.columns:
        raise ModelError(f"{path}: no force column {column!r}; columns: {list(df.columns)}")
    return (pd.to_numeric(df[tcol], errors="coerce").to_numpy(np.float64),
            pd.to_numeric(df[column], errors="coerce").to_numpy(np.float64))


def read_values(path: str) -> np.ndarray:
    """One number per line (a header line without a number is skipped)."""
    vals: list[float] = []
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [ln.strip() for ln in fh if ln.strip()]
    except OSError as exc:
        raise ModelError(f"{path}: cannot read: {exc}") from exc
    for i, ln in enumerate(lines):
        cell = ln.split(",")[0].strip()
        try:
            vals.append(float(cell))
        except ValueError:
            if i == 0:
                continue
            raise ModelError(f"{path}: line {i + 1}: {cell!r} is not a number") from None
    return np.asarray(vals, dtype=np.float64)


def parameters_from_mapping(model: str, values: Mapping[str, float]) -> DingParameters:
    """Published defaults of ``model`` with ``values`` (SI) overriding them."""
    return default_parameters(model).replace(**dict(values))
