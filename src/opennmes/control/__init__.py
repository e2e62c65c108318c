"""Control: closed loops (PID with feed-forward and anti-windup, iterative learning) and
triggers (EMG, gait, button, external) for functional stimulation."""

from opennmes.control._ilc import IterativeLearning
from opennmes.control._loop import (
    DevicePlant,
    Tracker,
    TrackingResult,
    inverse_curve,
    seated_knee_target,
    standard_knee_target,
    static_curve,
    track,
    track_repetitions,
)
from opennmes.control._pid import PID
from opennmes.control._triggers import (
    EmgTrigger,
    GaitTrigger,
    TriggeredStimulation,
    TriggerEvent,
)

__all__ = [
    "PID",
    "IterativeLearning",
    "TrackingResult",
    "Tracker",
    "DevicePlant",
    "track",
    "track_repetitions",
    "standard_knee_target",
    "seated_knee_target",
    "static_curve",
    "inverse_curve",
    "TriggeredStimulation",
    "TriggerEvent",
    "EmgTrigger",
    "GaitTrigger",
]
