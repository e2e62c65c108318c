"""Functional channels in a session: triggered bursts and closed loops.

A *drive* takes over one program channel in a :class:`~opennmes.session.SessionRunner`:
instead of the program's fixed schedule, the channel's pulses come from triggers (the
patient's EMG, gait events from a shank gyroscope, a button, an external API call) or from a
closed-loop controller tracking a target on a measured signal. Everything else stays the
runner's: the operator's intensity is the ceiling of a driven channel (every session starts
at zero, CPS §4.6 item 2), the device's guard passes every window, pause and stop zero the
output, and the record holds the delivered pulses, the sensor streams, what each drive
decided (``trigger`` and ``loop`` events) and, for closed loops, a ``control.<channel>``
stream of target, measurement and commanded amplitude per pulse.

All times are session time (s from the first window; the device's schedule time). A sensor
stream's ``t0`` is in session time too.

The runner calls, from its control loop only:

* ``bind(channel, channel_names, stim)`` once, before the session;
* ``observe(signals, sensor_name)`` for each chunk a sensor delivers;
* ``render(t0, t1, level)`` for each window ``[t0, t1)``: the pulses of the channel, with
  ``level`` the operator's intensity in A (0 while paused);
* ``pause(t)`` when the operator pauses (a running burst is cancelled);
* ``take_events()`` and ``take_trace()`` after each window.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from opennmes.control import (
    PID,
    EmgTrigger,
    GaitTrigger,
    IterativeLearning,
    Tracker,
    TriggeredStimulation,
    at_ceiling,
)
from opennmes.errors import ProgramError
from opennmes.schedule import US_PER_S, PulseSchedule, quantize_amplitude, to_us
from opennmes.session._events import LoopEvent, SessionEvent, Triggered
from opennmes.signals import Signals
from opennmes.stim import Channel

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.sensing import GaitEventDetector, HeelSwitchDetector
    from opennmes.stim import Program

__all__ = ["Drive", "TriggerDrive", "ClosedLoopDrive", "TRIGGER_SOURCES", "program_drives"]

log = logging.getLogger(__name__)

TRIGGER_SOURCES = ("emg", "gait", "button", "external")
"""What can start a triggered burst."""


class Drive(Protocol):
    """A functional channel (see the module docstring)."""

    channel: str

    def bind(self, channel: Channel, channel_names: tuple[str, ...], stim: Any) -> None: ...

    def observe(self, signals: Signals, sensor: str) -> None: ...

    def render(self, t0: float, t1: float, level: float) -> PulseSchedule: ...

    def pause(self, t: float) -> None: ...

    def take_events(self) -> list[SessionEvent]: ...

    def take_trace(self) -> Signals | None: ...

    def describe(self) -> str: ...


def _pulses(channel: Channel, index: int, names: tuple[str, ...], t: np.ndarray,
            amplitude: np.ndarray) -> PulseSchedule:
    """Pulses of ``channel``'s shape at times ``t`` (s) with first-phase ``amplitude`` (A)."""
    n = t.shape[0]
    r_amp, r_w = channel.second_phase
    return PulseSchedule(
        t=t, channel=np.full(n, index, dtype=np.int16), amplitude=amplitude,
        phase_width=np.full(n, channel.pulse_width_s),
        interphase_gap=np.full(n, channel.interphase_gap), amplitude2=amplitude * r_amp,
        phase_width2=np.full(n, r_w), waveform=np.full(n, channel.waveform_id, dtype=np.int8),
        channel_names=names)


class TriggerDrive:
    """Bursts of one channel started by triggers.

    The channel's ``ramp_up``, ``on`` and ``ramp_down`` shape each burst, its amplitude is
    the burst's full level (the operator's intensity scales it down), and the pulses sit on
    the channel's period grid from session time 0, as gridded stimulators (RehaStim 2, P24)
    play them.

    Parameters
    ----------
    channel : str
        Program channel this drive takes over.
    source : {"emg", "gait", "button", "external"}
        ``emg``: an onset of the patient's own EMG on ``signal`` starts a burst (EMG-triggered
        NMES, reference emg-gait-and-control §1.3); the first ``rest`` s of the stream
        calibrate the onset detector (no triggers then). ``gait``: drop-foot stimulation from
        foot-off + ``delay`` to initial contact + ``extension`` detected on the sagittal shank
        angular velocity ``signal`` (reference §2; CPS §3.1). ``button`` and ``external``:
        bursts start from :meth:`SessionRunner.trigger`.
    signal : str, optional
        Sensor channel (EMG or gyroscope, rad/s); required for emg and gait.
    sensor : str, optional
        Name of the sensor stream carrying ``signal`` (default: any stream that has it).
    refractory : float
        Time after a burst during which triggers are ignored, s.
    max_burst : float, optional
        Longest burst, s (the channel's ``on`` time or this must end a burst).
    silence_timeout : float, optional
        A sensor silent this long (s) cancels the burst: zero output, a ``silent`` event.
        Default 0.5 s for emg and gait.
    delay, extension : float
        Gait only, s.
    method, threshold, hold, rest :
        EMG only: :class:`~opennmes.sensing.OnsetDetector` method, threshold ``h`` (None:
        the method's default), hold time (s) and rest time at the start (s).
    polarity : {+1, -1}
        Gait gyroscope only: sign of the mid-swing peak on the gyroscope channel.
    detector : {"gyroscope", "heel-switch"}
        Gait only: a sagittal shank gyroscope (rad/s) or an in-shoe heel switch (FSR) with
        hysteresis levels ``on_level`` > ``off_level`` (the switch's unit) and ``debounce`` s.
    """

    def __init__(self, channel: str, source: str, *, signal: str | None = None,
                 sensor: str | None = None, refractory: float = 0.0,
                 max_burst: float | None = None, silence_timeout: float | None = None,
                 delay: float = 0.0, extension: float = 0.0, method: str = "threshold",
                 threshold: float | None = None, hold: float = 0.05, rest: float = 1.0,
                 polarity: int = 1, detector: str = "gyroscope",
                 on_level: float | None = None, off_level: float | None = None,
                 debounce: float = 0.03) -> None:
        if source not in TRIGGER_SOURCES:
            raise ProgramError(f"trigger source {source!r}; one of {list(TRIGGER_SOURCES)}")
        sensed = source in ("emg", "gait")
        if sensed and not signal:
            raise ProgramError(f"a {source} trigger on {channel!r} needs the sensor channel "
                               "(signal) it listens to")
        if not sensed and (signal or sensor):
            raise ProgramError(f"a {source} trigger listens to no sensor; signal = {signal!r} "
                               f"and sensor = {sensor!r} must be unset")
        if detector not in ("gyroscope", "heel-switch"):
            raise ProgramError(f"gait detector {detector!r}; one of gyroscope, heel-switch")
        if source == "gait" and detector == "heel-switch" and not (
                on_level is not None and off_level is not None and off_level < on_level):
            raise ProgramError(f"a heel-switch trigger needs off_level < on_level; got "
                               f"off_level = {off_level!r}, on_level = {on_level!r}")
        if source == "emg" and not rest > 0:
            raise ProgramError(f"emg trigger rest = {rest!r} s must be > 0 (the detector "
                               "calibrates on it)")
        for name, v in (("refractory", refractory), ("delay", delay),
                        ("extension", extension), ("hold", hold)):
            if not (math.isfinite(v) and v >= 0):
                raise ProgramError(f"trigger {name} = {v!r} s must be >= 0")
        self.channel = channel
        self.source = source
        self.signal = signal
        self.sensor = sensor
        self.refractory = float(refractory)
        self.max_burst = max_burst
        self.silence_timeout = (0.5 if sensed else None) if silence_timeout is None \
            else float(silence_timeout)
        self.delay, self.extension = float(delay), float(extension)
        self.method, self.threshold, self.hold, self.rest = method, threshold, hold, rest
        self.polarity = polarity
        self.detector = detector
        self.on_level, self.off_level, self.debounce = on_level, off_level, debounce
        self.stimulation: TriggeredStimulation | None = None
        self._amplitude = 0.0
        self._trigger: EmgTrigger | GaitTrigger | None = None
        self._rest: list[Signals] = []
        self._armed = not sensed or source == "gait"
        self._n_events = 0
        self._bursts_started = 0
        self._own: list[SessionEvent] = []
        self._sensors_seen: set[str] = set()

    def describe(self) -> str:
        """One line: what triggers this channel."""
        what = {"emg": f"EMG onsets on {self.signal!r}",
                "gait": f"foot-off to initial contact on {self.signal!r} ({self.detector}, delay "
                        f"{self.delay:g} s, extension {self.extension:g} s)",
                "button": "the button", "external": "external requests"}[self.source]
        return f"triggered by {what}"

    def bind(self, channel: Channel, channel_names: tuple[str, ...], stim: Any) -> None:
        """Build the burst generator for ``channel`` (the runner calls this once)."""
        self.stimulation = TriggeredStimulation(
            channel, channel_names, refractory=self.refractory, max_burst=self.max_burst,
            silence_timeout=self.silence_timeout, grid_origin=0.0)
        self._amplitude = float(channel.amplitude)
        if self.silence_timeout is not None:
            self.stimulation.sensor_seen(0.0)  # a sensor that never sends is silent too
        if self.source in ("emg", "gait"):
            self._warm_up()

    def _warm_up(self) -> None:
        """Import and run the detectors once on synthetic data before the session: their
        first call loads and compiles filter code (about 0.2 s), which inside the control
        loop would stall it past the watchdog's margin."""
        from opennmes.sensing import GaitEventDetector, OnsetDetector

        if self.source == "emg":  # only the detector this drive will use
            rng = np.random.default_rng(0)
            emg = Signals(rng.normal(size=(1, 1000)), 1000.0, ("warm-up",), ("V",))
            det = OnsetDetector(emg.sfreq, emg.names, self.method, h=self.threshold,
                                hold=self.hold)
            det.calibrate(emg)
            det.reset()
            det.update(emg)
        elif self.detector == "gyroscope":
            gyro = Signals(np.zeros((1, 120)), 120.0, ("warm-up",), ("rad/s",))
            GaitEventDetector(gyro.sfreq, polarity=self.polarity).update(gyro, "warm-up")

    def _stim(self) -> TriggeredStimulation:
        if self.stimulation is None:
            raise ProgramError(f"drive of {self.channel!r} is not bound to a session")
        return self.stimulation

    # ------------------------------------------------------------------ requests
    def trigger(self, t: float, source: str) -> bool:
        """Start a burst at ``t`` s (button, external); False when it is ignored."""
        return self._stim().trigger(t, source)

    def end(self, t: float, source: str) -> None:
        """Ask the running burst to ramp down from ``t`` s."""
        self._stim().end(t, source)

    def pause(self, t: float) -> None:
        """Cancel a running burst (the operator paused)."""
        st = self._stim()
        if st.active:
            st.end(t, "pause")

    # ------------------------------------------------------------------ sensing
    def observe(self, signals: Signals, sensor: str) -> None:
        """Feed a sensor chunk; detections start or end bursts."""
        if self.signal is None or (self.sensor is not None and sensor != self.sensor):
            return
        if self.signal not in signals.names:
            if self.sensor is not None:
                raise ProgramError(f"trigger of {self.channel!r}: sensor {sensor!r} has no "
                                   f"channel {self.signal!r}; it has {list(signals.names)}")
            return
        self._sensors_seen.add(sensor)
        chunk = signals.pick([self.signal])
        st = self._stim()
        st.sensor_seen(chunk.t0 + chunk.duration)
        if self.source == "emg":
            self._emg(chunk)
        else:
            self._gait(chunk)

    def _emg(self, chunk: Signals) -> None:
        from opennmes.sensing import OnsetDetector

        st = self._stim()
        if self._trigger is None:
            det = OnsetDetector(chunk.sfreq, chunk.names, self.method, h=self.threshold,
                                hold=self.hold)
            assert self.signal is not None
            self._trigger = EmgTrigger(st, det, self.signal)
        trig = self._trigger
        assert isinstance(trig, EmgTrigger)
        if not self._armed:
            self._rest.append(chunk)
            got = sum(c.n_samples for c in self._rest) / chunk.sfreq
            if got < self.rest:
                return
            first = self._rest[0]
            rest = Signals(np.hstack([c.data for c in self._rest]), first.sfreq, first.names,
                           first.units, first.t0)
            det = trig.detector
            det.calibrate(rest)
            det.reset()  # calibration advanced its clock; detection starts with the next chunk
            self._rest = []
            self._armed = True
            assert det.threshold is not None
            self._own.append(LoopEvent(chunk.t0 + chunk.duration, self.channel, "calibrated",
                                       f"EMG onset threshold from {got:.2f} s of rest",
                                       float(det.threshold[0])))
            return
        trig.feed(chunk)  # onsets start bursts (control.EmgTrigger: the one trigger rule)

    def _gait(self, chunk: Signals) -> None:
        from opennmes.sensing import GaitEventDetector, HeelSwitchDetector

        if self._trigger is None:
            det: GaitEventDetector | HeelSwitchDetector
            if self.detector == "heel-switch":
                assert self.on_level is not None and self.off_level is not None
                det = HeelSwitchDetector(chunk.sfreq, self.on_level, self.off_level,
                                         self.debounce)
            else:
                det = GaitEventDetector(chunk.sfreq, polarity=self.polarity)
            assert self.signal is not None
            self._trigger = GaitTrigger(self._stim(), det, self.signal, delay=self.delay,
                                        extension=self.extension)
        assert isinstance(self._trigger, GaitTrigger)
        self._trigger.feed(chunk)  # foot-off starts, initial contact ends (control.GaitTrigger)

    # ------------------------------------------------------------------ output
    def render(self, t0: float, t1: float, level: float) -> PulseSchedule:
        """Burst pulses with onsets in ``[t0, t1)``, scaled to the operator's ``level`` (A)."""
        part = self._stim().chunk(t0, t1)
        if not len(part):
            return part
        scale = level / self._amplitude if self._amplitude > 0 else 0.0
        return part.scaled(np.full(len(part), min(1.0, scale)))

    def start_now(self, stim: Any, level: float) -> float | None:
        """If a burst started since the last call, set the channel's amplitude on the running
        device at once (``stim.set_intensity``) to the burst's level one period ahead, at
        least one amplitude step: a streaming device plays it at its next period slot, about
        one window earlier than the next window could. Returns the amplitude set (A), or None.
        """
        st = self._stim()
        bursts = sum(1 for e in st.events if e.kind == "burst")
        new = bursts > self._bursts_started
        self._bursts_started = bursts
        if not new or not st.active or level <= 0:
            return None
        f = st.level_ahead(float(stim.now_rel()))
        step = stim.capabilities.amplitude_step  # the device's own (0: continuous)
        amp = min(level, max(step, float(quantize_amplitude(f * level, step))))
        stim.set_intensity(self.channel, amp)
        return amp

    def take_events(self) -> list[SessionEvent]:
        """Trigger events since the last call, as session events."""
        st = self._stim()
        new = st.events[self._n_events:]
        self._n_events = len(st.events)
        out: list[SessionEvent] = list(self._own)
        self._own = []
        for e in new:
            detail = e.detail
            if e.kind == "silent" and self.signal is not None and not self._sensors_seen:
                detail = f"{detail}; no sensor stream has channel {self.signal!r}"
            out.append(Triggered(e.t, self.channel, e.kind, e.source, detail))
        return out

    def take_trace(self) -> Signals | None:
        """Triggered channels keep no control trace (their pulses are the record)."""
        return None


class _MeasuredLoop:
    """What every closed-loop drive shares: the latest valid sample of the measured signal,
    the grid of slots and repetitions, the open loop on a stale measurement (``silent`` and
    ``measured`` events) and the ``control.<channel>`` trace. A subclass sets the attributes
    below in its constructor and ``_f``, ``_per_n`` in ``bind``."""

    channel: str
    target: np.ndarray
    signal: str
    sensor: str | None
    start: float
    silence_timeout: float
    _f: float
    _per_n: int
    _y: float | None
    _y_t: float | None
    _silent: bool
    _events: list[SessionEvent]
    _trace: list[np.ndarray]
    _trace_t0: float | None
    _unit: str
    _next: int
    _ch: Channel | None
    _index: int
    _names: tuple[str, ...]

    def _emit(self, rows: list[tuple[float, float, float]], ts: list[float], us: list[float],
              n_end: int) -> PulseSchedule:
        """End a render: the grid moves to ``n_end``, the trace keeps ``rows`` (target,
        measured, amplitude per slot), and the channel's pulses at ``ts`` with ``us`` A."""
        assert self._ch is not None
        self._next = max(self._next, n_end)
        if rows:
            self._trace.append(np.asarray(rows, dtype=np.float64).T)
        if not ts:
            return PulseSchedule.empty(self._names)
        return _pulses(self._ch, self._index, self._names, np.asarray(ts), np.asarray(us))

    def _score(self, rep: int, t: float, e: np.ndarray) -> float:
        """Record a ``repetition`` event with the RMSE of the errors ``e`` (NaN: not
        measured) and return it."""
        ok = np.isfinite(e)
        rmse = float(np.sqrt(np.mean(e[ok] ** 2))) if ok.any() else math.nan
        unit = f" ({self._unit})" if self._unit else ""
        self._events.append(LoopEvent(t, self.channel, "repetition",
                                      f"repetition {rep + 1} ended; tracking RMSE{unit}", rmse))
        return rmse

    def pause(self, t: float) -> None:
        """Nothing to cancel: while paused the ceiling is zero."""

    def observe(self, signals: Signals, sensor: str) -> None:
        """Keep the latest sample of the measured signal."""
        if self.sensor is not None and sensor != self.sensor:
            return
        if self.signal not in signals.names:
            if self.sensor is not None:
                raise ProgramError(f"closed loop of {self.channel!r}: sensor {sensor!r} has "
                                   f"no channel {self.signal!r}; it has "
                                   f"{list(signals.names)}")
            return
        x = signals[self.signal]
        ok = np.flatnonzero(np.isfinite(x))
        if ok.size:
            self._y = float(x[ok[-1]])
            self._y_t = signals.t0 + ok[-1] / signals.sfreq
            self._unit = signals.unit(self.signal)

    def _slot(self, n: int) -> tuple[int, int]:
        """(repetition, pulse within it) of grid slot ``n``; pulse -1 before the start."""
        rel = n - math.ceil(self.start * self._f - 1e-9)
        if rel < 0:
            return 0, -1
        if self._per_n == 0:
            return 0, rel
        return divmod(rel, self._per_n)

    def _amount(self, v: float) -> str:
        """A value of the measured signal as a person reads it (angles in degrees)."""
        if self._unit == "rad":
            return f"{math.degrees(v):.1f} deg"
        return f"{v:.4g} {self._unit}".rstrip()

    def _stale(self, t: float) -> bool:
        """True (and a ``silent`` event once) when the measurement is too old at ``t``."""
        since = self._y_t if self._y_t is not None else self.start
        stale = t - since > self.silence_timeout
        if stale and not self._silent:
            self._silent = True
            self._events.append(LoopEvent(
                t, self.channel, "silent",
                f"no valid {self.signal!r} sample for {t - since:.3f} s (limit "
                f"{self.silence_timeout:g} s): output zero until it is back", None))
            log.warning("closed loop of %r: measurement silent at %.3f s", self.channel, t)
        elif not stale and self._silent:
            self._silent = False
            self._events.append(LoopEvent(t, self.channel, "measured",
                                          f"{self.signal!r} is back; the loop restarts", None))
        return stale

    def take_events(self) -> list[SessionEvent]:
        """Loop events since the last call."""
        out, self._events = self._events, []
        return out

    def take_trace(self) -> Signals | None:
        """Target, measured and commanded amplitude per pulse slot since the last call
        (stream ``control.<channel>``; NaN where there is no target or no measurement)."""
        if not self._trace or self._trace_t0 is None:
            return None
        data = np.hstack(self._trace)
        self._trace = []
        t0 = self._trace_t0
        self._trace_t0 = t0 + data.shape[1] / self._f
        return Signals(data, self._f, (f"{self.channel}.target", f"{self.channel}.measured",
                                       f"{self.channel}.amplitude"),
                       (self._unit, self._unit, "A"), t0)


class ClosedLoopDrive(_MeasuredLoop):
    """A channel whose every pulse amplitude is set by a controller tracking a target.

    One controller step per pulse (:class:`~opennmes.control.Tracker`): the latest sample of
    the measured ``signal`` sets the amplitude of the next pulse, within
    ``[controller.u_min, min(controller.u_max, operator intensity)]``, rate-limited by the
    controller. The target repeats every ``period`` s; with ``ilc`` the feed-forward is
    learnt from one repetition to the next (iterative learning control). Saturation (output
    at its ceiling with a large error for ``saturation_time``) is recorded as a ``loop``
    event; so is each repetition's RMSE.

    Parameters
    ----------
    channel : str
        Program channel this drive takes over (its pulse shape and frequency are used; its
        amplitude is the ceiling with the operator's intensity).
    controller : PID
        ``dt`` must be one period of the channel.
    target : ndarray
        Target of ``signal`` at each pulse of one repetition (its unit, e.g. rad).
    signal : str
        Measured channel, e.g. ``knee.angle`` (the virtual patient) or a sensor's.
    sensor : str, optional
        Name of the sensor stream carrying ``signal`` (default: any stream that has it).
    start : float
        Session time of the first repetition, s.
    period : float, optional
        Repetition period, s (at least the target's length; default: one repetition only).
    ilc : IterativeLearning, optional
        Learns the feed-forward between repetitions.
    saturation_time, saturation_error : float
        See :class:`~opennmes.control.Tracker` (``saturation_error`` in the signal's unit).
    silence_timeout : float
        With no valid (finite) sample of ``signal`` newer than this (s), the loop is open:
        the output goes to zero, the controller restarts, and a ``silent`` event is recorded
        (a stale measurement would otherwise wind the controller up to its ceiling).
    """

    def __init__(self, channel: str, controller: PID, target: np.ndarray, *,
                 signal: str = "knee.angle", sensor: str | None = None, start: float = 0.0,
                 period: float | None = None, ilc: IterativeLearning | None = None,
                 saturation_time: float = 1.0,
                 saturation_error: float = math.radians(5.0),
                 silence_timeout: float = 0.5) -> None:
        tgt = np.asarray(target, dtype=np.float64).reshape(-1)
        if tgt.size == 0 or not np.all(np.isfinite(tgt)):
            raise ProgramError("closed-loop target must be a non-empty array of finite values")
        if not (math.isfinite(start) and start >= 0):
            raise ProgramError(f"closed-loop start = {start!r} s must be >= 0")
        if not (math.isfinite(silence_timeout) and silence_timeout > 0):
            raise ProgramError(f"closed-loop silence_timeout = {silence_timeout!r} s must be > 0")
        self.channel = channel
        self.controller = controller
        self._own_feedforward = controller.feedforward
        self.target = tgt
        self.signal = signal
        self.sensor = sensor
        self.start = float(start)
        self.period = period
        self.ilc = ilc
        self.saturation_time = saturation_time
        self.saturation_error = saturation_error
        self.silence_timeout = float(silence_timeout)
        self.tracker: Tracker | None = None
        self._y_t: float | None = None  # session time of the latest valid sample
        self._silent = False
        self._ch: Channel | None = None
        self._index = 0
        self._names: tuple[str, ...] = ()
        self._f = 0.0
        self._per_n = 0
        self._next = 0  # next grid slot to render
        self._y: float | None = None
        self._ff = np.zeros_like(tgt)
        self._rep_u = np.zeros_like(tgt)
        self._rep_ceiling = np.full_like(tgt, np.inf)  # the output's ceiling at each pulse
        self._rep_e = np.full_like(tgt, np.nan)
        self._prev: tuple[int, float] | None = None  # (k, u) of the last pulse
        self._events: list[SessionEvent] = []
        self._trace: list[np.ndarray] = []
        self._trace_t0: float | None = None
        self._unit = ""

    def describe(self) -> str:
        """One line: what the loop tracks."""
        rep = f", repeating every {self.period:g} s" if self.period else ""
        learn = " with iterative learning" if self.ilc is not None else ""
        return (f"closed loop on {self.signal!r} ({self.target.size} pulses from "
                f"{self.start:g} s{rep}){learn}")

    def bind(self, channel: Channel, channel_names: tuple[str, ...], stim: Any) -> None:
        """Check the controller against ``channel`` (the runner calls this once)."""
        f = float(channel.frequency)
        if channel.train.kind != "constant":
            raise ProgramError(f"closed loop on {channel.name!r}: the channel's train must be "
                               f"constant (one controller step per pulse), not "
                               f"{channel.train.kind!r}")
        self.tracker = Tracker(self.controller, f, saturation_time=self.saturation_time,
                               saturation_error=self.saturation_error)
        self._ch, self._names = channel, channel_names
        self._index = channel_names.index(channel.name)
        self._f = f
        n_target = self.target.size
        if self.period is None:
            self._per_n = 0
        else:
            per_n = int(round(self.period * f))
            if per_n < n_target:
                raise ProgramError(f"closed-loop period = {self.period:g} s is shorter than "
                                   f"the target ({n_target / f:g} s at {f:g} Hz)")
            self._per_n = per_n
        self._next = math.ceil(self.start * f - 1e-9)
        if self.controller.u_max > channel.amplitude * (1 + 1e-9):
            raise ProgramError(
                f"closed loop on {channel.name!r}: controller u_max = "
                f"{self.controller.u_max * 1e3:g} mA is above the program amplitude "
                f"{channel.amplitude * 1e3:g} mA")

    def render(self, t0: float, t1: float, level: float) -> PulseSchedule:
        """Pulses with onsets in ``[t0, t1)``, one controller step each."""
        assert self.tracker is not None and self._ch is not None
        f = self._f
        n_end = math.ceil(t1 * f - 1e-6)
        ts, us, rows = [], [], []
        n_target = self.target.size
        for n in range(max(self._next, math.ceil(t0 * f - 1e-6)), n_end):
            t_n = int(to_us(n / f)) / US_PER_S
            rep, k = self._slot(n)
            if 0 <= k < n_target and self._stale(t_n):
                self.tracker.reset()  # open loop: zero output until the measurement is back
                self._prev = None
                rows.append((self.target[k], np.nan, 0.0))
            elif 0 <= k < n_target:
                if k == 0:
                    self.tracker.reset()
                    self._rep_e[:] = np.nan
                    self._prev = None
                if self._prev is not None and self._y is not None:
                    kp, up = self._prev
                    self._rep_e[kp] = self.target[kp] - self._y
                    if self.tracker.watch(float(self.target[kp]), self._y, up):
                        self._events.append(LoopEvent(
                            t_n, self.channel, "saturated",
                            f"repetition {rep + 1}: the output has been at its ceiling "
                            f"({up * 1e3:.1f} mA) for {self.saturation_time:g} s with the "
                            f"error above {self._amount(self.saturation_error)}",
                            up))
                u = self.tracker.command(float(self.target[k]), self._y, float(self._ff[k]),
                                         ceiling=level)
                self._rep_u[k] = u
                self._rep_ceiling[k] = max(self.controller.u_min,
                                           min(self.controller.u_max, level))
                self._prev = (k, u)
                if u > 0:
                    ts.append(t_n)
                    us.append(u)
                rows.append((self.target[k], np.nan if self._y is None else self._y, u))
            else:
                if k == n_target:  # the repetition just ended: score it, learn from it
                    self._end_repetition(rep, t_n)
                rows.append((np.nan, np.nan if self._y is None else self._y, 0.0))
            if self._trace_t0 is None:
                self._trace_t0 = n / f
        return self._emit(rows, ts, us, n_end)

    def _end_repetition(self, rep: int, t: float) -> None:
        if self._prev is not None and self._y is not None:
            kp, _ = self._prev
            self._rep_e[kp] = self.target[kp] - self._y
        e = self._rep_e
        ok = np.isfinite(e)
        rmse = self._score(rep, t, e)
        if self.ilc is not None and ok.all():
            # no upward learning where the output sat at its ceiling (anti-windup)
            ff = self.ilc.next_input(self._rep_u.copy(), e.copy(),
                                     hold=at_ceiling(self._rep_u, self._rep_ceiling))
            # a learnt input replaces the controller's own feed-forward (as in track());
            # None: the best repetition ran on the controller's own
            self._ff = np.zeros_like(self.target) if ff is None else ff
            self.controller.feedforward = self._own_feedforward if ff is None else None
            if self.ilc.last == "fell back":
                self._events.append(LoopEvent(
                    t, self.channel, "fell back",
                    f"repetition {rep + 1} tracked worse than the best so far (rms error "
                    f"{self._amount(rmse)}, best {self._amount(self.ilc.best_rmse)}): the best "
                    f"repetition's input plays again, learning gain now {self.ilc.gain:.3g}",
                    rmse))
            else:
                self._events.append(LoopEvent(t, self.channel, "learnt",
                                              f"feed-forward learnt from repetition {rep + 1}; "
                                              "peak amplitude", float(np.max(self._ff))))
        self._prev = None


def program_drives(program: Program, **overrides: Any) -> list[TriggerDrive]:
    """A :class:`TriggerDrive` for each channel of ``program`` that declares a ``trigger``.

    ``overrides`` are passed to every drive (e.g. ``polarity=-1``).
    """
    out = []
    for ch in program.channels:
        trig = getattr(ch, "trigger", None)
        if trig is None:
            continue
        kw = {k: v for k, v in trig.model_dump().items() if k != "source"}
        kw.update(overrides)
        out.append(TriggerDrive(ch.name, trig.source, **kw))
    return out


def check_drives(drives: Sequence[Drive], channels: Sequence[str],
                 sensors: Sequence[Any] = ()) -> dict[str, Drive]:
    """Map drives by channel, refusing unknown or repeated channels, and check that each
    drive's sensor channel can arrive (sensors that list their ``names`` are checked)."""
    out: dict[str, Drive] = {}
    known = {s.name: getattr(s, "names", None) for s in sensors}
    for d in drives:
        if d.channel not in channels:
            raise ProgramError(f"drive for unknown channel {d.channel!r}; channels: "
                               f"{list(channels)}")
        if d.channel in out:
            raise ProgramError(f"channel {d.channel!r} has two drives")
        out[d.channel] = d
        sig, name = getattr(d, "signal", None), getattr(d, "sensor", None)
        if sig is None:
            continue
        where = f"channel {d.channel!r} listens to {sig!r}"
        if not known:
            raise ProgramError(f"{where} but the session has no sensors")
        if name is not None:
            if name not in known:
                raise ProgramError(f"{where} on sensor {name!r}; sensors: {list(known)}")
            has = known[name]
            if has is not None and sig not in has:
                raise ProgramError(f"{where} but sensor {name!r} has channels {list(has)}")
        elif all(v is not None for v in known.values()) and not any(
                sig in v for v in known.values() if v is not None):
            found = {k: list(v) for k, v in known.items() if v is not None}
            raise ProgramError(f"{where} but no sensor has it; sensors and channels: {found}")
    return out
