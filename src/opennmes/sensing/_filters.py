"""Stateful streaming filters for EMG: band-pass, notch, rectification, RMS and linear envelopes,
MVC normalisation.

Every filter keeps its state between calls, so feeding a signal chunk by chunk gives the same
samples (to rounding, 1e-12) as feeding it at once. All are causal: they can run in a live
session. Parameter values follow the reference notes (``emg-gait-and-control.md`` §1.1): band-pass
20-450 Hz (De Luca et al. 2010), linear envelope 2nd-order Butterworth at 3-10 Hz, RMS window
50-250 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from scipy import signal as sps

from opennmes.errors import SignalError
from opennmes.signals import Signals

__all__ = [
    "SosFilter",
    "MovingRms",
    "EmgPipeline",
    "envelope",
    "mvc_reference",
    "normalize_mvc",
    "check_cutoff",
    "check_contiguous",
]


def check_contiguous(t0: float | None, n: int, chunk: Signals, what: str) -> float:
    """Start time of a stream after checking that ``chunk`` follows the samples already seen.

    Parameters
    ----------
    t0 : float or None
        Time of the stream's first sample in seconds (None before the first chunk).
    n : int
        Samples seen so far.
    chunk : Signals
        The new chunk.
    what : str
        Name of the streaming object, for the message.

    Raises
    ------
    SignalError
        When the chunk starts more than half a sample away from where the stream is.
    """
    if t0 is None:
        return chunk.t0
    expected = t0 + n / chunk.sfreq
    if abs(chunk.t0 - expected) > 0.5 / chunk.sfreq:
        raise SignalError(
            f"{what}: chunk starts at t = {chunk.t0:.6g} s but the stream is at "
            f"{expected:.6g} s; streaming filters need contiguous chunks (call reset() to start "
            "a new stream)"
        )
    return t0


def check_cutoff(sfreq: float, cutoff: float, what: str) -> None:
    """Raise :class:`SignalError` unless ``0 < cutoff < sfreq / 2``.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    cutoff : float
        Filter edge in Hz.
    what : str
        Name of the filter, for the message.
    """
    if not (0 < cutoff < sfreq / 2):
        raise SignalError(
            f"sampling rate {sfreq:g} Hz is too low for the {what}: its edge at {cutoff:g} Hz "
            f"must be below the Nyquist frequency sfreq/2 = {sfreq / 2:g} Hz; record at "
            f"{2 * cutoff + 1:g} Hz or more, or lower the edge"
        )


@numba.njit(cache=True)
def _sosfilt(sos, x, zi):  # pragma: no cover - compiled
    """Cascade of biquads, transposed direct form II (the form of scipy's ``sosfilt``)."""
    n_sec = sos.shape[0]
    n_ch, n = x.shape
    y = np.empty((n_ch, n))
    for c in range(n_ch):
        for j in range(n):
            v = x[c, j]
            for s in range(n_sec):
                out = sos[s, 0] * v + zi[s, c, 0]
                zi[s, c, 0] = sos[s, 1] * v - sos[s, 4] * out + zi[s, c, 1]
                zi[s, c, 1] = sos[s, 2] * v - sos[s, 5] * out
                v = out
            y[c, j] = v
    return y


@numba.njit(cache=True)
def _sos_abs_sos(sos1, zi1, sos2, zi2, x):  # pragma: no cover - compiled
    """``sos2(|sos1(x)|)`` sample by sample, states updated in place."""
    n_ch, n = x.shape
    y = np.empty((n_ch, n))
    for c in range(n_ch):
        for j in range(n):
            v = x[c, j]
            for s in range(sos1.shape[0]):
                out = sos1[s, 0] * v + zi1[s, c, 0]
                zi1[s, c, 0] = sos1[s, 1] * v - sos1[s, 4] * out + zi1[s, c, 1]
                zi1[s, c, 1] = sos1[s, 2] * v - sos1[s, 5] * out
                v = out
            v = abs(v)
            for s in range(sos2.shape[0]):
                out = sos2[s, 0] * v + zi2[s, c, 0]
                zi2[s, c, 0] = sos2[s, 1] * v - sos2[s, 4] * out + zi2[s, c, 1]
                zi2[s, c, 1] = sos2[s, 2] * v - sos2[s, 5] * out
                v = out
            y[c, j] = v
    return y


class SosFilter:
    """A causal IIR filter in second-order sections with state carried between chunks.

    Same arithmetic as ``scipy.signal.sosfilt`` (transposed direct form II), compiled with Numba
    so that small live chunks cost microseconds.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
        Second-order sections (``scipy.signal`` layout).
    n_channels : int
        Number of channels filtered in parallel.
    steady_start : bool
        Start in the steady state of a constant input equal to the first sample (no step
        transient from a DC offset); otherwise start from zero state.
    """

    def __init__(self, sos: np.ndarray, n_channels: int, *, steady_start: bool = False):
        sos = np.array(sos, dtype=np.float64)
        sos[:, :3] /= sos[:, 3:4]
        sos[:, 3:] /= sos[:, 3:4]
        self.sos = sos
        self.n_channels = int(n_channels)
        self.steady_start = steady_start
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample starts from the initial state."""
        self._zi = np.zeros((self.sos.shape[0], self.n_channels, 2))
        self._fresh = True

    def prime(self, x: np.ndarray) -> None:
        """Before the first non-empty chunk: set the steady state of its first sample."""
        if self._fresh and self.steady_start:
            self._zi = sps.sosfilt_zi(self.sos)[:, None, :] * x[None, :, 0, None]
        self._fresh = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Filter a chunk of shape (n_channels, n_samples); returns a new array."""
        if x.shape[-1] == 0:
            return np.array(x, dtype=np.float64)
        self.prime(x)
        return np.asarray(_sosfilt(self.sos, np.ascontiguousarray(x, dtype=np.float64),
                                   self._zi))


@numba.njit(cache=True)
def _moving_rms(x, ring, acc, n0):  # pragma: no cover - compiled
    """Running sum of squares over a ring of ``w`` samples, recomputed exactly whenever the
    absolute sample count is a multiple of ``w`` (no drift, same result for any chunking)."""
    n_ch, n = x.shape
    w = ring.shape[1]
    y = np.empty((n_ch, n))
    for c in range(n_ch):
        s = acc[c]
        for j in range(n):
            i = n0 + j
            k = i % w
            v = x[c, j] * x[c, j]
            s += v - ring[c, k]
            ring[c, k] = v
            if (i + 1) % w == 0:
                s = 0.0
                for q in range(w):
                    s += ring[c, q]
            y[c, j] = np.sqrt(max(s, 0.0) / w)
        acc[c] = s
    return y


class MovingRms:
    """Root mean square over a sliding window of the last ``n`` samples (causal).

    Before ``n`` samples have been seen, the missing past counts as zeros.

    Parameters
    ----------
    n : int
        Window length in samples (>= 1).
    n_channels : int
        Number of channels.
    """

    def __init__(self, n: int, n_channels: int):
        if n < 1:
            raise SignalError(f"RMS window of {n} samples must be at least 1 sample")
        self.n = int(n)
        self.n_channels = int(n_channels)
        self.reset()

    def reset(self) -> None:
        """Forget the past."""
        self._ring = np.zeros((self.n_channels, self.n))
        self._acc = np.zeros(self.n_channels)
        self._count = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """RMS of each sample's window; x has shape (n_channels, n_samples)."""
        y = _moving_rms(np.ascontiguousarray(x, dtype=np.float64), self._ring, self._acc,
                        self._count)
        self._count += x.shape[-1]
        return np.asarray(y)


@dataclass(frozen=True)
class _Config:
    sfreq: float
    band: tuple[float, float] | None
    band_order: int
    notch: tuple[float, ...]
    notch_q: float
    kind: str
    cutoff: float
    order: int
    rms_window: float


class EmgPipeline:
    """Band-pass, optional notch, full-wave rectification and an amplitude envelope.

    The same object processes a whole recording or a live stream chunk by chunk with identical
    results (within 1e-12 relative).

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz (always given).
    n_channels : int
        Number of channels.
    band : tuple of float or None
        Band-pass edges in Hz; ``None`` skips it. De Luca et al. 2010: 20-450 Hz.
    band_order : int
        Butterworth order of the band-pass prototype (the filter has twice as many poles).
    notch : sequence of float
        Mains frequencies in Hz to notch out (e.g. ``(50.0,)``); empty for none.
    notch_q : float
        Quality factor of each notch (30 is usual).
    envelope : {"linear", "rms", "none"}
        Linear envelope (low-pass of the rectified signal), moving RMS, or only the rectified
        band-passed signal.
    cutoff : float
        Linear-envelope low-pass cut-off in Hz (3-10 Hz usual).
    order : int
        Linear-envelope Butterworth order.
    rms_window : float
        RMS window length in seconds (50-250 ms usual).
    mvc : sequence of float, optional
        Per-channel MVC reference, in the envelope's unit; when given the output is a fraction of
        MVC (1.0 = 100 %).
    """

    KINDS = ("linear", "rms", "none")

    def __init__(self, sfreq: float, n_channels: int, *, band: tuple[float, float] | None =
                 (20.0, 450.0), band_order: int = 4, notch: Sequence[float] = (),
                 notch_q: float = 30.0, envelope: str = "linear", cutoff: float = 5.0,
                 order: int = 2, rms_window: float = 0.1,
                 mvc: Sequence[float] | None = None):
        if envelope not in self.KINDS:
            raise SignalError(f"unknown envelope {envelope!r}; allowed: {list(self.KINDS)}")
        if not (np.isfinite(sfreq) and sfreq > 0):
            raise SignalError(f"sfreq = {sfreq!r} Hz must be a positive number")
        self.config = _Config(float(sfreq), None if band is None else (float(band[0]),
                              float(band[1])), band_order, tuple(float(f) for f in notch),
                              notch_q, envelope, cutoff, order, rms_window)
        self.n_channels = int(n_channels)
        sections = []
        if band is not None:
            lo, hi = band
            if not lo < hi:
                raise SignalError(f"band-pass edges {band} Hz must be increasing")
            check_cutoff(sfreq, hi, f"{lo:g}-{hi:g} Hz band-pass")
            sections.append(sps.butter(band_order, [lo, hi], "bandpass", fs=sfreq,
                                       output="sos"))
        for f0 in self.config.notch:
            check_cutoff(sfreq, f0, f"{f0:g} Hz notch")
            b, a = sps.iirnotch(f0, notch_q, fs=sfreq)
            sections.append(sps.tf2sos(b, a))
        # band-pass and notches form one cascade of second-order sections
        self._pre = (SosFilter(np.vstack(sections), n_channels, steady_start=True)
                     if sections else None)
        self._env: SosFilter | MovingRms | None = None
        if envelope == "linear":
            check_cutoff(sfreq, cutoff, f"{cutoff:g} Hz envelope low-pass")
            self._env = SosFilter(sps.butter(order, cutoff, "lowpass", fs=sfreq, output="sos"),
                                  n_channels)
        elif envelope == "rms":
            n = int(round(rms_window * sfreq))
            if n < 1:
                raise SignalError(f"RMS window {rms_window} s is shorter than one sample at "
                                  f"{sfreq:g} Hz")
            self._env = MovingRms(n, n_channels)
        self.mvc: np.ndarray | None = None
        if mvc is not None:
            self.set_mvc(mvc)

    def set_mvc(self, mvc: Sequence[float]) -> None:
        """Set the per-channel MVC reference (envelope units); output becomes a fraction of it."""
        arr = np.asarray(mvc, dtype=np.float64).reshape(-1)
        if arr.shape != (self.n_channels,) or not np.all(arr > 0):
            raise SignalError(
                f"mvc must hold {self.n_channels} positive values, got {arr.tolist()}"
            )
        self.mvc = arr

    def reset(self) -> None:
        """Forget all filter state."""
        if self._pre is not None:
            self._pre.reset()
        if self._env is not None:
            self._env.reset()

    def filter(self, x: np.ndarray) -> np.ndarray:
        """Band-pass and notch only (stateful); x has shape (n_channels, n_samples)."""
        y = np.asarray(x, dtype=np.float64)
        return self._pre(y) if self._pre is not None else y

    def process_array(self, x: np.ndarray) -> np.ndarray:
        """Envelope of a chunk of shape (n_channels, n_samples)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise SignalError(
                f"expected a chunk of shape ({self.n_channels}, n_samples), got {x.shape}"
            )
        if isinstance(self._env, SosFilter) and self._pre is not None and x.shape[1]:
            # fused band-pass/notch -> |.| -> low-pass: one compiled call per chunk
            self._pre.prime(x)
            y = _sos_abs_sos(self._pre.sos, self._pre._zi, self._env.sos, self._env._zi,
                             np.ascontiguousarray(x))
        else:
            y = np.abs(self.filter(x))
            if self._env is not None:
                y = self._env(y)
        if self.mvc is not None:
            y = y / self.mvc[:, None]
        return y

    def process(self, chunk: Signals) -> Signals:
        """Envelope of a chunk of signals (channels in the pipeline's order).

        The unit becomes ``"1"`` (fraction of MVC) when an MVC reference is set.
        """
        if abs(chunk.sfreq - self.config.sfreq) > 1e-9 * self.config.sfreq:
            raise SignalError(f"chunk at {chunk.sfreq:g} Hz but the pipeline was built for "
                              f"{self.config.sfreq:g} Hz")
        y = self.process_array(chunk.data)
        units = ("1",) * len(chunk.names) if self.mvc is not None else chunk.units
        return Signals(y, chunk.sfreq, chunk.names, units, chunk.t0)


def envelope(signals: Signals, **kwargs: object) -> Signals:
    """EMG envelope of a whole recording: :class:`EmgPipeline` applied to all samples at once.

    Parameters
    ----------
    signals : Signals
        EMG channels.
    **kwargs
        Options of :class:`EmgPipeline` (band, notch, envelope, cutoff, rms_window, mvc, ...).
    """
    pipe = EmgPipeline(signals.sfreq, len(signals.names), **kwargs)  # type: ignore[arg-type]
    return pipe.process(signals)


def mvc_reference(env: Signals, window: float) -> np.ndarray:
    """MVC reference per channel: the largest moving average of the envelope over ``window``.

    Noraxon "ABC of EMG": average over a fixed window and take the highest average (0.5-1 s).
    Call it with the envelopes of all MVC trials concatenated (or the maximum over trials).

    Parameters
    ----------
    env : Signals
        Envelopes of MVC trials.
    window : float
        Averaging window in seconds.
    """
    n = int(round(window * env.sfreq))
    if n < 1 or n > env.n_samples:
        raise SignalError(f"MVC window {window} s ({n} samples) must fit in the "
                          f"{env.duration:g} s recording")
    c = np.cumsum(np.concatenate([np.zeros((len(env.names), 1)), env.data], axis=1), axis=1)
    means = (c[:, n:] - c[:, :-n]) / n
    ref = means.max(axis=1)
    bad = [name for name, r in zip(env.names, ref, strict=True) if not r > 0]
    if bad:
        raise SignalError(f"MVC reference is zero for channels {bad}: no activity recorded")
    return np.asarray(ref)


def normalize_mvc(env: Signals, mvc: Sequence[float]) -> Signals:
    """Envelope as a fraction of MVC (1.0 = 100 % MVC); unit ``"1"``."""
    ref = np.asarray(mvc, dtype=np.float64)
    if ref.shape != (len(env.names),) or not np.all(ref > 0):
        raise SignalError(f"mvc must hold {len(env.names)} positive values, got {ref.tolist()}")
    return Signals(env.data / ref[:, None], env.sfreq, env.names, ("1",) * len(env.names),
                   env.t0)
