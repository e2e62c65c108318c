"""Stimulation programs: pulse shapes, trains, envelopes, channels, and their expansion into a
:class:`PulseSchedule`."""

from opennmes.stim._schedule import WAVEFORM_NAMES, PulseSchedule, Waveform

__all__ = ["PulseSchedule", "Waveform", "WAVEFORM_NAMES"]
