"""Byte helpers shared by the Hasomed ScienceMode protocols: stuffing and checksums.

Both ScienceMode2 and ScienceMode4 frame their packets with a start byte ``0xF0`` and a stop
byte ``0x0F`` and escape every occurrence of ``0xF0``, ``0x0F`` and ``0x81`` inside a frame as
``0x81, byte ^ 0x55`` (Hasomed, *ScienceMode2 - Description and Protocol* v1.24, §2.2; the same
rule in the ScienceMode4 C library ``smpt_packet_internal.c``).
"""

from __future__ import annotations

import binascii
import re

from opennmes.errors import RemoteProtocolError

__all__ = ["START", "STOP", "STUFF", "STUFF_KEY", "stuff", "unstuff", "crc8", "crc16_xmodem",
           "crc16_xmodem_table", "FRAME_RE", "FrameSplitter"]

START = 0xF0
STOP = 0x0F
STUFF = 0x81
STUFF_KEY = 0x55
_SPECIAL = frozenset((START, STOP, STUFF))

FRAME_RE = re.compile(rb"\xF0(?:\x81[\x00-\xFF]|[^\xF0\x0F\x81])*?(?:\x0F|(?=\xF0))", re.DOTALL)
"""A start byte, escaped or ordinary bytes, then the stop byte (or the next start byte, which
marks an incomplete frame). Matching in C keeps the decoders fast."""


def stuff(data: bytes) -> bytes:
    """Escape 0xF0, 0x0F and 0x81 as ``0x81, b ^ 0x55`` (the key 0x55 itself is not escaped)."""
    out = bytearray()
    for b in data:
        if b in _SPECIAL:
            out.append(STUFF)
            out.append(b ^ STUFF_KEY)
        else:
            out.append(b)
    return bytes(out)


def unstuff(data: bytes, *, strict: bool = True) -> bytes:
    """Inverse of :func:`stuff`; raises :class:`ProtocolError` on a dangling escape, and when
    ``strict`` on an escape of a byte that never needs one (``strict=False``: the byte after
    0x81 is XOR-ed with 0x55 whatever it is)."""
    if STUFF not in data:
        if START in data or STOP in data:
            raise RemoteProtocolError("unescaped 0xF0 or 0x0F inside a frame")
        return bytes(data)
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == STUFF:
            nxt = next(it, None)
            if nxt is None:
                raise RemoteProtocolError(
                    "frame ends inside an escape sequence (0x81 without a byte)")
            v = nxt ^ STUFF_KEY
            if strict and v not in _SPECIAL:
                raise RemoteProtocolError(
                    f"escape 0x81 0x{nxt:02X} decodes to 0x{v:02X}, which never needs escaping"
                )
            out.append(v)
        elif b in (START, STOP):
            raise RemoteProtocolError(f"unescaped 0x{b:02X} inside a frame")
        else:
            out.append(b)
    return bytes(out)


def _table8() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        table.append(c)
    return table


def _table16() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
        table.append(c)
    return table


_T8 = _table8()
_T16 = _table16()


def crc8(data: bytes) -> int:
    """CRC-8, polynomial x^8+x^2+x+1 (0x07), init 0, no reflection, no final XOR (ScienceMode2)."""
    c = 0
    for b in data:
        c = _T8[c ^ b]
    return c


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM, polynomial 0x1021, init 0, no reflection (ScienceMode4).

    ``binascii.crc_hqx`` computes exactly this CRC in C; the table version is kept as the
    written-out definition (and is checked against it in the tests).
    """
    return binascii.crc_hqx(data, 0)


def crc16_xmodem_table(data: bytes) -> int:
    """Table-driven CRC-16/XMODEM (reference implementation of :func:`crc16_xmodem`)."""
    c = 0
    for b in data:
        c = ((c << 8) & 0xFFFF) ^ _T16[((c >> 8) ^ b) & 0xFF]
    return c


class FrameSplitter:
    """Cuts a byte stream into raw frames (0xF0 ... 0x0F); shared by both decoders.

    ``take`` returns the next raw frame, None when more bytes are needed, and raises
    ProtocolError (after skipping the bad bytes) for bytes outside frames, a frame cut by a
    new start byte, or a frame longer than ``max_len`` bytes.
    """

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos > 65536:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def pending(self) -> int:
        return len(self._buf) - self._pos

    def take(self) -> bytes | None:
        buf, pos = self._buf, self._pos
        start = buf.find(START, pos)
        if start < 0:
            n = len(buf) - pos
            self._buf, self._pos = bytearray(), 0
            if n:
                raise RemoteProtocolError(f"{n} bytes outside any frame dropped")
            return None
        if start > pos:
            self._pos = start
            raise RemoteProtocolError(f"{start - pos} bytes before a start byte dropped")
        m = FRAME_RE.match(buf, pos)
        if m is None:
            if len(buf) - pos > self.max_len:
                self._pos = pos + 1
                raise RemoteProtocolError(
                    f"no stop byte within {self.max_len} bytes: frame dropped")
            return None
        end = m.end()
        self._pos = end
        if buf[end - 1] != STOP:  # stopped by the look-ahead: a new start byte
            raise RemoteProtocolError("start byte inside a frame: incomplete frame dropped")
        if end - pos > self.max_len:
            raise RemoteProtocolError(f"frame of {end - pos} bytes exceeds {self.max_len}: dropped")
        return bytes(buf[pos:end])
