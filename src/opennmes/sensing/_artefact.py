"""Volitional EMG during stimulation: artefact blanking and M-wave suppression.

The recorded signal is x = v + a_k + m_k: volitional EMG, a stimulus artefact and an M-wave that
repeat after every pulse k (reference notes ``emg-gait-and-control.md`` §1.4). Every method here
is pulse-synchronous: it needs the pulse times, as a :class:`~opennmes.stim.PulseSchedule` (its
``t`` column) or an array of seconds. All work as streaming filters and index the signal by the
epochs between pulses, so they tolerate jitter and non-integer ``sfreq / f_stim``.

``blank``
    Zero the samples in ``[t_k, t_k + blank)`` (software blanking; 15-25 ms also removes most of
    the M-wave).
``comb``
    Subtract the sample at the same phase after the previous pulse (the IVES two-cycle
    difference, Muraoka; Frigo et al. 2000 comb filter).
``template``
    Subtract the mean of the same phase after the previous ``order`` pulses (pulse-locked
    template subtraction).
``nlms``
    Adaptive multi-period predictor with one NLMS weight vector per phase (Sennels et al. 1997):
    predict the sample from the same phase in the previous ``order`` epochs, subtract, and adapt
    with step ``mu``; adaptation starts once ``order`` epochs are stored.

Any method can be followed by blanking (``blank`` > 0). :func:`suppression_quality` measures how
well a method worked against a clean reference; :func:`locked_residual` measures the
pulse-synchronous power left when no clean reference exists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numba
import numpy as np

from opennmes.errors import SignalError
from opennmes.sensing._filters import EmgPipeline, check_contiguous
from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.schedule import PulseSchedule

log = logging.getLogger(__name__)

__all__ = [
    "ARTEFACT_METHODS",
    "ArtefactSuppressor",
    "suppress_artefacts",
    "suppression_quality",
    "locked_residual",
    "contaminate",
    "pulse_times",
]

ARTEFACT_METHODS = ("blank", "comb", "template", "nlms")
_CODES = {m: i for i, m in enumerate(ARTEFACT_METHODS)}


def pulse_times(pulses: PulseSchedule | Sequence[float] | np.ndarray,
                channel: str | None = None) -> np.ndarray:
    """Sorted pulse onset times in seconds from a PulseSchedule or an array of seconds.

    Parameters
    ----------
    pulses : PulseSchedule or array of float
        Pulses; for a schedule its ``t`` column is used.
    channel : str, optional
        Only the pulses of this stimulation channel (schedules only).
    """
    if hasattr(pulses, "for_channel") and hasattr(pulses, "t"):
        sched = pulses.for_channel(channel) if channel is not None else pulses
        t = np.asarray(sched.t, dtype=np.float64)
    else:
        if channel is not None:
            raise SignalError("channel= needs a PulseSchedule, not a plain array of times")
        t = np.asarray(pulses, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(t)):
        raise SignalError("pulse times must be finite seconds")
    return np.sort(t)


@numba.njit(cache=True)
def _suppress_kernel(x, pulse_idx, n0, code, order, mu, eps, n_blank, state_i, ring, ring_len,
                     cur, w):  # pragma: no cover - compiled
    # state_i: [phase, ring_pos, n_epochs, next_pulse]
    n_ch, n = x.shape
    L = cur.shape[1]
    y = np.empty_like(x)
    phase = state_i[0]
    pos = state_i[1]
    n_ep = state_i[2]
    k = state_i[3]
    n_p = pulse_idx.shape[0]
    u = np.empty(order)
    for j in range(n):
        i = n0 + j
        new = False
        while k < n_p and pulse_idx[k] <= i:
            k += 1
            new = True
        if new:
            if phase >= 0:
                ln = phase if phase < L else L
                for c in range(n_ch):
                    for q in range(ln):
                        ring[c, pos, q] = cur[c, q]
                ring_len[pos] = ln
                pos = (pos + 1) % order
                n_ep += 1
            phase = 0
        for c in range(n_ch):
            v = x[c, j]
            if phase < 0:
                y[c, j] = v
                continue
            if phase < L:
                cur[c, phase] = v
            out = v
            if code != 0 and phase < L and n_ep >= order:
                ok = True
                for m in range(order):
                    s = (pos - 1 - m) % order
                    if ring_len[s] <= phase:
                        ok = False
                        break
                    u[m] = ring[c, s, phase]
                if ok:
                    if code == 1:  # comb: previous epoch only
                        out = v - u[0]
                    elif code == 2:  # template: mean of previous `order` epochs
                        out = v - u.mean()
                    else:  # per-phase NLMS
                        pred = 0.0
                        uu = 0.0
                        for m in range(order):
                            pred += w[c, phase, m] * u[m]
                            uu += u[m] * u[m]
                        out = v - pred
                        g = mu * out / (eps + uu)
                        for m in range(order):
                            w[c, phase, m] += g * u[m]
            if phase < n_blank:
                out = 0.0
            y[c, j] = out
        if phase >= 0:
            phase += 1
    state_i[0] = phase
    state_i[1] = pos
    state_i[2] = n_ep
    state_i[3] = k
    return y


class ArtefactSuppressor:
    """Streaming stimulation-artefact and M-wave suppression for EMG.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    n_channels : int
        Number of EMG channels.
    method : {"blank", "comb", "template", "nlms"}
        See the module docstring.
    blank : float
        Blanking window after each pulse in seconds (0 for none); ``blank`` method default
        0.02 s (reference notes §1.4.6: 20 ms gave r = 0.94).
    order : int, optional
        Epochs used by ``template`` (default 4) and ``nlms`` (default 4); ``comb`` uses 1.
    mu : float
        NLMS step size (0.01-0.1; Sennels-style default 0.05).
    max_period : float
        Longest inter-pulse interval handled, in seconds; phases beyond it pass unchanged.
    eps : float
        NLMS regulariser, in squared signal units.
    """

    def __init__(self, sfreq: float, n_channels: int, method: str = "nlms", *,
                 blank: float | None = None, order: int | None = None, mu: float = 0.05,
                 max_period: float = 0.1, eps: float = 1e-30):
        if method not in ARTEFACT_METHODS:
            raise SignalError(
                f"unknown artefact method {method!r}; allowed: {list(ARTEFACT_METHODS)}")
        self.sfreq = float(sfreq)
        self.n_channels = int(n_channels)
        self.method = method
        blank_s = (0.02 if method == "blank" else 0.0) if blank is None else float(blank)
        if blank_s < 0 or blank_s > max_period:
            raise SignalError(f"blank = {blank_s} s must be within [0, max_period = "
                              f"{max_period} s]")
        self.n_blank = int(round(blank_s * self.sfreq))
        self.order = 1 if method in ("comb", "blank") else int(order if order is not None else 4)
        if self.order < 1:
            raise SignalError(f"order = {self.order} must be >= 1")
        if not 0 < mu < 2:
            raise SignalError(f"NLMS step mu = {mu} must be in (0, 2) for stability")
        self.mu = float(mu)
        self.eps = float(eps)
        self.L = int(np.ceil(max_period * self.sfreq))
        self._pulses = np.zeros(0, np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the past (stored epochs, weights, pulses and time origin)."""
        self._state = np.array([-1, 0, 0, 0], np.int64)
        self._ring = np.zeros((self.n_channels, self.order, self.L))
        self._ring_len = np.zeros(self.order, np.int64)
        self._cur = np.zeros((self.n_channels, self.L))
        self._w = np.full((self.n_channels, self.L, self.order), 1.0 / self.order)
        self._pulses = np.zeros(0, np.int64)
        self._n = 0
        self._t0: float | None = None

    def add_pulses(self, times: PulseSchedule | Sequence[float] | np.ndarray) -> None:
        """Tell the filter about pulses (seconds, same clock as the chunks' ``t0``).

        Pulses must be added before the chunk holding them is processed; pulses older than
        the last one already known are ignored.
        """
        if self._t0 is None:
            raise SignalError("add_pulses before the first chunk: pass pulses to process()")
        t = pulse_times(times)
        idx = np.ceil((t - self._t0) * self.sfreq - 1e-6).astype(np.int64)
        last = self._pulses[-1] if self._pulses.size else -1
        new = np.unique(idx[idx > last])
        late = new[new < self._n]
        if late.size:
            log.warning("ArtefactSuppressor: %d pulse(s) announced after their samples were "
                        "processed (first at t = %.6g s); they are ignored", late.size,
                        self._t0 + late[0] / self.sfreq)
            new = new[new >= self._n]
        self._pulses = np.concatenate([self._pulses, new])

    def process(self, chunk: Signals,
                pulses: PulseSchedule | Sequence[float] | np.ndarray | None = None) -> Signals:
        """Clean a chunk; ``pulses`` are added first (see :meth:`add_pulses`)."""
        if abs(chunk.sfreq - self.sfreq) > 1e-9 * self.sfreq:
            raise SignalError(f"chunk at {chunk.sfreq:g} Hz, filter built for {self.sfreq:g} Hz")
        if chunk.data.shape[0] != self.n_channels:
            raise SignalError(f"chunk has {chunk.data.shape[0]} channels, filter expects "
                              f"{self.n_channels}")
        self._t0 = check_contiguous(self._t0, self._n, chunk, "ArtefactSuppressor")
        if pulses is not None:
            self.add_pulses(pulses)
        y = _suppress_kernel(np.ascontiguousarray(chunk.data), self._pulses, self._n,
                             _CODES[self.method], self.order, self.mu, self.eps, self.n_blank,
                             self._state, self._ring, self._ring_len, self._cur, self._w)
        self._n += chunk.n_samples
        # drop pulses already passed (keep the last one for the duplicate check)
        done = int(self._state[3]) - 1
        if done > 0:
            self._pulses = self._pulses[done:]
            self._state[3] -= done
        return Signals(y, chunk.sfreq, chunk.names, chunk.units, chunk.t0)


def suppress_artefacts(signals: Signals, pulses: PulseSchedule | Sequence[float] | np.ndarray,
                       method: str = "nlms", **kwargs: object) -> Signals:
    """Clean a whole recording (the same code as :class:`ArtefactSuppressor`).

    Parameters
    ----------
    signals : Signals
        Contaminated EMG.
    pulses : PulseSchedule or array of float
        Pulse times in seconds, on the clock of ``signals.t0``.
    method : str
        See :data:`ARTEFACT_METHODS`.
    **kwargs
        Options of :class:`ArtefactSuppressor`.
    """
    f = ArtefactSuppressor(signals.sfreq, len(signals.names), method,
                           **kwargs)  # type: ignore[arg-type]
    return f.process(signals, pulses)


def suppression_quality(clean: Signals, recovered: Signals, *, cutoff: float = 3.0,
                        skip: float = 0.5) -> dict[str, float]:
    """How well a method recovered the volitional EMG, against a clean reference.

    Both signals are band-passed (20-450 Hz, capped below Nyquist), rectified and low-passed at
    ``cutoff`` (reference notes §1.4.6 use 3 Hz).

    Parameters
    ----------
    clean, recovered : Signals
        Same channels and samples.
    cutoff : float
        Envelope low-pass in Hz.
    skip : float
        Seconds at the start left out (filter transients).

    Returns
    -------
    dict
        ``r_envelope``: Pearson r of the envelopes (mean over channels); ``residual_power``:
        power of (recovered - clean) over the power of clean, band-passed.
    """
    if clean.data.shape != recovered.data.shape:
        raise SignalError(f"clean {clean.data.shape} and recovered {recovered.data.shape} "
                          "differ in shape")
    hi = min(450.0, 0.45 * clean.sfreq)
    n = len(clean.names)
    i0 = int(round(skip * clean.sfreq))
    bands = []
    envs = []
    for s in (clean, recovered):
        p = EmgPipeline(clean.sfreq, n, band=(20.0, hi), envelope="linear", cutoff=cutoff)
        bands.append(EmgPipeline(clean.sfreq, n, band=(20.0, hi), envelope="none")
                     .filter(s.data)[:, i0:])
        envs.append(p.process_array(s.data)[:, i0:])
    r = [float(np.corrcoef(a, b)[0, 1]) for a, b in zip(envs[0], envs[1], strict=True)]
    res = float(np.mean((bands[1] - bands[0]) ** 2) / np.mean(bands[0] ** 2))
    return {"r_envelope": float(np.mean(r)), "residual_power": res}


def locked_residual(signals: Signals, pulses: PulseSchedule | Sequence[float] | np.ndarray,
                    window: float) -> np.ndarray:
    """Pulse-synchronous power left in a cleaned signal, per channel (no reference needed).

    The power of the pulse-triggered average over ``window`` seconds after each pulse, divided
    by the mean power of the same epochs. Volitional EMG, uncorrelated with the pulses, gives
    about 1 / n_pulses; a remaining artefact or M-wave gives values near 1.

    Parameters
    ----------
    signals : Signals
        Cleaned EMG.
    pulses : PulseSchedule or array of float
        Pulse times in seconds.
    window : float
        Epoch length in seconds (at most the shortest inter-pulse interval).
    """
    t = pulse_times(pulses)
    n = int(round(window * signals.sfreq))
    idx = np.ceil((t - signals.t0) * signals.sfreq - 1e-6).astype(np.int64)
    idx = idx[(idx >= 0) & (idx + n <= signals.n_samples)]
    if idx.size < 2 or n < 1:
        raise SignalError(f"need at least 2 whole epochs of {window} s inside the signal, "
                          f"found {idx.size}")
    ep = signals.data[:, idx[:, None] + np.arange(n)[None, :]]  # (ch, pulses, n)
    avg_power = np.mean(ep.mean(axis=1) ** 2, axis=1)
    tot = np.mean(ep ** 2, axis=(1, 2))
    return np.asarray(avg_power / np.where(tot > 0, tot, np.inf))


def contaminate(signals: Signals, pulses: Sequence[float] | np.ndarray, *, mwave_gain: float,
                spike_gain: float, modulation: float = 0.0, modulation_freq: float = 0.2,
                seed: int = 0) -> Signals:
    """Add a synthetic stimulus artefact and M-wave after each pulse (for tests and demos).

    The recipe of the reference notes §1.4.6: a 3-sample spike with a 2 ms exponential tail of
    peak ``spike_gain`` times the EMG SD, and a biphasic M-wave (peaks at 8 and 13 ms) of peak
    ``mwave_gain`` times the EMG SD, both scaled per pulse by ``1 + modulation *
    sin(2 pi modulation_freq t_k)``.

    Parameters
    ----------
    signals : Signals
        Clean EMG.
    pulses : array of float
        Pulse times in seconds.
    mwave_gain, spike_gain : float
        Peak sizes relative to each channel's SD.
    modulation : float
        Relative slow intensity modulation (0.3 = +-30 %).
    modulation_freq : float
        Modulation frequency in Hz.
    seed : int
        Seed for the small per-pulse amplitude jitter (1 %).
    """
    fs = signals.sfreq
    rng = np.random.default_rng(seed)
    tt = np.arange(int(0.03 * fs)) / fs
    mw = np.exp(-0.5 * ((tt - 0.008) / 0.0015) ** 2) - 0.8 * np.exp(
        -0.5 * ((tt - 0.013) / 0.002) ** 2)
    mw /= np.max(np.abs(mw))
    art = np.zeros_like(tt)
    art[:3] = [1.0, -0.6, 0.3]
    art[3:] = 0.3 * np.exp(-(tt[3:] - tt[3]) / 0.002)
    sd = signals.data.std(axis=1)
    out = np.array(signals.data)
    for tk in pulse_times(pulses):
        i = int(np.ceil((tk - signals.t0) * fs - 1e-6))
        if i < 0 or i >= signals.n_samples:
            continue
        m = min(len(tt), signals.n_samples - i)
        scale = (1 + modulation * np.sin(2 * np.pi * modulation_freq * tk)) * (
            1 + 0.01 * rng.standard_normal())
        out[:, i:i + m] += scale * sd[:, None] * (mwave_gain * mw[:m] + spike_gain * art[:m])
    return Signals(out, fs, signals.names, signals.units, signals.t0)
