"""RehaStim 2 over Hasomed ScienceMode2: sans-I/O protocol, serial driver and emulator."""

from opennmes.devices.sciencemode2 import _protocol as protocol
from opennmes.devices.sciencemode2._driver import RehaStim2
from opennmes.devices.sciencemode2._emulator import RehaStim2Emulator
from opennmes.devices.sciencemode2._protocol import FrameDecoder, decode, encode

__all__ = ["protocol", "FrameDecoder", "encode", "decode", "RehaStim2", "RehaStim2Emulator"]
