"""Stimulation programs: pulse shapes, trains, envelopes, channels, and their expansion into a
:class:`PulseSchedule`.

The schedule itself is a base module, :mod:`opennmes.schedule`; ``PulseSchedule``,
``Waveform`` and ``WAVEFORM_NAMES`` are re-exported here for programs' users.
"""

from opennmes.schedule import WAVEFORM_NAMES, PulseSchedule, Waveform
from opennmes.stim._expand import expand_program, phase_lengths
from opennmes.stim._files import (
    load_program,
    load_program_bytes,
    load_program_text,
    program_from_dict,
    program_schema,
    read_yaml,
    save_program,
    validation_lines,
)
from opennmes.stim._program import (
    MAX_CHANNELS,
    MAX_PROGRAM_DURATION,
    MAX_PROGRAM_PULSES,
    PROGRAM_FREQUENCY_RANGE,
    PROGRAM_LIMITS_SOURCE,
    TRIGGER_SOURCES,
    Acknowledgement,
    Channel,
    Electrode,
    Modulation,
    Phase,
    Program,
    Timing,
    Train,
    Trigger,
)
from opennmes.stim._quantities import Amperes, Fraction, Hertz, Metres, Seconds, SquareMetres

__all__ = [
    "PulseSchedule",
    "Waveform",
    "WAVEFORM_NAMES",
    "Program",
    "Channel",
    "Electrode",
    "Train",
    "Trigger",
    "TRIGGER_SOURCES",
    "Modulation",
    "Phase",
    "Timing",
    "Acknowledgement",
    "MAX_CHANNELS",
    "MAX_PROGRAM_DURATION",
    "MAX_PROGRAM_PULSES",
    "PROGRAM_FREQUENCY_RANGE",
    "PROGRAM_LIMITS_SOURCE",
    "expand_program",
    "phase_lengths",
    "load_program",
    "load_program_text",
    "load_program_bytes",
    "program_from_dict",
    "save_program",
    "program_schema",
    "read_yaml",
    "validation_lines",
    "Seconds",
    "Hertz",
    "Amperes",
    "SquareMetres",
    "Metres",
    "Fraction",
]
