"""What identification may fit: parameter ranges with their sources, the fit variables, and the
forward model (a Ding-family force with an optional recruitment curve) evaluated for a trace.

Ranges (:data:`BOUNDS`) bound every fit to physiological values. The force-model and
``alpha_tau1``/``tau_fat`` ranges are those of PMC9936668 Table 2 (Bioelectron Med 2023 9:3,
"defined by values used in Ding et al. 2003 and Doll et al. 2017"); where that table is
inconsistent with the model (its ``alpha_A`` range of +-1 ms^-2, its signed ``alpha_Km``) or
excludes another published set (Ding 2007's ``tau2`` = 1 ms), the range is widened and tagged
[U] in its source. The recruitment-curve ranges are modelling choices [U]: no published
parameter set of a logistic recruitment curve is verified (reference section 2.4).

Fit variables are scaled to the published value ``ref`` of each parameter: ``log(v / ref)``
for the positive parameters, ``v / ref`` for the fatigue coefficients (which may be 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from opennmes.errors import ModelError
from opennmes.physiology._ding import DingParameters, pulse_weights
from opennmes.physiology._kernels import ding_advance, initial_state
from opennmes.physiology._nerve import NerveModel

__all__ = ["Bound", "BOUNDS", "RECRUITMENT_PARAMETERS", "RECRUITMENT_DEFAULTS", "Forward",
           "to_theta", "from_theta", "theta_bounds"]

_TABLE = "PMC9936668 Table 2 (Bioelectron Med 2023 9:3; ranges from Ding 2003, Doll 2017)"


@dataclass(frozen=True)
class Bound:
    """Physiological range of one fitted parameter (SI) and where it comes from."""

    lower: float
    upper: float
    unit: str
    transform: str  # "log" or "lin"
    source: str


BOUNDS: dict[str, Bound] = {
    "a_rest": Bound(110.0, 10000.0, "N/s", "log", _TABLE + ": A 0.11-10 N/ms"),
    "tau1_rest": Bound(0.002, 0.200, "s", "log", _TABLE + ": tau1 2-200 ms"),
    "tau2": Bound(0.0005, 0.250, "s", "log", _TABLE + ": tau2 5-100 ms, widened [U] to 0.5 ms "
                  "(Ding 2007, cocofest: 1 ms) and 250 ms (Ding 1998 rat muscle: 235 ms)"),
    "km_rest": Bound(0.01, 0.50, "1", "log", _TABLE + ": Km 0.01-0.5"),
    "alpha_a": Bound(-4.0, 0.0, "s^-2", "lin", "[U] 0 to 10x the published -0.4 s^-2 (Ding "
                     "2000, Doll 2015); the table's +-1 ms^-2 is not consistent with its own "
                     "Ding value"),
    "alpha_km": Bound(0.0, 1e-4, "s^-1 N^-1", "lin", _TABLE + ": alpha_Km up to 1e-4 (its "
                      "negative half excluded: the model needs >= 0)"),
    "alpha_tau1": Bound(0.0, 1e-3, "N^-1", "lin", _TABLE + ": alpha_tau1 0-1e-3"),
    "tau_fat": Bound(80.0, 160.0, "s", "log", _TABLE + ": tau_fat 80-160 s"),
    # recruitment (Ding 2003 with pulse amplitudes): logistic of NerveModel [U]
    "threshold": Bound(0.0, 0.0, "A", "log", "[U] between 5 % and 99.5 % of the trace's "
                       "largest amplitude (set per trace)"),
    "q50": Bound(1.05, 10.0, "1", "log", "[U] modelling choice (NerveModel; reference 2.4: "
                 "no verified published set)"),
    "slope": Bound(0.05, 3.0, "1", "log", "[U] modelling choice (NerveModel)"),
}

RECRUITMENT_PARAMETERS: tuple[str, ...] = ("threshold", "q50", "slope")
RECRUITMENT_DEFAULTS: dict[str, float] = {"q50": NerveModel.q50, "slope": NerveModel.slope}
"""Values the recruitment shape is fixed at when the trace does not determine it: the
project's NerveModel defaults (modelling choices [U], not published values)."""


def to_theta(name: str, value: float, ref: float) -> float:
    """Fit variable of ``value`` (scaled to the reference value ``ref``)."""
    if BOUNDS[name].transform == "log":
        return math.log(value / ref)
    return value / ref


def from_theta(name: str, theta: float, ref: float) -> float:
    """Inverse of :func:`to_theta`."""
    if BOUNDS[name].transform == "log":
        return ref * math.exp(theta)
    return ref * theta


def theta_bounds(name: str, ref: float, bound: Bound) -> tuple[float, float]:
    """Bounds of the fit variable of ``name`` (ordered low, high)."""
    lo, hi = to_theta(name, bound.lower, ref), to_theta(name, bound.upper, ref)
    return (min(lo, hi), max(lo, hi))


class Forward:
    """The model force at a trace's samples for given parameter values.

    Parameters
    ----------
    base : DingParameters
        Model with the values of every parameter that is not fitted.
    pulse_times : ndarray
        Pulse onsets, s.
    amplitudes, widths : ndarray
        Per-pulse amplitude (A) and phase width (s); NaN where not known.
    k0, n, sfreq : int, int, float
        First sample index (on the grid ``k / sfreq`` from t = 0), sample count and rate.
    hmax : float
        Longest integration step, s (the kernel's error stays below 1e-5 of the force up to
        5 ms, far below a dynamometer's noise).
    recruit : bool
        Weight each pulse by a logistic recruitment curve of its amplitude, normalised to 1 at
        the trace's strongest pulse (Ding 2003 with varying amplitudes).
    """

    def __init__(self, base: DingParameters, pulse_times: np.ndarray, amplitudes: np.ndarray,
                 widths: np.ndarray, k0: int, n: int, sfreq: float, recruit: bool,
                 hmax: float = 1e-3) -> None:
        self.base = base
        self.pt = pulse_times
        self.amp = amplitudes
        self.pw = widths
        self.k0, self.n, self.sfreq = k0, n, sfreq
        self.recruit = recruit
        self.hmax = hmax
        self.lam, self.g = pulse_weights(base, amplitudes, widths)
        self.evaluations = 0

    def weights(self, values: Mapping[str, float]) -> np.ndarray:
        """Per-pulse recruitment relative to the strongest pulse (1 without recruitment)."""
        if not self.recruit:
            return self.g
        nerve = NerveModel(rheobase=1.0, chronaxie=1.0,
                           q50=values.get("q50", RECRUITMENT_DEFAULTS["q50"]),
                           slope=values.get("slope", RECRUITMENT_DEFAULTS["slope"]))
        r = nerve.curve(self.amp / values["threshold"])
        top = float(r.max())
        return np.asarray(r / top) if top > 0 else r

    def force(self, values: Mapping[str, float]) -> np.ndarray | None:
        """Force (N) at the trace's samples, or None where the values make no valid model."""
        self.evaluations += 1
        ding = {k: v for k, v in values.items() if k not in RECRUITMENT_PARAMETERS}
        try:
            p = self.base.replace(**ding) if ding else self.base
            g = self.weights(values)
        except (ModelError, ValueError, OverflowError, ZeroDivisionError):
            return None
        arr = p.as_array()
        st = initial_state(arr)
        out = np.zeros((1, self.n))
        used = 0
        if self.k0 > 0:  # samples start at k0: advance the state from t = 0 first
            used = ding_advance(self.pt, self.lam, g, arr, st, 0, self.k0, self.sfreq, self.hmax,
                                np.zeros((1, self.k0)))
        ding_advance(self.pt[used:], self.lam[used:], g[used:], arr, st, self.k0, self.n,
                     self.sfreq, self.hmax, out)
        f = out[0]
        return f if np.all(np.isfinite(f)) else None
