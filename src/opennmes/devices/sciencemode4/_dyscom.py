"""I24 measurement device, ScienceMode4 "dyscom" layer (commands 100-115), sans I/O: a decoder.

Sources: Hasomed ScienceMode4 C library (``smpt_definitions_data_types.h`` command numbers
100-115; ``smpt_dl_packet_client.c`` ``extract_dl_*``: every acknowledgement starts with the
result byte, DlStopAck carries a 64-bit time, DlSendLiveData is channel count, time offset and
per-channel samples, DlGetAck is result, get type and a type-specific part) and the independent
client ``science_mode_4`` 0.0.23 (``dyscom/``: sample = 32-bit big-endian float, signal type,
electrode status; DlInitAck = result, 26 ADS129x registers, 60-character measurement file id,
init state, output rate code; battery part little-endian ``<BBbiI``; strings of 128 bytes).

DlInit (361 bytes, ``DyscomInitParams.get_data`` of science_mode_4): 26 ADS129x registers, start
and system time (11 bytes each), proband name and investigator (129 characters each), proband
number (37), number of signal types (16 bits), duration (32 bits, s), 8 signal types, a zero
byte, sync signal, filter and the init flags (bit 0 live data). Multi-byte integers are
big-endian except the battery part.

Frames are those of :mod:`opennmes.devices.sciencemode4.protocol`. :func:`decode` turns a frame
into a typed message and raises :class:`~opennmes.errors.ProtocolError` for anything it cannot
read (wrong length, unknown code, too many channels): never another exception. :func:`encode`
frames a typed message (the I24 driver and emulator speak through these two).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from opennmes.devices.sciencemode4 import _protocol as p
from opennmes.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["DlCommand", "SignalType", "SAMPLE_RATES", "MAX_CHANNELS", "Sample", "DlInit",
           "DlInitAck", "GetType", "OperationMode", "PowerModule", "InitState", "rate_code",
           "output_rate", "config1_for", "encode", "LIVE_DATA_FLAG", "live_fields",
           "DlStart", "DlStartAck", "DlStop", "DlStopAck", "DlSendLiveData", "DlGet",
           "DlGetAck", "DlPowerModule", "DlPowerModuleAck", "DlSendFile", "DlSys", "DlSysAck",
           "DlRaw", "decode"]

MAX_CHANNELS = 8
"""Samples per DlSendLiveData frame at most (science_mode_4 DyscomInitParams: 8 signal types)."""
_STRING = 128  # SMPT_DL_MAX_STRING_LENGTH as science_mode_4 reads it
_FILE_ID = 60  # Smpt_Length_File_Name


class DlCommand(IntEnum):
    """Dyscom command numbers (enum Smpt_Cmd, 100-115)."""

    INIT = 100
    INIT_ACK = 101
    START = 102
    START_ACK = 103
    STOP = 104
    STOP_ACK = 105
    SEND_LIVE_DATA = 106
    SEND_FILE = 107
    SEND_MMI = 108
    GET = 109
    GET_ACK = 110
    POWER_MODULE = 111
    POWER_MODULE_ACK = 112
    SEND_FILE_ACK = 113
    SYS = 114
    SYS_ACK = 115


class SignalType(IntEnum):
    """Signal type of a live sample (science_mode_4 DyscomSignalType)."""

    UNUSED = 0
    UNKNOWN = 1
    BI = 2
    EMG_1 = 3
    OP_VOLTAGE = 4
    TEST_SIGNAL = 5
    GROUND = 6
    TEMPERATURE = 7
    INTERNAL_SC = 8
    EMG_2 = 9
    TIME = 10
    PUSHBUTTON = 11
    BREATHING = 12


SAMPLE_RATES = {1: 32000, 2: 16000, 3: 8000, 4: 4000, 5: 2000, 6: 1000, 7: 500, 8: 250}
"""Output rate code of DlInitAck -> samples per second (science_mode_4 DyscomFrequencyOut)."""
_INIT_LEN = 361
_CONFIG1 = 8  # index of the ADS129x CONFIG1 register in the 26-byte map (science_mode_4 Ads129x)
LIVE_DATA_FLAG = 1 << 0
"""DlInit flag: send live data (DyscomInitFlag.ENABLE_LIVE_DATA_MODE)."""


class GetType(IntEnum):
    """What a DlGet asks for (DyscomGetType)."""

    BATTERY = 0
    FILESYSTEM_STATUS = 1
    LIST_OF_MEASUREMENT_META_INFO = 2
    OPERATION_MODE = 3
    FILE_BY_NAME = 4
    DEVICE_ID = 5
    FIRMWARE_VERSION = 6
    FILE_INFO = 7


class OperationMode(IntEnum):
    """Operation mode of DlGetAck (DyscomGetOperationModeType)."""

    UNDEFINED = 0
    IDLE = 1
    LIVE_MEASURING_PRE = 2
    LIVE_MEASURING = 3
    RECORD_PRE = 4
    RECORD = 5
    DATATRANSFER_PRE = 6
    DATATRANSFER = 7


class PowerModule(IntEnum):
    """Module of DlPowerModule (DyscomPowerModuleType)."""

    UNDEFINED = 0
    BLUETOOTH = 1
    MEMORY_CARD = 2
    MEASUREMENT = 3
    RESEARCH = 4


class InitState(IntEnum):
    """Init state of DlInitAck (DyscomInitState)."""

    UNUSED = 0
    SUCCESS = 1
    ERROR_STORAGE_INIT = 2
    ERROR_STORAGE_WRITE = 3
    ERROR_STORAGE_FULL = 4
    ERROR_ADS129X_REGISTER = 6


def rate_code(sample_rate: int) -> int:
    """Output rate code of ``sample_rate`` samples/s; ProtocolError if it has none."""
    for code, r in SAMPLE_RATES.items():
        if r == sample_rate:
            return code
    raise LocalProtocolError(f"sample rate {sample_rate} samples/s: the I24 outputs "
                             f"{sorted(SAMPLE_RATES.values())} samples/s")


def config1_for(sample_rate: int) -> int:
    """ADS129x CONFIG1 byte for ``sample_rate``: high-resolution mode (bit 7) with data-rate
    bits DR = log2(32000 / rate) from 32 000 down to 500 samples/s, low-power mode with DR = 6
    for 250 (science_mode_4 Ads129xOutputDataRate: HR 32 k ... 500, LP half of each)."""
    rate_code(sample_rate)
    if sample_rate == 250:
        return 6
    return 0x80 | (32000 // sample_rate).bit_length() - 1


def output_rate(registers: bytes, filter_type: int) -> int:
    """Samples/s an I24 outputs for a DlInit: a predefined filter fixes it (1 and 3: 1000,
    2: 4000, as science_mode_4's DyscomFilterType notes), else CONFIG1 sets it (HR mode
    32 000 >> DR, LP mode half). ProtocolError for DR 7 or below 250 samples/s."""
    if filter_type in (1, 3):
        return 1000
    if filter_type == 2:
        return 4000
    c1 = registers[_CONFIG1]
    dr = c1 & 0x07
    if dr == 7:
        raise RemoteProtocolError("CONFIG1 data rate code 7 is reserved (ADS129x)")
    rate = (32000 if c1 & 0x80 else 16000) >> dr
    if rate < 250:
        raise RemoteProtocolError(f"CONFIG1 0x{c1:02X} gives {rate} samples/s; the I24 outputs "
                                  "250 to 32000")
    return rate


def _pad(text: str, n: int, name: str) -> bytes:
    if not text.isascii() or len(text) >= n:
        raise LocalProtocolError(f"{name} {text!r}: at most {n - 1} ASCII characters")
    return text.encode("ascii").ljust(n, b"\0")


@dataclass(frozen=True)
class Sample:
    """One channel of a live frame: value (the device's unit, V for EMG), signal type, and the
    electrode status bits (bit 1 positive, bit 2 negative electrode off)."""

    value: float
    signal_type: int
    status: int

    @property
    def contact_lost(self) -> bool:
        return bool(self.status & 0b110)


@dataclass(frozen=True)
class DlInit:
    """Start-up of a measurement: ADS129x registers (CONFIG1 sets the rate), the signal type
    of each live channel in order, filter and flags (:data:`LIVE_DATA_FLAG`); the text and
    time fields are kept as given (times: 11 bytes each, as science_mode_4 writes them)."""

    COMMAND = 100
    registers: bytes
    signal_types: tuple[int, ...]
    filter_type: int = 0
    flags: int = LIVE_DATA_FLAG
    sync_signal: bool = False
    duration_s: int = 0
    start_time: bytes = bytes(11)
    system_time: bytes = bytes(11)
    proband_name: str = ""
    investigator: str = ""
    proband_number: str = ""

    @classmethod
    def live(cls, signal_types: tuple[int, ...], sample_rate: int) -> DlInit:
        """A live-data measurement of ``signal_types`` at ``sample_rate`` samples/s."""
        regs = bytearray(26)
        regs[_CONFIG1] = config1_for(sample_rate)
        return cls(bytes(regs), tuple(signal_types))

    @property
    def sample_rate(self) -> int:
        """Samples/s this configuration asks for (:func:`output_rate`)."""
        return output_rate(self.registers, self.filter_type)

    def payload(self) -> bytes:
        n = len(self.signal_types)
        if not 1 <= n <= MAX_CHANNELS or len(self.registers) != 26:
            raise LocalProtocolError(f"DlInit with {n} signal types (1 to {MAX_CHANNELS}) and "
                                     f"{len(self.registers)} registers (26)")
        return (self.registers + self.start_time + self.system_time
                + _pad(self.proband_name, 129, "proband name")
                + _pad(self.investigator, 129, "investigator")
                + _pad(self.proband_number, 37, "proband number")
                + n.to_bytes(2, "big") + self.duration_s.to_bytes(4, "big")
                + bytes(self.signal_types) + bytes(MAX_CHANNELS - n)
                + bytes((0, int(self.sync_signal), self.filter_type, self.flags)))


@dataclass(frozen=True)
class DlInitAck:
    COMMAND = 101
    result: int
    registers: bytes = bytes(26)
    """The 26 ADS129x registers as the device set them."""
    measurement_file_id: str = ""
    init_state: int = 1
    rate_code: int = 4

    @property
    def sample_rate(self) -> int:
        """Samples per second."""
        return SAMPLE_RATES[self.rate_code]

    def payload(self) -> bytes:
        return (bytes((self.result,)) + self.registers
                + _pad(self.measurement_file_id, _FILE_ID, "measurement file id")
                + bytes((self.init_state, self.rate_code)))


@dataclass(frozen=True)
class DlStart:
    COMMAND = 102

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True)
class DlStartAck:
    COMMAND = 103
    result: int

    def payload(self) -> bytes:
        return bytes((self.result,))


@dataclass(frozen=True)
class DlStop:
    COMMAND = 104

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True)
class DlStopAck:
    COMMAND = 105
    result: int
    time: int | None = None
    """The 64-bit time the C library reads after the result (``None`` if absent)."""

    def payload(self) -> bytes:
        tail = b"" if self.time is None else self.time.to_bytes(8, "big")
        return bytes((self.result,)) + tail


@dataclass(frozen=True)
class DlSendLiveData:
    COMMAND = 106
    time_offset: int
    """Sample time of this frame, in the device's ticks since the start."""
    samples: tuple[Sample, ...]

    def payload(self) -> bytes:
        out = bytes((len(self.samples),)) + self.time_offset.to_bytes(4, "big")
        for x in self.samples:
            out += struct.pack(">fBB", x.value, x.signal_type, x.status)
        return out


@dataclass(frozen=True)
class DlGet:
    COMMAND = 109
    get_type: int
    rest: bytes = b""

    def payload(self) -> bytes:
        return bytes((self.get_type,)) + self.rest


@dataclass(frozen=True)
class DlGetAck:
    """result, get type and the decoded part: battery ``(energy flags, %, temperature degC,
    current, voltage)``, operation mode, number of measurements, device id or firmware
    version; other types keep their raw bytes in ``rest``."""

    COMMAND = 110
    result: int
    get_type: int
    value: object = None
    rest: bytes = b""

    def payload(self) -> bytes:
        head = bytes((self.result, self.get_type))
        v: Any = self.value
        if v is None:
            return head + self.rest
        if self.get_type == GetType.BATTERY:
            return head + struct.pack("<BBbiI", *v)
        if self.get_type == GetType.LIST_OF_MEASUREMENT_META_INFO:
            return head + int(v).to_bytes(2, "big")
        if self.get_type == GetType.OPERATION_MODE:
            return head + bytes((int(v),))
        if self.get_type in (GetType.DEVICE_ID, GetType.FIRMWARE_VERSION):
            return head + _pad(str(v), _STRING, "DlGetAck text")
        raise LocalProtocolError(f"DlGetAck of get type {self.get_type} carries raw bytes only")


@dataclass(frozen=True)
class DlPowerModule:
    COMMAND = 111
    module: int
    power: int

    def payload(self) -> bytes:
        return bytes((self.module, self.power))


@dataclass(frozen=True)
class DlPowerModuleAck:
    COMMAND = 112
    result: int
    module: int
    power: int

    def payload(self) -> bytes:
        return bytes((self.result, self.module, self.power))


@dataclass(frozen=True)
class DlSendFile:
    COMMAND = 107
    block_number: int
    data: bytes

    def payload(self) -> bytes:
        return (self.block_number.to_bytes(4, "big") + len(self.data).to_bytes(2, "big")
                + self.data)


@dataclass(frozen=True)
class DlSys:
    COMMAND = 114
    sys_type: int
    file_name: str

    def payload(self) -> bytes:
        return _pad(self.file_name, _STRING, "DlSys file name") + bytes((self.sys_type,))


@dataclass(frozen=True)
class DlSysAck:
    COMMAND = 115
    result: int
    sys_type: int
    state: int
    file_name: str

    def payload(self) -> bytes:
        return (bytes((self.result, self.sys_type, self.state))
                + _pad(self.file_name, _STRING, "DlSysAck file name"))


@dataclass(frozen=True)
class DlRaw:
    """A dyscom command decoded only as far as its number (DlSendMMI, DlSendFileAck):
    ``data`` unparsed."""

    command: int
    data: bytes

    @property
    def COMMAND(self) -> int:  # noqa: N802 (the same name as the typed messages' constant)
        return self.command

    def payload(self) -> bytes:
        return self.data


Message = (DlInit | DlInitAck | DlStart | DlStartAck | DlStop | DlStopAck | DlSendLiveData
           | DlGet | DlGetAck | DlPowerModule | DlPowerModuleAck | DlSendFile | DlSys | DlSysAck
           | DlRaw)


def encode(message: Message | p.Message, packet_number: int) -> bytes:
    """Frame a dyscom (or general-layer) message."""
    return p.encode_frame(packet_number, int(message.COMMAND), message.payload())


def _len(d: bytes, n: int, name: str) -> None:
    if len(d) != n:
        raise RemoteProtocolError(f"{name} carries {n} data bytes, got {len(d)}")


def _text(raw: bytes, name: str) -> str:
    try:
        return raw.split(b"\0", 1)[0].decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"{name} is not ASCII text: {raw[:16].hex(' ')}") from None


_LIVE = [struct.Struct(">I" + "fBB" * n) for n in range(MAX_CHANNELS + 1)]


def live_fields(d: bytes) -> tuple[int, tuple[float | int, ...]]:
    """The payload of a DlSendLiveData as ``(time offset, (value, signal type, status) per
    channel, flat)``: the fast path of a driver at high rates, as strict as :func:`decode`
    (ProtocolError for a wrong length or more than 8 channels)."""
    if len(d) < 5:
        raise RemoteProtocolError(f"DlSendLiveData carries at least 5 bytes, got {len(d)}")
    n = d[0]
    if n > MAX_CHANNELS:
        raise RemoteProtocolError(f"DlSendLiveData with {n} channels (at most {MAX_CHANNELS})")
    _len(d, 5 + 6 * n, f"DlSendLiveData with {n} channels")
    fields = _LIVE[n].unpack_from(d, 1)
    return fields[0], fields[1:]


def _live(d: bytes) -> DlSendLiveData:
    k, f = live_fields(d)
    samples = tuple(Sample(float(f[i]), int(f[i + 1]), int(f[i + 2]))
                    for i in range(0, len(f), 3))
    return DlSendLiveData(k, samples)


def _init(d: bytes) -> DlInit:
    _len(d, _INIT_LEN, "DlInit")
    n = int.from_bytes(d[343:345], "big")
    if not 1 <= n <= MAX_CHANNELS:
        raise RemoteProtocolError(f"DlInit with {n} signal types (1 to {MAX_CHANNELS})")
    types = tuple(d[349:349 + n])
    if any(t > max(SignalType) for t in types):
        raise RemoteProtocolError(f"DlInit with unknown signal type in {list(types)}")
    return DlInit(d[0:26], types, d[359], d[360], bool(d[358]),
                  int.from_bytes(d[345:349], "big"), d[26:37], d[37:48],
                  _text(d[48:177], "proband name"), _text(d[177:306], "investigator"),
                  _text(d[306:343], "proband number"))


def _get_ack(d: bytes) -> DlGetAck:
    if len(d) < 2:
        raise RemoteProtocolError(f"DlGetAck carries at least 2 bytes, got {len(d)}")
    r, kind, rest = d[0], d[1], d[2:]
    if kind == 0:  # battery
        _len(rest, 11, "DlGetAck (battery)")
        return DlGetAck(r, kind, struct.unpack("<BBbiI", rest))
    if kind == 2:  # number of measurements
        _len(rest, 2, "DlGetAck (list of measurements)")
        return DlGetAck(r, kind, int.from_bytes(rest, "big"))
    if kind == 3:  # operation mode
        _len(rest, 1, "DlGetAck (operation mode)")
        return DlGetAck(r, kind, rest[0])
    if kind in (5, 6):  # device id, firmware version
        _len(rest, _STRING, "DlGetAck (text)")
        return DlGetAck(r, kind, _text(rest, "DlGetAck text"))
    if kind in (1, 4, 7):  # file system status, file by name, file info: not read further
        return DlGetAck(r, kind, None, rest)
    raise RemoteProtocolError(f"DlGetAck of unknown get type {kind}")


def _dyscom(c: int, d: bytes) -> Message:
    if c == DlCommand.INIT_ACK:
        _len(d, 1 + 26 + _FILE_ID + 2, "DlInitAck")
        if d[-1] not in SAMPLE_RATES:
            raise RemoteProtocolError(f"DlInitAck with unknown output rate code {d[-1]}")
        return DlInitAck(d[0], d[1:27], _text(d[27:87], "measurement file id"), d[87], d[88])
    if c in (DlCommand.START, DlCommand.STOP):
        _len(d, 0, DlCommand(c).name)
        return DlStart() if c == DlCommand.START else DlStop()
    if c == DlCommand.START_ACK:
        _len(d, 1, "DlStartAck")
        return DlStartAck(d[0])
    if c == DlCommand.STOP_ACK:
        if len(d) not in (1, 9):
            raise RemoteProtocolError(f"DlStopAck carries 1 or 9 data bytes, got {len(d)}")
        return DlStopAck(d[0], int.from_bytes(d[1:], "big") if len(d) == 9 else None)
    if c == DlCommand.SEND_LIVE_DATA:
        return _live(d)
    if c == DlCommand.GET:
        if not d:
            raise RemoteProtocolError("DlGet without its get type")
        return DlGet(d[0], d[1:])
    if c == DlCommand.GET_ACK:
        return _get_ack(d)
    if c == DlCommand.POWER_MODULE:
        _len(d, 2, "DlPowerModule")
        return DlPowerModule(d[0], d[1])
    if c == DlCommand.POWER_MODULE_ACK:
        _len(d, 3, "DlPowerModuleAck")
        return DlPowerModuleAck(d[0], d[1], d[2])
    if c == DlCommand.SEND_FILE:
        if len(d) < 6:
            raise RemoteProtocolError(f"DlSendFile carries at least 6 bytes, got {len(d)}")
        n = int.from_bytes(d[4:6], "big")
        _len(d, 6 + n, f"DlSendFile of {n} bytes")
        return DlSendFile(int.from_bytes(d[0:4], "big"), d[6:])
    if c == DlCommand.SYS:
        _len(d, _STRING + 1, "DlSys")
        return DlSys(d[-1], _text(d[:_STRING], "DlSys file name"))
    if c == DlCommand.SYS_ACK:
        _len(d, 3 + _STRING, "DlSysAck")
        return DlSysAck(d[0], d[1], d[2], _text(d[3:], "DlSysAck file name"))
    if c == DlCommand.INIT:
        return _init(d)
    return DlRaw(c, d)  # DlSendMMI, DlSendFileAck


def decode(frame: p.Frame) -> Message | p.Message:
    """Typed message of a frame: dyscom commands (100-115) here, the others by
    :func:`opennmes.devices.sciencemode4.protocol.decode`; ProtocolError if unreadable."""
    if 100 <= frame.command <= 115:
        return _dyscom(frame.command, frame.data)
    return p.decode(frame)
