"""Therapy: the protocol library, prescriptions, outcome instruments, adherence and
progression (the clinic layer; see docs/protocols.md and docs/outcomes.md)."""

from opennmes.therapy._errors import OutcomeError, PrescriptionError, TherapyError
from opennmes.therapy._library import (
    DIAGRAMS,
    PROTOCOL_DIR,
    get_protocol,
    list_protocols,
    load_protocol,
    load_protocol_text,
)
from opennmes.therapy._protocol import (
    Dose,
    ElectrodePlacement,
    Evidence,
    Intensity,
    Placement,
    ProgressionRule,
    Protocol,
    Source,
    StartWindow,
    Trigger,
)

__all__ = [
    "TherapyError", "OutcomeError", "PrescriptionError",
    "Protocol", "Source", "Evidence", "ElectrodePlacement", "Placement", "Dose", "StartWindow",
    "Intensity", "ProgressionRule", "Trigger",
    "DIAGRAMS", "PROTOCOL_DIR", "get_protocol", "list_protocols", "load_protocol",
    "load_protocol_text",
]
