"""The Stimulator base class: one lifecycle for every backend.

``open -> configure(program) -> start -> deliver(chunk)... -> stop -> close``. ``stop`` and
``close`` are idempotent and always leave every channel at zero; a stimulator left open warns
(``ResourceWarning``). Each backend declares what it can play once, in its
:class:`~opennmes.capabilities.DeviceCapabilities` (channels, amplitude range and step, ...);
its safety profile is derived from them. Every chunk passes the safety guard with that profile
before it reaches the backend; a refused chunk stops the output and raises.
"""

from __future__ import annotations

import abc
import atexit
import enum
import logging
import math
import threading
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from opennmes.capabilities import DeviceCapabilities
from opennmes.devices._clock import Clock, RealClock
from opennmes.devices._events import DeviceEvent, DeviceFault, Disconnected, Stopped
from opennmes.errors import DeviceError, NmesError, ProgramError, SafetyLimitError
from opennmes.schedule import PulseSchedule, Waveform

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.safety import LimitProfile, SafetyGuard
    from opennmes.stim import Program

__all__ = ["Stimulator", "GuardLike", "DeviceState", "STATES", "worst_case"]

log = logging.getLogger(__name__)

_OPEN: weakref.WeakSet[Stimulator] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    """At interpreter exit, stop and close every stimulator still open (zero output)."""
    for stim in list(_OPEN):
        warnings.warn(f"stimulator {stim.url} was still open at exit; closing it",
                      ResourceWarning, stacklevel=1)
        try:
            stim.close()
        except Exception:
            pass


class DeviceState(enum.StrEnum):
    """Where a stimulator is in its life: ``closed`` -> ``open`` -> ``configured`` ->
    ``running`` -> ``stopped`` (-> ``configured`` again, or ``closed``). A ``StrEnum``: each
    state equals its name as a string."""

    CLOSED = "closed"
    OPEN = "open"
    CONFIGURED = "configured"
    RUNNING = "running"
    STOPPED = "stopped"


STATES = tuple(DeviceState)


def worst_case(program: Program | Any, schedule: PulseSchedule | None = None) -> PulseSchedule:
    """Every pulse of ``program`` at its channel's full program amplitude (the second phase
    scaled along): the most any intensity setting at or below the ceiling can deliver."""
    s = program.expand() if schedule is None else schedule
    if not len(s):
        return s
    top = np.array([float(c.amplitude) for c in program.channels])[s.channel]
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(s.amplitude > 0, top / s.amplitude, 1.0)
    return s.scaled(factor)


class GuardLike(Protocol):
    """What the base class needs from a guard (``opennmes.safety.SafetyGuard``)."""

    def check(self, chunk: PulseSchedule) -> None: ...


class Stimulator(abc.ABC):
    """Base of every stimulator backend.

    Parameters
    ----------
    url : str
        The URL the stimulator was opened with (kept for messages and logs).
    clock : Clock, optional
        Time source; :class:`RealClock` unless given. Only ``sim://`` accepts a
        :class:`VirtualClock`.

    Notes
    -----
    Subclasses implement ``_open``, ``_configure``, ``_start``, ``_deliver``,
    ``_set_intensity``, ``_stop``, ``_close``, ``_single_pulse`` and ``_delivered`` (abstract:
    a backend that misses one cannot be constructed). Faults found by background threads are
    posted with :meth:`_post`; the next call of the host raises :class:`DeviceError`.
    """

    kind: ClassVar[str] = ""
    capabilities: ClassVar[DeviceCapabilities]
    """What the device can play (``opennmes.capabilities.DEVICE_CAPABILITIES[kind]``)."""
    accepts_virtual_clock: ClassVar[bool] = False

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = url
        self.clock: Clock = clock if clock is not None else RealClock()
        if self.clock.virtual and not self.accepts_virtual_clock:
            raise DeviceError(f"{self.kind}: a real device runs in real time; a virtual clock "
                              "is only for sim://")
        self._state = DeviceState.CLOSED
        self._lock = threading.RLock()
        self._stop_lock = threading.RLock()
        self._events: list[DeviceEvent] = []
        self._listeners: list[Callable[[DeviceEvent], None]] = []
        self._fault: DeviceEvent | None = None
        self._guard: GuardLike | None = None
        self._extra_guard: GuardLike | None = None
        self._ceiling: dict[str, float] = {}
        self._program: Program | Any = None
        self._areas: dict[str, float] = {}
        self._channel_names: tuple[str, ...] = ()
        self._device_channel: dict[str, int] = {}
        self._t0: float | None = None
        self._t_open: float = 0.0
        self._singles: list[tuple[float, int, float, float]] = []
        self._opened_once = False

    # ------------------------------------------------------------------ capabilities
    @property
    def profile_name(self) -> str:
        """Name of the device's safety profile (``capabilities.name``)."""
        return self.capabilities.name

    def safety_profile(self) -> LimitProfile:
        """The device's limit profile: the hard limits of OpenNMES narrowed to its
        capabilities (``BASE_PROFILE.for_device(capabilities)``)."""
        from opennmes.safety import BASE_PROFILE

        return BASE_PROFILE.for_device(self.capabilities)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> DeviceState:
        """``closed``, ``open``, ``configured``, ``running`` or ``stopped``."""
        return self._state

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Program channel names, in schedule order (set by :meth:`configure`)."""
        return self._channel_names

    @property
    def t0(self) -> float | None:
        """Clock time at which the schedule's t = 0 started (first chunk sent), in s."""
        return self._t0

    def now_rel(self) -> float:
        """Clock time relative to the schedule start (0 before the start), in s."""
        return 0.0 if self._t0 is None else self.clock.now() - self._t0

    def _require(self, *states: str, action: str) -> None:
        if self._state not in states:
            raise DeviceError(f"{self.url}: cannot {action} while {self._state}; "
                              f"allowed in: {', '.join(states)}")

    # ------------------------------------------------------------------ events
    def add_listener(self, callback: Callable[[DeviceEvent], None]) -> None:
        """Call ``callback(event)`` for every event (from the device's reader thread)."""
        self._listeners.append(callback)

    def events(self) -> list[DeviceEvent]:
        """Events since the last call (oldest first); the queue is emptied."""
        with self._lock:
            out, self._events = self._events, []
        return out

    def _post(self, event: DeviceEvent) -> None:
        with self._lock:
            self._events.append(event)
            if isinstance(event, Disconnected) or (isinstance(event, DeviceFault) and event.fatal):
                if self._fault is None:
                    self._fault = event
        for cb in list(self._listeners):
            try:
                cb(event)
            except Exception:  # a listener must not break the device thread
                log.exception("device event listener failed")
        if isinstance(event, DeviceFault):
            log.warning("%s: %s fault: %s", self.url, event.kind, event.message)

    def _raise_if_faulted(self) -> None:
        f = self._fault
        if f is None:
            return
        self.stop(reason="device fault")
        if isinstance(f, Disconnected):
            raise DeviceError(f"{self.url}: device disconnected ({f.reason}); output is off")
        assert isinstance(f, DeviceFault)
        raise DeviceError(f"{self.url}: {f.kind} fault: {f.message}; stimulation stopped")

    def check(self) -> None:
        """Raise DeviceError (after stopping) if the device reported a fatal fault."""
        self._raise_if_faulted()

    @property
    def fault(self) -> DeviceEvent | None:
        """The fatal fault that stopped the device, if any (cleared by :meth:`start`)."""
        return self._fault

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> Stimulator:
        """Connect to the device (idempotent); returns ``self``."""
        if self._state != DeviceState.CLOSED:
            return self
        self._open()
        self._t_open = self.clock.now()
        self._opened_once = True
        self._state = DeviceState.OPEN
        _OPEN.add(self)
        return self

    def configure(self, program: Program | Any, *, channel_map: Mapping[str, int] | None = None,
                  guard: GuardLike | None = None,
                  schedule: PulseSchedule | None = None) -> None:
        """Map a program onto the device channels and arm the safety guard.

        The device's own guard (``SafetyGuard.for_program(program, self.safety_profile())``:
        the hard limits, the device's ranges and the program's acknowledged advisories) is
        always armed, and the whole program must pass it at its worst case first: every pulse
        at its channel's full program amplitude (the ceiling no later change of intensity can
        pass), so that whatever :meth:`set_intensity` or a session does below the ceiling
        stays within every limit. Each chunk delivered later passes the same guard, with its
        history.

        Parameters
        ----------
        program : opennmes.stim.Program
            Its channels set names, rates, pulse shapes and electrode areas.
        channel_map : mapping of str to int, optional
            Device channel (0-based) of each program channel; in program order otherwise.
        guard : SafetyGuard, optional
            A further guard whose ``check`` every chunk must also pass: it adds checks, it
            never replaces the device's own guard.
        schedule : PulseSchedule, optional
            ``program.expand()``, when the caller has it already.

        Raises
        ------
        ProgramError
            The device cannot represent the program; the message says why and what to change.
        """
        self._require("open", "configured", "stopped", action="configure")
        channels = list(program.channels)
        n_channels = self.capabilities.channels
        if len(channels) > n_channels:
            raise ProgramError(f"{len(channels)} channels; {self.kind} has {n_channels}")
        names = tuple(c.name for c in channels)
        cmap = dict(channel_map) if channel_map else {n: i for i, n in enumerate(names)}
        missing = [n for n in names if n not in cmap]
        if missing:
            raise ProgramError(f"channel_map lacks program channels {missing}")
        used = [cmap[n] for n in names]
        if len(set(used)) != len(used) or not all(0 <= u < n_channels for u in used):
            raise ProgramError(f"channel_map {cmap} must give distinct device channels "
                               f"0..{n_channels - 1}")
        from opennmes.safety import SafetyGuard

        self._configure(program, names, cmap)  # can the device play it at all?
        own = SafetyGuard.for_program(program, self.safety_profile())
        found = own.evaluate(worst_case(program, schedule))
        if found:
            raise found[0].error()
        self._guard = own
        self._extra_guard = guard
        self._ceiling = {c.name: float(c.amplitude) for c in channels}
        self._program = program
        self._channel_names = names
        self._device_channel = {n: cmap[n] for n in names}
        self._areas = {c.name: float(getattr(c.electrode, "area_m2", 0.0) or 0.0)
                       for c in channels}
        self._state = DeviceState.CONFIGURED

    def start(self) -> None:
        """Arm the device; the schedule's t = 0 is when the first chunk reaches it."""
        self._require("configured", "stopped", action="start")
        self._fault = None
        self._t0 = None
        reset = getattr(self._guard, "reset", None)
        if callable(reset):
            reset()
        self._start()
        self._state = DeviceState.RUNNING

    def deliver(self, chunk: PulseSchedule, *, until: float | None = None) -> None:
        """Play one chunk (times relative to the start, in s) on the device.

        Blocks until the chunk's commands are sent, and (real time) until shortly before the
        end of its window, so calling it in a loop paces the host.

        Parameters
        ----------
        chunk : PulseSchedule
            Pulses with onset in ``[end of previous chunk, until)``; same channels as the
            program.
        until : float, optional
            End of the window this chunk covers, in s; pulses missing in the window mean zero
            output. Defaults to the end of the period that holds the last pulse.
        """
        self._require("running", action="deliver")
        self._raise_if_faulted()
        if chunk.channel_names != self._channel_names:
            raise ProgramError(f"chunk channels {chunk.channel_names} differ from the "
                               f"configured channels {self._channel_names}")
        assert self._guard is not None
        try:
            chunk = self._prepare(chunk)
            self._guard.check(chunk)
            if self._extra_guard is not None:
                self._extra_guard.check(chunk)
            self._check_chunk(chunk)
            self._deliver(chunk, until)
        except NmesError:
            self.stop(reason="chunk refused or delivery failed")
            raise
        self._raise_if_faulted()

    def set_intensity(self, channel: str, amplitude: float) -> None:
        """Change one channel's first-phase amplitude now (A); the second phase scales along.

        The next chunks override it. Never above the channel's program amplitude (its
        ceiling): the whole program passed the guard at that amplitude when it was
        configured, so every pulse at or below it is within every limit.

        Raises
        ------
        SafetyLimitError
            ``amplitude`` is not a finite current between 0 and the ceiling; nothing changed.
        """
        self._require("running", action="set the intensity")
        self._raise_if_faulted()
        if channel not in self._channel_names:
            raise ProgramError(f"unknown channel {channel!r}; channels: {self._channel_names}")
        a = float(amplitude)
        self._within_ceiling(channel, a, f"set_intensity({channel!r})")
        self._set_intensity(channel, a)

    def _within_ceiling(self, channel: str, a: float, where: str) -> None:
        """Raise SafetyLimitError unless ``a`` (A) is a finite current from 0 to the
        channel's program amplitude (no ceiling before a program is configured)."""
        top = self._ceiling.get(channel, math.inf)
        if math.isfinite(a) and 0.0 <= a <= top * (1 + 1e-9):
            return
        source = f"the program's amplitude for {channel!r}, its ceiling" if math.isfinite(top) \
            else "a current is finite and >= 0"
        hint = f"at most {top * 1e3:g} mA, or change the program" if math.isfinite(top) else \
            "give a finite current"
        raise SafetyLimitError(
            "intensity", a * 1e3, top * 1e3, "mA", source, where=where, hint=hint,
            message=f"{where}: intensity = {a * 1e3:g} mA is outside 0 to {top * 1e3:g} mA "
                    f"({source}); {hint}")

    def single_pulse(self, channel: str, amplitude: float, phase_width: float) -> None:
        """One symmetric biphasic pulse now: ``amplitude`` in A, ``phase_width`` in s.

        Allowed when open, configured or stopped (not while a schedule runs). On a configured
        channel it is bounded by the program's amplitude (its ceiling); it passes the per-pulse
        limits of the device profile and is kept in :meth:`single_pulses`.
        """
        self._require("open", "configured", "stopped", action="send a single pulse")
        n_channels = self.capabilities.channels
        if channel in self._device_channel:
            dev = self._device_channel[channel]
        elif channel.startswith("ch") and channel[2:].isdigit():
            dev = int(channel[2:]) - 1
        else:
            raise ProgramError(f"unknown channel {channel!r}: use a configured channel name or "
                               f"ch1..ch{n_channels}")
        if not 0 <= dev < n_channels:
            raise ProgramError(f"{channel}: device channel must be 1..{n_channels}")
        self._within_ceiling(channel, float(amplitude), f"single_pulse({channel!r})")
        gap = self._single_pulse_gap()
        pulse = PulseSchedule.from_arrays([0.0], [amplitude], [phase_width],
                                          interphase_gap=gap, channel_names=(channel,))
        area = self._areas.get(channel, 0.0)
        if area > 0:
            from opennmes.safety import SafetyGuard

            SafetyGuard(self.safety_profile(), {channel: area}).check(pulse)
        else:  # no electrode known (ch1..ch8 before configure): the per-pulse hard limits
            self._check_single_without_area(pulse)
        self._check_chunk(pulse)
        self._single_pulse(dev, float(amplitude), float(phase_width))
        self._singles.append((self.clock.now() - self._t_open, dev, float(amplitude),
                              float(phase_width)))

    def _check_single_without_area(self, pulse: PulseSchedule) -> None:
        for lim in self.safety_profile().limits:
            if lim.key in ("amplitude", "phase_width") and lim.maximum is not None:
                v = pulse.amplitude[0] if lim.key == "amplitude" else pulse.phase_width[0]
                if v > lim.maximum * (1 + 1e-9) and lim.severity == "hard":
                    from opennmes.errors import SafetyLimitError

                    raise SafetyLimitError(lim.parameter, v * lim.scale, lim.maximum * lim.scale,
                                           lim.unit, lim.source, where="single pulse")

    def finish(self) -> None:
        """End a program at its natural end: output is zero after the last delivered window,
        then the device stops. :meth:`stop` is the immediate abort."""
        self.stop(reason="finished")

    def stop(self, *, reason: str = "stop requested") -> None:
        """Zero output on every channel (idempotent, never raises for a lost device).

        A call while another thread is stopping the device returns when that stop is done,
        so the record read after it is final."""
        with self._stop_lock:
            with self._lock:
                if self._state not in (DeviceState.RUNNING, DeviceState.CONFIGURED):
                    return
                was_running = self._state == DeviceState.RUNNING
                self._state = DeviceState.STOPPED
            try:
                self._stop()
            except Exception as exc:  # the device may be gone; output is zero either way
                log.warning("%s: stop command failed (%s); the device stops by its watchdog",
                            self.url, exc)
            if was_running:
                self._post(Stopped(self.clock.now(), self.kind, self.now_rel(),
                                   reason=reason))

    def close(self) -> None:
        """Stop, then release the device (idempotent)."""
        if self._state == DeviceState.CLOSED:
            return
        self.stop(reason="close")
        try:
            self._close()
        finally:
            self._state = DeviceState.CLOSED
            _OPEN.discard(self)

    def __enter__(self) -> Stimulator:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_state", "closed") != "closed":
            warnings.warn(f"stimulator {self.url} was left open; use it as a context manager "
                          "or call close()", ResourceWarning, stacklevel=2)
            try:
                self.close()
            except Exception:
                pass

    def quantize(self, chunk: PulseSchedule) -> PulseSchedule:
        """A copy with amplitudes on the device's current step (explicit, never silent):
        ``chunk.quantize(capabilities.amplitude_step)``.

        Use it when a program's ramps produce amplitudes between the device's steps; the
        quantized chunk is what the guard checks and the device plays.
        """
        return chunk.quantize(self.capabilities.amplitude_step)

    # ------------------------------------------------------------------ results
    def delivered(self) -> PulseSchedule:
        """Pulses delivered since :meth:`start` (times relative to the start, in s).

        Hardware backends rebuild them from the acknowledged commands and the device's timing;
        after a device-side stop they end at the moment the host learnt of it.
        """
        if not self._channel_names:
            raise DeviceError("nothing delivered: the stimulator is not configured")
        return self._delivered()

    def unconfirmed(self) -> PulseSchedule:
        """Pulses the host sent that the device did not confirm it played (times relative
        to the start, in s); empty when the device confirms everything (``sim://``).

        A hardware device confirms its pulses by answering status queries while it stimulates;
        after its last answer (it froze, lost power, stopped by itself) and in a period an
        update may have reached late, the host cannot know: those pulses are here, not in
        :meth:`delivered`.
        """
        if not self._channel_names:
            raise DeviceError("nothing sent: the stimulator is not configured")
        return self._unconfirmed()

    def confirmed_until(self) -> float:
        """Time since the start (s) up to which :meth:`delivered` is final: the device has
        confirmed the pulses before it (``inf`` for a device that reports what it played,
        ``-inf`` before a hardware device's first confirmation)."""
        return math.inf

    def single_pulses(self) -> PulseSchedule:
        """Single pulses sent, times relative to :meth:`open`, channels ``ch1..ch8``."""
        names = tuple(f"ch{i + 1}" for i in range(self.capabilities.channels))
        if not self._singles:
            return PulseSchedule.empty(names)
        a = np.array(self._singles)
        return PulseSchedule.from_arrays(a[:, 0], a[:, 2], a[:, 3],
                                         channel=a[:, 1].astype(int),
                                         interphase_gap=self._single_pulse_gap(),
                                         waveform=Waveform.SYMMETRIC_BIPHASIC,
                                         channel_names=names)

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _open(self) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def _configure(self, program: Any, names: tuple[str, ...], cmap: dict[str, int]) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def _start(self) -> None:
        raise NotImplementedError

    def _prepare(self, chunk: PulseSchedule) -> PulseSchedule:
        """The pulses the backend will play for ``chunk`` (a hook: ``sim://`` applies its
        intensity overrides here), judged by the guard before anything is played."""
        return chunk

    def _check_chunk(self, chunk: PulseSchedule) -> None:  # noqa: B027 (optional hook)
        """Raise ProgramError if the device cannot play these pulses exactly (a hook; by
        default every chunk that passed the guard is playable)."""

    @abc.abstractmethod
    def _deliver(self, chunk: PulseSchedule, until: float | None) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def _set_intensity(self, channel: str, amplitude: float) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def _single_pulse(self, device_channel: int, amplitude: float, phase_width: float) -> None:
        raise NotImplementedError

    def _single_pulse_gap(self) -> float:
        return 0.0

    @abc.abstractmethod
    def _stop(self) -> None:
        raise NotImplementedError

    def _unconfirmed(self) -> PulseSchedule:
        return PulseSchedule.empty(self._channel_names)

    @abc.abstractmethod
    def _close(self) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def _delivered(self) -> PulseSchedule:
        raise NotImplementedError

    def guard(self) -> SafetyGuard | GuardLike | None:
        """The device's own guard that checks every chunk (set by :meth:`configure`)."""
        return self._guard
