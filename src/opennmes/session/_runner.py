"""SessionRunner: plays a program on a stimulator, live, under the safety guard.

The program is expanded once; the control loop hands the device consecutive windows of
``chunk`` seconds (on whole microseconds). Each window is the program's schedule scaled by the
live intensity of each channel (``level / program amplitude``, so never above the program and
ramps stay ramps), shifted by the time spent paused, multiplied by a resume ramp, rounded to
the device's current step, and passed by the device's guard. Every channel starts at 0 A (CPS
§4.6 item 2); the operator raises it in small steps.

Threads: the control loop (the caller of :meth:`SessionRunner.run`), a watchdog, and a
recorder that writes to the store so that a slow commit never delays a pulse. Commands from
other threads (keys, API, web) are queued and applied at the next window; ``stop`` and
``emergency_stop`` act at once from the calling thread.
"""

from __future__ import annotations

import datetime
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.errors import (
    DeviceError,
    NmesError,
    ProgramError,
    SafetyLimitError,
    SessionError,
)
from opennmes.schedule import US_PER_S, PulseSchedule, quantize_amplitude, to_us
from opennmes.session._dose import (
    ChannelRecord,
    dose_document,
    hold_time,
    planned_dose,
    session_dose,
)
from opennmes.session._drives import Drive, TriggerDrive, check_drives, program_drives
from opennmes.session._events import (
    AdverseEvent,
    ComfortRating,
    DeviceErrorEvent,
    IntensityChanged,
    Paused,
    PulsesUnconfirmed,
    Resumed,
    SessionEvent,
    SessionStarted,
    SessionStopped,
    SkinCheck,
    Triggered,
    WatchdogFired,
)
from opennmes.session._sensors import DeviceSignals, Sensor
from opennmes.session._timeline import Position, Timeline
from opennmes.session._watchdog import Watchdog
from opennmes.stim import Program

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.devices import Stimulator
    from opennmes.store import SessionWriter

__all__ = ["SessionRunner", "SessionResult", "Status", "MAX_STEP"]

log = logging.getLogger(__name__)

MAX_STEP = 2e-3
"""Largest rise of the intensity in one action, A (intensity must never jump)."""
_PULSE_FLUSH = 0.5  # s of wall time between reads of the delivered pulses for the record


@dataclass(frozen=True)
class Status:
    """A snapshot of a running session (for views and APIs). Times in s, currents in A."""

    state: str
    t: float
    program_time: float
    position: Position
    levels: dict[str, float]
    max_levels: dict[str, float]
    amplitude: dict[str, float]
    paused: bool
    selected: str
    force: float | None


@dataclass
class SessionResult:
    """How a session ended and what it delivered.

    ``how`` is one of :data:`~opennmes.session.STOP_KINDS`; ``status`` is ``finished`` (the
    program completed or was stopped on purpose) or ``aborted`` (emergency stop, watchdog,
    device error, guard refusal).
    """

    status: str
    how: str
    reason: str
    duration: float
    delivered: PulseSchedule
    dose: list[ChannelRecord]
    events: list[SessionEvent]
    session_id: int | None = None
    late_chunks: int = 0
    loop_lateness: list[float] = field(default_factory=list)
    unconfirmed: PulseSchedule | None = None
    """Pulses sent that the device did not confirm (not in ``delivered`` nor the dose)."""


class SessionRunner:
    """Plays ``program`` on ``stim`` live; see the module docstring.

    Parameters
    ----------
    program : Program
    stim : Stimulator
        Opened; the runner configures and starts it (and stops it, always).
    writer : SessionWriter, optional
        Where the record goes (events, delivered pulses, sensor streams, dose).
    sensors : sequence of Sensor
        Live signal sources, recorded and watched.
    chunk : float
        Window handed to the device per loop iteration, s (0.01 to 0.1; whole microseconds).
    step : float
        Intensity change per up/down action, A (at most :data:`MAX_STEP`).
    resume_ramp : float
        Time to ramp back from zero after a pause, s.
    stall_margin : float
        The watchdog stops the output when the device has played ``stall_margin`` s past the
        last window the loop handed it (real clock only).
    sensor_timeout : float
        Longest lag of a sensor behind the session time, s.
    wall_stall : float
        Longest wall time between two loop iterations, s (any clock; catches a frozen loop
        on a virtual clock).
    channel_map : mapping, optional
        Device channel of each program channel.
    realtime : bool
        On a real clock, run the session under :func:`opennmes.devices.realtime` (SCHED_FIFO
        or a raised priority for the loop, the watchdog and the device threads where the
        system permits, the collector kept out of the stream); ``realtime_state`` then says
        what was applied.
    drives : sequence of Drive
        Functional channels (:class:`~opennmes.session.TriggerDrive`,
        :class:`~opennmes.session.ClosedLoopDrive`): each takes over one program channel,
        whose pulses then come from triggers or a controller instead of the program's
        schedule; the program's schedule of that channel is the worst case the guard checks
        before the session. The operator's intensity is each driven channel's ceiling.
        Channels whose program declares a ``trigger`` get a :class:`TriggerDrive` from it
        unless a drive is given for them (a triggered channel never plays its worst case).
    """

    def __init__(self, program: Program, stim: Stimulator, *, writer: SessionWriter | None = None,
                 sensors: Sequence[Sensor] = (), chunk: float = 0.04, step: float = 1e-3,
                 resume_ramp: float = 1.0, stall_margin: float = 0.06,
                 sensor_timeout: float = 0.5, wall_stall: float | None = None,
                 channel_map: Mapping[str, int] | None = None,
                 drives: Sequence[Drive] = (), realtime: bool = True) -> None:
        if not 0.01 <= chunk <= 0.1:
            raise SessionError(f"chunk = {chunk!r} s must be within 0.01 to 0.1 s")
        if not 0 < step <= MAX_STEP + 1e-12:
            raise SessionError(f"intensity step = {step * 1e3:g} mA must be above 0 and at most "
                               f"{MAX_STEP * 1e3:g} mA (intensity must never jump; CPS §4.6)")
        if not resume_ramp >= 0:
            raise SessionError(f"resume_ramp = {resume_ramp!r} s must be >= 0")
        if not 0.01 <= stall_margin <= 1.0:
            raise SessionError(f"stall_margin = {stall_margin!r} s must be within 0.01 to 1 s")
        self.program = program
        self.stim = stim
        self.realtime = bool(realtime)
        self.realtime_state: object | None = None
        self.writer = writer
        self.sensors = list(sensors)
        for sensor in self.sensors:
            attach = getattr(sensor, "attach", None)
            if callable(attach):
                attach(stim)
        if getattr(stim, "patient", None) is not None and not any(
                isinstance(x, DeviceSignals) for x in self.sensors):
            self.sensors.append(DeviceSignals(stim))  # sim:// with its own virtual patient
        self.chunk_us = int(to_us(chunk))
        self.step = float(step)
        self.resume_ramp = float(resume_ramp)
        self.channels = program.channel_names
        self.max_amplitude = {c.name: float(c.amplitude) for c in program.channels}
        self.plan = program.expand()
        self.timeline = Timeline(program, self.plan)
        self.duration_us = int(to_us(program.duration_s))
        self._areas = {c.name: c.electrode.area_m2 for c in program.channels}
        self._periods = {c.name: 1.0 / c.frequency for c in program.channels}
        self._period_arr = np.array([self._periods[c] for c in self.channels])
        self._contraction = {c.name: (c.ramp_up + c.on + c.ramp_down) if c.on is not None
                             else None for c in program.channels}
        # the whole program must pass this device's guard at its worst case (every pulse at
        # its channel's full amplitude) before anything: the device checks it when configured
        stim.configure(program, channel_map=channel_map, schedule=self.plan)
        given = {d.channel for d in drives}
        drives = [*drives, *(d for d in program_drives(program) if d.channel not in given)]
        self.drives = check_drives(drives, self.channels, self.sensors)
        by_name = {c.name: c for c in program.channels}
        for name, d in self.drives.items():
            d.bind(by_name[name], self.channels, stim)
        self._driven = np.array([c in self.drives for c in self.channels], dtype=bool)
        # devices that stream ahead over a link: bursts also start at once (set_intensity)
        self._immediate = not stim.clock.virtual and stim.kind != "sim"
        for name in self.drives:  # a burst or a repetition is a contraction, however long
            self._contraction[name] = None
        # the dose the program plans, to tell how much of it a session gave
        self.planned = planned_dose(self.plan, self._periods,
                                    {n: c for n, c in self._contraction.items()
                                     if n not in self.drives})
        # how long a level must play without a break to count as tolerated (felt), s
        self.hold_times = {c.name: hold_time(c.on, driven=c.name in self.drives)
                           for c in program.channels}
        # live state (loop thread; other threads go through the command queue)
        self.levels = dict.fromkeys(self.channels, 0.0)
        self.max_levels = dict.fromkeys(self.channels, 0.0)
        self.selected = self.channels[0]
        self._paused = False
        self._pause_t_us = 0
        self._offset_us = 0
        self._resume_at_us: int | None = None
        self._T_us = 0
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stop_lock = threading.Lock()
        self._stopping: tuple[str, str, str] | None = None  # (how, reason, by)
        self._events: list[SessionEvent] = []
        self._hooks: list[Callable[[SessionRunner, float], None]] = []
        self._last_amp = dict.fromkeys(self.channels, 0.0)
        self._last_force: float | None = None
        self._sensor_end: dict[str, float] = {s.name: 0.0 for s in self.sensors}
        self._state = "ready"
        self.lateness: list[float] = []
        self.late_chunks = 0
        virtual = bool(stim.clock.virtual)
        self.watchdog = Watchdog(
            self, stall_margin=None if virtual else stall_margin,
            sensor_timeout=sensor_timeout,
            wall_stall=wall_stall if wall_stall is not None else (5.0 if virtual else 1.0))
        self._recorder = _Recorder(writer, self) if writer is not None else None
        self._played_pulses = False  # the device posts what it played (sim://)
        stim.add_listener(self._on_device_event)

    def attach_writer(self, writer: SessionWriter) -> None:
        """Record into ``writer`` (before :meth:`run`)."""
        if self._state != "ready":
            raise SessionError("attach the writer before the session runs")
        self.writer = writer
        self._recorder = _Recorder(writer, self)

    # ------------------------------------------------------------------ public control API
    @property
    def state(self) -> str:
        """``ready``, ``running``, ``paused``, ``stopping`` or ``ended``."""
        return self._state

    @property
    def events(self) -> list[SessionEvent]:
        """Events so far (a copy)."""
        return list(self._events)

    def add_hook(self, hook: Callable[[SessionRunner, float], None]) -> None:
        """Call ``hook(runner, t)`` in the control loop before each window (``t`` in s)."""
        self._hooks.append(hook)

    def select(self, channel: str) -> None:
        """Choose the channel that :meth:`increase` / :meth:`decrease` act on."""
        self._check_channel(channel)
        self.selected = channel

    def increase(self, channel: str | None = None, *, by: str = "operator") -> None:
        """Raise a channel's intensity by one step (never above the program amplitude)."""
        ch = channel or self.selected
        self._check_channel(ch)
        self._commands.put(lambda: self._change(ch, +1, None, by))

    def decrease(self, channel: str | None = None, *, by: str = "operator") -> None:
        """Lower a channel's intensity by one step (not below zero)."""
        ch = channel or self.selected
        self._check_channel(ch)
        self._commands.put(lambda: self._change(ch, -1, None, by))

    def set_level(self, channel: str, amplitude: float, *, by: str = "operator") -> None:
        """Set a channel's intensity to ``amplitude`` A: any decrease, rises of one step."""
        self._check_channel(channel)
        a = float(amplitude)
        if not (math.isfinite(a) and 0 <= a):
            raise SessionError(f"intensity = {amplitude!r} A must be a finite current >= 0")
        if a > self.max_amplitude[channel] * (1 + 1e-9):
            raise SafetyLimitError("intensity", a * 1e3, self.max_amplitude[channel] * 1e3, "mA",
                                   f"program {self.program.name!r}",
                                   where=f"channel {channel!r}")
        self._commands.put(lambda: self._change(channel, 0, a, by))

    def pause(self, *, by: str = "operator") -> None:
        """Zero the output at the next window and hold the program clock."""
        self._commands.put(lambda: self._pause(by))

    def resume(self, *, by: str = "operator") -> None:
        """Continue the program where it paused, ramping up from zero."""
        self._commands.put(lambda: self._resume(by))

    def toggle_pause(self, *, by: str = "operator") -> None:
        """Pause when running, resume when paused."""
        self._commands.put(lambda: self._resume(by) if self._paused else self._pause(by))

    def rate_comfort(self, score: int, *, by: str = "patient") -> None:
        """Record a comfort rating 0 (worst) to 10."""
        self._note(ComfortRating(self.now(), int(score), by))

    def skin_check(self, ok: bool, note: str = "", channel: str | None = None, *,
                   by: str = "operator") -> None:
        """Record a skin check under the electrodes."""
        if channel is not None:
            self._check_channel(channel)
        self._note(SkinCheck(self.now(), bool(ok), channel, note, by))

    def adverse_event(self, note: str, *, by: str = "operator") -> None:
        """Record an adverse event note."""
        self._note(AdverseEvent(self.now(), note, by))

    @property
    def triggerable(self) -> tuple[str, ...]:
        """Triggered channels: a button or an API call can start a burst on any of them (on
        EMG- and gait-triggered channels too, as a manual trigger)."""
        return tuple(c for c, d in self.drives.items() if isinstance(d, TriggerDrive))

    def trigger(self, channel: str, *, by: str = "button") -> None:
        """Start a burst on a triggered channel at the next window (button or API)."""
        drive = self._trigger_drive(channel)
        self._commands.put(lambda: self._trigger(drive, by))

    def end_burst(self, channel: str, *, by: str = "button") -> None:
        """Ask the burst running on a triggered channel to ramp down at the next window."""
        drive = self._trigger_drive(channel)
        self._commands.put(lambda: drive.end(self._T_us / US_PER_S, by))

    def _trigger_drive(self, channel: str) -> TriggerDrive:
        self._check_channel(channel)
        drive = self.drives.get(channel)
        if not isinstance(drive, TriggerDrive):
            names = [c for c, d in self.drives.items() if isinstance(d, TriggerDrive)]
            raise SessionError(f"channel {channel!r} is not triggered; triggered channels: "
                               f"{names}")
        return drive

    def _trigger(self, drive: TriggerDrive, by: str) -> None:
        if self._paused:
            self._note(Triggered(self._T_us / US_PER_S, drive.channel, "ignored", by,
                                 "the session is paused"))
            return
        drive.trigger(self._T_us / US_PER_S, by)

    def stop(self, reason: str = "stop pressed", *, by: str = "operator") -> None:
        """End the session now: output to zero at once, the record is finished."""
        self._halt("stopped", reason, by)

    def emergency_stop(self, reason: str = "emergency stop", *, by: str = "operator") -> None:
        """One-action stop from any thread: zero output now (CPS §4.6 item 3)."""
        self._halt("emergency", reason, by)

    def now(self) -> float:
        """Session time, s (the device's schedule time; 0 before the first window)."""
        return float(self.stim.now_rel())

    def status(self) -> Status:
        """A snapshot for views."""
        t = self.now()
        tau = max(0.0, t - self._offset_us / US_PER_S) if not self._paused else \
            self._pause_t_us / US_PER_S - self._offset_us / US_PER_S
        return Status(self._state, t, tau, self.timeline.at(tau), dict(self.levels),
                      dict(self.max_levels), dict(self._last_amp), self._paused, self.selected,
                      self._last_force)

    # ------------------------------------------------------------------ the loop
    def run(self) -> SessionResult:
        """Play the program to its end or until a stop; always ends at zero output.

        Returns the result; the record (if any) is finished as ``finished`` or ``aborted``.
        Exceptions other than device and guard errors (which end the session cleanly, with
        the reason recorded) propagate after the output is stopped and the record closed.
        """
        if self._state != "ready":
            raise SessionError("a SessionRunner runs once; make a new one")
        if self.stim.clock.virtual or not self.realtime:
            return self._run()
        from opennmes.devices import realtime

        # the loop, the watchdog and the device's own threads on real-time scheduling where
        # permitted (never raises; logs what it could not do), entered before the warm-up so
        # that its one full collection stays out of the stream
        with realtime() as rt:
            self.realtime_state = rt
            return self._run()

    def _run(self) -> SessionResult:
        stim = self.stim
        try:
            _warm_up(stim)
            stim.start()
        except BaseException as exc:  # noqa: BLE001 (recorded, then re-raised unless a fault)
            return self._never_started(exc)
        self._state = "running"
        self._note(SessionStarted(0.0, self.program.name, stim.url, self.channels,
                                  tuple(self.max_amplitude[c] for c in self.channels),
                                  datetime.datetime.now(datetime.UTC).isoformat(),
                                  {c: d.describe() for c, d in self.drives.items()}))
        if self._recorder is not None:
            self._recorder.start()
        self.watchdog.start()
        error: BaseException | None = None
        try:
            self._loop()
        except (DeviceError, SafetyLimitError, ProgramError, SessionError) as exc:
            how = "safety" if isinstance(exc, SafetyLimitError) else "device_error"
            if self._stopping is None:  # not a consequence of our own stop
                if how == "device_error" and stim.fault is None:  # faults: drained later
                    self._note(DeviceErrorEvent(self.now(), str(exc), "other"))
                self._halt(how, str(exc), "runner")
        except BaseException as exc:  # KeyboardInterrupt, bugs: stop, record, re-raise
            error = exc
            self._halt("emergency" if isinstance(exc, KeyboardInterrupt) else "device_error",
                       f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                       "runner")
        finally:
            self.watchdog.stop()
            result = self._finish()
        if error is not None and not isinstance(error, KeyboardInterrupt):
            raise error
        return result

    def _never_started(self, exc: BaseException) -> SessionResult:
        """The device did not start: nothing was delivered, and the record says so (session
        ``aborted``, a ``device_error`` event with the reason) instead of staying ``running``
        until a later open marks it ``interrupted``. Device, guard and program errors end
        here like a fault in the loop; anything else is re-raised once recorded."""
        reason = f"the device did not start: {exc}" if str(exc) else \
            f"the device did not start: {type(exc).__name__}"
        if self._recorder is not None:
            self._recorder.start()
        self._note(DeviceErrorEvent(0.0, reason, "other"))
        self._halt("device_error", reason, "runner")
        result = self._finish()
        if not isinstance(exc, DeviceError | SafetyLimitError | ProgramError):
            raise exc
        return result

    def _loop(self) -> None:
        stim = self.stim
        clock = stim.clock
        n = len(self.plan)
        names = self.plan.channel_names
        while self._stopping is None:
            T = self._T_us
            t_sess = T / US_PER_S
            self._sense(t_sess)
            for hook in self._hooks:
                hook(self, t_sess)
            self._apply_commands()
            if self._stopping is not None:
                break
            prog_T = T - self._offset_us
            if not self._paused and prog_T >= self.duration_us:
                self._halt("completed", "program completed", "runner")
                break
            T1 = T + self.chunk_us
            if self._paused or (n == 0 and not self.drives):
                chunk = PulseSchedule.empty(names)
            else:
                chunk = self._window(prog_T, T1 - self._offset_us)
            if self.drives:
                chunk = self._with_drives(chunk, T, T1)
            self.watchdog.beat(T1 / US_PER_S)  # the device is covered up to T1 from now
            self.watchdog.in_deliver = True
            stim.deliver(chunk, until=T1 / US_PER_S)
            self.watchdog.in_deliver = False
            self.watchdog.armed = True
            self._T_us = T1
            self._after_window(chunk, T1 / US_PER_S)
            # pace a device that does not block (sim://): send each window just ahead of time
            if stim.t0 is not None and self._stopping is None:
                target = stim.t0 + T1 / US_PER_S - min(0.5 * self.chunk_us / US_PER_S, 0.02)
                late = clock.now() - (stim.t0 + T1 / US_PER_S)
                self.lateness.append(late)
                if late > 0:
                    self.late_chunks += 1
                clock.sleep_until(target)

    def _window(self, a_us: int, b_us: int) -> PulseSchedule:
        """The program's pulses with onsets in [a, b) program-us, scaled and shifted (driven
        channels left out)."""
        part = self.plan.window((a_us - 0.5) / US_PER_S, (b_us - 0.5) / US_PER_S)
        if len(part) and self.drives:
            part = part.take(~self._driven[part.channel])
        if not len(part):
            return part
        scale = np.array([self.levels[c] / self.max_amplitude[c] if self.max_amplitude[c] > 0
                          else 0.0 for c in self.channels])[part.channel]
        part = part.shift(self._offset_us / US_PER_S)
        if self._resume_at_us is not None and self.resume_ramp > 0:
            scale = scale * self._resume_factor(part)
            if part.t[-1] >= self._resume_at_us / US_PER_S + self.resume_ramp:
                self._resume_at_us = None
        part = self.stim.quantize(part.scaled(scale))
        keep = (part.amplitude > 0) | (part.amplitude2 > 0)
        if not keep.all():
            part = part.take(keep)
        return part

    def _resume_factor(self, part: PulseSchedule) -> np.ndarray:
        """Resume ramp of each pulse, counted one period ahead (the first pulse is > 0 A)."""
        assert self._resume_at_us is not None
        per = self._period_arr[part.channel]
        return np.clip((part.t - self._resume_at_us / US_PER_S + per) / (self.resume_ramp + per),
                       0.0, 1.0)

    def _with_drives(self, chunk: PulseSchedule, T_us: int, T1_us: int) -> PulseSchedule:
        """Add the driven channels' pulses in [T, T1) session-us (level 0 while paused)."""
        a, b = (T_us - 0.5) / US_PER_S, (T1_us - 0.5) / US_PER_S
        parts = [chunk]
        for name, d in self.drives.items():
            level = 0.0 if self._paused else self.levels[name]
            part = d.render(a, b, level)
            if len(part):
                if self._resume_at_us is not None and self.resume_ramp > 0:
                    part = part.scaled(self._resume_factor(part))
                parts.append(self.stim.quantize(part))
        if len(parts) == 1:
            return chunk
        out = PulseSchedule.concat(parts)
        keep = (out.amplitude > 0) | (out.amplitude2 > 0)
        return out if keep.all() else out.take(keep)

    def _after_window(self, chunk: PulseSchedule, until: float) -> None:
        for i, c in enumerate(self.channels):
            m = chunk.channel == i
            self._last_amp[c] = float(chunk.amplitude[m][-1]) if m.any() else 0.0
        for s in self.sensors:
            feed = getattr(s, "feed", None)
            if callable(feed):
                feed(chunk, until)
        for d in self.drives.values():
            for ev in d.take_events():
                self._note(ev)
            trace = d.take_trace()
            if trace is not None and self._recorder is not None:
                self._recorder.put(("signals", trace, f"control.{d.channel}"))
        self._drain_device_events()

    def _sense(self, t: float) -> None:
        """Read every sensor (samples up to session time ``t`` s) and hand them to the record
        and the drives. Called just before each window is rendered, so that a trigger acts
        on the freshest samples and its burst starts in the window about to be sent."""
        for s in self.sensors:
            sig = s.read(t)
            if sig is not None and sig.n_samples:
                self._sensor_end[s.name] = sig.t0 + sig.n_samples / sig.sfreq
                try:
                    self._last_force = float(sig.data[_force_row(sig.names), -1])
                except ValueError:
                    pass
                if self._recorder is not None:
                    self._recorder.put(("signals", sig, s.name))
                for d in self.drives.values():
                    d.observe(sig, s.name)
        if self._immediate and not self._paused:
            self._start_bursts_now()
        for s in self.sensors:  # a replayed recording at its end: the input is over
            if getattr(s, "ended", False) and self._stopping is None:
                self.stop(f"the replayed recording {s.name!r} ended at "
                          f"{float(getattr(s, 'end_time', t)):.2f} s", by=f"sensor:{s.name}")
        self.watchdog.check_sensors(t, self._sensor_end)

    def _start_bursts_now(self) -> None:
        """A streaming device plays about one window ahead of the loop: a burst that starts
        now is also set on the device at once (its next period slot), not only rendered into
        the next window. A refusal leaves the burst to the next window."""
        for name, d in self.drives.items():
            if isinstance(d, TriggerDrive):
                try:
                    d.start_now(self.stim, self.levels[name])
                except (DeviceError, ProgramError) as exc:
                    log.warning("immediate start of the burst on %r refused: %s", name, exc)

    def _on_device_event(self, event: object) -> None:
        """Device listener: a device that posts the pulses it played (``sim://``) feeds the
        record directly, so its pulse record is never polled from another thread."""
        pulses = getattr(event, "pulses", None)
        if isinstance(pulses, PulseSchedule):
            self._played_pulses = True
            if self._recorder is not None and len(pulses):
                self._recorder.put(("pulses", pulses))

    def _drain_device_events(self) -> None:
        from opennmes.devices import DeviceFault, Disconnected

        for ev in self.stim.events():
            if isinstance(ev, DeviceFault | Disconnected):
                msg = getattr(ev, "message", "") or getattr(ev, "reason", "")
                kind = getattr(ev, "kind", "disconnected")
                t = ev.t_rel if ev.t_rel is not None else self.now()
                self._note(DeviceErrorEvent(t, msg, kind))

    def _pulses_since(self, t_from: float, *, final: bool) -> tuple[PulseSchedule, float] | None:
        """Delivered pulses from ``t_from`` s up to now (all when ``final``), and the new
        mark; called by the recorder thread about once a second of wall time."""
        try:
            d = self.stim.delivered()
        except NmesError as exc:
            log.warning("could not read the delivered pulses: %s", exc)
            return None
        # the record holds what the device confirmed: never beyond its last confirmation
        cutoff = math.inf if final else min(self.now(), self.stim.confirmed_until()) - 0.05
        lo, hi = np.searchsorted(d.t, [t_from, cutoff], side="left")
        if hi <= lo:
            return None
        return d.take(slice(int(lo), int(hi))), float(d.t[int(hi) - 1]) + 1e-7

    # ------------------------------------------------------------------ commands (loop thread)
    def _apply_commands(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                cmd()
            except NmesError as exc:
                log.warning("command refused: %s", exc)

    def _change(self, ch: str, direction: int, value: float | None, by: str) -> None:
        old = self.levels[ch]
        cap = self.max_amplitude[ch]
        if value is None:
            new = min(max(old + direction * self.step, 0.0), cap)
        else:
            new = value
            if new > old + MAX_STEP + 1e-12:
                raise SessionError(f"intensity of {ch!r} can rise by at most {MAX_STEP * 1e3:g} "
                                   f"mA at a time (asked {old * 1e3:g} -> {new * 1e3:g} mA)")
        step = self.stim.capabilities.amplitude_step
        if step > 0:  # the device's step, never above the channel's ceiling
            new = min(float(quantize_amplitude(new, step)),
                      float(quantize_amplitude(cap, step, down=True)))
        new = round(new, 9)
        if new == old:
            return
        self.levels[ch] = new
        self.max_levels[ch] = max(self.max_levels[ch], new)
        t_eff = self._T_us / US_PER_S
        nxt = self.plan.window((self._T_us - self._offset_us - 0.5) / US_PER_S, math.inf)
        onsets = nxt.t[nxt.channel == self.channels.index(ch)]
        if onsets.size and not self._paused:
            t_eff = float(onsets[0]) + self._offset_us / US_PER_S
        self._note(IntensityChanged(self.now(), ch, old, new, by, round(t_eff, 6)))

    def _pause(self, by: str) -> None:
        if self._paused or self._stopping is not None:
            return
        self._paused = True
        self._pause_t_us = self._T_us
        for d in self.drives.values():
            d.pause(self._T_us / US_PER_S)
        self._state = "paused"
        self._note(Paused(self.now(), by, (self._T_us - self._offset_us) / US_PER_S))

    def _resume(self, by: str) -> None:
        if not self._paused or self._stopping is not None:
            return
        held = self._T_us - self._pause_t_us
        self._offset_us += held
        self._paused = False
        self._resume_at_us = self._T_us
        self._state = "running"
        self._note(Resumed(self.now(), by, held / US_PER_S, self.resume_ramp))

    def _check_channel(self, ch: str) -> None:
        if ch not in self.channels:
            raise SessionError(f"unknown channel {ch!r}; channels: {list(self.channels)}")

    # ------------------------------------------------------------------ stopping
    def _halt(self, how: str, reason: str, by: str) -> None:
        """Zero the output now (any thread); the first caller's reason is the session's."""
        with self._stop_lock:
            first = self._stopping is None
            if first:
                self._stopping = (how, reason, by)
                if self._state in ("running", "paused"):
                    self._state = "stopping"
        if not first:
            return
        try:
            self.stim.stop(reason=f"{how}: {reason}")
        except Exception as exc:  # stop never raises for a lost device; be sure anyway
            log.error("stop failed: %s", exc)

    def trip(self, cause: str, detail: str, latency: float) -> None:
        """Watchdog action: stop at once and record why (used by :class:`Watchdog`)."""
        if self._stopping is not None:
            return
        t0 = time.monotonic()
        self._halt("watchdog", f"{cause}: {detail}", "watchdog")
        self._note(WatchdogFired(self.now(), cause, detail,
                                 round(latency + time.monotonic() - t0, 6)))

    def _record_failed(self, exc: BaseException) -> None:
        log.error("the session record failed: %s; stopping", exc)
        self._halt("record_error", f"recording failed: {exc}", "runner")

    def _note(self, ev: SessionEvent) -> None:
        self._events.append(ev)
        if self._recorder is not None:
            self._recorder.put(("event", ev))
        log.info("session event %s at %.3f s: %s", ev.kind, ev.t, ev.data())

    def _finish(self) -> SessionResult:
        stim = self.stim
        stim.stop(reason="session end")  # idempotent; output is zero from here
        how, reason, by = self._stopping or ("device_error", "ended without a reason", "runner")
        try:  # the samples of the last window go into the record too
            self._sense(self._T_us / US_PER_S)
        except Exception as exc:
            log.error("reading the sensors at the end failed: %s", exc)
        self._drain_device_events()
        t_end = self.now()
        try:
            delivered = stim.delivered()
            unconfirmed = stim.unconfirmed()
        except NmesError as exc:
            log.error("delivered pulses unavailable: %s", exc)
            delivered = unconfirmed = PulseSchedule.empty(self.channels)
        if len(unconfirmed):
            names = unconfirmed.channel_names
            counts = np.bincount(unconfirmed.channel, minlength=len(names))
            horizon = stim.confirmed_until()
            self._note(PulsesUnconfirmed(
                t_end, {n: int(c) for n, c in zip(names, counts, strict=True) if c},
                float(unconfirmed.t[0]), float(unconfirmed.t[-1]),
                float(horizon) if math.isfinite(horizon) else None))
        self._note(SessionStopped(t_end, how, reason, by))
        dose = session_dose(delivered, self._areas, self._periods, self._contraction,
                            self.max_levels, self.levels, self._events, self.hold_times)
        status = "finished" if how in ("completed", "stopped") else "aborted"
        sid = None
        if self._recorder is not None:
            self._recorder.put(("dose", dose_document(dose, complete=True,
                                                      planned=self.planned)))
            self._recorder.finish(f"{how}: {reason}", status)
            sid = self.writer.id if self.writer is not None else None
        self._state = "ended"
        return SessionResult(status, how, reason, t_end, delivered, dose, list(self._events),
                             sid, self.late_chunks, list(self.lateness), unconfirmed)


def _warm_up(stim: Stimulator) -> None:
    """Load a simulated patient's compiled kernels before the clock starts: the first window
    would otherwise take long enough to trip the watchdog (real time)."""
    patient = getattr(stim, "patient", None)
    if patient is None or stim.clock.virtual:
        return
    try:
        stream = patient.start(sfreq=float(getattr(stim, "sfreq", None) or 100.0), seed=0)
        stream.advance(PulseSchedule.from_arrays([0.0], [0.01], [3e-4],
                                                 channel_names=("warm-up",)), 0.04)
    except Exception:  # only a speed-up; the session itself is checked as usual
        log.warning("virtual patient warm-up failed", exc_info=True)


def _force_row(names: tuple[str, ...]) -> int:
    for i, n in enumerate(names):
        if n.endswith(".force"):
            return i
    raise ValueError("no force channel")


class _Recorder:
    """Writes to the SessionWriter from its own thread (a commit never delays a pulse).

    It also reads the device's delivered-pulse record about every ``_PULSE_FLUSH`` s of wall
    time and writes the new pulses, so the record holds what the device acknowledged.
    """

    def __init__(self, writer: SessionWriter, runner: SessionRunner) -> None:
        self.writer = writer
        self.runner = runner
        self._q: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="nmes-session-recorder",
                                        daemon=True)
        self.failed: BaseException | None = None
        self._mark = 0.0

    def start(self) -> None:
        self._thread.start()

    def put(self, item: tuple[Any, ...]) -> None:
        self._q.put(item)

    def _pulses(self, final: bool) -> None:
        if self.runner._played_pulses:  # the device's own Played events feed the record
            return
        got = self.runner._pulses_since(self._mark, final=final)
        if got is not None:
            self.writer.write_pulses(got[0])
            self._mark = got[1]

    def _run(self) -> None:
        from opennmes.devices import ordinary_priority

        ordinary_priority()  # database writes at default priority, not the loop's
        w = self.writer
        next_flush = time.monotonic() + _PULSE_FLUSH
        while True:
            try:
                item = self._q.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                item = ("tick",)
            if item is None:
                return
            if self.failed is not None:
                continue
            try:
                if time.monotonic() >= next_flush and self.runner.state != "ready":
                    next_flush = time.monotonic() + _PULSE_FLUSH
                    self._pulses(final=False)
                kind = item[0]
                if kind == "event":
                    ev = item[1]
                    w.log_event(ev.kind, ev.t, _jsonable(ev.data()))
                elif kind == "pulses":
                    w.write_pulses(item[1])
                elif kind == "signals":
                    w.write_signals(item[1], item[2], dtype="float32")
                elif kind == "dose":
                    self._pulses(final=True)
                    w.set_dose(item[1])
            except BaseException as exc:  # a failed record stops the session
                self.failed = exc
                self.runner._record_failed(exc)

    def finish(self, reason: str, status: str) -> None:
        self._q.put(None)
        self._thread.join(timeout=60.0)
        if self.writer.finished:
            return
        if self.failed is not None:
            status, reason = "aborted", f"{reason}; recording failed: {self.failed}"
        try:
            self.writer.finish(reason[:2000], status=status)  # type: ignore[arg-type]
        except NmesError as exc:
            log.error("could not finish the record: %s", exc)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out
