"""P24 over Hasomed ScienceMode4: sans-I/O protocol, serial driver and emulator."""

from opennmes.devices.sciencemode4 import _protocol as protocol
from opennmes.devices.sciencemode4._driver import P24
from opennmes.devices.sciencemode4._emulator import P24Emulator
from opennmes.devices.sciencemode4._protocol import FrameDecoder, decode, encode

__all__ = ["protocol", "FrameDecoder", "encode", "decode", "P24", "P24Emulator"]
