"""The virtual patient: nerve recruitment, Ding-family force and fatigue models, Hill-type
muscle mechanics, joints, EMG synthesis, presets, simulation and identification.

Main entry points: :func:`simulate` (a program or schedule on a patient), :func:`get_preset`
(virtual patients by name), ``patient.start(...)`` (a :class:`PatientStream` for live use),
:func:`simulate_train` (one force model on a pulse train) and :func:`identify` (fit a model to
a recorded force trace). See ``docs/physiology.md``.
"""

from opennmes.physiology._ding import (
    DING2003_TAU2,
    DING_STATES,
    MODELS,
    DingParameters,
    cn_closed_form,
    default_parameters,
    ding2007_a_factor,
    ding_derivative,
    hmed2018_lambda,
    pulse_weights,
)
from opennmes.physiology._emg import EmgModel
from opennmes.physiology._identify import (
    FATIGUE_PARAMETERS,
    FORCE_PARAMETERS,
    IdentificationResult,
    identify,
    read_trace,
    read_values,
)
from opennmes.physiology._mechanics import (
    Joint,
    activation_derivative,
    force_length,
    force_velocity,
    passive_force_length,
)
from opennmes.physiology._nerve import (
    MotorUnitPool,
    NerveModel,
    threshold_charge,
    threshold_current,
)
from opennmes.physiology._patient import Muscle, VirtualPatient
from opennmes.physiology._presets import PRESETS, get_preset
from opennmes.physiology._recovery import (
    RECOVERY_PARAMETERS,
    recovery_draws,
    recovery_participant,
    recovery_protocol,
    recovery_study,
    synthetic_participant,
)
from opennmes.physiology._reference import cocofest_rk4, reference_solution
from opennmes.physiology._simulate import (
    SimulationResult,
    simulate,
    simulate_cohort,
    simulate_train,
)
from opennmes.physiology._stream import PatientStream

__all__ = [
    "read_trace",
    "read_values",
    "recovery_draws",
    "recovery_participant",
    "recovery_protocol",
    "recovery_study",
    "synthetic_participant",
    "DING2003_TAU2",
    "DING_STATES",
    "FATIGUE_PARAMETERS",
    "FORCE_PARAMETERS",
    "IdentificationResult",
    "MODELS",
    "PRESETS",
    "RECOVERY_PARAMETERS",
    "DingParameters",
    "EmgModel",
    "Joint",
    "MotorUnitPool",
    "Muscle",
    "NerveModel",
    "PatientStream",
    "SimulationResult",
    "VirtualPatient",
    "activation_derivative",
    "cn_closed_form",
    "cocofest_rk4",
    "default_parameters",
    "ding2007_a_factor",
    "ding_derivative",
    "force_length",
    "force_velocity",
    "get_preset",
    "hmed2018_lambda",
    "identify",
    "passive_force_length",
    "pulse_weights",
    "reference_solution",
    "simulate",
    "simulate_cohort",
    "simulate_train",
    "threshold_charge",
    "threshold_current",
]
