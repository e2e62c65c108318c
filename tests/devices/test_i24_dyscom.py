"""I24 dyscom decoder (ScienceMode4 commands 100-115): payloads read as the independent client
science_mode_4 0.0.23 reads them, and fuzzing: 10^5 random and mutated frames give typed
messages or ProtocolError, never another exception."""

from __future__ import annotations

import random
import struct

import pytest

from opennmes.devices.sciencemode4 import _dyscom as dl
from opennmes.devices.sciencemode4 import protocol as p
from opennmes.errors import ProtocolError

sm4_dyscom = pytest.importorskip("science_mode_4.dyscom")


def _live_payload(time_offset: int, samples: list[tuple[float, int, int]]) -> bytes:
    out = bytes((len(samples),)) + time_offset.to_bytes(4, "big")
    for v, kind, status in samples:
        out += struct.pack(">f", v) + bytes((kind, status))
    return out


def _frame(command: int, data: bytes, pn: int = 7) -> p.Frame:
    return p.decode_frame(p.encode_frame(pn, command, data))


def test_live_data_as_the_independent_client_reads_it() -> None:
    data = _live_payload(123456, [(1.5e-4, 3, 0), (-2.25e-3, 9, 2), (0.0, 2, 6)])
    msg = dl.decode(_frame(106, data))
    assert isinstance(msg, dl.DlSendLiveData) and msg.time_offset == 123456
    theirs = sm4_dyscom.PacketDyscomSendLiveData(data)
    assert theirs.time_offset == msg.time_offset and theirs.number_of_channels == 3
    for ours, their in zip(msg.samples, theirs.samples, strict=True):
        assert ours.value == pytest.approx(their.value, rel=1e-7)
        assert ours.signal_type == int(their.signal_type)
    assert [s.contact_lost for s in msg.samples] == [False, True, True]
    assert msg.samples[1].signal_type == dl.SignalType.EMG_2


def test_init_get_power_and_sys_acknowledgements() -> None:
    regs = bytes(range(26))
    init = bytes((0,)) + regs + b"meas_0001".ljust(60, b"\0") + bytes((1, 8))
    msg = dl.decode(_frame(101, init))
    assert isinstance(msg, dl.DlInitAck) and msg.sample_rate == 250
    assert msg.registers == regs and msg.measurement_file_id == "meas_0001"
    theirs = sm4_dyscom.PacketDyscomInitAck(init)
    assert theirs.measurement_file_id == "meas_0001" and int(theirs.frequency_out) == 8
    battery = bytes((0, 0)) + struct.pack("<BBbiI", 2, 87, 31, -120, 3900)
    got = dl.decode(_frame(110, battery))
    their_bat = sm4_dyscom.PacketDyscomGetAckBatteryStatus(battery)
    assert isinstance(got, dl.DlGetAck) and got.value == (2, 87, 31, -120, 3900)
    assert (their_bat.percentage, their_bat.temperature, their_bat.current,
            their_bat.voltage) == (87, 31, -120, 3900)
    ident = dl.decode(_frame(110, bytes((0, 5)) + b"I24-00017".ljust(128, b"\0")))
    assert isinstance(ident, dl.DlGetAck) and ident.value == "I24-00017"
    assert dl.decode(_frame(112, bytes((0, 3, 1)))) == dl.DlPowerModuleAck(0, 3, 1)
    assert dl.decode(_frame(105, bytes(1) + (42).to_bytes(8, "big"))) == dl.DlStopAck(0, 42)
    assert dl.decode(_frame(105, b"\x07")) == dl.DlStopAck(7)
    sys_ack = bytes((0, 1, 1)) + b"meas_0001".ljust(128, b"\0")
    assert dl.decode(_frame(115, sys_ack)) == dl.DlSysAck(0, 1, 1, "meas_0001")
    # commands outside 100-115 go to the stimulation protocol
    assert dl.decode(_frame(int(p.Command.ML_STOP_ACK), b"\x00")) == p.MlStopAck(0)


@pytest.mark.parametrize(("command", "data", "match"), [
    (106, _live_payload(0, [(0.0, 3, 0)] * 9), "9 channels"),
    (106, _live_payload(0, [(0.0, 3, 0)] * 2)[:-1], "carries 17"),
    (101, bytes(89)[:-1] + b"\x09", "rate code 9"),
    (110, b"\x00\x09", "get type 9"),
    (110, bytes((0, 5)) + b"\xff" * 128, "not ASCII"),
    (105, bytes(4), "1 or 9"),
])
def test_bad_payloads_are_protocol_errors(command: int, data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        dl.decode(_frame(command, data))


def _corpus(rng: random.Random) -> list[tuple[int, bytes]]:
    """Valid dyscom payloads of every command 100-115."""
    live = [_live_payload(rng.getrandbits(32), [(rng.uniform(-1, 1), rng.randrange(13),
                                                  rng.randrange(8)) for _ in range(n)])
            for n in range(9)]
    return [(106, x) for x in live] + [
        (100, bytes(rng.getrandbits(8) for _ in range(400))),
        (100, dl.DlInit.live((3, 9, 2), rng.choice(list(dl.SAMPLE_RATES.values()))).payload()),
        (101, bytes(27) + b"id".ljust(60, b"\0") + bytes((1, 4))),
        (102, b""), (103, b"\x00"), (104, b""), (105, bytes(9)),
        (107, (3).to_bytes(4, "big") + (4).to_bytes(2, "big") + b"abcd"),
        (108, bytes(300)), (109, b"\x05"),
        (110, bytes((0, 0)) + struct.pack("<BBbiI", 1, 50, 20, 5, 4000)),
        (110, bytes((0, 2, 0, 3))), (110, bytes((0, 3, 1))), (110, bytes((0, 6)) + bytes(128)),
        (110, bytes((0, 7)) + bytes(40)),
        (111, bytes((3, 1))), (112, bytes((0, 3, 1))), (113, bytes(10)),
        (114, b"f".ljust(128, b"\0") + b"\x01"), (115, bytes(3) + bytes(128)),
    ]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.getrandbits(8)
        elif op == 1 and b:
            del b[rng.randrange(len(b)):]
        elif op == 2:
            b[rng.randrange(len(b) + 1):0] = bytes(rng.getrandbits(8)
                                                   for _ in range(rng.randint(1, 12)))
        elif op == 3 and b:
            b[0] = rng.choice((0, 1, 8, 9, 200, 255)) if rng.random() < 0.5 else b[0] ^ 0x10
        elif b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def test_fuzz_10_to_the_5_frames_give_messages_or_protocol_errors() -> None:
    """50 000 random byte streams (rich in F0/0F/81) through the frame decoder and 50 000
    mutations of valid dyscom payloads, half sent as intact frames (so the payload decoder
    sees them), half as mutated raw bytes (so the frame decoder does): every outcome is a
    message or a ProtocolError."""
    rng = random.Random(20261205)
    corpus = _corpus(rng)
    special = (0xF0, 0x0F, 0x81, 0x55, 0x00, 0xFF)
    outcomes = {"message": 0, "protocol error": 0}
    other: list[str] = []

    def run(stream: bytes) -> None:
        dec = p.FrameDecoder()
        dec.feed(stream)
        for _ in range(len(stream) + 2):
            try:
                frame = dec.next_frame()
                if frame is None:
                    return
                dl.decode(frame)
                outcomes["message"] += 1
            except ProtocolError:
                outcomes["protocol error"] += 1
            except Exception as exc:  # the property under test
                other.append(f"{type(exc).__name__}: {exc} for {stream[:40].hex()}")

    for _ in range(50_000):
        n = rng.randrange(0, 160)
        run(bytes(rng.choice(special) if rng.random() < 0.3 else rng.getrandbits(8)
                  for _ in range(n)))
    for i in range(50_000):
        cmd, data = corpus[i % len(corpus)]
        if i % 2:
            cmd = cmd if rng.random() < 0.8 else rng.randrange(100, 116)
            run(p.encode_frame(rng.randrange(64), cmd, _mutate(rng, data)))
        else:
            run(_mutate(rng, p.encode_frame(rng.randrange(64), cmd, data)))
    assert other == [], other[:5]
    # both kinds of outcome are well represented, so the payload decoder was exercised
    assert outcomes["message"] > 5_000 and outcomes["protocol error"] > 5_000, outcomes
