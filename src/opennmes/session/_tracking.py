"""Closed loops on the virtual patient, pulse by pulse, each pulse through the one guard.

:func:`track` runs a controller (:class:`~opennmes.control.Tracker`) against a virtual
patient stream with no device in between: the fastest way to design and tune a loop
(gains, feed-forward, iterative learning) before it runs on a stimulator. Each pulse passes
a :class:`~opennmes.safety.SafetyGuard` before the patient sees it; a refused pulse stops the
loop with zero output and the reason recorded. On a stimulator (``sim://``, the emulators, a
real device), the same controller runs in a session as a
:class:`~opennmes.session.ClosedLoopDrive`, recorded like any other session.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.control import (
    PID,
    SATURATED,
    IterativeLearning,
    Tracker,
    TrackingResult,
    at_ceiling,
)
from opennmes.errors import NmesError, SafetyLimitError
from opennmes.safety import SafetyGuard, device_profile
from opennmes.schedule import US_PER_S, PulseSchedule, to_us

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.physiology import PatientStream, VirtualPatient
    from opennmes.session._events import SessionEvent
    from opennmes.stim import Program

__all__ = ["track", "track_repetitions", "TrackingVerdict", "tracking_verdict",
           "closed_loop_program", "TrackingPlan", "plan_tracking", "knee_target",
           "PER_MA_PER_DEG", "KNEE_GAINS"]

log = logging.getLogger(__name__)

PER_MA_PER_DEG = 180.0 / math.pi * 1e-3
"""A gain in mA/deg (what a person sets) times this is the gain in A/rad (what the loop uses)."""

KNEE_GAINS = (0.087 * PER_MA_PER_DEG, 0.87 * PER_MA_PER_DEG, 0.035 * PER_MA_PER_DEG)
"""PID gains (kp A/rad, ki A/(rad s), kd A s/rad) that track the standard knee target on the
``sim://`` presets (0.087 mA/deg, 0.87 mA/(deg s), 0.035 mA s/deg); see docs/control.md."""


def track(
    stream: PatientStream,
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
    stream : PatientStream
        The virtual patient, advanced from its current time (``patient.start(sfreq=frequency)``
        gives one sample per pulse period). To close the loop through a stimulator, run a
        session with a :class:`~opennmes.session.ClosedLoopDrive` instead.
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
            ff = ilc.next_input(res.amplitude, res.error,
                                hold=at_ceiling(res.amplitude, pid.u_max))
        stream.advance(PulseSchedule.empty((channel,)), stream.time + rest)
    return results


@dataclass(frozen=True)
class TrackingVerdict:
    """Whether a closed-loop session's channel tracked its target, from its recorded events.

    ``reached`` is True when the last repetition was not saturated and its RMSE is within
    ``max_rmse``; ``rmse`` holds each repetition's RMSE (the signal's unit), ``saturated``
    the repetitions (1-based) whose output sat at its ceiling with a large error,
    ``fell_back`` those after which learning fell back to the best repetition's input.
    """

    channel: str
    rmse: tuple[float, ...]
    saturated: tuple[int, ...]
    fell_back: tuple[int, ...]
    max_rmse: float | None
    unit: str
    reached: bool

    def lines(self) -> list[str]:
        """What a person reads: the verdict, each repetition's error, and what to try."""
        def fmt(v: float) -> str:
            return f"{math.degrees(v):.1f} deg" if self.unit == "rad" else f"{v:.3g} {self.unit}"

        if not self.rmse:
            return [f"{self.channel}: no repetition ended, so tracking cannot be judged"]
        errs = ", ".join(fmt(v) for v in self.rmse)
        out = [f"{self.channel}: tracking error per repetition (RMSE): {errs}"]
        if self.fell_back:
            out.append(f"{self.channel}: {_numbers(self.fell_back)} tracked worse "
                       "than the best one; the best one's input was played again with "
                       "gentler learning")
        if self.reached:
            out.append(f"{self.channel}: the target was tracked (last repetition "
                       f"{fmt(self.rmse[-1])}"
                       + (f", limit {fmt(self.max_rmse)})" if self.max_rmse is not None
                          else ")"))
            return out
        if len(self.rmse) in self.saturated:
            out.append(f"{self.channel}: the target was NOT reached: the output was at its "
                       f"ceiling with a large error in {_numbers(self.saturated)}. "
                       "The muscle cannot follow this target at this amplitude; lower the "
                       "target or raise the ceiling (the program amplitude) if it is safe and "
                       "tolerated.")
        else:
            out.append(f"{self.channel}: the target was NOT tracked: the last repetition's "
                       f"error {fmt(self.rmse[-1])} is above the limit "
                       f"{fmt(self.max_rmse or 0.0)}.")
        return out


def _numbers(reps: tuple[int, ...]) -> str:
    return ("repetition " if len(reps) == 1 else "repetitions ") + ", ".join(str(r) for r in reps)


def tracking_verdict(events: Sequence[SessionEvent], channel: str, *,
                     max_rmse: float | None = None) -> TrackingVerdict:
    r"""Judge a closed-loop channel from a session's events (``LoopEvent``\ s).

    Parameters
    ----------
    events : sequence of SessionEvent
        The session's events (``SessionResult.events`` or a loaded record's).
    channel : str
        The closed-loop channel.
    max_rmse : float, optional
        Largest RMSE of the last repetition that counts as tracked, in the signal's unit.
    """
    from opennmes.session._events import LoopEvent

    loop = [e for e in events if isinstance(e, LoopEvent) and e.channel == channel]
    rmse: list[float] = []
    saturated: set[int] = set()
    fell_back: list[int] = []
    unit = ""
    for e in loop:
        if e.what == "repetition" and e.value is not None:
            rmse.append(float(e.value))
            if e.detail.endswith("(rad)"):
                unit = "rad"
            elif "(" in e.detail:
                unit = e.detail.rsplit("(", 1)[1].rstrip(")")
        elif e.what == "saturated":
            saturated.add(len(rmse) + 1)
        elif e.what == "fell back":
            fell_back.append(len(rmse))
    last = len(rmse)
    reached = bool(rmse) and last not in saturated and (
        max_rmse is None or rmse[-1] <= max_rmse)
    return TrackingVerdict(channel, tuple(rmse), tuple(sorted(saturated)), tuple(fell_back),
                           max_rmse, unit, reached)


def closed_loop_program(program: Program, channel: str, duration: float) -> Program:
    """``program`` with only ``channel``, continuous, lasting ``duration`` s: the program of
    a closed-loop session. Its worst case (full amplitude throughout) is what the guard
    checks before the loop runs; the controller sets each pulse's amplitude below it.

    Raises
    ------
    ProgramError
        ``channel`` is not in the program.
    """
    from opennmes.errors import ProgramError
    from opennmes.stim import program_from_dict

    doc: dict[str, Any] = dict(program.to_file_dict())
    chans = [c for c in doc["channels"] if c["name"] == channel]
    if not chans:
        raise ProgramError(f"channel {channel!r} is not in the program; channels: "
                           f"{list(program.channel_names)}")
    ch = dict(chans[0])
    for key in ("ramp_up", "on", "ramp_down", "off", "trigger", "delay"):
        ch.pop(key, None)
    for key in ("repetitions", "phases", "duration"):
        doc.pop(key, None)
    doc.update(channels=[ch], duration=f"{duration:.3f} s",
               name=f"{program.name} (closed loop)")
    return program_from_dict(doc)


def knee_target(spec: str, frequency: float, *, peak: float = math.radians(60.0),
                side: str = "right") -> np.ndarray:
    """A knee-extension target, one value per pulse at ``frequency`` Hz, in rad.

    ``spec`` is ``"standard"`` (:func:`~opennmes.control.standard_knee_target` up to ``peak``
    rad) or a joint-angle JSON file whose ``{side}_knee_angle`` (3 strides) is replayed as
    extension of the seated knee (:func:`~opennmes.control.seated_knee_target`).

    Raises
    ------
    ProgramError
        ``spec`` is neither ``standard`` nor a file, or the file has no such knee angle.
    """
    from pathlib import Path

    from opennmes.control import seated_knee_target, standard_knee_target
    from opennmes.errors import ProgramError

    if spec == "standard":
        return standard_knee_target(frequency, peak=peak)
    path = Path(spec)
    if not path.is_file():
        raise ProgramError(f"target {spec!r}: give 'standard' or a joint-angle JSON file "
                           "(e.g. ../shared/data/gait/joint_angles_stroke_100hz.json)")
    from opennmes.sensing import read_joint_angles

    angles = read_joint_angles(path)
    name = f"{side}_knee_angle"
    if name not in angles.names:
        raise ProgramError(f"target {spec!r} has no {name!r}; channels: {list(angles.names)}")
    return seated_knee_target(angles[name], angles.sfreq, frequency, repeats=3)


@dataclass(frozen=True)
class TrackingPlan:
    """A closed-loop tracking session, ready to start with
    :func:`~opennmes.session.start_session`.

    ``program`` is the session's program (:func:`closed_loop_program`), ``drive`` the loop on
    ``channel``, ``device_url`` the stimulator to open (a ``sim://`` URL gains one sample per
    pulse and no EMG), ``ceiling`` the program amplitude (A) the operator raises the
    intensity to in ``step`` A every ``interval`` s (:meth:`titration`) before the first
    repetition starts at ``drive.start`` s.
    """

    program: Program
    channel: str
    drive: Any
    device_url: str
    ceiling: float
    step: float = 2e-3
    interval: float = 0.02

    def titration(self) -> Any:
        """The operator's hook: the intensity raised from 0 to the ceiling in steps."""
        from opennmes.session._setup import ScriptedOperator

        return ScriptedOperator.titrate([self.channel], {self.channel: self.ceiling},
                                        self.step, 0.0, self.interval)


def tracked_channel(program: Program, channel: str | None, repetitions: int,
                    rest: float) -> Any:
    """The program channel a tracking session controls (default: the first), after checking
    the repetitions (>= 1) and the rest between them (>= 0 s).

    Raises
    ------
    ProgramError
        An unknown channel, fewer than 1 repetition or a negative rest.
    """
    from opennmes.errors import ProgramError

    if repetitions < 1:
        raise ProgramError(f"repetitions = {repetitions} must be >= 1")
    if not rest >= 0:
        raise ProgramError(f"rest = {rest} s must be >= 0")
    name = channel or program.channel_names[0]
    ch = next((c for c in program.channels if c.name == name), None)
    if ch is None:
        raise ProgramError(f"channel {name!r} is not in the program; channels: "
                           f"{list(program.channel_names)}")
    return ch


def plan_tracking(program: Program, target: np.ndarray, device_url: str, *,
                  channel: str | None = None, signal: str = "knee.angle",
                  gains: tuple[float, float, float] = KNEE_GAINS, repetitions: int = 3,
                  rest: float = 5.0, ilc: bool = True) -> TrackingPlan:
    """Plan a recorded closed-loop session that tracks ``target`` on a stimulator.

    Parameters
    ----------
    program : Program
        Its ``channel`` gives the pulse shape, rate and the amplitude ceiling.
    target : ndarray
        One value of ``signal`` per pulse (rad for angles), e.g. from :func:`knee_target`.
    device_url : str
        Stimulator URL. On a ``sim://`` preset the controller's feed-forward is the preset's
        static angle-amplitude curve (:func:`~opennmes.control.inverse_curve`).
    channel : str, optional
        The program channel to control (default: the first).
    signal : str
        Measured signal (``knee.angle`` on ``sim://`` patients).
    gains : (kp, ki, kd)
        PID gains in A/rad, A/(rad s), A s/rad (times :data:`PER_MA_PER_DEG` from mA/deg).
    repetitions, rest : int, float
        Repetitions of the target and the rest between them, s.
    ilc : bool
        Learn the feed-forward between repetitions (iterative learning with its safeguard).

    Raises
    ------
    ProgramError
        An unknown channel, fewer than 1 repetition or a negative rest.
    """
    import urllib.parse

    from opennmes.control import inverse_curve, static_curve
    from opennmes.session._drives import ClosedLoopDrive

    ch = tracked_channel(program, channel, repetitions, rest)
    name = ch.name
    f = float(ch.frequency)
    u_max = float(ch.amplitude)
    step, interval = 2e-3, 0.02
    start = math.ceil(u_max / step * interval + 0.5)  # the ceiling reaches the top first
    period = target.size / f + rest
    parts = urllib.parse.urlsplit(device_url)
    is_sim = parts.scheme.lower() == "sim"
    ff: Any = None
    preset = parts.netloc or parts.path.strip("/")
    if is_sim and preset:
        from opennmes.physiology import get_preset

        amps = np.linspace(0.0, u_max, 19)
        ff = inverse_curve(amps, static_curve(get_preset(preset), amps, frequency=f,
                                              pulse_width=ch.pulse_width_s, channel=name))
    kp, ki, kd = gains
    pid = PID(kp=kp, ki=ki, kd=kd, dt=1 / f, u_min=0.0, u_max=u_max, rate_limit=0.1,
              derivative_filter=0.05, feedforward=ff)
    learn = IterativeLearning(gain=0.02, sfreq=f, u_min=-u_max, u_max=u_max, delay=0.3,
                              q_cutoff=2.0) if ilc else None
    drive = ClosedLoopDrive(name, pid, target, signal=signal, start=start,
                            period=period if repetitions > 1 else None, ilc=learn)
    url = device_url
    if is_sim and "sfreq=" not in device_url:
        url = device_url + ("&" if "?" in device_url else "?") + f"sfreq={f:g}&emg=0"
    return TrackingPlan(closed_loop_program(program, name, start + repetitions * period + 0.5),
                        name, drive, url, u_max, step, interval)
