"""P24 general layer (ScienceMode4 commands 50-69) and the result byte of every acknowledgement.

Frames: requests byte-exact against the independent encoder of ``science_mode_4`` 0.0.23
(``Protocol.packet_to_bytes``); acknowledgements carry the field values of the Hasomed C
library's own tests (``ScienceMode_Library_Test/src/general/test_get_*_ack.c``, ``fill_*``) in
the layouts of ``smpt_packet_server.c``, and ``science_mode_4``'s parsers (``general/``) read
them back to those values. Then the emulator over a pseudo-terminal, and the driver.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import serial

from opennmes.devices import open_stimulator
from opennmes.devices._events import DeviceFault
from opennmes.devices.sciencemode4 import P24Emulator
from opennmes.devices.sciencemode4 import protocol as p
from opennmes.errors import DeviceError, DeviceTimeoutError, ProtocolError
from opennmes.stim import Program

from .conftest import stream

sm4_protocol = pytest.importorskip("science_mode_4.protocol.protocol")
sm4_general = pytest.importorskip("science_mode_4.general")

# request frames: science_mode_4 0.0.23 encodes 52, 58, 62 and 68 to exactly these bytes (checked
# below); it has no class for 50, 54, 60 and 64, which follow the same rule (no data)
REQUESTS = [
    (p.GetVersionMain(), 1, "F0 81 55 81 59 81 8F 81 80 04 32 0F"),
    (p.GetDeviceId(), 2, "F0 81 55 81 59 81 AA 81 2B 08 34 0F"),
    (p.GetBatteryStatus(), 3, "F0 81 55 81 59 81 46 81 AD 0C 36 0F"),
    (p.Reset(), 4, "F0 81 55 81 59 81 C1 81 3F 10 3A 0F"),
    (p.GetVersionStim(), 5, "F0 81 55 81 59 81 6D 81 3D 14 3C 0F"),
    (p.GetStimStatus(), 6, "F0 81 55 81 59 81 08 81 12 18 3E 0F"),
    (p.GetMainStatus(), 7, "F0 81 55 81 59 81 5B 81 8F 1C 40 0F"),
    (p.GetExtendedVersion(), 8, "F0 81 55 81 59 81 5B 81 F3 20 44 0F"),
    (p.SetPower((True, False, True) + (False,) * 61), 9,
     "F0 81 55 81 41 81 54 81 2E 24 38 05 00 00 00 00 00 00 00 0F"),
]
# acknowledgements with the C library's test values (fill_get_device_id_ack: packet 43,
# "123456789"; fill_get_battery_status_ack: 12, Busy, 100 %, 65000 mV; fill_get_stim_status_ack:
# 33, Busy, mid level running, 30 V; fill_get_version_ack / fill_get_extended_version_ack: 16,
# parameter error, 1.2.3 / 4.5.6, hash 12345, git, valid; fill_get_main_status_ack: 34, electrode
# error, running)
ACKS = [
    (p.GetDeviceIdAck(0, "123456789"), 43,
     "F0 81 55 81 42 81 71 81 49 AC 35 00 31 32 33 34 35 36 37 38 39 00 0F"),
    (p.GetBatteryStatusAck(21, 100, 65000), 12,
     "F0 81 55 81 45 81 E8 81 11 30 37 15 64 FD E8 0F"),
    (p.GetStimStatusAck(21, 3, 2), 33, "F0 81 55 81 5A 81 DB 81 06 84 3F 15 03 02 0F"),
    (p.GetVersionMainAck(2, (1, 2, 3), (4, 5, 6)), 16,
     "F0 81 55 81 46 81 3D 81 CA 40 33 02 01 02 03 04 05 06 0F"),
    (p.GetExtendedVersionAck(2, (1, 2, 3), (4, 5, 6), 12345, 1, True), 16,
     "F0 81 55 81 4C 81 6B 81 51 40 45 02 01 02 03 04 05 06 00 00 30 39 01 01 0F"),
    (p.GetMainStatusAck(10, 2), 34, "F0 81 55 81 5B 81 E8 81 BA 88 41 0A 02 0F"),
    (p.ResetAck(0), 5, "F0 81 55 81 58 81 13 81 99 14 3B 00 0F"),
    (p.UnknownCommand(11), 9, "F0 81 55 81 58 81 E6 81 A7 24 43 0B 0F"),
    (p.GeneralError(1), 10, "F0 81 55 81 58 81 01 81 BD 28 42 01 0F"),
]


@pytest.mark.parametrize(("msg", "pn", "hexbytes"), REQUESTS + ACKS)
def test_general_frames_encode_and_decode_byte_exact(msg: p.Message, pn: int,
                                                     hexbytes: str) -> None:
    raw = bytes.fromhex(hexbytes)
    assert p.encode(msg, pn) == raw
    frame = p.decode_frame(raw)
    assert frame.packet_number == pn and frame.command == int(msg.COMMAND)
    assert p.decode(frame) == msg


@pytest.mark.parametrize(("cls_name", "pn"), [("PacketGeneralGetDeviceId", 2),
                                              ("PacketGeneralReset", 4),
                                              ("PacketGeneralGetStimStatus", 6),
                                              ("PacketGeneralGetExtendedVersion", 8)])
def test_requests_equal_the_independent_encoder(cls_name: str, pn: int) -> None:
    packet = getattr(sm4_general, cls_name)()
    packet.number = pn
    ours = next(h for m, n, h in REQUESTS if n == pn)
    assert sm4_protocol.Protocol.packet_to_bytes(packet) == bytes.fromhex(ours)


def _sm4_read(raw: bytes) -> tuple[int, int, bytes]:
    """science_mode_4's own frame search and extraction."""
    P = sm4_protocol.Protocol
    span = P.find_packet_in_buffer(raw)
    assert span is not None, "science_mode_4 does not find the frame"
    return P.extract_packet_data(raw[span[0]: span[1] + 1])


def test_the_independent_client_reads_the_acknowledgements_to_the_published_values() -> None:
    g = sm4_general
    raw = {type(m).__name__: bytes.fromhex(h) for m, _, h in ACKS}
    cmd, pn, data = _sm4_read(raw["GetDeviceIdAck"])
    assert (cmd, pn) == (53, 43) and g.PacketGeneralGetDeviceIdAck(data).device_id.rstrip(
        "\0") == "123456789"
    _, _, data = _sm4_read(raw["GetStimStatusAck"])
    st = g.PacketGeneralGetStimStatusAck(data)
    assert int(st.stim_status) == 3 and not st.successful and not st.high_voltage_on
    _, _, data = _sm4_read(raw["GetExtendedVersionAck"])
    ver = g.PacketGeneralGetExtendedVersionAck(data)
    assert (ver.firmware_version, ver.science_mode_version) == ("1.2.3", "4.5.6")
    assert int(ver.firmware_hash, 16) == 12345 and int(ver.hash_type) == 1 and ver.is_valid_hash
    cmd, pn, data = _sm4_read(raw["UnknownCommand"])
    assert (cmd, pn) == (67, 9) and int(g.PacketGeneralUnknownCommand(data).result_error) == 11
    assert int(g.PacketGeneralResetAck(_sm4_read(raw["ResetAck"])[2]).result_error) == 0


def test_a_result_only_frame_is_what_the_independent_client_could_not_find() -> None:
    """The old UnknownCommand (12 bytes, no data): science_mode_4 looks for the stop byte from
    the 13th byte on and never sees the frame end; with the result byte it does."""
    old = p.encode_frame(9, int(p.Command.UNKNOWN_CMD))
    assert len(old) == 12 and sm4_protocol.Protocol.find_packet_in_buffer(old) is None
    assert _sm4_read(p.encode(p.UnknownCommand(), 9)) == (67, 9, b"\x0b")


@pytest.mark.parametrize("command", sorted(p.REQUEST_ACK))
def test_every_acknowledgement_starts_with_its_result(command: int) -> None:
    ack = p.ack_for(command, int(p.Result.PARAMETER_ERROR))
    assert ack is not None and int(ack.COMMAND) == command + 1
    frame = p.decode_frame(p.encode(ack, 5))
    assert frame.data[:1] == b"\x02" and p.decode(frame) == ack
    assert p.ack_for(99, 2) is None


@pytest.mark.parametrize(("command", "data"), [
    (int(p.Command.GET_DEVICE_ID_ACK), b"\x00123"),
    (int(p.Command.GET_BATTERY_STATUS_ACK), b"\x00\x64"),
    (int(p.Command.GET_EXTENDED_VERSION_ACK), bytes(12)),
    (int(p.Command.GET_STIM_STATUS), b"\x00"),
    (int(p.Command.UNKNOWN_CMD), b""),
    (int(p.Command.SET_POWER), bytes(7)),
])
def test_wrong_lengths_are_protocol_errors(command: int, data: bytes) -> None:
    with pytest.raises(ProtocolError, match="carries"):
        p.decode(p.Frame(1, command, data))


# ---------------------------------------------------------------------------------- emulator
@pytest.fixture
def link() -> Iterator[tuple[P24Emulator, serial.Serial]]:
    with P24Emulator(device_id="P24-0042", firmware=(2, 1, 7), battery_percent=87,
                     battery_mv=3950) as emu, \
            serial.Serial(emu.port, 115200, timeout=0.02) as ser:
        yield emu, ser


def _ask(ser: serial.Serial, data: bytes) -> p.Frame:
    """Write one frame and return the single frame that answers it."""
    ser.write(data)
    dec = p.FrameDecoder()
    t_end = time.monotonic() + 5.0  # only ends a test that would otherwise hang
    while time.monotonic() < t_end:
        dec.feed(ser.read(64))
        f = dec.next_frame()
        if f is not None:
            assert dec.pending == 0, "more than one answer"
            return f
    raise AssertionError("no answer")


def test_the_emulator_answers_the_general_layer(link: tuple[P24Emulator, serial.Serial]) -> None:
    emu, ser = link

    def ask(msg: p.Message, pn: int) -> p.Message:
        f = _ask(ser, p.encode(msg, pn))
        assert f.packet_number == pn
        return p.decode(f)

    assert ask(p.GetDeviceId(), 1) == p.GetDeviceIdAck(0, "P24-0042")
    assert ask(p.GetVersionMain(), 2) == p.GetVersionMainAck(0, (2, 1, 7), (4, 0, 0))
    assert ask(p.GetVersionStim(), 3) == p.GetVersionStimAck(0, (2, 1, 7), (4, 0, 0))
    assert ask(p.GetExtendedVersion(), 4) == p.GetExtendedVersionAck(0, (2, 1, 7), (4, 0, 0))
    assert ask(p.GetBatteryStatus(), 5) == p.GetBatteryStatusAck(0, 87, 3950)
    assert ask(p.GetMainStatus(), 6) == p.GetMainStatusAck(0, 0)
    assert ask(p.GetStimStatus(), 7) == p.GetStimStatusAck(0, 0, int(p.HighVoltage.OFF))
    ask(p.LlInit(high_voltage=3), 8)
    assert ask(p.GetStimStatus(), 9) == p.GetStimStatusAck(0, 1, 3)
    ask(p.LlStop(), 10)
    ask(p.MlInit(True), 11)
    assert ask(p.GetStimStatus(), 12).stim_status == p.StimStatus.ML_INITIALIZED  # type: ignore
    pts = (p.Point.from_ma(200, 20), p.Point.from_ma(200, -20))
    ask(p.MlUpdate(((0, p.MlChannelConfig(0, 40, False, pts)),)), 13)
    assert ask(p.GetStimStatus(), 14) == p.GetStimStatusAck(0, 3, 6)
    assert not emu.output_is_zero
    assert ask(p.Reset(), 15) == p.ResetAck(0)
    assert emu.output_is_zero and emu.resets == 1 and emu.level == "none"
    assert ask(p.GetStimStatus(), 16).stim_status == 0


def test_every_valid_frame_gets_an_answer_with_a_result_byte(
        link: tuple[P24Emulator, serial.Serial]) -> None:
    """All 1024 command numbers, each in an intact frame without data: exactly one answer, with
    the request's packet number and a result byte; a request the P24 knows gets its own
    acknowledgement (result 2 when it lacks its data), any other number UnknownCommand with
    result 11 (invalid command)."""
    emu, ser = link
    known = set(p.REQUEST_ACK) - {int(p.Command.SET_POWER)}  # SetPower is an I24 command
    for cmd in range(1024):
        pn = cmd % 64
        f = _ask(ser, p.encode_frame(pn, cmd))
        assert f.packet_number == pn, cmd
        assert len(f.data) >= 1, f"command {cmd}: answer {f.command} without a result byte"
        msg = p.decode(f)
        if cmd in known:
            assert f.command == cmd + 1, cmd
            needs_data = cmd in (0, 2, 30, 32, 36)
            assert f.data[0] == (2 if needs_data else 0), (cmd, f.data[0])
        else:
            assert msg == p.UnknownCommand(int(p.Result.INVALID_CMD)), (cmd, msg)
    assert emu.bad_frames_in == 0 and emu.frames_in == 1024


def test_a_known_request_with_bad_data_gets_its_acknowledgement_with_parameter_error(
        link: tuple[P24Emulator, serial.Serial]) -> None:
    _, ser = link
    f = _ask(ser, p.encode_frame(3, int(p.Command.GET_DEVICE_ID), b"\x01"))
    assert p.decode(f) == p.GetDeviceIdAck(int(p.Result.PARAMETER_ERROR), "")
    f = _ask(ser, p.encode_frame(4, int(p.Command.ML_GET_CURRENT_DATA), b"\x04\x04"))
    assert p.decode(f) == p.MlGetCurrentDataAck(int(p.Result.PARAMETER_ERROR))


# ---------------------------------------------------------------------------------- driver
def test_the_driver_reads_identity_battery_and_status(
        link: tuple[P24Emulator, serial.Serial]) -> None:
    emu, ser = link
    ser.close()
    with open_stimulator(f"p24://{emu.port}") as stim:
        assert stim.identity is not None  # type: ignore[attr-defined]
        assert (stim.identity.device_id, stim.identity.firmware,  # type: ignore[attr-defined]
                stim.identity.sciencemode) == ("P24-0042", "2.1.7", "4.0.0")  # type: ignore
        assert stim.battery() == (87, 3.95)  # type: ignore[attr-defined]
        assert stim.stim_status() == ("uninitialized", 1)  # type: ignore[attr-defined]


def test_the_driver_stops_a_level_left_active_when_it_opens(
        link: tuple[P24Emulator, serial.Serial]) -> None:
    """Like the published clients' start-up: a mid level left running (a host that crashed)
    is stopped before anything else."""
    emu, ser = link
    pts = (p.Point.from_ma(200, 20), p.Point.from_ma(200, -20))
    _ask(ser, p.encode(p.MlInit(True), 1))
    _ask(ser, p.encode(p.MlUpdate(((2, p.MlChannelConfig(0, 40, False, pts)),)), 2))
    assert not emu.output_is_zero
    ser.close()
    with open_stimulator(f"p24://{emu.port}") as stim:
        assert emu.output_is_zero and emu.level == "none"
        assert stim.stim_status()[0] == "uninitialized"
    assert any("MlStop" in text for _, text in emu.log)


@dataclass(frozen=True)
class _Dyscom(p.Message):
    COMMAND = 104  # Smpt_Cmd_Dl_Stop: an I24 command the P24 does not know


def test_unknown_command_ends_the_request_at_once_with_its_result(
        link: tuple[P24Emulator, serial.Serial]) -> None:
    emu, ser = link
    ser.close()
    with open_stimulator(f"p24://{emu.port}") as stim:
        retried = stim.retried  # type: ignore[attr-defined]
        with pytest.raises(DeviceError, match=r"refused DlStop: UnknownCommand.*result 11 "
                                              r"\(invalid command\)") as info:
            stim.request(_Dyscom(), 105, "DlStop")  # type: ignore[attr-defined]
        assert not isinstance(info.value, DeviceTimeoutError)
        assert stim.retried == retried  # type: ignore[attr-defined]


def test_a_refused_status_query_while_streaming_is_a_fault(
        p24_program: Program, link: tuple[P24Emulator, serial.Serial]) -> None:
    """The device resets under a running program: the next MlGetCurrentDataAck (or MlUpdateAck,
    whichever the host sends first) carries result 7 (level not initialised); the session ends
    with an error naming it, a status refusal is recorded as a fatal DeviceFault with code 7,
    and output is zero."""
    emu, ser = link
    ser.close()
    faults: list[Any] = []
    with open_stimulator(f"p24://{emu.port}") as stim:
        stim.add_listener(lambda e: faults.append(e) if isinstance(e, DeviceFault) else None)
        with pytest.raises(DeviceError, match=r"result 7 \(level not initialised\)") as info:
            stream(stim, p24_program, 12, after=lambda i: emu.reset() if i == 2 else None)
    assert emu.output_is_zero and emu.resets == 1
    if "status query" in str(info.value):
        assert [(f.kind, f.code, f.fatal) for f in faults][:1] == [("wrong_mode", 7, True)]
    else:
        assert "MlUpdate" in str(info.value)
