"""RehaStim 2: escapes of bytes that need none (pyScienceMode escapes 0x55 and 0x0A).

The PDF (v1.24 §2.2) says which bytes a sender must escape (0xF0, 0x0F, 0x81) and that an
escape is 0x81 followed by the byte XOR 0x55; it does not forbid escaping others, and the
checksum and length count the bytes as sent. The tolerant reading (the emulator's default) reads
any escape by that rule; the strict option refuses such frames as damaged (-1, transfer
error). What the real device does is not known (docs/devices/rehastim2.md).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from opennmes.devices._bytes import STUFF, STUFF_KEY, crc8
from opennmes.devices.sciencemode2 import RehaStim2Emulator
from opennmes.devices.sciencemode2 import protocol as p
from opennmes.errors import DeviceError, ProtocolError

from .test_emulators import _reply, connected_rs2

_OVER = frozenset((0xF0, 0x0F, 0x81, 0x55, 0x0A))  # pyScienceMode utils.py l.224


def over_escaped(packet_number: int, command: int, data: bytes = b"") -> bytes:
    """A frame whose body escapes 0x55 and 0x0A too (with the 0x81 prefix)."""
    body = bytearray()
    for b in bytes((packet_number, command)) + data:
        body += bytes((STUFF, b ^ STUFF_KEY)) if b in _OVER else bytes((b,))
    return bytes((0xF0, STUFF, crc8(bytes(body)) ^ STUFF_KEY, STUFF,
                  len(body) ^ STUFF_KEY)) + bytes(body) + b"\x0f"


def test_the_over_escaped_get_stimulation_mode() -> None:
    """GetStimulationMode (command 0x0A) as packet 0x55: both bytes escaped."""
    raw = over_escaped(0x55, 0x0A)
    # CRC-8 (poly 0x07) of the sent body 81 00 81 5F is 0x1E, sent as 0x1E ^ 0x55 = 0x4B
    assert raw == bytes.fromhex("F0 81 4B 81 51 81 00 81 5F 0F")
    assert p.decode_frame(raw, strict_escapes=False) == p.Frame(0x55, 0x0A, b"")
    with pytest.raises(ProtocolError, match="never needs escaping"):
        p.decode_frame(raw, strict_escapes=True)
    with pytest.raises(ProtocolError, match="never needs escaping"):
        p.decode_frame(raw)  # the protocol decoder's default stays strict


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40))
def test_both_readings_agree_on_frames_that_follow_the_rule(pn: int, cmd: int,
                                                            data: bytes) -> None:
    spec = p.encode_frame(pn, cmd, data)
    want = p.Frame(pn, cmd, data)
    assert p.decode_frame(spec, strict_escapes=True) == want
    assert p.decode_frame(spec, strict_escapes=False) == want
    assert p.decode_frame(over_escaped(pn, cmd, data), strict_escapes=False) == want


@pytest.fixture(params=["tolerant", "strict"])
def connected(request: pytest.FixtureRequest
              ) -> Iterator[tuple[RehaStim2Emulator, serial.Serial, p.FrameDecoder]]:
    with RehaStim2Emulator(escapes=request.param) as emu, connected_rs2(emu) as (ser, dec):
        yield emu, ser, dec


def test_the_emulator_reads_escapes_as_configured(
        connected: tuple[RehaStim2Emulator, serial.Serial, p.FrameDecoder]) -> None:
    emu, ser, dec = connected
    cmd = p.InitChannelListMode(0, 1, 0, 13, 78, 0)
    ser.write(over_escaped(0x55, int(cmd.COMMAND), cmd.payload()))
    ack = _reply(ser, dec, p)
    if emu.escapes == "tolerant":
        assert ack == p.InitChannelListModeAck(0) and emu.bad_frames_in == 0
    else:
        assert ack == p.InitChannelListModeAck(-1) and emu.bad_frames_in == 1  # transfer error
    # a spec-true frame is read the same way by both
    ser.write(p.encode(p.InitChannelListMode(0, 1, 0, 13, 78, 0), 0x56))
    assert _reply(ser, dec, p) == p.InitChannelListModeAck(0)
    ser.write(over_escaped(0x0A, int(p.Command.GET_STIMULATION_MODE)))
    if emu.escapes == "tolerant":
        assert _reply(ser, dec, p) == p.GetStimulationModeAck(0, 1)
        assert emu.bad_frames_in == 0
    else:
        with pytest.raises(AssertionError, match="no reply"):
            _reply(ser, dec, p, timeout=0.3)  # PDF: no acknowledgement for a damaged frame
        assert emu.bad_frames_in == 2  # other than 30-36, damaged frames are not answered


def test_an_unknown_escape_option_is_refused() -> None:
    with pytest.raises(DeviceError, match="escapes='lenient'.*tolerant, strict"):
        RehaStim2Emulator(escapes="lenient")
