"""EMG onset and offset detection, offline and streaming, with one implementation.

Three methods (reference notes ``emg-gait-and-control.md`` §1.2):

``threshold``
    Linear envelope above ``mu_b + h * sigma_b`` of the baseline envelope for ``hold`` seconds
    (onset) and below it for ``off_hold`` seconds (offset); Hodges & Bui 1996 use h = 1-3 and
    20-100 ms.
``tkeo``
    The same rule on a Teager-Kaiser energy signal conditioned as in Solnik et al. 2010: band-pass
    30-300 Hz, psi[n] = x[n]^2 - x[n-1] x[n+1] (one sample of delay), rectify, 50 Hz low-pass.
``cusum``
    A statistical change-point detector (the sequential likelihood-ratio / CUSUM family compared
    by Staude et al. 2001): the band-passed EMG is modelled as zero-mean Gaussian whose variance
    jumps from the baseline ``sigma_b^2`` to ``ratio * sigma_b^2``; Page's CUSUM of the
    log-likelihood ratio raises an alarm above ``h`` nats and dates the change at the last time
    the statistic was zero. The offset uses the reverse test.

Each event carries the estimated time of the change (``t``) and the time of the sample at which
it was confirmed (``t_detected``); their difference is the detection latency a trigger sees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from opennmes.errors import SignalError
from opennmes.sensing._filters import EmgPipeline, SosFilter, check_contiguous, check_cutoff
from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["OnsetEvent", "OnsetDetector", "detect_onsets", "ONSET_METHODS", "events_to_pandas"]

ONSET_METHODS = ("threshold", "tkeo", "cusum")
# A rest-segment feature whose spread is at most this fraction of the raw signal's peak is
# numerical round-off of a flat channel, not EMG (float64 filters leave ~1e-27 of a constant).
_FLAT_RELATIVE = 1e-12


@dataclass(frozen=True)
class OnsetEvent:
    """A muscle switching on or off.

    Attributes
    ----------
    channel : str
        Channel name.
    kind : str
        ``"onset"`` or ``"offset"``.
    t : float
        Estimated time of the change, in seconds.
    t_detected : float
        Time of the sample at which the change was confirmed, in seconds.
    """

    channel: str
    kind: str
    t: float
    t_detected: float

    @property
    def latency(self) -> float:
        """``t_detected - t`` in seconds."""
        return self.t_detected - self.t


@numba.njit(cache=True)
def _hold_kernel(f, thr, hold_on, hold_off, start, active, run, run_start, n0,
                 ev_ch, ev_kind, ev_i, ev_det):  # pragma: no cover - compiled
    n_ch, n = f.shape
    k = 0
    for c in range(n_ch):
        for j in range(n):
            i = n0 + j
            if i < start:
                continue
            if active[c] == 0:
                if f[c, j] >= thr[c]:
                    if run[c] == 0:
                        run_start[c] = i
                    run[c] += 1
                    if run[c] >= hold_on:
                        active[c] = 1
                        run[c] = 0
                        ev_ch[k] = c
                        ev_kind[k] = 1
                        ev_i[k] = run_start[c]
                        ev_det[k] = i
                        k += 1
                else:
                    run[c] = 0
            else:
                if f[c, j] < thr[c]:
                    if run[c] == 0:
                        run_start[c] = i
                    run[c] += 1
                    if run[c] >= hold_off:
                        active[c] = 0
                        run[c] = 0
                        ev_ch[k] = c
                        ev_kind[k] = 0
                        ev_i[k] = run_start[c]
                        ev_det[k] = i
                        k += 1
                else:
                    run[c] = 0
    return k


@numba.njit(cache=True)
def _cusum_kernel(x, var0, ratio, h, start, active, g, last_zero, n0,
                  ev_ch, ev_kind, ev_i, ev_det):  # pragma: no cover - compiled
    n_ch, n = x.shape
    k = 0
    for c in range(n_ch):
        a = 0.5 / var0[c] * (1.0 - 1.0 / ratio)
        b = -0.5 * math.log(ratio)
        for j in range(n):
            i = n0 + j
            if i < start:
                continue
            llr = b + a * x[c, j] * x[c, j]
            if active[c] == 0:
                g[c] = g[c] + llr
            else:
                g[c] = g[c] - llr
            if g[c] <= 0.0:
                g[c] = 0.0
                last_zero[c] = i
            elif g[c] > h:
                ev_ch[k] = c
                ev_kind[k] = 1 - active[c]
                ev_i[k] = last_zero[c] + 1
                ev_det[k] = i
                k += 1
                active[c] = 1 - active[c]
                g[c] = 0.0
                last_zero[c] = i
    return k


class _Tkeo:
    """Teager-Kaiser energy, |x[n-1]^2 - x[n-2] x[n]|, one sample of delay (stateful)."""

    def __init__(self, n_channels: int):
        self.n_channels = n_channels
        self.reset()

    def reset(self) -> None:
        self._prev = np.zeros((self.n_channels, 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = np.concatenate([self._prev, x], axis=1)
        self._prev = z[:, -2:]
        return np.abs(z[:, 1:-1] ** 2 - z[:, :-2] * z[:, 2:])


class OnsetDetector:
    """Streaming onset/offset detector: feed chunks, get :class:`OnsetEvent` objects.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    names : sequence of str
        Channel names, in the order of the chunks' rows.
    method : {"threshold", "tkeo", "cusum"}
        Detection method (see the module docstring).
    h : float, optional
        Threshold: number of baseline SDs above the baseline mean (threshold, tkeo; default 5
        and 15) or the CUSUM alarm level in nats (cusum; default 100).
    hold : float
        Seconds the feature must stay above threshold to confirm an onset (threshold, tkeo).
    off_hold : float
        Seconds below threshold to confirm an offset (threshold, tkeo).
    cutoff : float, optional
        Envelope low-pass cut-off in Hz (threshold: default 10 Hz; tkeo: default 50 Hz).
    ratio : float
        CUSUM: variance ratio active/rest of the alternative hypothesis (> 1; default 25, an
        amplitude five times the baseline).
    band : tuple of float, optional
        Band-pass edges in Hz (default 20-450 Hz; 30-300 Hz for tkeo).
    settle : float
        Seconds from the start of the stream during which filter transients are ignored.
    """

    def __init__(self, sfreq: float, names: Sequence[str], method: str = "threshold", *,
                 h: float | None = None, hold: float = 0.05, off_hold: float = 0.1,
                 cutoff: float | None = None, ratio: float = 25.0,
                 band: tuple[float, float] | None = None, settle: float = 0.25):
        if method not in ONSET_METHODS:
            raise SignalError(f"unknown onset method {method!r}; allowed: {list(ONSET_METHODS)}")
        self.sfreq = float(sfreq)
        self.names = tuple(names)
        self.method = method
        n = len(self.names)
        if method == "cusum" and not ratio > 1:
            raise SignalError(f"cusum ratio = {ratio} must be > 1")
        self.ratio = float(ratio)
        self.h = float(h if h is not None else {"threshold": 5.0, "tkeo": 15.0, "cusum": 100.0}[
            method])
        self.hold_on = max(1, int(round(hold * self.sfreq)))
        self.hold_off = max(1, int(round(off_hold * self.sfreq)))
        self.settle = int(round(settle * self.sfreq))
        if band is None:
            band = (30.0, 300.0) if method == "tkeo" else (20.0, 450.0)
            if band[1] >= self.sfreq / 2:  # low-rate recorders: keep 90 % of Nyquist
                band = (band[0], 0.45 * self.sfreq)
        check_cutoff(self.sfreq, band[1], f"{band[0]:g}-{band[1]:g} Hz band-pass")
        self._post: list[object] = []
        if method == "threshold":
            cut = 10.0 if cutoff is None else cutoff
            self._pipe = EmgPipeline(self.sfreq, n, band=band, envelope="linear", cutoff=cut)
        else:
            self._pipe = EmgPipeline(self.sfreq, n, band=band, envelope="none")
        if method == "tkeo":
            from scipy import signal as sps

            cut = 50.0 if cutoff is None else cutoff
            check_cutoff(self.sfreq, cut, f"{cut:g} Hz TKEO low-pass")
            self._tkeo = _Tkeo(n)
            self._lp = SosFilter(sps.butter(2, cut, fs=self.sfreq, output="sos"), n)
        self.threshold: np.ndarray | None = None
        self.baseline: tuple[np.ndarray, np.ndarray] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget filter and detector state (keeps the baseline)."""
        n = len(self.names)
        self._pipe.reset()
        if self.method == "tkeo":
            self._tkeo.reset()
            self._lp.reset()
        self._n = 0
        self._t0: float | None = None
        self._active = np.zeros(n, np.int64)
        self._run = np.zeros(n, np.int64)
        self._run_start = np.zeros(n, np.int64)
        self._g = np.zeros(n)
        self._last_zero = np.zeros(n, np.int64)

    def feature(self, x: np.ndarray) -> np.ndarray:
        """The conditioned signal the rule is applied to (advances the filter state)."""
        if self.method == "cusum":
            return self._pipe.filter(x)
        if self.method == "tkeo":
            return self._lp(self._tkeo(self._pipe.filter(x)))
        return self._pipe.process_array(x)

    def _chunk(self, chunk: Signals) -> np.ndarray:
        if chunk.names != self.names:
            raise SignalError(f"chunk channels {list(chunk.names)} differ from the detector's "
                              f"{list(self.names)}")
        if abs(chunk.sfreq - self.sfreq) > 1e-9 * self.sfreq:
            raise SignalError(f"chunk at {chunk.sfreq:g} Hz, detector built for {self.sfreq:g} Hz")
        self._t0 = check_contiguous(self._t0, self._n, chunk, "OnsetDetector")
        return chunk.data

    def set_baseline(self, mean: Sequence[float] | np.ndarray,
                     sd: Sequence[float] | np.ndarray) -> None:
        """Set the baseline mean and SD of the feature per channel (feature units)."""
        mu = np.asarray(mean, dtype=np.float64).reshape(-1)
        sd_ = np.asarray(sd, dtype=np.float64).reshape(-1)
        if mu.shape != (len(self.names),) or sd_.shape != mu.shape or not np.all(sd_ > 0):
            raise SignalError(f"baseline needs {len(self.names)} means and positive SDs, got "
                              f"{mu.tolist()} and {sd_.tolist()}")
        self.baseline = (mu, sd_)
        self.threshold = mu + self.h * sd_

    def set_threshold(self, threshold: Sequence[float] | np.ndarray) -> None:
        """Set the threshold directly, per channel, in feature units (threshold and tkeo).

        For EMG-triggered stimulation with a therapist's threshold, e.g. a fraction of the best
        attempt's envelope. The baseline is kept only for reference.
        """
        if self.method == "cusum":
            raise SignalError("the cusum method has no amplitude threshold; use set_baseline")
        thr = np.asarray(threshold, dtype=np.float64).reshape(-1)
        if thr.shape != (len(self.names),) or not np.all(thr > 0):
            raise SignalError(f"threshold needs {len(self.names)} positive values, got "
                              f"{thr.tolist()}")
        if self.baseline is None:
            self.baseline = (np.zeros_like(thr), thr / self.h)
        self.threshold = thr

    def _baseline_from(self, f: np.ndarray, raw: np.ndarray) -> None:
        """Set the baseline from the feature ``f`` of a rest segment whose raw samples are ``raw``.

        A channel is flat when its feature varies by no more than round-off of the raw signal's
        scale (a constant input filters to about 1e-27, not exactly 0, depending on the
        NumPy/SciPy build), so the test is relative to the raw samples, never ``> 0``.
        """
        if f.shape[1] < 10:
            raise SignalError(f"rest segment of {f.shape[1]} samples after the {self.settle}"
                              "-sample settling time is too short for a baseline")
        if self.method == "cusum":
            var = np.mean(f * f, axis=1)
            flat = self._flat(np.sqrt(var), raw)
            if flat:
                raise SignalError(f"channels {flat} are flat during the rest segment")
            self.set_baseline(np.zeros(len(self.names)), np.sqrt(var))
        else:
            sd = f.std(axis=1)
            flat = self._flat(sd, raw)
            if flat:
                raise SignalError(f"channels {flat} are flat during the rest segment")
            self.set_baseline(f.mean(axis=1), sd)

    def _flat(self, spread: np.ndarray, raw: np.ndarray) -> list[str]:
        scale = np.max(np.abs(raw), axis=1) if raw.shape[1] else np.zeros(len(self.names))
        return [n for n, v, s in zip(self.names, spread, scale, strict=True)
                if not v > _FLAT_RELATIVE * s]

    def calibrate(self, rest: Signals) -> None:
        """Feed a quiet (rest) chunk and set the baseline from it; no events are produced."""
        x = self._chunk(rest)
        f = self.feature(x)
        skip = max(0, self.settle - self._n)
        self._baseline_from(f[:, skip:], x[:, skip:])
        self._n += x.shape[1]

    def update(self, chunk: Signals) -> list[OnsetEvent]:
        """Feed a chunk; return the events confirmed within it, in time order."""
        if self.threshold is None or self.baseline is None:
            raise SignalError("OnsetDetector has no baseline: call calibrate(rest) or "
                              "set_baseline(mean, sd) first")
        x = self._chunk(chunk)
        f = self.feature(x)
        return self._detect(f)

    def _detect(self, f: np.ndarray) -> list[OnsetEvent]:
        assert self.baseline is not None and self.threshold is not None
        n_ch, n = f.shape
        size = n_ch * n // 2 + n_ch + 1
        ev_ch = np.zeros(size, np.int64)
        ev_kind = np.zeros(size, np.int64)
        ev_i = np.zeros(size, np.int64)
        ev_det = np.zeros(size, np.int64)
        f = np.ascontiguousarray(f)
        if self.method == "cusum":
            k = _cusum_kernel(f, self.baseline[1] ** 2, self.ratio, self.h, self.settle,
                              self._active, self._g, self._last_zero, self._n,
                              ev_ch, ev_kind, ev_i, ev_det)
        else:
            k = _hold_kernel(f, self.threshold, self.hold_on, self.hold_off, self.settle,
                             self._active, self._run, self._run_start, self._n,
                             ev_ch, ev_kind, ev_i, ev_det)
        self._n += n
        t0 = self._t0 or 0.0
        events = [OnsetEvent(self.names[ev_ch[j]], "onset" if ev_kind[j] else "offset",
                             t0 + ev_i[j] / self.sfreq, t0 + ev_det[j] / self.sfreq)
                  for j in range(k)]
        events.sort(key=lambda e: (e.t_detected, e.channel))
        return events


def detect_onsets(signals: Signals, rest: tuple[float, float], method: str = "threshold",
                  **kwargs: object) -> list[OnsetEvent]:
    """Onsets and offsets in a whole recording (same code as :class:`OnsetDetector`).

    Parameters
    ----------
    signals : Signals
        Raw EMG channels.
    rest : tuple of float
        Start and end, in seconds, of a quiet segment for the baseline.
    method : str
        See :data:`ONSET_METHODS`.
    **kwargs
        Options of :class:`OnsetDetector`.
    """
    det = OnsetDetector(signals.sfreq, signals.names, method, **kwargs)  # type: ignore[arg-type]
    det._t0 = signals.t0
    f = det.feature(signals.data)
    t = signals.t
    sel = (t >= rest[0]) & (t < rest[1]) & (np.arange(signals.n_samples) >= det.settle)
    if not sel.any():
        raise SignalError(f"rest segment {rest} s is outside the recording "
                          f"({signals.t0:g}-{signals.t0 + signals.duration:g} s)")
    det._baseline_from(f[:, sel], signals.data[:, sel])
    return det._detect(f)


def events_to_pandas(events: Sequence[OnsetEvent]) -> pd.DataFrame:
    """A table with columns channel, kind, t, t_detected, latency."""
    import pandas as pd

    return pd.DataFrame({"channel": [e.channel for e in events],
                         "kind": [e.kind for e in events],
                         "t": [e.t for e in events],
                         "t_detected": [e.t_detected for e in events],
                         "latency": [e.latency for e in events]})
