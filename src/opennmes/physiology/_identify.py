"""Identification of a person's force (and fatigue) model from a recorded force trace.

The procedure follows Ding et al. (2000, 2003): the **force-model** parameters (``a_rest``,
``tau1_rest``, ``tau2``, ``km_rest``; ``tau_c`` is fixed at its published value, as Ding
did) are fitted first on the start of the recording, when the muscle is fresh; the
**fatigue-model** parameters (``alpha_a``, ``alpha_km``, ``alpha_tau1``, ``tau_fat``) are then
fitted on the whole recording with the force parameters fixed. The two stages alternate twice
(each uses the other's latest values), and a last joint least-squares refinement of all
parameters gives the estimates, their covariance and confidence intervals.

Parameters are fitted in log space (all are positive, ``alpha_a`` negative), with SciPy's
trust-region least squares on the compiled kernel (a few ms per evaluation). Confidence
intervals are Wald intervals from the Jacobian at the optimum, ``s^2 (J^T J)^-1``, mapped back
from log space; they assume independent residuals, so they are too narrow when the residuals
are strongly autocorrelated (check ``residual_autocorrelation``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from opennmes.errors import ModelError
from opennmes.physiology._ding import DingParameters, default_parameters, pulse_weights
from opennmes.physiology._kernels import ding_advance, initial_state

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["identify", "IdentificationResult", "FORCE_PARAMETERS", "FATIGUE_PARAMETERS"]

FORCE_PARAMETERS: tuple[str, ...] = ("a_rest", "tau1_rest", "tau2", "km_rest")
FATIGUE_PARAMETERS: tuple[str, ...] = ("alpha_a", "alpha_km", "alpha_tau1", "tau_fat")
_UNITS = {"a_rest": "N/s", "tau1_rest": "s", "tau2": "s", "km_rest": "1", "alpha_a": "s^-2",
          "alpha_km": "s^-1 N^-1", "alpha_tau1": "N^-1", "tau_fat": "s"}


@dataclass(frozen=True)
class IdentificationResult:
    """Fitted parameters with confidence intervals and the fit error.

    Attributes
    ----------
    params : DingParameters
        The full fitted model (fitted values plus the fixed ones).
    estimates : dict
        ``name -> (value, ci_low, ci_high)`` for every fitted parameter, SI units.
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
    """

    params: DingParameters
    estimates: dict[str, tuple[float, float, float]]
    confidence: float
    rmse: float
    r2: float
    residual_autocorrelation: float
    n_samples: int
    fitted: np.ndarray = field(repr=False)

    def to_pandas(self) -> pd.DataFrame:
        """One row per fitted parameter: value, ci_low, ci_high, unit."""
        import pandas as pd

        return pd.DataFrame(
            [{"parameter": k, "value": v[0], "ci_low": v[1], "ci_high": v[2],
              "unit": _UNITS.get(k, "")} for k, v in self.estimates.items()]
        )

    def summary(self) -> str:
        """A plain-text table of the estimates and the fit error."""
        pct = round(self.confidence * 100)
        lines = [f"model {self.params.name}: RMSE {self.rmse:.4g} N, R^2 {self.r2:.5f}, "
                 f"{self.n_samples} samples", f"{'parameter':<12} {'value':>12} "
                 f"{'CI' + str(pct) + ' low':>12} {'CI' + str(pct) + ' high':>12}  unit"]
        for k, (v, lo, hi) in self.estimates.items():
            lines.append(f"{k:<12} {v:>12.6g} {lo:>12.6g} {hi:>12.6g}  {_UNITS.get(k, '')}")
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
    return 1.0 / step


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
        Per-pulse phase widths (s) and amplitudes (A) for Ding 2007 and Hmed 2018.
    fresh_window : float, optional
        Length (s) of the start of the trace used for the force-model stage; by default
        the first 10 % of the trace, at least 2 s (the whole trace without fatigue).
    initial : DingParameters, optional
        Start values (published defaults otherwise).
    fit : sequence of str, optional
        Parameters to fit; by default the force parameters, plus the fatigue ones when the
        model has fatigue.
    confidence : float
        Level of the confidence intervals.
    min_r2 : float
        Below this R^2 the trace is declared not fittable (ModelError).

    Raises
    ------
    ModelError
        Bad input (NaN, unsorted times, too short), or a trace the model cannot fit.
    """
    from scipy import optimize, stats

    tt = np.asarray(t, dtype=np.float64)
    ff = np.asarray(force, dtype=np.float64)
    pt = np.asarray(pulse_times, dtype=np.float64)
    sfreq = _validate(tt, ff, pt)
    p0 = initial if initial is not None else default_parameters(model)
    if initial is not None and model.endswith("-fatigue") and not p0.fatigue:
        p0 = p0.replace(fatigue=True)
    n_pw = pt.size
    pw = np.full(n_pw, np.nan) if pulse_widths is None else \
        np.broadcast_to(np.asarray(pulse_widths, dtype=np.float64), (n_pw,))
    amp = np.full(n_pw, np.nan) if amplitudes is None else \
        np.broadcast_to(np.asarray(amplitudes, dtype=np.float64), (n_pw,))
    if p0.model == "ding2007" and pulse_widths is None:
        raise ModelError("ding2007 identification needs the pulse widths")
    if p0.model == "hmed2018" and amplitudes is None:
        raise ModelError("hmed2018 identification needs the pulse amplitudes")
    lam, g = pulse_weights(p0, amp, pw)
    k0 = int(round(tt[0] * sfreq))
    if abs(k0 / sfreq - tt[0]) > 0.01 / sfreq:
        raise ModelError(f"t[0] = {tt[0]!r} s is not on the sampling grid k/{sfreq:.6g} Hz")
    names = tuple(fit) if fit is not None else \
        FORCE_PARAMETERS + (FATIGUE_PARAMETERS if p0.fatigue else ())
    unknown = sorted(set(names) - set(FORCE_PARAMETERS + FATIGUE_PARAMETERS))
    if unknown:
        raise ModelError(f"cannot fit {unknown}; fittable: "
                         f"{list(FORCE_PARAMETERS + FATIGUE_PARAMETERS)}")
    if not p0.fatigue and set(names) & set(FATIGUE_PARAMETERS):
        raise ModelError("fatigue parameters need a '-fatigue' model")
    scale = float(np.max(np.abs(ff)))
    if not scale > 0:
        raise ModelError("the force trace is zero everywhere: nothing to fit")

    def simulate_force(p: DingParameters, n: int) -> np.ndarray:
        out = np.zeros((1, n))
        st = initial_state(p.as_array())
        # samples start at k0; the state is advanced from t = 0
        if k0 > 0:
            pre = np.zeros((1, k0))
            used = ding_advance(pt, lam, g, p.as_array(), st, 0, k0, sfreq, 1e-3, pre)
        else:
            used = 0
        ding_advance(pt[used:], lam[used:], g[used:], p.as_array(), st, k0, n, sfreq, 1e-3,
                     out)
        return out[0]

    def pack(p: DingParameters, keys: Sequence[str]) -> np.ndarray:
        return np.array([math.log(abs(getattr(p, k))) for k in keys])

    def unpack(x: np.ndarray, p: DingParameters, keys: Sequence[str]) -> DingParameters:
        vals = {k: (-1.0 if k == "alpha_a" else 1.0) * math.exp(v)
                for k, v in zip(keys, x, strict=True)}
        return p.replace(**vals)

    def fit_stage(p: DingParameters, keys: Sequence[str], n: int
                  ) -> tuple[DingParameters, Any]:
        keys = list(keys)
        for k in keys:
            if getattr(p, k) == 0:
                p = p.replace(**{k: 1e-6})

        def resid(x: np.ndarray) -> np.ndarray:
            try:
                q = unpack(x, p, keys)
            except ModelError:
                return np.full(n, 1e3)
            sim = simulate_force(q, n)
            if not np.all(np.isfinite(sim)):
                return np.full(n, 1e3)
            return (sim - ff[:n]) / scale

        x0 = pack(p, keys)
        # each parameter within a factor 1000 of its start (log space)
        lo, hi = x0 - math.log(1e3), x0 + math.log(1e3)
        sol = optimize.least_squares(resid, x0, bounds=(lo, hi), method="trf", x_scale=1.0,
                                     diff_step=1e-6, xtol=1e-10, ftol=1e-10, gtol=1e-10,
                                     max_nfev=200 * len(keys))
        return unpack(sol.x, p, keys), sol

    n_all = tt.size
    force_keys = [k for k in names if k in FORCE_PARAMETERS]
    fat_keys = [k for k in names if k in FATIGUE_PARAMETERS]
    p = p0
    if force_keys and fat_keys:
        win = fresh_window if fresh_window is not None else \
            max(2.0, 0.1 * (tt[-1] - tt[0]))
        n_fresh = int(np.searchsorted(tt, tt[0] + win))
        n_fresh = min(max(n_fresh, 20), n_all)
        for _ in range(2):
            p, _sol = fit_stage(p, force_keys, n_fresh)
            p, _sol = fit_stage(p, fat_keys, n_all)
    keys = force_keys + fat_keys
    p, sol = fit_stage(p, keys, n_all)
    fitted = simulate_force(p, n_all)
    res = fitted - ff
    rmse = float(np.sqrt(np.mean(res**2)))
    ss_tot = float(np.sum((ff - ff.mean()) ** 2))
    r2 = 1.0 - float(np.sum(res**2)) / ss_tot if ss_tot > 0 else 0.0
    if not np.isfinite(r2) or r2 < min_r2:
        raise ModelError(
            f"could not fit {p0.name} to the trace: R^2 = {r2:.3f} (needs >= {min_r2}), "
            f"RMSE = {rmse:.4g} N. Check that the pulse times belong to this trace (same "
            "time origin), that the force is in N and that the muscle responded.")
    jac = np.asarray(sol.jac) * scale
    dof = max(n_all - len(keys), 1)
    s2 = float(np.sum(res**2)) / dof
    try:
        cov = s2 * np.linalg.pinv(jac.T @ jac)
    except np.linalg.LinAlgError:  # pragma: no cover - pinv rarely fails
        cov = np.full((len(keys), len(keys)), np.inf)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    estimates: dict[str, tuple[float, float, float]] = {}
    for i, k in enumerate(keys):
        v = float(getattr(p, k))
        se = math.sqrt(max(float(cov[i, i]), 0.0))
        lo, hi = v * math.exp(-z * se), v * math.exp(z * se)
        estimates[k] = (v, min(lo, hi), max(lo, hi))
    ac = float(np.corrcoef(res[:-1], res[1:])[0, 1]) if res.std() > 0 else 0.0
    return IdentificationResult(p, estimates, confidence, rmse, r2, ac, n_all, fitted)


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
