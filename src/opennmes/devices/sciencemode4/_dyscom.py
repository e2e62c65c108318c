"""I24 measurement device, ScienceMode4 "dyscom" layer (commands 100-115), sans I/O: a decoder.

Sources: Hasomed ScienceMode4 C library (``smpt_definitions_data_types.h`` command numbers
100-115; ``smpt_dl_packet_client.c`` ``extract_dl_*``: every acknowledgement starts with the
result byte, DlStopAck carries a 64-bit time, DlSendLiveData is channel count, time offset and
per-channel samples, DlGetAck is result, get type and a type-specific part) and the independent
client ``science_mode_4`` 0.0.23 (``dyscom/``: sample = 32-bit big-endian float, signal type,
electrode status; DlInitAck = result, 26 ADS129x registers, 60-character measurement file id,
init state, output rate code; battery part little-endian ``<BBbiI``; strings of 128 bytes).

Frames are those of :mod:`opennmes.devices.sciencemode4.protocol`. :func:`decode` turns a frame
into a typed message and raises :class:`~opennmes.errors.ProtocolError` for anything it cannot
read (wrong length, unknown code, too many channels): never another exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from opennmes.devices.sciencemode4 import _protocol as p
from opennmes.errors import RemoteProtocolError

__all__ = ["DlCommand", "SignalType", "SAMPLE_RATES", "MAX_CHANNELS", "Sample", "DlInitAck",
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
class DlInitAck:
    result: int
    registers: bytes
    """The 26 ADS129x registers as the device set them."""
    measurement_file_id: str
    init_state: int
    rate_code: int

    @property
    def sample_rate(self) -> int:
        """Samples per second."""
        return SAMPLE_RATES[self.rate_code]


@dataclass(frozen=True)
class DlStart:
    pass


@dataclass(frozen=True)
class DlStartAck:
    result: int


@dataclass(frozen=True)
class DlStop:
    pass


@dataclass(frozen=True)
class DlStopAck:
    result: int
    time: int | None = None
    """The 64-bit time the C library reads after the result (``None`` if absent)."""


@dataclass(frozen=True)
class DlSendLiveData:
    time_offset: int
    """Sample time of this frame, in the device's ticks since the start."""
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class DlGet:
    get_type: int
    rest: bytes = b""


@dataclass(frozen=True)
class DlGetAck:
    """result, get type and the decoded part: battery ``(energy flags, %, temperature degC,
    current, voltage)``, operation mode, number of measurements, device id or firmware
    version; other types keep their raw bytes in ``rest``."""

    result: int
    get_type: int
    value: object = None
    rest: bytes = b""


@dataclass(frozen=True)
class DlPowerModule:
    module: int
    power: int


@dataclass(frozen=True)
class DlPowerModuleAck:
    result: int
    module: int
    power: int


@dataclass(frozen=True)
class DlSendFile:
    block_number: int
    data: bytes


@dataclass(frozen=True)
class DlSys:
    sys_type: int
    file_name: str


@dataclass(frozen=True)
class DlSysAck:
    result: int
    sys_type: int
    state: int
    file_name: str


@dataclass(frozen=True)
class DlRaw:
    """A dyscom command decoded only as far as its number (DlInit's configuration, DlSendMMI,
    DlSendFileAck): ``data`` unparsed."""

    command: int
    data: bytes


Message = (DlInitAck | DlStart | DlStartAck | DlStop | DlStopAck | DlSendLiveData | DlGet
           | DlGetAck | DlPowerModule | DlPowerModuleAck | DlSendFile | DlSys | DlSysAck | DlRaw)


def _len(d: bytes, n: int, name: str) -> None:
    if len(d) != n:
        raise RemoteProtocolError(f"{name} carries {n} data bytes, got {len(d)}")


def _text(raw: bytes, name: str) -> str:
    try:
        return raw.split(b"\0", 1)[0].decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"{name} is not ASCII text: {raw[:16].hex(' ')}") from None


def _live(d: bytes) -> DlSendLiveData:
    if len(d) < 5:
        raise RemoteProtocolError(f"DlSendLiveData carries at least 5 bytes, got {len(d)}")
    n = d[0]
    if n > MAX_CHANNELS:
        raise RemoteProtocolError(f"DlSendLiveData with {n} channels (at most {MAX_CHANNELS})")
    _len(d, 5 + 6 * n, f"DlSendLiveData with {n} channels")
    samples = tuple(Sample(struct.unpack_from(">f", d, 5 + 6 * k)[0], d[9 + 6 * k],
                           d[10 + 6 * k]) for k in range(n))
    return DlSendLiveData(int.from_bytes(d[1:5], "big"), samples)


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
    return DlRaw(c, d)  # DlInit, DlSendMMI, DlSendFileAck


def decode(frame: p.Frame) -> Message | p.Message:
    """Typed message of a frame: dyscom commands (100-115) here, the others by
    :func:`opennmes.devices.sciencemode4.protocol.decode`; ProtocolError if unreadable."""
    if 100 <= frame.command <= 115:
        return _dyscom(frame.command, frame.data)
    return p.decode(frame)
