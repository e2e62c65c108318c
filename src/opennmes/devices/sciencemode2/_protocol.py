"""ScienceMode2 (RehaStim 2) wire protocol, sans I/O: frames, messages and a stream decoder.

Source: Hasomed, *ScienceMode2 - Description and Protocol*, v1.24, 2012-12-12 (the "PDF").
A frame is ``F0 81 CRC^55 81 LEN^55 BODY 0F`` where BODY is the stuffed payload
``[packet number, command, data...]``, LEN its length and CRC its CRC-8 (PDF §2.2, §4).
Checksum and length are always sent escaped, even when they need no escaping.

Where public drivers deviate from the PDF we follow the PDF (see docs/devices/rehastim2.md):
pyScienceMode XORs packet-number and command bytes without the 0x81 prefix and also escapes 0x55
and 0x0A; this encoder escapes exactly F0/0F/81 everywhere in the body, as the PDF and the C++
driver ``aceglia/PyScienceMode2/ScienceMode2.cpp`` do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from opennmes.devices._bytes import (
    START,
    STOP,
    STUFF,
    STUFF_KEY,
    FrameSplitter,
    crc8,
    stuff,
    unstuff,
)
from opennmes.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Command", "Result", "Frame", "FrameDecoder", "encode_frame", "decode_frame",
    "Message", "Init", "InitAck", "UnknownCommand", "Watchdog", "GetStimulationMode",
    "GetStimulationModeAck", "InitChannelListMode", "InitChannelListModeAck",
    "ChannelEntry", "StartChannelListMode", "StartChannelListModeAck", "StopChannelListMode",
    "StopChannelListModeAck", "SinglePulse", "SinglePulseAck", "StimulationError",
    "encode", "decode", "t1_code", "t1_from_code", "t2_code", "t2_from_code",
    "MAX_DATA", "PROTOCOL_VERSION", "RESULT_TEXT",
]

MAX_DATA = 60
"""Most data bytes in one frame (PDF §2.2: fewer than 61)."""
PROTOCOL_VERSION = 1
_MAX_FRAME = 2 + 4 + 2 * (2 + MAX_DATA) + 1


class Command(IntEnum):
    """Command ids (PDF §3)."""

    INIT = 1
    INIT_ACK = 2
    UNKNOWN_COMMAND = 3
    WATCHDOG = 4
    GET_STIMULATION_MODE = 10
    GET_STIMULATION_MODE_ACK = 11
    INIT_CHANNEL_LIST_MODE = 30
    INIT_CHANNEL_LIST_MODE_ACK = 31
    START_CHANNEL_LIST_MODE = 32
    START_CHANNEL_LIST_MODE_ACK = 33
    STOP_CHANNEL_LIST_MODE = 34
    STOP_CHANNEL_LIST_MODE_ACK = 35
    SINGLE_PULSE = 36
    SINGLE_PULSE_ACK = 37
    STIMULATION_ERROR = 38


class Result(IntEnum):
    """Result and error codes (PDF §5.1), sent as signed bytes."""

    OK = 0
    TRANSFER = -1
    PARAMETER = -2
    WRONG_MODE = -3
    MOTOMED_CONNECTION = -4
    INCOMPATIBLE_VERSION = -5
    INVALID_TRAINER = -6
    MOTOMED_BUSY = -7
    BUSY = -8


RESULT_TEXT = {
    0: "ok", -1: "transfer error (checksum or length)", -2: "parameter error",
    -3: "wrong mode", -4: "MOTOmed connection error", -5: "incompatible protocol version",
    -6: "invalid MOTOmed trainer", -7: "MOTOmed busy", -8: "busy",
}


@dataclass(frozen=True)
class Frame:
    """One decoded frame: packet number (0-255), command id and unstuffed data bytes."""

    packet_number: int
    command: int
    data: bytes = b""


def encode_frame(packet_number: int, command: int, data: bytes = b"") -> bytes:
    """Encode one frame exactly as PDF §2.2 prescribes."""
    if not 0 <= packet_number <= 255 or not 0 <= command <= 255:
        raise LocalProtocolError(f"packet number {packet_number} / command {command} not a byte")
    if len(data) > MAX_DATA:
        raise LocalProtocolError(
            f"{len(data)} data bytes; a ScienceMode2 frame holds <= {MAX_DATA}")
    body = stuff(bytes((packet_number, command)) + data)
    return bytes((START, STUFF, crc8(body) ^ STUFF_KEY, STUFF, len(body) ^ STUFF_KEY)) + body \
        + bytes((STOP,))


def decode_frame(raw: bytes, *, strict_escapes: bool = True) -> Frame:
    """Decode one complete frame (from 0xF0 to 0x0F inclusive).

    The PDF (§2.2) says which bytes a sender must escape (0xF0, 0x0F, 0x81) and how an escape
    reads (0x81, then the byte XOR 0x55); it does not forbid escaping others. With
    ``strict_escapes`` an escape of any other byte (0x0A, 0x55, as pyScienceMode sends them) is
    a protocol error; without it the escaped byte is read as the rule says (the tolerant
    reading; see docs/devices/rehastim2.md).
    """
    if len(raw) < 8 or raw[0] != START or raw[-1] != STOP:
        raise RemoteProtocolError(f"not a ScienceMode2 frame: {raw[:16].hex(' ')}")
    if raw[1] != STUFF or raw[3] != STUFF:
        raise RemoteProtocolError("checksum and length must each be escaped with 0x81 (PDF §4)")
    crc = raw[2] ^ STUFF_KEY
    length = raw[4] ^ STUFF_KEY
    body = raw[5:-1]
    if len(body) != length:
        raise RemoteProtocolError(f"length byte says {length} body bytes, frame has {len(body)}")
    if crc8(body) != crc:
        raise RemoteProtocolError(f"CRC-8 mismatch: frame says 0x{crc:02X}, "
                                  f"body gives 0x{crc8(body):02X}")
    payload = unstuff(body, strict=strict_escapes)
    if len(payload) < 2:
        raise RemoteProtocolError("frame body lacks packet number and command")
    return Frame(payload[0], payload[1], payload[2:])


class FrameDecoder:
    """Incremental decoder: feed bytes, take frames; bad frames raise :class:`ProtocolError`.

    After an error the decoder has already skipped the bad bytes, so calling
    :meth:`next_frame` again continues with the rest of the stream.
    """

    def __init__(self, *, strict_escapes: bool = True) -> None:
        self._split = FrameSplitter(_MAX_FRAME)
        self.last_bad = b""
        self.strict_escapes = strict_escapes
        """Refuse escapes of bytes that need none (see :func:`decode_frame`)."""

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._split.feed(data)

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return self._split.pending

    def next_frame(self) -> Frame | None:
        """The next complete frame, ``None`` if more bytes are needed."""
        raw = self._split.take()
        if raw is None:
            return None
        self.last_bad = raw
        frame = decode_frame(raw, strict_escapes=self.strict_escapes)
        self.last_bad = b""
        return frame


# ---------------------------------------------------------------------------------- messages
def _s8(b: int) -> int:
    return b - 256 if b > 127 else b


def _u8(v: int) -> int:
    return v & 0xFF


@dataclass(frozen=True)
class Message:
    """Base of the typed ScienceMode2 messages."""

    COMMAND = 0

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True)
class _ResultMessage(Message):
    result: int = 0

    def payload(self) -> bytes:
        return bytes((_u8(self.result),))


@dataclass(frozen=True)
class Init(Message):
    """Device -> PC, repeated every 500 ms until acknowledged (PDF Table 7)."""

    COMMAND = Command.INIT
    version: int = PROTOCOL_VERSION

    def payload(self) -> bytes:
        return bytes((self.version,))


@dataclass(frozen=True)
class InitAck(_ResultMessage):
    """PC -> device: 0 accepted, -5 incompatible version; echoes the device's packet number."""

    COMMAND = Command.INIT_ACK


@dataclass(frozen=True)
class UnknownCommand(Message):
    """Device -> PC: the command byte could not be processed."""

    COMMAND = Command.UNKNOWN_COMMAND
    command: int = 0

    def payload(self) -> bytes:
        return bytes((self.command,))


@dataclass(frozen=True)
class Watchdog(Message):
    """PC -> device keep-alive; the device stops after 1200 ms without a valid packet."""

    COMMAND = Command.WATCHDOG


@dataclass(frozen=True)
class GetStimulationMode(Message):
    COMMAND = Command.GET_STIMULATION_MODE


@dataclass(frozen=True)
class GetStimulationModeAck(Message):
    """Result, then (if 0) mode: 0 start, 1 channel list initialised, 2 started."""

    COMMAND = Command.GET_STIMULATION_MODE_ACK
    result: int = 0
    mode: int = 0

    def payload(self) -> bytes:
        return bytes((_u8(self.result), self.mode)) if self.result == 0 else \
            bytes((_u8(self.result),))


def t1_code(t1: float) -> int:
    """Main interval code c1 for t1 = c1 * 0.5 ms + 1 ms; raises ProtocolError if not exact."""
    c = (t1 * 1e3 - 1.0) / 0.5
    if abs(c - round(c)) > 1e-6 or not 0 <= round(c) <= 2048:
        raise LocalProtocolError(f"main interval {t1 * 1e3:.4g} ms is not 1 ms + n x 0.5 ms, "
                                 "n = 0..2048 (PDF, InitChannelListMode)")
    return int(round(c))


def t1_from_code(code: int) -> float:
    """Main interval in seconds for code c1."""
    return (code * 0.5 + 1.0) * 1e-3


def t2_code(t2: float) -> int:
    """Inter-pulse interval code c2 for t2 = c2 * 0.5 ms + 1.5 ms; raises if not exact."""
    c = (t2 * 1e3 - 1.5) / 0.5
    if abs(c - round(c)) > 1e-6 or not 0 <= round(c) <= 255:
        raise LocalProtocolError(f"inter-pulse interval {t2 * 1e3:.4g} ms is not 1.5 ms + "
                                 "n x 0.5 ms, n = 0..255 (PDF, InitChannelListMode)")
    return int(round(c))


def t2_from_code(code: int) -> float:
    """Inter-pulse interval in seconds for code c2."""
    return (code * 0.5 + 1.5) * 1e-3


@dataclass(frozen=True)
class InitChannelListMode(Message):
    """PC -> device: set up continuous (t1 code > 0) or one-shot (code 0) channel-list mode.

    ``active`` and ``low_frequency`` are bitmasks (bit 0 = channel 1).
    """

    COMMAND = Command.INIT_CHANNEL_LIST_MODE
    low_frequency_factor: int = 0
    active: int = 0
    low_frequency: int = 0
    t2_code: int = 13
    t1_code: int = 0
    execution: int = 0

    def payload(self) -> bytes:
        return bytes((self.low_frequency_factor, self.active, self.low_frequency, self.t2_code,
                      (self.t1_code >> 8) & 0xFF, self.t1_code & 0xFF, self.execution))


@dataclass(frozen=True)
class InitChannelListModeAck(_ResultMessage):
    COMMAND = Command.INIT_CHANNEL_LIST_MODE_ACK


@dataclass(frozen=True)
class ChannelEntry:
    """One channel of Start/Update: mode 0 single, 1 doublet, 2 triplet; pw [us]; current [mA]."""

    mode: int
    pulse_width_us: int
    current_ma: int


@dataclass(frozen=True)
class StartChannelListMode(Message):
    """PC -> device: start or update; one entry per active channel, ascending channel order."""

    COMMAND = Command.START_CHANNEL_LIST_MODE
    entries: tuple[ChannelEntry, ...] = ()

    def payload(self) -> bytes:
        out = bytearray()
        for e in self.entries:
            out += bytes((e.mode, (e.pulse_width_us >> 8) & 0xFF, e.pulse_width_us & 0xFF,
                          e.current_ma))
        return bytes(out)


@dataclass(frozen=True)
class StartChannelListModeAck(_ResultMessage):
    COMMAND = Command.START_CHANNEL_LIST_MODE_ACK


@dataclass(frozen=True)
class StopChannelListMode(Message):
    COMMAND = Command.STOP_CHANNEL_LIST_MODE


@dataclass(frozen=True)
class StopChannelListModeAck(_ResultMessage):
    COMMAND = Command.STOP_CHANNEL_LIST_MODE_ACK


@dataclass(frozen=True)
class SinglePulse(Message):
    """PC -> device: one pulse on channel index 0-7, pulse width [us], current [mA]."""

    COMMAND = Command.SINGLE_PULSE
    channel: int = 0
    pulse_width_us: int = 0
    current_ma: int = 0

    def payload(self) -> bytes:
        return bytes((self.channel, (self.pulse_width_us >> 8) & 0xFF,
                      self.pulse_width_us & 0xFF, self.current_ma))


@dataclass(frozen=True)
class SinglePulseAck(_ResultMessage):
    COMMAND = Command.SINGLE_PULSE_ACK


@dataclass(frozen=True)
class StimulationError(Message):
    """Device -> PC: -1 emergency switch / not connected, -2 electrode error, -3 module error."""

    COMMAND = Command.STIMULATION_ERROR
    code: int = 0

    def payload(self) -> bytes:
        return bytes((_u8(self.code),))


_RESULT_ONLY: dict[int, type[_ResultMessage]] = {
    Command.INIT_ACK: InitAck,
    Command.INIT_CHANNEL_LIST_MODE_ACK: InitChannelListModeAck,
    Command.START_CHANNEL_LIST_MODE_ACK: StartChannelListModeAck,
    Command.STOP_CHANNEL_LIST_MODE_ACK: StopChannelListModeAck,
    Command.SINGLE_PULSE_ACK: SinglePulseAck,
}


def encode(message: Message, packet_number: int) -> bytes:
    """Frame a typed message."""
    return encode_frame(packet_number, int(message.COMMAND), message.payload())


def _need(frame: Frame, n: int, name: str) -> None:
    if len(frame.data) != n:
        raise RemoteProtocolError(f"{name} carries {n} data bytes, got {len(frame.data)}")


def decode(frame: Frame) -> Message:
    """Typed message of a frame; unknown commands and bad lengths raise ProtocolError."""
    c, d = frame.command, frame.data
    if c in _RESULT_ONLY:
        cls = _RESULT_ONLY[c]
        _need(frame, 1, cls.__name__)
        return cls(result=_s8(d[0]))
    if c == Command.INIT:
        _need(frame, 1, "Init")
        return Init(version=d[0])
    if c == Command.UNKNOWN_COMMAND:
        _need(frame, 1, "UnknownCommand")
        return UnknownCommand(command=d[0])
    if c in (Command.WATCHDOG, Command.GET_STIMULATION_MODE, Command.STOP_CHANNEL_LIST_MODE):
        _need(frame, 0, Command(c).name)
        return {Command.WATCHDOG: Watchdog, Command.GET_STIMULATION_MODE: GetStimulationMode,
                Command.STOP_CHANNEL_LIST_MODE: StopChannelListMode}[Command(c)]()
    if c == Command.GET_STIMULATION_MODE_ACK:
        if len(d) not in (1, 2):
            raise RemoteProtocolError(f"GetStimulationModeAck carries 1-2 bytes, got {len(d)}")
        return GetStimulationModeAck(result=_s8(d[0]), mode=d[1] if len(d) == 2 else 0)
    if c == Command.INIT_CHANNEL_LIST_MODE:
        _need(frame, 7, "InitChannelListMode")
        return InitChannelListMode(d[0], d[1], d[2], d[3], (d[4] << 8) | d[5], d[6])
    if c == Command.START_CHANNEL_LIST_MODE:
        if len(d) % 4 or not 4 <= len(d) <= 32:
            raise RemoteProtocolError(f"StartChannelListMode carries 4 bytes per channel (1-8), "
                                      f"got {len(d)}")
        return StartChannelListMode(tuple(
            ChannelEntry(d[i], (d[i + 1] << 8) | d[i + 2], d[i + 3]) for i in range(0, len(d), 4)
        ))
    if c == Command.SINGLE_PULSE:
        _need(frame, 4, "SinglePulse")
        return SinglePulse(d[0], (d[1] << 8) | d[2], d[3])
    if c == Command.STIMULATION_ERROR:
        _need(frame, 1, "StimulationError")
        return StimulationError(code=_s8(d[0]))
    raise RemoteProtocolError(f"unknown ScienceMode2 command {c}")
