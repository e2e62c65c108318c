"""``sim://``: the simulated stimulator (exact delivery to an injected virtual patient)."""

from opennmes.devices.sim._sim import SimStimulator

__all__ = ["SimStimulator"]
