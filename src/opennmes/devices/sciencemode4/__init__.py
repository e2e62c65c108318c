"""P24 over Hasomed ScienceMode4: sans-I/O protocol, serial driver and emulator; the I24's
dyscom decoder."""

from opennmes.devices.sciencemode4 import _dyscom as dyscom
from opennmes.devices.sciencemode4 import _protocol as protocol
from opennmes.devices.sciencemode4._driver import P24
from opennmes.devices.sciencemode4._emulator import P24Emulator
from opennmes.devices.sciencemode4._protocol import FrameDecoder, decode, encode

__all__ = ["protocol", "dyscom", "FrameDecoder", "encode", "decode", "P24", "P24Emulator"]
