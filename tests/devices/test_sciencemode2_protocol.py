"""ScienceMode2 codec: byte-exact against the worked frames of the reference, and fuzzed.

Worked frames: ../shared/reference/stimulator-protocols.md §2 ("Worked frames"), computed from
Hasomed's ScienceMode2 protocol PDF v1.24 and cross-checked with pyScienceMode 1.1.5.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opennmes.devices._bytes import crc8, stuff, unstuff
from opennmes.devices.sciencemode2 import protocol as p
from opennmes.errors import LocalProtocolError, ProtocolError, RemoteProtocolError

WORKED = [
    (p.InitAck(0), 5, "F0 81 BF 81 56 05 02 00 0F"),
    (p.Watchdog(), 0, "F0 81 49 81 57 00 04 0F"),
    (p.InitChannelListMode(0, 0x05, 0, 13, 398, 0), 2,
     "F0 81 1A 81 5C 02 1E 00 05 00 0D 01 8E 00 0F"),
    (p.StartChannelListMode((p.ChannelEntry(0, 100, 50), p.ChannelEntry(1, 300, 20))), 3,
     "F0 81 D8 81 5F 03 20 00 00 64 32 01 01 2C 14 0F"),
    (p.StopChannelListMode(), 4, "F0 81 EF 81 57 04 22 0F"),
    (p.SinglePulse(0, 300, 20), 6, "F0 81 1D 81 53 06 24 00 01 2C 14 0F"),
    (p.SinglePulse(0, 200, 15), 7, "F0 81 27 81 52 07 24 00 00 C8 81 5A 0F"),
    (p.GetStimulationMode(), 1, "F0 81 76 81 57 01 0A 0F"),
]


@pytest.mark.parametrize(("msg", "pn", "hexbytes"), WORKED)
def test_worked_frames_encode_byte_exact(msg: p.Message, pn: int, hexbytes: str) -> None:
    assert p.encode(msg, pn) == bytes.fromhex(hexbytes)


@pytest.mark.parametrize(("msg", "pn", "hexbytes"), WORKED)
def test_worked_frames_decode(msg: p.Message, pn: int, hexbytes: str) -> None:
    dec = p.FrameDecoder()
    dec.feed(bytes.fromhex(hexbytes))
    frame = dec.next_frame()
    assert frame is not None and frame.packet_number == pn
    assert p.decode(frame) == msg
    assert dec.next_frame() is None


def test_pysciencemode_getstimulationmode_differs_from_spec() -> None:
    """pyScienceMode XORs the command byte 0x0A without the 0x81 prefix (reference §2)."""
    py = bytes.fromhex("F0 81 DA 81 57 01 5F 0F")
    assert p.encode(p.GetStimulationMode(), 1) != py
    dec = p.FrameDecoder()
    dec.feed(py)
    frame = dec.next_frame()  # a well-formed frame, but of command 0x5F = 95
    assert frame is not None and frame.command == 0x5F
    with pytest.raises(RemoteProtocolError, match="unknown ScienceMode2 command 95"):
        p.decode(frame)


def test_timing_codes_from_the_pdf() -> None:
    assert p.t1_code(0.200) == 398 and p.t1_from_code(398) == pytest.approx(0.200)
    assert p.t2_code(0.008) == 13 and p.t2_from_code(13) == pytest.approx(0.008)
    assert p.t1_from_code(2048) == pytest.approx(1.025)
    with pytest.raises(LocalProtocolError, match="not 1 ms"):
        p.t1_code(1 / 35)


def test_crc8_check_value() -> None:
    """CRC-8 poly 0x07 init 0: check value of b'123456789' is 0xF4 (CRC catalogue, CRC-8)."""
    assert crc8(b"123456789") == 0xF4


def test_stuffing_example_from_the_pdf() -> None:
    assert stuff(b"\xf0") == b"\x81\xa5"
    assert stuff(b"\x55") == b"\x55"  # the key itself is not escaped
    with pytest.raises(RemoteProtocolError, match="dangling|escape"):
        unstuff(b"\x81")


def test_signed_result_and_error_codes() -> None:
    frame = p.decode_frame(p.encode(p.StartChannelListModeAck(-3), 9))
    assert p.decode(frame) == p.StartChannelListModeAck(-3)
    assert p.decode(p.decode_frame(p.encode(p.StimulationError(-2), 1))).code == -2


def test_decoder_resyncs_after_garbage_and_split_frames() -> None:
    good = p.encode(p.InitAck(0), 5)
    dec = p.FrameDecoder()
    dec.feed(b"\x00\x12" + good[:4])
    with pytest.raises(RemoteProtocolError, match="before a start byte"):
        dec.next_frame()
    assert dec.next_frame() is None
    dec.feed(good[4:] + good)
    assert dec.next_frame() == p.Frame(5, 2, b"\x00")
    assert dec.next_frame() == p.Frame(5, 2, b"\x00")


def test_corrupted_crc_is_a_protocol_error() -> None:
    raw = bytearray(p.encode(p.SinglePulse(0, 300, 20), 6))
    raw[8] ^= 0x01
    with pytest.raises(RemoteProtocolError, match="CRC-8"):
        p.decode_frame(bytes(raw))


@given(st.binary(max_size=400))
@settings(max_examples=400, deadline=None)
def test_fuzz_decoder_gives_frames_or_protocol_errors(data: bytes) -> None:
    dec = p.FrameDecoder()
    dec.feed(data)
    for _ in range(len(data) + 2):
        try:
            frame = dec.next_frame()
        except ProtocolError:
            continue
        if frame is None:
            break
        try:
            p.decode(frame)
        except ProtocolError:
            pass


@given(st.lists(st.sampled_from([0xF0, 0x0F, 0x81, 0x55, 0x00, 0x0A]) | st.integers(0, 255),
                max_size=40), st.integers(0, 255), st.integers(0, 255))
def test_frames_round_trip(data: list[int], pn: int, cmd: int) -> None:
    payload = bytes(data[: p.MAX_DATA])
    assert p.decode_frame(p.encode_frame(pn, cmd, payload)) == p.Frame(pn, cmd, payload)


def test_frame_with_too_many_data_bytes_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="holds <= 60"):
        p.encode_frame(0, 32, bytes(61))
