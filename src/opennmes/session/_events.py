"""Typed, timestamped session events.

Every event has a session time ``t`` (s from the first pulse window, the device's schedule
time) and a ``kind``; :meth:`SessionEvent.data` is the plain JSON stored with it. Events that
change a parameter name who changed it (``by``), the old and the new value (CPS §4.6 item 9,
audit trail).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from opennmes.errors import SessionError

__all__ = [
    "SessionEvent", "SessionStarted", "IntensityChanged", "Paused", "Resumed",
    "SessionStopped", "DeviceErrorEvent", "WatchdogFired", "ComfortRating", "SkinCheck",
    "AdverseEvent", "Triggered", "LoopEvent", "PulsesUnconfirmed", "EVENT_KINDS", "STOP_KINDS",
]

STOP_KINDS = ("completed", "stopped", "emergency", "watchdog", "device_error", "safety",
              "record_error")
"""How a session can end: program completed, stop pressed, emergency stop, watchdog, device
error, safety guard refusal, the record could not be written."""


@dataclass(frozen=True)
class SessionEvent:
    """Base of every session event; ``t`` in s (session time)."""

    t: float
    kind: ClassVar[str] = "event"

    def data(self) -> dict[str, Any]:
        """The event's fields (without ``t``) as plain JSON."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "t"}


@dataclass(frozen=True)
class SessionStarted(SessionEvent):
    """The session started: program, device, levels at zero (CPS §4.6 item 2)."""

    program: str = ""
    device: str = ""
    channels: tuple[str, ...] = ()
    max_amplitude: tuple[float, ...] = ()
    """Program amplitude of each channel, A: the ceiling of the live intensity."""
    utc: str = ""
    """Wall-clock time (ISO 8601, UTC) of session time 0, within a few ms."""
    drives: dict[str, str] = dataclasses.field(default_factory=dict)
    """Functional channels: what drives each (triggers, closed loop); others follow the
    program."""
    kind: ClassVar[str] = "start"


@dataclass(frozen=True)
class IntensityChanged(SessionEvent):
    """The live intensity of a channel changed from ``old`` to ``new`` (A).

    ``t_effective`` is the onset (s) of the first pulse sent at the new level: the next pulse
    not yet handed to the device when the change was made.
    """

    channel: str = ""
    old: float = 0.0
    new: float = 0.0
    by: str = "operator"
    t_effective: float | None = None
    kind: ClassVar[str] = "intensity"


@dataclass(frozen=True)
class Paused(SessionEvent):
    """Output went to zero and the program clock stopped."""

    by: str = "operator"
    program_time: float = 0.0
    kind: ClassVar[str] = "pause"


@dataclass(frozen=True)
class Resumed(SessionEvent):
    """The program continues where it paused, ramping back from zero over ``ramp`` s."""

    by: str = "operator"
    paused_for: float = 0.0
    ramp: float = 0.0
    kind: ClassVar[str] = "resume"


@dataclass(frozen=True)
class SessionStopped(SessionEvent):
    """The session ended; ``how`` is one of :data:`STOP_KINDS`."""

    how: str = "completed"
    reason: str = ""
    by: str = "runner"
    kind: ClassVar[str] = "stop"

    def __post_init__(self) -> None:
        if self.how not in STOP_KINDS:
            raise SessionError(f"stop kind {self.how!r}; one of {STOP_KINDS}")


@dataclass(frozen=True)
class DeviceErrorEvent(SessionEvent):
    """The stimulator reported a fault, refused a command or stopped answering."""

    message: str = ""
    fault: str = "other"
    kind: ClassVar[str] = "device_error"


@dataclass(frozen=True)
class PulsesUnconfirmed(SessionEvent):
    """Pulses the host sent that the device did not confirm it played; they are not in the
    delivered record (nor the dose). ``pulses`` counts them per channel, ``start``..``end``
    (s) spans them, ``after`` (s) is the device's last confirmation (``None``: none)."""

    pulses: dict[str, int] = dataclasses.field(default_factory=dict)
    start: float = 0.0
    end: float = 0.0
    after: float | None = None
    kind: ClassVar[str] = "unconfirmed"


@dataclass(frozen=True)
class WatchdogFired(SessionEvent):
    """The watchdog zeroed the output: ``cause`` is ``loop_stall``, ``device`` or ``sensor``."""

    cause: str = "loop_stall"
    detail: str = ""
    latency: float = 0.0
    """Wall time in s from the missed deadline to the stop command returning."""
    kind: ClassVar[str] = "watchdog"


@dataclass(frozen=True)
class ComfortRating(SessionEvent):
    """Comfort 0 (worst) to 10 (fully comfortable), as rated by the patient."""

    score: int = 10
    by: str = "patient"
    kind: ClassVar[str] = "comfort"

    def __post_init__(self) -> None:
        if not (isinstance(self.score, int) and 0 <= self.score <= 10):
            raise SessionError(f"comfort score = {self.score!r} must be an integer 0 to 10")


@dataclass(frozen=True)
class SkinCheck(SessionEvent):
    """Skin under the electrodes inspected (``ok`` False: redness, burn, irritation)."""

    ok: bool = True
    channel: str | None = None
    note: str = ""
    by: str = "operator"
    kind: ClassVar[str] = "skin_check"


@dataclass(frozen=True)
class AdverseEvent(SessionEvent):
    """A free-text adverse event note (pain, burn, dizziness, ...)."""

    note: str = ""
    by: str = "operator"
    kind: ClassVar[str] = "adverse_event"

    def __post_init__(self) -> None:
        if not self.note.strip():
            raise SessionError("an adverse event needs a note saying what happened")


@dataclass(frozen=True)
class Triggered(SessionEvent):
    """What happened to a triggered channel (``result``): ``burst`` (a burst started),
    ``ignored`` (a request during a burst, the refractory time or silence), ``end`` (a burst
    was asked to end), ``timeout`` (``max_burst`` ended it), ``silent`` (the trigger's sensor
    went silent: output zero). ``source`` says what asked (``emg:<channel>``,
    ``gait:foot_off``, ``button``, ...)."""

    channel: str = ""
    result: str = "burst"
    source: str = ""
    detail: str = ""
    kind: ClassVar[str] = "trigger"


@dataclass(frozen=True)
class LoopEvent(SessionEvent):
    """A functional channel's controller reports: ``calibrated`` (EMG threshold set from
    rest, ``value`` in the detector's feature units), ``saturated`` (output at its ceiling
    with a large error, ``value`` the amplitude in A), ``repetition`` (one repetition of a
    closed loop ended, ``value`` its tracking RMSE in the signal's unit), ``learnt`` (an
    iterative-learning update, ``value`` the peak learnt amplitude in A), ``fell back``
    (a repetition tracked worse than the best so far: the best one's input plays again,
    ``value`` the repetition's RMSE), ``silent`` (no
    valid measurement: the loop's output is zero) and ``measured`` (it is back)."""

    channel: str = ""
    what: str = ""
    detail: str = ""
    value: float | None = None
    kind: ClassVar[str] = "loop"


EVENT_KINDS: dict[str, type[SessionEvent]] = {
    c.kind: c for c in (SessionStarted, IntensityChanged, Paused, Resumed, SessionStopped,
                        DeviceErrorEvent, WatchdogFired, ComfortRating, SkinCheck, AdverseEvent,
                        Triggered, LoopEvent, PulsesUnconfirmed)
}
