"""Nerve activation: strength-duration, recruitment curves, electrode effects, motor-unit pools.

* Strength-duration, **Weiss (1901)** hyperbolic form ``I_th(d) = I_rh (1 + c/d)``, i.e. the
  threshold charge is linear in the duration, ``Q_th = I_rh (d + c)`` (Geddes 2004, IEEE TBME,
  doi 10.1109/TBME.2003.820340), and **Lapicque (1907)** exponential form
  ``I_th(d) = I_rh / (1 - exp(-d/tau_m))`` with chronaxie ``c = tau_m ln 2``.
* Recruitment: the fraction of the motor pool recruited by a pulse is a function of the
  normalised stimulus ``q = Q / Q_th(d) = I / I_th(d)`` (1 at motor threshold). The curve is
  S-shaped (force-charge is sigmoidal, reference section 2.4): a logistic in ``q`` shifted so
  that it is 0 at threshold and 1 at saturation. Its two parameters (``q50``, ``slope``) are
  per subject; no published set is verified, so presets mark them as modelling choices.
* Electrode effects (modelling assumptions, [U] in the reference): the threshold current grows
  with electrode area as ``(area / area_ref)^area_exponent`` (the same current spread over a
  larger pad gives a lower density under it) and with the distance of the electrode's centre
  from the motor point as ``exp(distance / length_constant)`` (placement over the motor point
  gives more force for the same current: Gobbo et al. 2011, EJAP 111:2451).
* NMES recruits **non-selectively, spatially fixed and synchronously** (Gregory & Bickel 2005,
  Phys Ther 85:358; Bickel, Gregory & Dean 2011, EJAP 111): :class:`MotorUnitPool` gives each
  unit a threshold that depends on its (random) position, not its size, and fires all recruited
  units at the pulse; voluntary contraction recruits by size (Henneman) and fires units
  asynchronously.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from opennmes.errors import ModelError

__all__ = ["NerveModel", "MotorUnitPool", "threshold_current", "threshold_charge"]

SDForm = Literal["weiss", "lapicque"]


def threshold_current(phase_width: npt.ArrayLike, rheobase: float, chronaxie: float,
                      form: SDForm = "weiss") -> np.ndarray:
    """Threshold current in A for rectangular pulses of ``phase_width`` s.

    Parameters
    ----------
    phase_width : array_like
        Pulse (phase) duration in s, > 0.
    rheobase : float
        Threshold for an infinitely long pulse, A.
    chronaxie : float
        Duration at which the threshold is twice the rheobase, s.
    form : {"weiss", "lapicque"}
        ``weiss``: ``I_rh (1 + c/d)``; ``lapicque``: ``I_rh/(1 - exp(-d ln2 / c))``.
    """
    d = np.asarray(phase_width, dtype=np.float64)
    if np.any(~(d > 0)):
        bad = d[~(d > 0)].flat[0]
        raise ModelError(f"phase width {bad!r} s must be > 0 for a strength-duration threshold")
    if form == "weiss":
        return np.asarray(rheobase * (1.0 + chronaxie / d))
    if form == "lapicque":
        tau_m = chronaxie / math.log(2.0)
        return np.asarray(rheobase / -np.expm1(-d / tau_m))
    raise ModelError(f"unknown strength-duration form {form!r}; use 'weiss' or 'lapicque'")


def threshold_charge(phase_width: npt.ArrayLike, rheobase: float, chronaxie: float,
                     form: SDForm = "weiss") -> np.ndarray:
    """Threshold charge per phase in C (``I_th(d) d``); Weiss: ``I_rh (d + c)``."""
    d = np.asarray(phase_width, dtype=np.float64)
    return np.asarray(threshold_current(d, rheobase, chronaxie, form) * d)


@dataclass(frozen=True)
class NerveModel:
    """Recruitment of a muscle's motor units by transcutaneous pulses.

    Parameters
    ----------
    rheobase : float
        Motor-threshold current for long pulses with the reference electrode over the motor
        point, A.
    chronaxie : float
        Chronaxie, s (innervated muscle at the motor point: typically 0.1-0.7 ms).
    form : {"weiss", "lapicque"}
        Strength-duration form.
    q50 : float
        Normalised stimulus (multiple of threshold) recruiting half the pool.
    slope : float
        Width of the logistic recruitment curve, in multiples of threshold.
    area_ref : float
        Electrode area for which ``rheobase`` holds, m^2.
    area_exponent : float
        Threshold scales with ``(area/area_ref)^area_exponent``.
    motor_point_distance : float
        Distance of the electrode centre from the motor point, m.
    length_constant : float
        Threshold grows as ``exp(distance/length_constant)``, m.
    """

    rheobase: float
    chronaxie: float
    form: SDForm = "weiss"
    q50: float = 2.0
    slope: float = 0.35
    area_ref: float = 50e-4
    area_exponent: float = 0.5
    motor_point_distance: float = 0.0
    length_constant: float = 0.03

    def __post_init__(self) -> None:
        for name in ("rheobase", "chronaxie", "slope", "area_ref", "length_constant"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ModelError(f"nerve model {name} = {v!r} must be finite and > 0")
        if not self.q50 > 1.0:
            raise ModelError(f"nerve model q50 = {self.q50!r} must be > 1 (threshold is 1)")
        if self.form not in ("weiss", "lapicque"):
            raise ModelError(f"unknown strength-duration form {self.form!r}")
        if not (math.isfinite(self.motor_point_distance) and self.motor_point_distance >= 0):
            raise ModelError(f"motor_point_distance = {self.motor_point_distance!r} m must "
                             "be >= 0")

    def electrode_factor(self, area: float | None = None) -> float:
        """Multiplier of the threshold current for an electrode of ``area`` m^2."""
        f = math.exp(self.motor_point_distance / self.length_constant)
        if area is not None:
            if not (math.isfinite(area) and area > 0):
                raise ModelError(f"electrode area {area!r} m^2 must be > 0")
            f *= (area / self.area_ref) ** self.area_exponent
        return f

    def threshold(self, phase_width: npt.ArrayLike, area: float | None = None) -> np.ndarray:
        """Motor-threshold current in A for pulses of ``phase_width`` s."""
        return threshold_current(phase_width, self.rheobase, self.chronaxie, self.form) \
            * self.electrode_factor(area)

    def curve(self, q: npt.ArrayLike) -> np.ndarray:
        """Fraction of motor units recruited at normalised stimulus ``q`` (0 at q <= 1)."""
        x = np.asarray(q, dtype=np.float64)

        def logistic(v: np.ndarray | float) -> np.ndarray:
            return np.asarray(1.0 / (1.0 + np.exp(-(np.asarray(v) - self.q50) / self.slope)))

        lo = logistic(1.0)
        r = (logistic(x) - lo) / (1.0 - lo)
        return np.asarray(np.clip(r, 0.0, 1.0))

    def recruitment(self, amplitude: npt.ArrayLike, phase_width: npt.ArrayLike,
                    area: float | None = None) -> np.ndarray:
        """Fraction of motor units recruited by pulses of ``amplitude`` A and ``phase_width`` s.

        ``phase_width`` 0 (no pulse) recruits nothing.
        """
        amp = np.asarray(amplitude, dtype=np.float64)
        pw = np.asarray(phase_width, dtype=np.float64)
        amp, pw = np.broadcast_arrays(amp, pw)
        out = np.zeros(amp.shape)
        ok = pw > 0
        if ok.any():
            q = amp[ok] / self.threshold(pw[ok], area)
            out[ok] = self.curve(q)
        return out


@dataclass(frozen=True)
class MotorUnitPool:
    """A pool of motor units to contrast NMES and voluntary recruitment.

    Twitch forces span a 100-fold range, exponentially distributed over the pool (Fuglevand,
    Winter & Patla 1993, J Neurophysiol 70:2470). Under NMES each unit's threshold depends on its
    random position relative to the electrode, independent of its size, and every recruited
    unit fires at each pulse (synchronous); voluntary recruitment follows size (Henneman) with
    asynchronous firing at 8-35 Hz.

    Parameters
    ----------
    nerve : NerveModel
        Gives the distribution of NMES thresholds (its recruitment curve).
    n_units : int
        Number of motor units.
    seed : int
        Seed of the random positions.
    """

    nerve: NerveModel
    n_units: int = 200
    seed: int = 0

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.n_units
        size = np.exp(np.log(100.0) * np.arange(n) / max(n - 1, 1))
        rng = np.random.default_rng(self.seed)
        # NMES threshold of each unit: stratified draw from the recruitment curve, shuffled
        # independently of size (spatial, non-selective)
        u = (np.arange(n) + 0.5) / n
        grid = np.linspace(1.0, 1.0 + 20 * self.nerve.q50, 20001)
        q_thr = np.interp(u, self.nerve.curve(grid), grid)
        q_thr = q_thr[rng.permutation(n)]
        vol_thr = (np.arange(n) + 0.5) / n  # voluntary: by size order
        return size, q_thr, vol_thr

    @property
    def twitch_force(self) -> np.ndarray:
        """Relative twitch force of each unit (1 to 100)."""
        return self._arrays()[0]

    def nmes_recruited(self, q: float) -> np.ndarray:
        """Boolean mask of the units recruited at normalised stimulus ``q``."""
        return self._arrays()[1] <= q

    def voluntary_recruited(self, drive: float) -> np.ndarray:
        """Boolean mask of the units recruited at voluntary drive ``drive`` (0-1)."""
        return self._arrays()[2] <= drive

    def force_fraction(self, mask: np.ndarray) -> float:
        """Fraction of the pool's total twitch force in the recruited ``mask``."""
        size = self._arrays()[0]
        return float(size[mask].sum() / size.sum())

    def firing_times(self, mask: np.ndarray, duration: float, *, pulse_times: np.ndarray |
                     None = None, rate: float = 15.0, seed: int = 0) -> list[np.ndarray]:
        """Discharge times (s) of the recruited units over ``duration`` s.

        With ``pulse_times`` (NMES) every recruited unit fires at every pulse plus a fixed
        conduction latency (synchronous). Without (voluntary) each fires at about ``rate`` Hz
        with 20 % interval jitter and a random phase (asynchronous).
        """
        rng = np.random.default_rng(seed)
        out: list[np.ndarray] = []
        for _ in np.flatnonzero(mask):
            if pulse_times is not None:
                out.append(np.asarray(pulse_times, dtype=np.float64) + 0.004)
            else:
                isi = 1.0 / rate
                n = int(duration / isi) + 2
                t = rng.uniform(0, isi) + np.cumsum(rng.normal(isi, 0.2 * isi, n))
                out.append(t[(t >= 0) & (t < duration)])
        return out
