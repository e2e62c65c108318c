"""Closed-loop control of stimulation amplitude: the per-pulse controller step, tracking
targets and the feed-forward from a static curve.

Every stimulation pulse is one controller step (:class:`Tracker`): the joint angle (or muscle
force) measured at the end of the previous period sets the amplitude of the next pulse. When
the controller sits at its upper bound while the error stays large (a fatigued muscle can no
longer follow), it reports saturation. Nothing here touches a device or the guard: the
session (``opennmes.session.ClosedLoopDrive``, ``opennmes.session.track``) composes the
controller with the plant, the guard and the record.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from opennmes.control._pid import PID
from opennmes.errors import NmesError
from opennmes.schedule import US_PER_S, PulseSchedule, to_us

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from opennmes.physiology import VirtualPatient

__all__ = ["TrackingResult", "Tracker", "SATURATED", "at_ceiling", "standard_knee_target",
           "seated_knee_target", "static_curve", "inverse_curve"]

log = logging.getLogger(__name__)


@dataclass
class TrackingResult:
    """One tracking run, sampled at the pulse rate.

    Attributes
    ----------
    t : ndarray
        Pulse times, s (from the start of the run).
    target, measured : ndarray
        Target and measured signal (rad for joint angles, N for force).
    amplitude : ndarray
        Commanded amplitude of each pulse, A (0 after a stop).
    saturated_at : float or None
        Time at which the loop reported saturation, s.
    stopped : str or None
        Why the loop stopped early (a guard refusal), or None.
    """

    t: np.ndarray
    target: np.ndarray
    measured: np.ndarray
    amplitude: np.ndarray
    saturated_at: float | None = None
    stopped: str | None = None
    events: list[tuple[float, str]] = field(default_factory=list)

    @property
    def error(self) -> np.ndarray:
        """``target - measured``."""
        return self.target - self.measured

    def rmse(self, until: float | None = None) -> float:
        """Root-mean-square tracking error (up to ``until`` s, if given)."""
        e = self.error if until is None else self.error[self.t < until]
        return float(np.sqrt(np.mean(e**2)))

    def to_pandas(self) -> pd.DataFrame:
        """Columns t, target, measured, amplitude, error."""
        import pandas as pd

        return pd.DataFrame({"t": self.t, "target": self.target, "measured": self.measured,
                             "amplitude": self.amplitude, "error": self.error})


def standard_knee_target(frequency: float, *, peak: float = math.radians(60.0),
                         rise: float = 2.0, hold: float = 3.0, fall: float = 2.0,
                         rest: float = 0.5) -> np.ndarray:
    """The standard knee-extension target used in the tests and benchmarks, in rad.

    Rest, raised-cosine rise to ``peak`` over ``rise`` s, hold, raised-cosine fall, rest;
    sampled at the pulse ``frequency`` (Hz).
    """
    total = rest + rise + hold + fall + rest
    t = np.arange(int(round(total * frequency))) / frequency
    y = np.zeros_like(t)
    a = (t >= rest) & (t < rest + rise)
    y[a] = peak * 0.5 * (1 - np.cos(np.pi * (t[a] - rest) / rise))
    y[(t >= rest + rise) & (t < rest + rise + hold)] = peak
    b = (t >= rest + rise + hold) & (t < rest + rise + hold + fall)
    y[b] = peak * 0.5 * (1 + np.cos(np.pi * (t[b] - rest - rise - hold) / fall))
    return y


def seated_knee_target(knee_flexion: np.ndarray, sfreq: float, frequency: float, *,
                       repeats: int = 3, lead: float = 1.0) -> np.ndarray:
    """A gait knee-flexion trajectory as an extension target for a seated knee, in rad.

    Seated with the shank hanging (90 deg of flexion = 0 extension), extension is
    ``90 deg - flexion``. The trajectory (rad, sampled at ``sfreq`` Hz; NaN frames are
    interpolated) is resampled at the pulse ``frequency`` (Hz), preceded by ``lead`` s rising
    linearly from rest to its first value, and played ``repeats`` times.
    """
    x = np.asarray(knee_flexion, dtype=np.float64).reshape(-1)
    ok = np.isfinite(x)
    if ok.sum() < 2:
        raise NmesError("the knee trajectory has fewer than two valid samples")
    t = np.arange(x.size) / sfreq
    tt = np.arange(0.0, t[-1], 1.0 / frequency)
    ext = math.pi / 2 - np.interp(tt, t[ok], x[ok])
    rise = np.linspace(0.0, ext[0], int(round(lead * frequency)))
    return np.concatenate([rise, *([ext] * max(1, int(repeats)))])


SATURATED = "saturated: the output is at its upper bound and the error stays large"


def at_ceiling(amplitude: np.ndarray, ceiling: float | np.ndarray) -> np.ndarray:
    """Pulses whose output sat at its ``ceiling`` (A, one value or one per pulse): where
    iterative learning holds its correction (``IterativeLearning.next_input(hold=...)``)."""
    u = np.asarray(amplitude, dtype=np.float64)
    hi = np.broadcast_to(np.asarray(ceiling, dtype=np.float64), u.shape)
    return u >= hi * (1 - 1e-9)


class Tracker:
    """One controller step per pulse: the PID output plus a learnt feed-forward, within the
    bounds, and a watch for saturation. Used by the session's closed loops
    (``opennmes.session.ClosedLoopDrive`` and ``opennmes.session.track``).

    Parameters
    ----------
    controller : PID
        Its ``dt`` must be ``1 / frequency``; its bounds bound the amplitude (A).
    frequency : float
        Pulse rate, Hz.
    saturation_time, saturation_error : float
        Saturation is reported when the output stays at its upper bound (or the ceiling in
        force) for ``saturation_time`` s with ``|target - measured|`` above
        ``saturation_error`` (in the signal's unit).
    """

    def __init__(self, controller: PID, frequency: float, *, saturation_time: float = 1.0,
                 saturation_error: float = math.radians(5.0)) -> None:
        if abs(controller.dt * frequency - 1.0) > 1e-9:
            raise NmesError(f"controller dt = {controller.dt} s must equal 1 / frequency = "
                            f"{1 / frequency} s")
        self.controller = controller
        self.frequency = float(frequency)
        self.saturation_pulses = max(1, int(round(saturation_time * frequency)))
        self.saturation_error = float(saturation_error)
        self._upper = controller.u_max
        self.reset()

    def reset(self) -> None:
        """Start again from zero output (a new repetition)."""
        self.controller.reset(0.0)
        self._at_max = 0

    def command(self, target: float, measured: float | None, feedforward: float = 0.0,
                ceiling: float | None = None) -> float:
        """The amplitude of the next pulse, A: zero before the first measurement, then the
        controller's output plus ``feedforward``, within ``[u_min, min(u_max, ceiling)]``."""
        c = self.controller
        hi = c.u_max if ceiling is None else max(c.u_min, min(c.u_max, ceiling))
        self._upper = hi
        u = c.update(target, measured, ceiling=hi) if measured is not None else 0.0
        return min(max(u + feedforward, c.u_min), hi)

    def watch(self, target: float, measured: float, u: float) -> bool:
        """After a pulse: True when saturation is reached at this pulse (once per episode)."""
        if u >= self._upper * (1 - 1e-9) and abs(target - measured) > self.saturation_error:
            self._at_max += 1
            return self._at_max == self.saturation_pulses
        self._at_max = 0
        return False


def static_curve(
    patient: VirtualPatient,
    amplitudes: np.ndarray,
    *,
    frequency: float,
    pulse_width: float,
    channel: str,
    signal: str = "knee.angle",
    hold: float = 2.0,
) -> np.ndarray:
    """Steady value of ``signal`` for each constant amplitude (A), held ``hold`` s from rest
    (mean of the last 0.5 s); the basis of a model-based feed-forward."""
    out = []
    n = int(round(hold * frequency))
    t = np.arange(n) / frequency
    for a in np.asarray(amplitudes, dtype=np.float64):
        stream = patient.start(sfreq=frequency, seed=0, emg=False)
        sched = PulseSchedule.from_arrays(to_us(t) / US_PER_S, a, pulse_width,
                                          channel_names=(channel,))
        sig = stream.advance(sched if a > 0 else PulseSchedule.empty((channel,)), hold)
        y = sig[signal]
        out.append(float(np.mean(y[-max(1, int(0.5 * frequency)):])))
    return np.asarray(out)


def inverse_curve(amplitudes: np.ndarray, values: np.ndarray) -> Callable[[float], float]:
    """Feed-forward ``target -> amplitude`` by interpolating a monotone static curve
    (zero amplitude for targets at or below the resting value)."""
    a = np.asarray(amplitudes, dtype=np.float64)
    v = np.maximum.accumulate(np.asarray(values, dtype=np.float64))
    keep = np.concatenate([[True], np.diff(v) > 1e-9])
    a, v = a[keep], v[keep]

    def ff(target: float) -> float:
        if target <= v[0] + 1e-9:
            return 0.0
        return float(np.interp(target, v, a))

    return ff
