"""``sim://``: the simulated stimulator (exact delivery to an injected virtual patient)."""

from opennmes.devices.sim._sim import SFREQ_RANGE, SimStimulator

__all__ = ["SimStimulator", "SFREQ_RANGE"]
