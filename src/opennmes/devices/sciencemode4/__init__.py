"""P24 and I24 over Hasomed ScienceMode4: sans-I/O protocol, the P24's serial driver and
emulator, and the I24's dyscom codec, driver and emulator."""

from opennmes.devices.sciencemode4 import _dyscom as dyscom
from opennmes.devices.sciencemode4 import _protocol as protocol
from opennmes.devices.sciencemode4._driver import P24
from opennmes.devices.sciencemode4._emulator import P24Emulator
from opennmes.devices.sciencemode4._i24 import I24, I24Block
from opennmes.devices.sciencemode4._i24_emulator import I24Emulator
from opennmes.devices.sciencemode4._protocol import FrameDecoder, decode, encode

__all__ = ["protocol", "dyscom", "FrameDecoder", "encode", "decode", "P24", "P24Emulator",
           "I24", "I24Block", "I24Emulator"]
