"""ScienceMode4 codec: byte-exact against the science_mode_4 0.0.23 worked frames quoted in
../shared/reference/stimulator-protocols.md §3, point layout of the Hasomed C library, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opennmes.devices._bytes import crc16_xmodem
from opennmes.devices._plan import Pulse
from opennmes.devices.sciencemode4 import protocol as p
from opennmes.devices.sciencemode4._shapes import pattern_to_points, points_to_pulses
from opennmes.errors import LocalProtocolError, ProgramError, ProtocolError
from opennmes.stim import Waveform

_POINTS = (p.Point.from_ma(200, 20), p.Point.from_ma(100, 0), p.Point.from_ma(200, -20))
WORKED = [
    (p.MlInit(True), 1, "F0 81 55 81 58 81 B9 81 C8 04 1E 01 0F"),
    (p.MlUpdate(((0, p.MlChannelConfig(3, 40, False, _POINTS)),)), 2,
     "F0 81 55 81 49 81 3E 81 8B 08 20 01 23 00 50 0C 85 50 00 06 44 B0 00 0C 84 10 00 0F"),
    (p.MlStop(), 3, "F0 81 55 81 59 81 14 81 18 0C 22 0F"),
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


def test_worked_update_fields() -> None:
    """20 ms period with 0.5 ms accuracy is code 40 (flag 0); ramp 3; points +20/0/-20 mA."""
    assert p.period_code(0.020) == (40, False)
    assert p.period_code(0.03325) == (133, True)  # 33.25 ms needs 0.25 ms accuracy
    with pytest.raises(LocalProtocolError, match="0.25 ms"):
        p.period_code(1 / 30)
    assert [x.current_ma for x in _POINTS] == [20.0, 0.0, -20.0]
    assert _POINTS[0].encode() == bytes.fromhex("0C855000")


def test_crc16_xmodem_check_value() -> None:
    """CRC-16/XMODEM check value of b'123456789' is 0x31C3 (CRC catalogue)."""
    assert crc16_xmodem(b"123456789") == 0x31C3


@pytest.mark.parametrize("msg", [
    p.LlInit(0, 0), p.LlInitAck(0), p.LlStop(), p.LlStopAck(2),
    p.LlChannelConfig(True, 2, 1, _POINTS), p.LlChannelConfigAck(0, 2, 1),
    p.MlInitAck(7), p.MlUpdateAck(0), p.MlStopAck(0), p.MlGetCurrentData(4),
    p.MlGetCurrentDataAck(0, (True,) * 3 + (False,) * 5, (0, 1, 0, 0, 3, 0, 0, 2)),
    p.MlUpdate(((1, p.MlChannelConfig(0, 80, True, _POINTS)),
                (6, p.MlChannelConfig(15, 32767, False, _POINTS[:1])))),
])
def test_messages_round_trip(msg: p.Message) -> None:
    assert p.decode(p.decode_frame(p.encode(msg, 63))) == msg


def test_packet_number_is_six_bits() -> None:
    with pytest.raises(LocalProtocolError, match="0-63"):
        p.encode(p.MlStop(), 64)


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


@given(st.integers(0, 63), st.integers(0, 1023), st.binary(max_size=80))
def test_frames_round_trip(pn: int, cmd: int, data: bytes) -> None:
    assert p.decode_frame(p.encode_frame(pn, cmd, data)) == p.Frame(pn, cmd, data)


def test_shapes_are_exact_and_invertible() -> None:
    doublet = (Pulse(0.0, 0.030, 300e-6, 100e-6, 0.030, 300e-6, 1),
               Pulse(0.006, 0.030, 300e-6, 100e-6, 0.030, 300e-6, 1))
    pts = pattern_to_points(doublet)
    assert [q.duration_us for q in pts] == [300, 100, 300, 4095, 1205, 300, 100, 300]
    assert tuple(points_to_pulses(pts)) == doublet
    asym = (Pulse(0.002, 0.040, 200e-6, 0.0, 0.010, 800e-6, int(Waveform.ASYMMETRIC_BIPHASIC)),)
    assert tuple(points_to_pulses(pattern_to_points(asym))) == asym
    mono = (Pulse(0.0, 0.0105, 250e-6, 0.0, 0.0, 0.0, int(Waveform.MONOPHASIC)),)
    assert tuple(points_to_pulses(pattern_to_points(mono))) == mono


def test_shapes_refuse_what_the_p24_cannot_play() -> None:
    with pytest.raises(ProgramError, match="0.5 mA"):
        pattern_to_points((Pulse(0.0, 0.0101, 300e-6, 0.0, 0.0101, 300e-6, 1),))
    with pytest.raises(ProgramError, match="150 mA"):
        pattern_to_points((Pulse(0.0, 0.160, 300e-6, 0.0, 0.160, 300e-6, 1),))
    with pytest.raises(ProgramError, match="10 us"):
        pattern_to_points((Pulse(0.0, 0.010, 5e-6, 0.0, 0.010, 5e-6, 1),))
    with pytest.raises(ProgramError, match="sine"):
        pattern_to_points((Pulse(0.0, 0.010, 200e-6, 0.0, 0.010, 200e-6, 3),))
