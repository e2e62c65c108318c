"""Gait events for drop-foot FES: from a shank gyroscope and from a heel switch.

Sagittal shank angular velocity (reference notes ``emg-gait-and-control.md`` §2.2): a large
positive mid-swing (MS) peak, a negative trough shortly after it at initial contact (IC) and a
deeper trough before it at foot-off (FO). The offline reference (:func:`detect_gait_events`,
Aminian/Salarian family: zero-phase 10 Hz low-pass, MS peaks, IC = first trough after MS within
0.4 s, FO = deepest trough in the 0.5 s before MS) and the causal streaming detector
(:class:`GaitEventDetector`, a finite-state machine) share their thresholds.

Reported accuracy of shank-gyro detection: IC within about 10-25 ms and FO within about 75 ms of
footswitches (Aminian et al. 2002; Catalfamo et al. 2010); real-time systems add 25-180 ms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal as sps

from opennmes.errors import SignalError
from opennmes.sensing._filters import SosFilter, check_contiguous, check_cutoff
from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "GaitEvent",
    "GaitEvents",
    "GaitEventDetector",
    "HeelSwitchDetector",
    "detect_gait_events",
    "swing_windows",
]

log = logging.getLogger(__name__)

FO, MS, IC = "foot_off", "mid_swing", "initial_contact"


@dataclass(frozen=True)
class GaitEvent:
    """One gait event.

    Attributes
    ----------
    kind : str
        ``"foot_off"``, ``"mid_swing"``, ``"initial_contact"`` or ``"swing_timeout"``.
    t : float
        Estimated time of the event, in seconds.
    t_detected : float
        Time of the sample at which the event was confirmed, in seconds.
    """

    kind: str
    t: float
    t_detected: float

    @property
    def latency(self) -> float:
        """``t_detected - t`` in seconds."""
        return self.t_detected - self.t


@dataclass(frozen=True)
class GaitEvents:
    """Offline gait events of one recording, one row per stride (gait cycle found by its MS).

    Attributes
    ----------
    mid_swing, initial_contact, foot_off : ndarray
        Event times in seconds (``foot_off`` is NaN when no trough precedes the first MS).
    polarity : int
        +1 when mid-swing is a positive peak on the channel, -1 when it is negative.
    channel : str
        The gyroscope channel used.
    """

    mid_swing: np.ndarray
    initial_contact: np.ndarray
    foot_off: np.ndarray
    polarity: int
    channel: str
    peak: np.ndarray = field(repr=False)

    @property
    def n_strides(self) -> int:
        """Number of gait cycles found (one per mid-swing peak)."""
        return int(self.mid_swing.size)

    @property
    def stride_times(self) -> np.ndarray:
        """Durations between successive initial contacts, in seconds."""
        return np.diff(self.initial_contact)

    @property
    def swing_times(self) -> np.ndarray:
        """Foot-off to initial-contact durations, in seconds (NaN where FO is missing)."""
        return self.initial_contact - self.foot_off

    @property
    def swing_windows(self) -> list[tuple[float, float]]:
        """(foot-off, initial-contact) time pairs in seconds, strides with a foot-off only."""
        return [(float(a), float(b)) for a, b in zip(self.foot_off, self.initial_contact,
                                                     strict=True) if np.isfinite(a)]

    def to_pandas(self) -> pd.DataFrame:
        """One row per stride: foot_off, mid_swing, initial_contact, swing, stride [s]."""
        import pandas as pd

        stride = np.concatenate([[np.nan], self.stride_times])
        return pd.DataFrame({"foot_off": self.foot_off, "mid_swing": self.mid_swing,
                             "initial_contact": self.initial_contact,
                             "swing": self.swing_times, "stride": stride,
                             "ms_peak": self.peak})


def _gyro(signals: Signals, channel: str) -> np.ndarray:
    if channel not in signals.names:
        gyros = [n for n, u in zip(signals.names, signals.units, strict=True) if u == "rad/s"]
        raise SignalError(f"no channel named {channel!r}; gyroscope channels (rad/s): {gyros}; "
                          f"all channels: {list(signals.names)}")
    unit = signals.unit(channel)
    if unit != "rad/s":
        raise SignalError(f"channel {channel!r} is in {unit!r}; a gyroscope channel in rad/s "
                          "(or deg/s, converted by the readers) is needed")
    return signals[channel]


def _ms_peaks(g: np.ndarray, sfreq: float, ms_threshold: float, min_interval: float
              ) -> np.ndarray:
    p, _ = sps.find_peaks(g, height=ms_threshold, distance=max(1, int(min_interval * sfreq)))
    return np.asarray(p)


def detect_gait_events(signals: Signals, channel: str, *, ms_threshold: float = 1.5,
                       cutoff: float = 10.0, min_interval: float = 0.6,
                       ic_window: float = 0.4, fo_window: float = 0.5,
                       polarity: int | None = None, check_axis: bool = True) -> GaitEvents:
    """Offline (zero-phase) gait events from a sagittal shank gyroscope.

    Parameters
    ----------
    signals : Signals
        Recording holding the gyroscope channel.
    channel : str
        Sagittal (medio-lateral axis) angular-velocity channel, rad/s.
    ms_threshold : float
        Minimum mid-swing peak in rad/s (1.5 rad/s, reference notes §2.2).
    cutoff : float
        Zero-phase low-pass cut-off in Hz (5-10 Hz).
    min_interval : float
        Minimum time between mid-swing peaks in seconds.
    ic_window : float
        IC is searched in (MS, MS + ic_window] seconds: the first trough below zero, else the
        window's minimum. When the recording ends inside the window before any trough, the
        stride has no IC and is left out (not dated at the last sample).
    fo_window : float
        FO is the deepest trough in [MS - fo_window, MS) seconds, after the previous IC.
    polarity : {+1, -1}, optional
        Sign of the mid-swing peak; detected from the data when omitted.
    check_axis : bool
        Compare with the other rad/s channels and refuse a channel that looks like the wrong
        axis (another axis has clearly larger swing peaks) or has fewer than 3 strides.

    Raises
    ------
    SignalError
        Unknown channel, wrong unit, sampling rate too low, or the wrong axis.
    """
    fs = signals.sfreq
    check_cutoff(fs, cutoff, f"{cutoff:g} Hz gyroscope low-pass")
    sos = sps.butter(2, cutoff, fs=fs, output="sos")

    def prepared(name: str) -> tuple[np.ndarray, int]:
        g = sps.sosfiltfilt(sos, _gyro(signals, name))
        pol = polarity if polarity is not None else (
            1 if np.percentile(g, 99.5) >= -np.percentile(g, 0.5) else -1)
        return pol * g, pol

    g, pol = prepared(channel)
    ms = _ms_peaks(g, fs, ms_threshold, min_interval)
    if check_axis:
        _check_axis(signals, channel, g, ms, prepared, fs, ms_threshold, min_interval)
    t = signals.t
    n = g.size
    ic_list, fo_list, keep = [], [], []
    prev_ic = -1
    for m in ms:
        end = m + int(ic_window * fs)
        hi = min(n - 1, end)
        seg = g[m + 1:hi + 1]
        if seg.size < 3:
            continue
        loc = np.flatnonzero((seg[1:-1] < seg[:-2]) & (seg[1:-1] <= seg[2:]) & (seg[1:-1] < 0))
        if not loc.size and end > hi:
            # the recording ends inside the IC window before any trough: the minimum so far is
            # the last sample, not a contact; this stride is incomplete
            log.debug("%s: mid-swing at %.3f s has no initial contact before the end of the "
                      "recording (%.3f s); stride left out", channel, t[m], t[-1])
            continue
        ic = m + 1 + (int(loc[0]) + 1 if loc.size else int(np.argmin(seg)))
        lo = max(prev_ic + 1, m - int(fo_window * fs))
        fo = lo + int(np.argmin(g[lo:m])) if m - lo >= 2 else -1
        ic_list.append(t[ic])
        fo_list.append(t[fo] if fo >= 0 and g[fo] < 0 else np.nan)
        keep.append(m)
        prev_ic = ic
    ms_arr = np.asarray(keep, dtype=np.int64)
    return GaitEvents(t[ms_arr], np.asarray(ic_list), np.asarray(fo_list), pol, channel,
                      g[ms_arr])


def _check_axis(signals: Signals, channel: str, g: np.ndarray, ms: np.ndarray,
                prepared: Callable[[str], tuple[np.ndarray, int]], fs: float,
                ms_threshold: float, min_interval: float) -> None:
    others = [n for n, u in zip(signals.names, signals.units, strict=True)
              if u == "rad/s" and n != channel]
    mine = float(np.median(g[ms])) if ms.size else float(np.max(g))
    found = []
    for name in others:
        go, _ = prepared(name)
        p = _ms_peaks(go, fs, ms_threshold, min_interval)
        found.append((name, float(np.median(go[p])) if p.size else float(np.max(go)), p.size))
    best = max(found, key=lambda f: f[1], default=None)
    summary = "; ".join(f"{n}: {k} peaks, median {v:.2f} rad/s" for n, v, k in found)
    if best is not None and best[1] > 1.3 * mine and best[2] >= 3:
        raise SignalError(
            f"channel {channel!r} looks like the wrong gyroscope axis: its swing peaks reach "
            f"{mine:.2f} rad/s ({ms.size} peaks) while {best[0]!r} reaches {best[1]:.2f} rad/s "
            f"({best[2]} peaks); the sagittal (medio-lateral) shank axis has the largest swing "
            f"peaks. Use channel={best[0]!r} or check the sensor mounting. Other axes: {summary}"
        )
    if ms.size < 3:
        raise SignalError(
            f"channel {channel!r} shows {ms.size} mid-swing peaks above {ms_threshold} rad/s "
            f"(its largest value is {np.max(g):.2f} rad/s): not a sagittal shank gyroscope "
            f"during walking, or the wrong axis. Other axes: {summary or 'none'}"
        )


class GaitEventDetector:
    """Causal shank-gyroscope gait-event detector: feed chunks, get :class:`GaitEvent` objects.

    A finite-state machine on the low-passed sagittal angular velocity g (sign-corrected):

    * SEEK / SWING: an MS is confirmed once g has exceeded ``ms_threshold`` and dropped
      ``ms_drop`` below its running maximum; the event is dated at the maximum.
    * POST_MS: IC is confirmed once g has gone below zero and risen ``ic_rise`` above its
      running minimum (dated at the minimum); if ``ic_window`` passes first, IC is dated at the
      minimum so far.
    * STANCE (from ``stance_refractory`` after IC): FO is confirmed when g rises through
      ``fo_level`` after a trough below ``-fo_depth`` (dated at the trough); swing starts.
      A swing with no MS within ``swing_timeout`` emits ``swing_timeout`` and returns to STANCE.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    polarity : {+1, -1}
        Sign of the mid-swing peak on the channel (see :meth:`calibrate`).
    ms_threshold : float
        Mid-swing peak threshold in rad/s.
    cutoff : float
        Causal 2nd-order low-pass cut-off in Hz (10-15 Hz).
    ms_drop, ic_rise : float
        Confirmation margins in rad/s.
    fo_depth, fo_level : float
        FO trough depth and the level g must rise through to confirm it, in rad/s.
    ic_window, swing_timeout, min_interval : float
        Seconds: IC search window after MS, longest swing, shortest MS-to-MS interval.
    stance_refractory : float
        Seconds after IC during which the FO trough is not searched (the IC trough's tail).
    """

    def __init__(self, sfreq: float, *, polarity: int = 1, ms_threshold: float = 1.5,
                 cutoff: float = 12.0, ms_drop: float = 0.3, ic_rise: float = 0.2,
                 fo_depth: float = 0.5, fo_level: float = 0.0, ic_window: float = 0.4,
                 swing_timeout: float = 1.0, min_interval: float = 0.6,
                 stance_refractory: float = 0.2):
        if polarity not in (1, -1):
            raise SignalError(f"polarity = {polarity} must be +1 or -1")
        check_cutoff(sfreq, cutoff, f"{cutoff:g} Hz gyroscope low-pass")
        self.sfreq = float(sfreq)
        self.polarity = polarity
        self.ms_threshold, self.ms_drop, self.ic_rise = ms_threshold, ms_drop, ic_rise
        self.fo_depth, self.fo_level = fo_depth, fo_level
        self.ic_window, self.swing_timeout = ic_window, swing_timeout
        self.min_interval = min_interval
        self.stance_refractory = stance_refractory
        self._lp = SosFilter(sps.butter(2, cutoff, fs=self.sfreq, output="sos"), 1,
                             steady_start=True)
        self.reset()

    def reset(self) -> None:
        """Forget the past."""
        self._lp.reset()
        self.state = "seek"
        self._n = 0
        self._t0: float | None = None
        self._ext = 0.0
        self._ext_i = 0
        self._since = 0
        self._last_ms = -(10**9)

    @property
    def in_swing(self) -> bool:
        """True between a confirmed foot-off and the next initial contact."""
        return self.state in ("swing", "post_ms")

    def calibrate(self, walking: Signals, channel: str) -> GaitEvents:
        """Set the polarity from a calibration walk and check the axis (offline detector)."""
        ev = detect_gait_events(walking, channel, ms_threshold=self.ms_threshold)
        self.polarity = ev.polarity
        return ev

    def update(self, chunk: Signals, channel: str | None = None) -> list[GaitEvent]:
        """Feed a chunk (one channel, or name the gyroscope ``channel``); return new events."""
        if abs(chunk.sfreq - self.sfreq) > 1e-9 * self.sfreq:
            raise SignalError(f"chunk at {chunk.sfreq:g} Hz, detector built for {self.sfreq:g} Hz")
        if channel is None:
            if len(chunk.names) != 1:
                raise SignalError(f"chunk has channels {list(chunk.names)}: name the gyroscope "
                                  "with channel=")
            channel = chunk.names[0]
        x = _gyro(chunk, channel)
        self._t0 = check_contiguous(self._t0, self._n, chunk, "GaitEventDetector")
        g = self.polarity * self._lp(x[None, :])[0]
        return self._run(g)

    def _t(self, i: int) -> float:
        return (self._t0 or 0.0) + i / self.sfreq

    def _run(self, g: np.ndarray) -> list[GaitEvent]:
        out: list[GaitEvent] = []
        ic_n = int(self.ic_window * self.sfreq)
        sw_n = int(self.swing_timeout * self.sfreq)
        gap = int(self.min_interval * self.sfreq)
        ref_n = int(self.stance_refractory * self.sfreq)
        for j, v in enumerate(g):
            i = self._n + j
            st = self.state
            if st in ("seek", "swing"):
                if v >= self.ms_threshold and i - self._last_ms >= gap and (
                        v > self._ext or self._ext < self.ms_threshold):
                    self._ext, self._ext_i = v, i
                if self._ext >= self.ms_threshold and v < self._ext - self.ms_drop:
                    out.append(GaitEvent(MS, self._t(self._ext_i), self._t(i)))
                    self._last_ms = self._ext_i
                    self.state, self._ext, self._ext_i, self._since = "post_ms", v, i, i
                elif st == "swing" and i - self._since > sw_n and self._ext < self.ms_threshold:
                    out.append(GaitEvent("swing_timeout", self._t(i), self._t(i)))
                    self.state, self._ext, self._ext_i, self._since = "stance", 0.0, i, i
            elif st == "post_ms":
                if v < self._ext:
                    self._ext, self._ext_i = v, i
                if (self._ext < 0 and v > self._ext + self.ic_rise) or i - self._since >= ic_n:
                    out.append(GaitEvent(IC, self._t(self._ext_i), self._t(i)))
                    self.state, self._ext, self._ext_i = "stance", 0.0, i
                    self._since = self._ext_i
            else:  # stance
                if i - self._since < ref_n:
                    continue
                if v < self._ext:
                    self._ext, self._ext_i = v, i
                if self._ext <= -self.fo_depth and v >= self.fo_level:
                    out.append(GaitEvent(FO, self._t(self._ext_i), self._t(i)))
                    self.state, self._ext, self._ext_i, self._since = "swing", v, i, i
        self._n += g.size
        return out


def swing_windows(events: Sequence[GaitEvent]) -> list[tuple[float, float]]:
    """(foot-off, initial-contact) time pairs, in seconds, from a stream of events."""
    out = []
    fo: float | None = None
    for e in events:
        if e.kind == FO:
            fo = e.t
        elif e.kind == IC and fo is not None:
            out.append((fo, e.t))
            fo = None
        elif e.kind == "swing_timeout":
            fo = None
    return out


class HeelSwitchDetector:
    """Heel switch (FSR) events with hysteresis and debouncing.

    Heel unloaded (below ``off_level`` for ``debounce`` s) -> ``foot_off`` (heel-off, the
    stimulation-on event of a drop-foot stimulator); loaded (above ``on_level`` for
    ``debounce`` s) -> ``initial_contact``. Events are dated at the first sample of the
    crossing; their latency is the debounce time.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    on_level, off_level : float
        Load thresholds in the switch's unit (``off_level < on_level``), e.g. fractions of the
        standing load from a calibration.
    debounce : float
        Seconds a new state must persist (20-50 ms usual).
    """

    def __init__(self, sfreq: float, on_level: float, off_level: float, debounce: float):
        if not off_level < on_level:
            raise SignalError(f"off_level = {off_level} must be below on_level = {on_level}")
        self.sfreq = float(sfreq)
        self.on_level, self.off_level = on_level, off_level
        self.n_db = max(1, int(round(debounce * self.sfreq)))
        self.reset()

    def reset(self) -> None:
        """Forget the past (state unknown until the first debounced level)."""
        self.loaded: bool | None = None
        self._run = 0
        self._start = 0
        self._n = 0
        self._t0: float | None = None

    def update(self, chunk: Signals, channel: str | None = None) -> list[GaitEvent]:
        """Feed a chunk of the switch signal; return new events."""
        if channel is None and len(chunk.names) != 1:
            raise SignalError(f"chunk has channels {list(chunk.names)}: name the heel switch "
                              "with channel=")
        x = chunk[channel or chunk.names[0]]
        self._t0 = check_contiguous(self._t0, self._n, chunk, "HeelSwitchDetector")
        out = []
        for j, v in enumerate(x):
            i = self._n + j
            want = True if v > self.on_level else False if v < self.off_level else None
            if want is None or want == self.loaded:
                self._run = 0
                continue
            if self._run == 0:
                self._start = i
            self._run += 1
            if self._run >= self.n_db:
                if self.loaded is not None:
                    out.append(GaitEvent(IC if want else FO, self._t0 + self._start / self.sfreq,
                                         self._t0 + i / self.sfreq))
                self.loaded = want
                self._run = 0
        self._n += x.size
        return out
