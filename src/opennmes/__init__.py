"""OpenNMES: an open Python platform for neuromuscular electrical stimulation.

The top level exports the two currencies (their base modules are ``opennmes.schedule`` and
``opennmes.signals``), programs and the errors; the layers live in their packages:
``opennmes.stim``, ``opennmes.safety``, ``opennmes.physiology``, ``opennmes.devices``,
``opennmes.sensing``, ``opennmes.control``, ``opennmes.session``, ``opennmes.therapy``,
``opennmes.store``, ``opennmes.report`` and ``opennmes.web``.
"""

from __future__ import annotations

from opennmes.errors import (
    ContraindicationError,
    DeviceError,
    DeviceTimeoutError,
    ModelError,
    NmesError,
    ProgramError,
    ProtocolError,
    SafetyLimitError,
    SignalError,
    StoreError,
    UnitError,
)
from opennmes.schedule import PulseSchedule, Waveform
from opennmes.signals import Signals
from opennmes.stim import Program, load_program

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Signals",
    "PulseSchedule",
    "Waveform",
    "Program",
    "load_program",
    "NmesError",
    "UnitError",
    "ProgramError",
    "SafetyLimitError",
    "ContraindicationError",
    "DeviceError",
    "DeviceTimeoutError",
    "ProtocolError",
    "ModelError",
    "SignalError",
    "StoreError",
]
