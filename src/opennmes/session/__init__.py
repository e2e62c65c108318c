"""Therapy sessions: the runner that plays a program on a stimulator under the safety guard,
the watchdog, typed events, the dose record and the terminal view.

``start_session(store, patient_id, program, stim)`` checks everything (patient, screening,
device limits) before it writes anything and returns a :class:`SessionRunner`; its
:meth:`~SessionRunner.run` plays the program live and records it. Every way of operating a
session speaks one command vocabulary (:class:`Command`, :data:`COMMANDS`);
:func:`supervise` plays a session in its own process and sends it those commands. See
``docs/sessions.md``.
"""

from opennmes.session._commands import (
    COMMANDS,
    Command,
    CommandError,
    CommandSpec,
    Param,
    apply_command,
    check_command,
)
from opennmes.session._dose import (
    DISCOMFORT_SCORE,
    DOSE_FORMAT,
    TOLERATED_AFTER,
    ChannelRecord,
    channel_trains,
    hold_time,
    session_dose,
    tolerated_levels,
)
from opennmes.session._drives import (
    TRIGGER_SOURCES,
    ClosedLoopDrive,
    Drive,
    TriggerDrive,
    program_drives,
)
from opennmes.session._events import (
    EVENT_KINDS,
    STOP_KINDS,
    AdverseEvent,
    ComfortRating,
    DeviceErrorEvent,
    IntensityChanged,
    LoopEvent,
    Paused,
    PulsesUnconfirmed,
    Resumed,
    SessionEvent,
    SessionStarted,
    SessionStopped,
    SkinCheck,
    Triggered,
    WatchdogFired,
)
from opennmes.session._i24 import I24Sensor, i24_spec
from opennmes.session._lsl import (
    LSL_TIMEOUT,
    LslPublisher,
    LslSensor,
    LslTrigger,
    lsl_clock_offset,
    lsl_spec,
)
from opennmes.session._mpc import MpcDrive, plan_mpc_tracking
from opennmes.session._runner import MAX_STEP, SessionResult, SessionRunner, Status
from opennmes.session._sensors import (
    DeviceSignals,
    PatientSensor,
    ReplaySensor,
    Sensor,
    SourceSensor,
)
from opennmes.session._setup import ScriptedOperator, Titration, patient_factors, start_session
from opennmes.session._supervisor import (
    KILL_AFTER,
    SessionRefused,
    SupervisedSession,
    supervise,
    warm_up_supervisor,
)
from opennmes.session._timeline import Position, Timeline
from opennmes.session._tracking import (
    KNEE_GAINS,
    PER_MA_PER_DEG,
    TrackingPlan,
    TrackingVerdict,
    closed_loop_program,
    knee_target,
    plan_tracking,
    track,
    track_repetitions,
    tracking_verdict,
)
from opennmes.session._view import (
    KEY_BINDINGS,
    KEY_HELP,
    KeyBinding,
    PlainView,
    TerminalView,
    handle_key,
    key_command,
    play,
)
from opennmes.session._watchdog import Watchdog

__all__ = [
    "SessionRunner", "SessionResult", "Status", "MAX_STEP", "Watchdog",
    "start_session", "patient_factors", "ScriptedOperator", "Titration",
    "TerminalView", "PlainView", "play", "handle_key", "KEY_HELP", "KEY_BINDINGS", "KeyBinding",
    "key_command",
    "Command", "CommandSpec", "Param", "COMMANDS", "CommandError", "check_command",
    "apply_command",
    "supervise", "SupervisedSession", "SessionRefused", "warm_up_supervisor", "KILL_AFTER",
    "Sensor", "PatientSensor", "DeviceSignals", "ReplaySensor", "SourceSensor",
    "LslPublisher", "LslSensor", "LslTrigger", "lsl_spec", "lsl_clock_offset", "LSL_TIMEOUT",
    "I24Sensor", "i24_spec",
    "Drive", "TriggerDrive", "ClosedLoopDrive", "MpcDrive", "program_drives", "TRIGGER_SOURCES",
    "plan_mpc_tracking",
    "Timeline", "Position",
    "track", "track_repetitions", "tracking_verdict", "TrackingVerdict", "closed_loop_program",
    "TrackingPlan", "plan_tracking", "knee_target", "KNEE_GAINS", "PER_MA_PER_DEG",
    "ChannelRecord", "session_dose", "channel_trains", "DOSE_FORMAT", "tolerated_levels",
    "TOLERATED_AFTER", "DISCOMFORT_SCORE", "hold_time",
    "SessionEvent", "SessionStarted", "IntensityChanged", "Paused", "Resumed",
    "SessionStopped", "DeviceErrorEvent", "WatchdogFired", "ComfortRating", "SkinCheck",
    "AdverseEvent", "Triggered", "LoopEvent", "PulsesUnconfirmed", "EVENT_KINDS", "STOP_KINDS",
]
