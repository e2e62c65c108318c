"""Binary encoding of stream and pulse chunks.

Samples are stored as byte-shuffled arrays compressed with zlib: the bytes of every value are
regrouped by significance before compression (the idea of the HDF5 shuffle filter), which lets
zlib find the runs in exponents and in zero low-order mantissa bytes. Both codecs are lossless.
"""

from __future__ import annotations

import zlib

import numpy as np

from opennmes.errors import StoreError
from opennmes.schedule import PulseSchedule

__all__ = [
    "SIGNAL_CODEC",
    "PULSE_CODEC",
    "encode_samples",
    "decode_samples",
    "encode_pulses",
    "decode_pulses",
]

SIGNAL_CODEC = "shuffle-zlib-1"
PULSE_CODEC = "columns-shuffle-zlib-1"
_LEVEL = 1  # fastest zlib level: a 60 min session must be written faster than real time

_PULSE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("t", "<f8"),
    ("channel", "<i2"),
    ("amplitude", "<f8"),
    ("phase_width", "<f8"),
    ("interphase_gap", "<f8"),
    ("amplitude2", "<f8"),
    ("phase_width2", "<f8"),
    ("waveform", "<i1"),
)


def _shuffle(arr: np.ndarray) -> bytes:
    """Bytes of a 1-D little-endian array regrouped by byte significance."""
    size = arr.dtype.itemsize
    raw = np.ascontiguousarray(arr).view(np.uint8)
    if size == 1:
        return raw.tobytes()
    return raw.reshape(-1, size).T.tobytes()


def _unshuffle(buf: bytes, dtype: str, n: int) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    raw = np.frombuffer(buf, dtype=np.uint8, count=n * size)
    if size == 1:
        return raw.view(dtype).copy()
    return np.ascontiguousarray(raw.reshape(size, n).T).view(dtype).reshape(n)


def encode_samples(data: np.ndarray, dtype: str) -> bytes:
    """Encode a (channels x samples) block, channel after channel.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Samples in the channel units.
    dtype : {"<f8", "<f4"}
        Storage type; ``"<f4"`` rounds to single precision.
    """
    flat = np.ascontiguousarray(data, dtype=dtype).reshape(-1)
    return zlib.compress(_shuffle(flat), _LEVEL)


def decode_samples(blob: bytes, dtype: str, n_channels: int, n_samples: int) -> np.ndarray:
    """Inverse of :func:`encode_samples`; returns float64 (channels x samples)."""
    try:
        buf = zlib.decompress(blob)
    except zlib.error as exc:
        raise StoreError(f"a stream chunk is corrupt ({exc}); the database is damaged") from exc
    n = n_channels * n_samples
    if len(buf) != n * np.dtype(dtype).itemsize:
        raise StoreError(
            f"a stream chunk holds {len(buf)} bytes, expected {n} samples of {dtype}; "
            "the database is damaged"
        )
    return _unshuffle(buf, dtype, n).reshape(n_channels, n_samples).astype(np.float64)


def encode_pulses(schedule: PulseSchedule) -> bytes:
    """Encode the columns of a pulse schedule (channel names are stored elsewhere)."""
    parts = [_shuffle(np.asarray(getattr(schedule, name), dtype=dt))
             for name, dt in _PULSE_COLUMNS]
    return zlib.compress(b"".join(parts), _LEVEL)


def decode_pulses(blob: bytes, n: int, channel_names: tuple[str, ...]) -> PulseSchedule:
    """Inverse of :func:`encode_pulses` for a chunk of ``n`` pulses."""
    try:
        buf = zlib.decompress(blob)
    except zlib.error as exc:
        raise StoreError(f"a pulse chunk is corrupt ({exc}); the database is damaged") from exc
    expected = n * sum(np.dtype(dt).itemsize for _, dt in _PULSE_COLUMNS)
    if len(buf) != expected:
        raise StoreError(f"a pulse chunk holds {len(buf)} bytes, expected {expected} "
                         f"for {n} pulses; the database is damaged")
    cols: dict[str, np.ndarray] = {}
    pos = 0
    for name, dt in _PULSE_COLUMNS:
        size = n * np.dtype(dt).itemsize
        cols[name] = _unshuffle(buf[pos:pos + size], dt, n)
        pos += size
    return PulseSchedule(**cols, channel_names=channel_names)
