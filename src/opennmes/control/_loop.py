"""Closed-loop control of stimulation amplitude on the virtual patient.

Every stimulation pulse is one controller step: the joint angle (or muscle force) measured at
the end of the previous period sets the amplitude of the next pulse. Each pulse passes the
safety guard before the patient sees it; a refused pulse stops the loop with zero output and
the reason recorded. When the controller sits at its upper bound while the error stays large
(a fatigued muscle can no longer follow), the loop reports saturation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.control._ilc import IterativeLearning
from opennmes.control._pid import PID
from opennmes.errors import NmesError, SafetyLimitError
from opennmes.safety import SafetyGuard, device_profile
from opennmes.schedule import US_PER_S, PulseSchedule, to_us
from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from opennmes.physiology import PatientStream, VirtualPatient

__all__ = ["TrackingResult", "Tracker", "track", "track_repetitions", "standard_knee_target",
           "seated_knee_target",
           "static_curve", "inverse_curve", "DevicePlant"]

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


class DevicePlant:
    """A stimulator seen as the plant of a closed loop, for :func:`track`.

    Each ``advance(chunk, until)`` delivers the chunk through the device (and so through its
    own safety guard) and returns the measured signals of that window. With ``sim://`` the
    measurement is the virtual patient's response (the device's ``Played`` events); for a
    real device pass ``measure(start, until) -> Signals`` reading a sensor.

    Parameters
    ----------
    stim : opennmes.devices.Stimulator
        Configured and started, with the loop's channel.
    measure : callable, optional
        Sensor read-out for devices without a simulated body.
    """

    def __init__(self, stim: Any, measure: Callable[[float, float], Signals] | None = None
                 ) -> None:
        self.stim = stim
        self.measure = measure
        self._time = 0.0

    @property
    def time(self) -> float:
        """End of the last delivered window, s from the device start."""
        return self._time

    def advance(self, chunk: PulseSchedule, until: float) -> Signals:
        """Deliver ``chunk`` over ``[time, until)`` and return what was measured."""
        from opennmes.devices import Played

        start = self._time
        self.stim.deliver(chunk, until=until)
        self._time = until
        if self.measure is not None:
            return self.measure(start, until)
        played = [e for e in self.stim.events() if isinstance(e, Played)]
        sig = [e.signals for e in played if e.signals is not None]
        if not sig:
            raise NmesError(f"{self.stim.url}: no measurement for the closed loop; use sim:// "
                            "with a patient, or pass measure=")
        out = sig[0]
        for extra in sig[1:]:
            out = out.append(extra)
        return out


SATURATED = "saturated: the output is at its upper bound and the error stays large"


class Tracker:
    """One controller step per pulse: the PID output plus a learnt feed-forward, within the
    bounds, and a watch for saturation. Shared by :func:`track` and the session runner's
    closed-loop channels.

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


def track(
    stream: PatientStream | DevicePlant,
    target: np.ndarray,
    controller: PID,
    *,
    frequency: float,
    pulse_width: float,
    channel: str,
    electrode_area: float,
    signal: str = "knee.angle",
    feedforward: np.ndarray | None = None,
    profile: str = "sim",
    saturation_time: float = 1.0,
    saturation_error: float = math.radians(5.0),
    on_pulse: Callable[[float, float], None] | None = None,
) -> TrackingResult:
    """Track ``target`` (one value per pulse) by setting each pulse's amplitude.

    Parameters
    ----------
    stream : PatientStream or DevicePlant
        The virtual patient, advanced from its current time (``patient.start(sfreq=frequency)``
        gives one sample per pulse period), or a stimulator wrapped in :class:`DevicePlant`
        (``sim://`` with a patient closes the loop through the device layer).
    target : ndarray
        Target of ``signal`` at each pulse, in its unit (rad for angles).
    controller : PID
        Its ``dt`` must be ``1 / frequency``; its bounds bound the amplitude (A).
    frequency : float
        Pulse rate, Hz.
    pulse_width : float
        Phase width, s.
    channel : str
        Channel name the patient maps to a muscle (e.g. ``"quadriceps"``).
    electrode_area : float
        Electrode area, m^2 (for the guard's current-density limits).
    signal : str
        Signal of the patient stream to control, e.g. ``knee.angle`` or ``quadriceps.force``.
    feedforward : ndarray, optional
        Amplitude added to the PID output at each pulse (learnt by ILC), A. It replaces the
        controller's own feed-forward function for this run.
    profile : str
        Device limit profile for the guard.
    saturation_time, saturation_error : float
        The loop reports saturation when the output stays at its upper bound for
        ``saturation_time`` s with an error above ``saturation_error``.
    on_pulse : callable, optional
        ``on_pulse(t, amplitude)`` after each pulse (for logging or a live view).
    """
    target = np.asarray(target, dtype=np.float64)
    n = target.shape[0]
    if feedforward is not None and np.shape(feedforward) != target.shape:
        raise NmesError(f"feedforward has {np.shape(feedforward)} samples, target {n}")
    guard = SafetyGuard(device_profile(profile), {channel: electrode_area})
    t0 = stream.time
    measured = np.empty(n)
    amp = np.zeros(n)
    result = TrackingResult(np.arange(n) / frequency, target, measured, amp)
    if feedforward is not None:
        controller.feedforward = None
    tracker = Tracker(controller, frequency, saturation_time=saturation_time,
                      saturation_error=saturation_error)
    y: float | None = None

    def grid(k: int) -> float:  # pulse onsets on the schedule's whole-microsecond grid
        return int(to_us(t0 + k / frequency)) / US_PER_S

    for k in range(n):
        t_k = grid(k)
        ff = 0.0 if feedforward is None else float(feedforward[k])
        u = tracker.command(float(target[k]), y, ff)
        pulse = PulseSchedule.from_arrays([t_k], u, pulse_width,
                                          channel_names=(channel,))
        if result.stopped is None and u > 0:
            try:
                guard.check(pulse)
            except SafetyLimitError as exc:
                result.stopped = str(exc)
                result.events.append((k / frequency, f"stopped: {exc}"))
                log.warning("closed loop stopped by the guard: %s", exc)
        if result.stopped is not None:
            u = 0.0
        amp[k] = u
        chunk = pulse if u > 0 else PulseSchedule.empty((channel,))
        sig = stream.advance(chunk, grid(k + 1))
        y = float(sig[signal][-1]) if sig.n_samples else (y or 0.0)
        measured[k] = y
        if on_pulse:
            on_pulse(k / frequency, u)
        if tracker.watch(float(target[k]), y, u) and result.saturated_at is None:
            result.saturated_at = k / frequency
            result.events.append((k / frequency, SATURATED))
            log.warning("closed loop saturated at t = %.2f s", k / frequency)
    return result


def track_repetitions(
    patient: VirtualPatient,
    target: np.ndarray,
    make_controller: Callable[[], PID],
    *,
    repetitions: int,
    frequency: float,
    pulse_width: float,
    channel: str,
    electrode_area: float,
    ilc: IterativeLearning | None = None,
    rest: float = 5.0,
    signal: str = "knee.angle",
    seed: int | None = 0,
) -> list[TrackingResult]:
    """Repeat the same movement ``repetitions`` times on one patient (fatigue carries over),
    learning a feed-forward input with ``ilc`` between repetitions when given."""
    stream = patient.start(sfreq=frequency, seed=seed, emg=False)
    results = []
    ff: np.ndarray | None = None
    for _ in range(repetitions):
        pid = make_controller()
        res = track(stream, target, pid, frequency=frequency, pulse_width=pulse_width,
                    channel=channel, electrode_area=electrode_area, signal=signal,
                    feedforward=ff)
        results.append(res)
        if ilc is not None:
            ff = ilc.next_input(res.amplitude, res.error)
        stream.advance(PulseSchedule.empty((channel,)), stream.time + rest)
    return results


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
