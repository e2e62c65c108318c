"""Therapy: the protocol library, prescriptions, outcome instruments, adherence and
progression (the clinic layer; see docs/protocols.md and docs/outcomes.md).

Pure functions (``plan_prescription``, ``assess_change``, ``adherence``,
``review_progression``) do the work; :class:`TherapyRecord` stores prescriptions, outcome
measurements and progression steps beside the session store and is the service the CLI and
the web app call. Its tables are on the store's one metadata (registered when this package is
imported) and their schema belongs to the store's one migration history.
"""

from opennmes.therapy._adherence import (
    CONTRACTION_GAP,
    Adherence,
    SessionSummary,
    WeekAdherence,
    adherence,
    summarise_session,
)
from opennmes.therapy._diagrams import diagram_svg
from opennmes.therapy._errors import OutcomeError, PrescriptionError, TherapyError
from opennmes.therapy._instruments import INSTRUMENTS, Instrument, Threshold, get_instrument
from opennmes.therapy._library import (
    DIAGRAMS,
    PROTOCOL_DIR,
    get_protocol,
    list_protocols,
    load_protocol,
    load_protocol_text,
)
from opennmes.therapy._outcomes import (
    ChangeAssessment,
    Measurement,
    OutcomeHistory,
    assess_change,
    choose_threshold,
    outcome_history,
    populations_for,
    threshold_label,
    threshold_text,
    verdict_text,
)
from opennmes.therapy._prescription import (
    ChannelPlan,
    PrescriptionPlan,
    Schedule,
    build_program,
    factors_from_record,
    plan_prescription,
)
from opennmes.therapy._progression import Adjustment, review_progression
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
from opennmes.therapy._record import (
    AdjustmentRecord,
    Prescription,
    TherapyRecord,
)

__all__ = [
    "TherapyError", "OutcomeError", "PrescriptionError",
    # protocols
    "Protocol", "Source", "Evidence", "ElectrodePlacement", "Placement", "Dose", "StartWindow",
    "Intensity", "ProgressionRule", "Trigger",
    "DIAGRAMS", "diagram_svg", "PROTOCOL_DIR", "get_protocol", "list_protocols", "load_protocol",
    "load_protocol_text",
    # prescriptions
    "Schedule", "ChannelPlan", "PrescriptionPlan", "plan_prescription", "build_program",
    "factors_from_record",
    # outcomes
    "Instrument", "Threshold", "INSTRUMENTS", "populations_for", "verdict_text",
    "threshold_text", "threshold_label", "get_instrument", "Measurement",
    "ChangeAssessment", "OutcomeHistory", "assess_change", "choose_threshold",
    "outcome_history",
    # adherence and progression
    "SessionSummary", "WeekAdherence", "Adherence", "summarise_session", "adherence",
    "CONTRACTION_GAP", "Adjustment", "review_progression",
    # the record
    "TherapyRecord", "Prescription", "AdjustmentRecord",
]
