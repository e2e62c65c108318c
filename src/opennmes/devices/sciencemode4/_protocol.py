"""ScienceMode4 (P24) wire protocol, sans I/O: frames, general, mid- and low-level messages.

Sources: Hasomed ScienceMode4 C library (``ScienceMode/ScienceMode4_c_library``, MPL-2.0/LGPL:
``smpt_definitions_data_types.h`` command and result numbers, ``smpt_ml_packet_utils.c`` mid-level
update layout, ``smpt_ll_packet_client.c`` point and low-level layouts, ``smpt_packet_server.c``
and ``smpt_packet_client.c`` the general-layer acknowledgements, ``smpt_definitions.h`` their
fields, ``smpt_packet_general.c`` ``smpt_extract_ack``: every acknowledgement starts with the
result byte) and the worked frames of ``science_mode_4`` 0.0.23 quoted in
../shared/reference/stimulator-protocols.md §3 (its ``general/`` package reads the same layouts).

Frame: ``F0 | 81 LENhi^55 81 LENlo^55 | 81 CRChi^55 81 CRClo^55 | stuffed payload | 0F`` with
LEN = stuffed payload length + 10 (= the whole frame) and CRC = CRC-16/XMODEM of the stuffed
payload. The payload starts with the big-endian word ``packet number (6 bits) << 10 | command``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from opennmes.devices._bytes import (
    START,
    STOP,
    STUFF,
    STUFF_KEY,
    FrameSplitter,
    crc16_xmodem,
    stuff,
    unstuff,
)
from opennmes.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Command", "Result", "Frame", "FrameDecoder", "encode_frame", "decode_frame", "Point",
    "Message", "LlInit", "LlInitAck", "LlChannelConfig", "LlChannelConfigAck", "LlStop",
    "LlStopAck", "MlInit", "MlInitAck", "MlChannelConfig", "MlUpdate", "MlUpdateAck", "MlStop",
    "MlStopAck", "MlGetCurrentData", "MlGetCurrentDataAck", "UnknownCommand", "encode",
    "decode", "period_code", "RESULT_TEXT", "MAX_POINTS", "CHANNEL_STATE_TEXT",
    "GetVersionMain", "GetVersionMainAck", "GetDeviceId", "GetDeviceIdAck", "GetBatteryStatus",
    "GetBatteryStatusAck", "SetPower", "SetPowerAck", "Reset", "ResetAck", "GetVersionStim",
    "GetVersionStimAck", "GetStimStatus", "GetStimStatusAck", "GetMainStatus",
    "GetMainStatusAck", "GeneralError", "GetExtendedVersion", "GetExtendedVersionAck",
    "StimStatus", "HighVoltage", "REQUEST_ACK", "ack_for", "DEVICE_ID_LENGTH",
]

MAX_POINTS = 16
_MAX_FRAME = 1200  # Smpt_Length_Max_Packet_Size


class Command(IntEnum):
    """Command numbers (``smpt_definitions_data_types.h``, enum Smpt_Cmd)."""

    LL_INIT = 0
    LL_INIT_ACK = 1
    LL_CHANNEL_CONFIG = 2
    LL_CHANNEL_CONFIG_ACK = 3
    LL_STOP = 4
    LL_STOP_ACK = 5
    ML_INIT = 30
    ML_INIT_ACK = 31
    ML_UPDATE = 32
    ML_UPDATE_ACK = 33
    ML_STOP = 34
    ML_STOP_ACK = 35
    ML_GET_CURRENT_DATA = 36
    ML_GET_CURRENT_DATA_ACK = 37
    GET_VERSION_MAIN = 50
    GET_VERSION_MAIN_ACK = 51
    GET_DEVICE_ID = 52
    GET_DEVICE_ID_ACK = 53
    GET_BATTERY_STATUS = 54
    GET_BATTERY_STATUS_ACK = 55
    SET_POWER = 56
    SET_POWER_ACK = 57
    RESET = 58
    RESET_ACK = 59
    GET_VERSION_STIM = 60
    GET_VERSION_STIM_ACK = 61
    GET_STIM_STATUS = 62
    GET_STIM_STATUS_ACK = 63
    GET_MAIN_STATUS = 64
    GET_MAIN_STATUS_ACK = 65
    GENERAL_ERROR = 66
    UNKNOWN_CMD = 67
    GET_EXTENDED_VERSION = 68
    GET_EXTENDED_VERSION_ACK = 69


class Result(IntEnum):
    """Result codes (enum Smpt_Result), the subset an emulated P24 uses."""

    SUCCESSFUL = 0
    TRANSFER_ERROR = 1
    PARAMETER_ERROR = 2
    PROTOCOL_ERROR = 3
    NOT_INITIALIZED = 7
    ELECTRODE_ERROR = 10
    INVALID_CMD = 11
    BUSY = 21


class StimStatus(IntEnum):
    """Stimulation status of GetStimStatusAck (enum Smpt_Stim_Status)."""

    UNINITIALIZED = 0
    LL_INITIALIZED = 1
    ML_INITIALIZED = 2
    ML_RUNNING = 3


class HighVoltage(IntEnum):
    """High-voltage level of LlInit and GetStimStatusAck (enum Smpt_High_Voltage)."""

    DEFAULT = 0
    OFF = 1
    V30 = 2
    V60 = 3
    V90 = 4
    V120 = 5
    V150 = 6


DEVICE_ID_LENGTH = 10  # Smpt_Length_Device_Id

RESULT_TEXT = {0: "successful", 1: "transfer error", 2: "parameter error", 3: "protocol error",
               4: "internal timeout", 5: "EMG timeout", 6: "EMG register error",
               7: "level not initialised", 8: "high-voltage error", 9: "demux timeout",
               10: "electrode error", 11: "invalid command", 12: "demux parameter error",
               13: "demux not initialised", 14: "demux transfer error",
               15: "demux unknown acknowledgement", 16: "pulse timeout",
               17: "fuel gauge error", 18: "live signal error",
               19: "file transmission timeout", 20: "file not found", 21: "busy",
               22: "file error", 23: "flash erase error", 24: "flash write error",
               25: "unknown controller error", 26: "firmware too large",
               27: "fuel gauge not programmed", 28: "pulse low-current error"}
"""Smpt_Result (``smpt_definitions_data_types.h``) in words."""
CHANNEL_STATE_TEXT = {0: "ok", 1: "electrode error", 2: "timeout (period not achievable)",
                      3: "low current"}


@dataclass(frozen=True)
class Frame:
    """One decoded frame: packet number (0-63), command (0-1023), unstuffed data."""

    packet_number: int
    command: int
    data: bytes = b""


def encode_frame(packet_number: int, command: int, data: bytes = b"") -> bytes:
    """Encode one ScienceMode4 frame."""
    if not 0 <= packet_number <= 63 or not 0 <= command <= 1023:
        raise LocalProtocolError(f"packet number {packet_number} (0-63) or command {command} "
                                 "(0-1023) out of range")
    word = (packet_number << 10) | command
    body = stuff(bytes(((word >> 8) & 0xFF, word & 0xFF)) + data)
    length = len(body) + 10
    crc = crc16_xmodem(body)
    head = bytes((START, STUFF, (length >> 8) ^ STUFF_KEY, STUFF, (length & 0xFF) ^ STUFF_KEY,
                  STUFF, (crc >> 8) ^ STUFF_KEY, STUFF, (crc & 0xFF) ^ STUFF_KEY))
    return head + body + bytes((STOP,))


def decode_frame(raw: bytes) -> Frame:
    """Decode one complete frame (0xF0 ... 0x0F)."""
    if len(raw) < 12 or raw[0] != START or raw[-1] != STOP:
        raise RemoteProtocolError(f"not a ScienceMode4 frame: {raw[:16].hex(' ')}")
    if any(raw[i] != STUFF for i in (1, 3, 5, 7)):
        raise RemoteProtocolError("length and checksum bytes must each be escaped with 0x81")
    length = ((raw[2] ^ STUFF_KEY) << 8) | (raw[4] ^ STUFF_KEY)
    crc = ((raw[6] ^ STUFF_KEY) << 8) | (raw[8] ^ STUFF_KEY)
    if length != len(raw):
        raise RemoteProtocolError(f"length field says {length} bytes, frame has {len(raw)}")
    body = raw[9:-1]
    if crc16_xmodem(body) != crc:
        raise RemoteProtocolError(f"CRC-16 mismatch: frame says 0x{crc:04X}, "
                                  f"body gives 0x{crc16_xmodem(body):04X}")
    payload = unstuff(body)
    if len(payload) < 2:
        raise RemoteProtocolError("frame body lacks the packet-number/command word")
    word = (payload[0] << 8) | payload[1]
    return Frame(word >> 10, word & 0x3FF, payload[2:])


class FrameDecoder:
    """Incremental decoder; bad frames raise :class:`ProtocolError` and are skipped."""

    def __init__(self) -> None:
        self._split = FrameSplitter(_MAX_FRAME)
        self.last_bad = b""

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._split.feed(data)

    @property
    def pending(self) -> int:
        return self._split.pending

    def next_frame(self) -> Frame | None:
        """The next complete frame, ``None`` if more bytes are needed."""
        raw = self._split.take()
        if raw is None:
            return None
        self.last_bad = raw
        frame = decode_frame(raw)
        self.last_bad = b""
        return frame


# --------------------------------------------------------------------------------- payloads
@dataclass(frozen=True)
class Point:
    """One point of a pulse shape: duration [us] 0-4095 and current [mA] -150..150 in 0.5 mA.

    Stored as integers: ``current_code = 2 * current_mA + 300`` (10 bits) as in
    ``smpt_insert_ll_point``; ``interpolation`` 0-3.
    """

    duration_us: int
    current_code: int
    interpolation: int = 0

    @classmethod
    def from_ma(cls, duration_us: int, current_ma: float) -> Point:
        code = 2.0 * current_ma + 300.0
        if abs(code - round(code)) > 1e-6:
            raise LocalProtocolError(f"current {current_ma} mA is not a multiple of 0.5 mA")
        return cls(int(duration_us), int(round(code)))

    @property
    def current_ma(self) -> float:
        return (self.current_code - 300) / 2.0

    def encode(self) -> bytes:
        if not 0 <= self.duration_us <= 4095 or not 0 <= self.current_code <= 600:
            raise LocalProtocolError(f"point ({self.duration_us} us, {self.current_ma} mA) outside "
                                     "0-4095 us / -150..150 mA (ScienceMode4 point limits)")
        t, c = self.duration_us, self.current_code
        return bytes(((t >> 4) & 0xFF, ((t << 4) & 0xF0) | ((c >> 6) & 0x0F), (c << 2) & 0xFC,
                      (self.interpolation << 5) & 0x60))

    @classmethod
    def decode(cls, b: bytes) -> Point:
        t = (b[0] << 4) | (b[1] >> 4)
        c = ((b[1] & 0x0F) << 6) | (b[2] >> 2)
        if c > 600:
            raise RemoteProtocolError(f"point current code {c} beyond 150 mA")
        return cls(t, c, (b[3] >> 5) & 0x03)


def period_code(period: float) -> tuple[int, bool]:
    """Code and accuracy flag of a mid-level period [s].

    0.5 ms steps up to 16383.5 ms (flag clear, the C library's default), else 0.25 ms steps up to
    8191.75 ms (flag set) (``smpt_ml_definitions_data_types.h``); raises ProtocolError if the
    period is not exact.
    """
    ms = period * 1e3
    h = ms * 2
    if abs(h - round(h)) < 1e-6 and 1 <= round(h) <= 32767:
        return int(round(h)), False
    q = ms * 4
    if abs(q - round(q)) < 1e-6 and 1 <= round(q) <= 32767:
        return int(round(q)), True
    raise LocalProtocolError(f"period {ms:.6g} ms is not a multiple of 0.25 ms (<= 8191.75 ms) or "
                             "0.5 ms (<= 16383.5 ms), the mid-level period resolution")


def _u8(v: int) -> int:
    return v & 0xFF


@dataclass(frozen=True)
class Message:
    COMMAND = 0

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True)
class _Ack(Message):
    result: int = 0

    def payload(self) -> bytes:
        return bytes((_u8(self.result),))


@dataclass(frozen=True)
class LlInit(Message):
    """Low-level init: high-voltage level 0-6 and measurement type 0-3."""

    COMMAND = Command.LL_INIT
    high_voltage: int = 0
    measurement: int = 0

    def payload(self) -> bytes:
        return bytes((((self.measurement & 7) << 4) | ((self.high_voltage & 7) << 1),))


@dataclass(frozen=True)
class LlInitAck(_Ack):
    COMMAND = Command.LL_INIT_ACK


@dataclass(frozen=True)
class LlChannelConfig(Message):
    """Low-level single pulse: ``channel`` 0-3 on ``connector`` 0 (yellow) / 1 (green)."""

    COMMAND = Command.LL_CHANNEL_CONFIG
    enable: bool = True
    channel: int = 0
    connector: int = 0
    points: tuple[Point, ...] = ()

    def payload(self) -> bytes:
        n = max(len(self.points) - 1, 0)
        out = bytearray(((int(self.enable) << 7) | ((self.channel & 3) << 5)
                         | ((self.connector & 1) << 4) | (n & 0x0F),))
        if self.enable:
            for p in self.points:
                out += p.encode()
        return bytes(out)


@dataclass(frozen=True)
class LlChannelConfigAck(Message):
    COMMAND = Command.LL_CHANNEL_CONFIG_ACK
    result: int = 0
    channel: int = 0
    connector: int = 0

    def payload(self) -> bytes:
        return bytes((_u8(self.result), ((self.connector & 0xF) << 4) | (self.channel & 0xF), 0))


@dataclass(frozen=True)
class LlStop(Message):
    COMMAND = Command.LL_STOP


@dataclass(frozen=True)
class LlStopAck(_Ack):
    COMMAND = Command.LL_STOP_ACK


@dataclass(frozen=True)
class MlInit(Message):
    COMMAND = Command.ML_INIT
    stop_all_on_error: bool = True

    def payload(self) -> bytes:
        return bytes((int(self.stop_all_on_error),))


@dataclass(frozen=True)
class MlInitAck(_Ack):
    COMMAND = Command.ML_INIT_ACK


@dataclass(frozen=True)
class MlChannelConfig:
    """One enabled channel of a mid-level update: ramp 0-15 pulses, period code, 1-16 points."""

    ramp: int
    period_code: int
    accurate: bool
    points: tuple[Point, ...]

    @property
    def period(self) -> float:
        """Period in seconds."""
        return self.period_code / (4000.0 if self.accurate else 2000.0)


@dataclass(frozen=True)
class MlUpdate(Message):
    """Mid-level update: configs of the enabled channels (index 0-7); others are disabled."""

    COMMAND = Command.ML_UPDATE
    channels: tuple[tuple[int, MlChannelConfig], ...] = ()

    def payload(self) -> bytes:
        mask = 0
        for ch, _ in self.channels:
            mask |= 1 << ch
        out = bytearray((mask,))
        for _, cfg in sorted(self.channels, key=lambda x: x[0]):
            if not 1 <= len(cfg.points) <= MAX_POINTS or not 0 <= cfg.ramp <= 15:
                raise LocalProtocolError(
                    f"{len(cfg.points)} points (1-16) / ramp {cfg.ramp} (0-15)")
            word = (cfg.period_code << 1) & 0xFFFE | int(cfg.accurate)
            out += bytes((((len(cfg.points) - 1) << 4) | cfg.ramp, word >> 8, word & 0xFF))
            for p in cfg.points:
                out += p.encode()
        return bytes(out)


@dataclass(frozen=True)
class MlUpdateAck(_Ack):
    COMMAND = Command.ML_UPDATE_ACK


@dataclass(frozen=True)
class MlStop(Message):
    COMMAND = Command.ML_STOP


@dataclass(frozen=True)
class MlStopAck(_Ack):
    COMMAND = Command.ML_STOP_ACK


@dataclass(frozen=True)
class MlGetCurrentData(Message):
    """Keep-alive query; selection 4 asks for every channel's state (``Smpt_Ml_Data``)."""

    COMMAND = Command.ML_GET_CURRENT_DATA
    selection: int = 4

    def payload(self) -> bytes:
        return bytes((self.selection,))


@dataclass(frozen=True)
class MlGetCurrentDataAck(Message):
    """Selection-4 answer: per-channel running bits and 4-bit channel states (0 ok, 1 electrode
    error, 2 timeout, 3 low current)."""

    COMMAND = Command.ML_GET_CURRENT_DATA_ACK
    result: int = 0
    running: tuple[bool, ...] = (False,) * 8
    states: tuple[int, ...] = (0,) * 8

    def payload(self) -> bytes:
        mask = sum(1 << i for i, r in enumerate(self.running) if r)
        s = self.states
        return bytes((_u8(self.result), 4, mask)) + bytes(
            (s[i] & 0x0F) | ((s[i + 1] & 0x0F) << 4) for i in range(0, 8, 2))


# --------------------------------------------------------------------------------- general layer
# Requests carry no data (SetPower: 8 bytes); every acknowledgement starts with the result byte
# (``smpt_packet_server.c`` insert_*_ack, ``smpt_packet_client.c`` extract_*_ack).
@dataclass(frozen=True)
class GetVersionMain(Message):
    COMMAND = Command.GET_VERSION_MAIN


@dataclass(frozen=True)
class _VersionAck(Message):
    """result, firmware major.minor.revision, ScienceMode major.minor.revision (7 bytes,
    ``insert_get_version_ack``)."""

    result: int = 0
    firmware: tuple[int, int, int] = (0, 0, 0)
    sciencemode: tuple[int, int, int] = (0, 0, 0)

    def payload(self) -> bytes:
        return bytes((_u8(self.result), *self.firmware, *self.sciencemode))

    @classmethod
    def _from(cls, d: bytes) -> _VersionAck:
        _need(d, 7, cls.__name__)
        return cls(d[0], (d[1], d[2], d[3]), (d[4], d[5], d[6]))


@dataclass(frozen=True)
class GetVersionMainAck(_VersionAck):
    COMMAND = Command.GET_VERSION_MAIN_ACK


@dataclass(frozen=True)
class GetDeviceId(Message):
    COMMAND = Command.GET_DEVICE_ID


@dataclass(frozen=True)
class GetDeviceIdAck(Message):
    """result and the device id: 10 characters, NUL-padded (``insert_get_device_id_ack``,
    Smpt_Length_Device_Id)."""

    COMMAND = Command.GET_DEVICE_ID_ACK
    result: int = 0
    device_id: str = ""

    def payload(self) -> bytes:
        raw = self.device_id.encode("ascii")
        if len(raw) > DEVICE_ID_LENGTH:
            raise LocalProtocolError(f"device id {self.device_id!r} is longer than "
                                     f"{DEVICE_ID_LENGTH} characters")
        return bytes((_u8(self.result),)) + raw.ljust(DEVICE_ID_LENGTH, b"\0")

    @classmethod
    def _from(cls, d: bytes) -> GetDeviceIdAck:
        _need(d, 1 + DEVICE_ID_LENGTH, cls.__name__)
        return cls(d[0], d[1:].split(b"\0", 1)[0].decode("ascii", "replace"))


@dataclass(frozen=True)
class GetBatteryStatus(Message):
    COMMAND = Command.GET_BATTERY_STATUS


@dataclass(frozen=True)
class GetBatteryStatusAck(Message):
    """result, battery level [%] 0-100, battery voltage [mV] big-endian 16 bits
    (``insert_get_battery_status_ack``; units from Smpt_get_battery_status_ack)."""

    COMMAND = Command.GET_BATTERY_STATUS_ACK
    result: int = 0
    level_percent: int = 0
    voltage_mv: int = 0

    def payload(self) -> bytes:
        v = self.voltage_mv & 0xFFFF
        return bytes((_u8(self.result), _u8(self.level_percent), v >> 8, v & 0xFF))

    @classmethod
    def _from(cls, d: bytes) -> GetBatteryStatusAck:
        _need(d, 4, cls.__name__)
        return cls(d[0], d[1], (d[2] << 8) | d[3])


@dataclass(frozen=True)
class SetPower(Message):
    """Switch the 64 power modules (an I24 command): one bit per module, 8 bytes, module
    ``8 b + i`` in bit ``i`` of byte ``b`` (``insert_set_power``)."""

    COMMAND = Command.SET_POWER
    modules: tuple[bool, ...] = (False,) * 64

    def payload(self) -> bytes:
        m = tuple(self.modules) + (False,) * (64 - len(self.modules))
        return bytes(sum(int(m[8 * b + i]) << i for i in range(8)) for b in range(8))

    @classmethod
    def _from(cls, d: bytes) -> SetPower:
        _need(d, 8, cls.__name__)
        return cls(tuple(bool(d[b] >> i & 1) for b in range(8) for i in range(8)))


@dataclass(frozen=True)
class SetPowerAck(_Ack):
    COMMAND = Command.SET_POWER_ACK


@dataclass(frozen=True)
class Reset(Message):
    COMMAND = Command.RESET


@dataclass(frozen=True)
class ResetAck(_Ack):
    COMMAND = Command.RESET_ACK


@dataclass(frozen=True)
class GetVersionStim(Message):
    COMMAND = Command.GET_VERSION_STIM


@dataclass(frozen=True)
class GetVersionStimAck(_VersionAck):
    COMMAND = Command.GET_VERSION_STIM_ACK


@dataclass(frozen=True)
class GetStimStatus(Message):
    COMMAND = Command.GET_STIM_STATUS


@dataclass(frozen=True)
class GetStimStatusAck(Message):
    """result, :class:`StimStatus`, :class:`HighVoltage` (``insert_get_stim_status_ack``)."""

    COMMAND = Command.GET_STIM_STATUS_ACK
    result: int = 0
    stim_status: int = 0
    high_voltage: int = 0

    def payload(self) -> bytes:
        return bytes((_u8(self.result), _u8(self.stim_status), _u8(self.high_voltage)))

    @classmethod
    def _from(cls, d: bytes) -> GetStimStatusAck:
        _need(d, 3, cls.__name__)
        return cls(d[0], d[1], d[2])


@dataclass(frozen=True)
class GetMainStatus(Message):
    COMMAND = Command.GET_MAIN_STATUS


@dataclass(frozen=True)
class GetMainStatusAck(Message):
    """result and Smpt_Main_Status (0 uninitialised, 1 measurement initialised, 2 running)."""

    COMMAND = Command.GET_MAIN_STATUS_ACK
    result: int = 0
    main_status: int = 0

    def payload(self) -> bytes:
        return bytes((_u8(self.result), _u8(self.main_status)))

    @classmethod
    def _from(cls, d: bytes) -> GetMainStatusAck:
        _need(d, 2, cls.__name__)
        return cls(d[0], d[1])


@dataclass(frozen=True)
class GeneralError(_Ack):
    """The device could not process a frame; carries a result code."""

    COMMAND = Command.GENERAL_ERROR


@dataclass(frozen=True)
class UnknownCommand(_Ack):
    """"The stimulator sends this cmd if the received cmd can not be processed, because the
    command number is invalid" (Smpt_Cmd_Unknown_Cmd); like every acknowledgement it carries
    the result byte (``smpt_extract_ack``; science_mode_4 ``PacketGeneralUnknownCommand``). The
    packet number echoes the request's."""

    COMMAND = Command.UNKNOWN_CMD
    result: int = int(Result.INVALID_CMD)


@dataclass(frozen=True)
class GetExtendedVersion(Message):
    COMMAND = Command.GET_EXTENDED_VERSION


@dataclass(frozen=True)
class GetExtendedVersionAck(Message):
    """result, firmware and ScienceMode versions (3 + 3 bytes), the firmware hash (32 bits,
    big-endian), hash type (0 none, 1 git, 2 ELF MD5, 3 ELF SHA-256) and hash state (1 valid):
    13 bytes (``insert_get_extended_version_ack``)."""

    COMMAND = Command.GET_EXTENDED_VERSION_ACK
    result: int = 0
    firmware: tuple[int, int, int] = (0, 0, 0)
    sciencemode: tuple[int, int, int] = (0, 0, 0)
    fw_hash: int = 0
    hash_type: int = 0
    hash_valid: bool = False

    def payload(self) -> bytes:
        return (bytes((_u8(self.result), *self.firmware, *self.sciencemode))
                + (self.fw_hash & 0xFFFFFFFF).to_bytes(4, "big")
                + bytes((_u8(self.hash_type), int(self.hash_valid))))

    @classmethod
    def _from(cls, d: bytes) -> GetExtendedVersionAck:
        _need(d, 13, cls.__name__)
        return cls(d[0], (d[1], d[2], d[3]), (d[4], d[5], d[6]),
                   int.from_bytes(d[7:11], "big"), d[11], bool(d[12]))


_ACKS: dict[int, type[_Ack]] = {
    Command.LL_INIT_ACK: LlInitAck, Command.LL_STOP_ACK: LlStopAck,
    Command.ML_INIT_ACK: MlInitAck, Command.ML_UPDATE_ACK: MlUpdateAck,
    Command.ML_STOP_ACK: MlStopAck, Command.SET_POWER_ACK: SetPowerAck,
    Command.RESET_ACK: ResetAck, Command.GENERAL_ERROR: GeneralError,
    Command.UNKNOWN_CMD: UnknownCommand,
}
_EMPTY: dict[int, type[Message]] = {
    Command.LL_STOP: LlStop, Command.ML_STOP: MlStop,
    Command.GET_VERSION_MAIN: GetVersionMain, Command.GET_DEVICE_ID: GetDeviceId,
    Command.GET_BATTERY_STATUS: GetBatteryStatus, Command.RESET: Reset,
    Command.GET_VERSION_STIM: GetVersionStim, Command.GET_STIM_STATUS: GetStimStatus,
    Command.GET_MAIN_STATUS: GetMainStatus, Command.GET_EXTENDED_VERSION: GetExtendedVersion,
}
_GENERAL: dict[int, Any] = {
    Command.GET_VERSION_MAIN_ACK: GetVersionMainAck._from,
    Command.GET_VERSION_STIM_ACK: GetVersionStimAck._from,
    Command.GET_DEVICE_ID_ACK: GetDeviceIdAck._from,
    Command.GET_BATTERY_STATUS_ACK: GetBatteryStatusAck._from,
    Command.SET_POWER: SetPower._from,
    Command.GET_STIM_STATUS_ACK: GetStimStatusAck._from,
    Command.GET_MAIN_STATUS_ACK: GetMainStatusAck._from,
    Command.GET_EXTENDED_VERSION_ACK: GetExtendedVersionAck._from,
}

REQUEST_ACK: dict[int, type[Message]] = {
    Command.LL_INIT: LlInitAck, Command.LL_CHANNEL_CONFIG: LlChannelConfigAck,
    Command.LL_STOP: LlStopAck, Command.ML_INIT: MlInitAck, Command.ML_UPDATE: MlUpdateAck,
    Command.ML_STOP: MlStopAck, Command.ML_GET_CURRENT_DATA: MlGetCurrentDataAck,
    Command.GET_VERSION_MAIN: GetVersionMainAck, Command.GET_DEVICE_ID: GetDeviceIdAck,
    Command.GET_BATTERY_STATUS: GetBatteryStatusAck, Command.SET_POWER: SetPowerAck,
    Command.RESET: ResetAck, Command.GET_VERSION_STIM: GetVersionStimAck,
    Command.GET_STIM_STATUS: GetStimStatusAck, Command.GET_MAIN_STATUS: GetMainStatusAck,
    Command.GET_EXTENDED_VERSION: GetExtendedVersionAck,
}
"""Request command -> the acknowledgement class that answers it (command + 1)."""


def ack_for(command: int, result: int) -> Message | None:
    """The full-length acknowledgement of request ``command`` carrying ``result`` (its other
    fields zero), ``None`` if ``command`` is not a request this protocol knows."""
    cls = REQUEST_ACK.get(command)
    return None if cls is None else cls(result=result)  # type: ignore[call-arg]


def encode(message: Message, packet_number: int) -> bytes:
    """Frame a typed message."""
    return encode_frame(packet_number, int(message.COMMAND), message.payload())


def _need(d: bytes, n: int, name: str) -> None:
    if len(d) != n:
        raise RemoteProtocolError(f"{name} carries {n} data bytes, got {len(d)}")


def _points(d: bytes, i: int, n: int) -> tuple[tuple[Point, ...], int]:
    if len(d) < i + 4 * n:
        raise RemoteProtocolError(f"frame too short for {n} points")
    return tuple(Point.decode(d[i + 4 * k: i + 4 * k + 4]) for k in range(n)), i + 4 * n


def decode(frame: Frame) -> Message:
    """Typed message of a frame; unknown commands and bad payloads raise ProtocolError."""
    c, d = frame.command, frame.data
    if c in _ACKS:
        _need(d, 1, _ACKS[c].__name__)
        return _ACKS[c](result=d[0])
    if c in _EMPTY:
        _need(d, 0, _EMPTY[c].__name__)
        return _EMPTY[c]()
    if c in _GENERAL:
        return _GENERAL[c](d)
    if c == Command.LL_INIT:
        _need(d, 1, "LlInit")
        return LlInit(high_voltage=(d[0] >> 1) & 7, measurement=(d[0] >> 4) & 7)
    if c == Command.LL_CHANNEL_CONFIG:
        if not d:
            raise RemoteProtocolError("LlChannelConfig without data")
        enable = bool(d[0] & 0x80)
        pts: tuple[Point, ...] = ()
        if enable:
            pts, i = _points(d, 1, (d[0] & 0x0F) + 1)
            if i != len(d):
                raise RemoteProtocolError("LlChannelConfig has trailing bytes")
        return LlChannelConfig(enable, (d[0] >> 5) & 3, (d[0] >> 4) & 1, pts)
    if c == Command.LL_CHANNEL_CONFIG_ACK:
        if len(d) < 3:
            raise RemoteProtocolError("LlChannelConfigAck carries at least 3 bytes")
        return LlChannelConfigAck(d[0], d[1] & 0x0F, d[1] >> 4)
    if c == Command.ML_INIT:
        _need(d, 1, "MlInit")
        return MlInit(bool(d[0]))
    if c == Command.ML_UPDATE:
        if not d:
            raise RemoteProtocolError("MlUpdate without data")
        mask, i = d[0], 1
        chans = []
        for ch in range(8):
            if mask & (1 << ch):
                if len(d) < i + 3:
                    raise RemoteProtocolError("MlUpdate too short for its enabled channels")
                head, word = d[i], (d[i + 1] << 8) | d[i + 2]
                pts, i = _points(d, i + 3, (head >> 4) + 1)
                chans.append((ch, MlChannelConfig(head & 0x0F, word >> 1, bool(word & 1), pts)))
        if i != len(d):
            raise RemoteProtocolError("MlUpdate has trailing bytes")
        return MlUpdate(tuple(chans))
    if c == Command.ML_GET_CURRENT_DATA:
        _need(d, 1, "MlGetCurrentData")
        return MlGetCurrentData(d[0])
    if c == Command.ML_GET_CURRENT_DATA_ACK:
        if len(d) != 7 or d[1] != 4:
            raise RemoteProtocolError("only selection-4 MlGetCurrentDataAck (7 bytes) is supported")
        states = []
        for b in d[3:7]:
            states += [b & 0x0F, b >> 4]
        return MlGetCurrentDataAck(d[0], tuple(bool(d[2] >> i & 1) for i in range(8)),
                                   tuple(states))
    raise RemoteProtocolError(f"unknown ScienceMode4 command {c}")
