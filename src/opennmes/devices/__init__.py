"""Stimulators: one lifecycle for every backend, opened by URL.

``open_stimulator("sim://")``, ``open_stimulator("rehastim2:///dev/ttyUSB0")`` and
``open_stimulator("p24:///dev/ttyACM0")`` return a :class:`Stimulator`; the same script runs on
each. Hardware backends speak the Hasomed ScienceMode protocols (sans-I/O codecs in
``sciencemode2`` / ``sciencemode4``) and ship byte-exact emulators for tests without hardware.
"""

from opennmes.devices._base import DeviceState, Stimulator
from opennmes.devices._clock import Clock, RealClock, VirtualClock
from opennmes.devices._events import (
    FAULT_KINDS,
    Acknowledged,
    DeviceEvent,
    DeviceFault,
    Disconnected,
    LateCommand,
    Played,
    Stopped,
)
from opennmes.devices._realtime import RealtimeState, ordinary_priority, realtime
from opennmes.devices._registry import (
    KNOWN_USB_IDS,
    SCHEMES,
    PortInfo,
    check_representable,
    list_ports,
    open_stimulator,
)

__all__ = [
    "Stimulator", "DeviceState", "open_stimulator", "check_representable", "SCHEMES", "list_ports",
    "PortInfo", "KNOWN_USB_IDS",
    "Clock", "RealClock", "VirtualClock",
    "DeviceEvent", "Acknowledged", "DeviceFault", "Disconnected", "Stopped", "LateCommand",
    "Played",
    "FAULT_KINDS",
    "realtime", "RealtimeState", "ordinary_priority",
]
