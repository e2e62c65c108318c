"""Typed device events: acknowledgements, faults, disconnection, stops.

Events are immutable; ``t`` is the stimulator's clock time in s when the host saw the event,
and ``t_rel`` the same time relative to the start of the schedule (``None`` before start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DeviceEvent", "Acknowledged", "DeviceFault", "Disconnected", "Stopped",
           "LateCommand", "Played", "FAULT_KINDS"]

FAULT_KINDS = ("electrode", "emergency_switch", "module", "transfer", "parameter", "wrong_mode",
               "busy", "timeout", "device_reset", "device_stopped", "protocol", "other")


@dataclass(frozen=True)
class DeviceEvent:
    """Base of every device event."""

    t: float
    device: str
    t_rel: float | None = None


@dataclass(frozen=True)
class Acknowledged(DeviceEvent):
    """The device acknowledged a command; ``round_trip`` in s from write to acknowledgement."""

    command: str = ""
    packet_number: int = 0
    round_trip: float = 0.0


@dataclass(frozen=True)
class DeviceFault(DeviceEvent):
    """The device reported a fault or broke its protocol.

    ``kind`` is one of :data:`FAULT_KINDS`; ``code`` is the device's own code; ``fatal`` faults
    stop stimulation (the device stops by itself; the host stops too).
    """

    kind: str = "other"
    code: int = 0
    message: str = ""
    channel: str | None = None
    fatal: bool = True


@dataclass(frozen=True)
class Disconnected(DeviceEvent):
    """The link to the device is gone (unplugged, port closed)."""

    reason: str = ""


@dataclass(frozen=True)
class Stopped(DeviceEvent):
    """Output went to zero on every channel; ``reason`` says why."""

    reason: str = ""


@dataclass(frozen=True)
class LateCommand(DeviceEvent):
    """A command left later than planned (``lateness`` in s): the host fell behind."""

    command: str = ""
    lateness: float = 0.0


@dataclass(frozen=True)
class Played(DeviceEvent):
    """``sim://`` played a window: the pulses delivered and the patient's response.

    ``pulses`` is a PulseSchedule (times relative to the start), ``signals`` the virtual
    patient's Signals over ``[start, until)`` (force, joint angle, EMG) or None without a
    patient.
    """

    start: float = 0.0
    until: float = 0.0
    pulses: Any = None
    signals: Any = None
