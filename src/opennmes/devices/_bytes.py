"""Byte helpers shared by the Hasomed ScienceMode protocols: stuffing and checksums.

Both ScienceMode2 and ScienceMode4 frame their packets with a start byte ``0xF0`` and a stop
byte ``0x0F`` and escape every occurrence of ``0xF0``, ``0x0F`` and ``0x81`` inside a frame as
``0x81, byte ^ 0x55`` (Hasomed, *ScienceMode2 - Description and Protocol* v1.24, §2.2; the same
rule in the ScienceMode4 C library ``smpt_packet_internal.c``).
"""

from __future__ import annotations

from opennmes.errors import ProtocolError

__all__ = ["START", "STOP", "STUFF", "STUFF_KEY", "stuff", "unstuff", "crc8", "crc16_xmodem"]

START = 0xF0
STOP = 0x0F
STUFF = 0x81
STUFF_KEY = 0x55
_SPECIAL = frozenset((START, STOP, STUFF))


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


def unstuff(data: bytes) -> bytes:
    """Inverse of :func:`stuff`; raises :class:`ProtocolError` on a dangling or bad escape."""
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == STUFF:
            nxt = next(it, None)
            if nxt is None:
                raise ProtocolError("frame ends inside an escape sequence (0x81 without a byte)")
            v = nxt ^ STUFF_KEY
            if v not in _SPECIAL:
                raise ProtocolError(
                    f"escape 0x81 0x{nxt:02X} decodes to 0x{v:02X}, which never needs escaping"
                )
            out.append(v)
        elif b in (START, STOP):
            raise ProtocolError(f"unescaped 0x{b:02X} inside a frame")
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
    """CRC-16/XMODEM, polynomial 0x1021, init 0, no reflection (ScienceMode4)."""
    c = 0
    for b in data:
        c = ((c << 8) & 0xFFFF) ^ _T16[((c >> 8) ^ b) & 0xFF]
    return c
