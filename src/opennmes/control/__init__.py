"""Control: pure controllers and triggers for functional stimulation.

Closed loops (PID with feed-forward and anti-windup, iterative learning, the tracking
controller) and triggers (EMG, gait, button, external): state in, amplitude or decision out.
Nothing here touches a device, a guard or the store: :mod:`opennmes.session` composes them
with the device, the guard, the watchdog and the recorder (``ClosedLoopDrive``,
``TriggerDrive``, ``opennmes.session.track``)."""

from opennmes.control._ilc import IterativeLearning
from opennmes.control._loop import (
    SATURATED,
    Tracker,
    TrackingResult,
    at_ceiling,
    inverse_curve,
    seated_knee_target,
    standard_knee_target,
    static_curve,
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
    "SATURATED",
    "at_ceiling",
    "standard_knee_target",
    "seated_knee_target",
    "static_curve",
    "inverse_curve",
    "TriggeredStimulation",
    "TriggerEvent",
    "EmgTrigger",
    "GaitTrigger",
]
