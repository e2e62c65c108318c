"""Iterative learning control across repetitions of the same movement.

P-type ILC with a zero-phase low-pass Q filter: ``u[k+1] = Q(u[k] + L * e[k](t + delta))``,
where ``e[k]`` is the tracking error of repetition ``k`` and ``delta`` compensates the
plant's delay (Bristow, Tharayil & Alleyne 2006, IEEE Control Systems Magazine 26(3):96-114;
applied to FES by e.g. Freeman et al. 2012). The learnt input is a feed-forward term that the
PID adds to, and it stays within the output bounds.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, filtfilt

from opennmes.errors import NmesError

__all__ = ["IterativeLearning"]


class IterativeLearning:
    """Learn a feed-forward input over repetitions.

    Parameters
    ----------
    gain : float
        Learning gain ``L`` (output units per error unit).
    sfreq : float
        Rate at which input and error are sampled (the controller rate), Hz.
    u_min, u_max : float
        Bounds of the learnt input.
    delay : float
        Plant delay to look ahead in the error, s.
    q_cutoff : float
        Cut-off of the zero-phase Butterworth Q filter, Hz (robustness against noise and
        unmodelled dynamics).
    """

    def __init__(self, gain: float, sfreq: float, u_min: float, u_max: float, *,
                 delay: float = 0.1, q_cutoff: float = 2.0) -> None:
        if not sfreq > 0:
            raise NmesError(f"ILC sfreq = {sfreq!r} Hz must be > 0")
        if not 0 < q_cutoff < sfreq / 2:
            raise NmesError(f"ILC q_cutoff = {q_cutoff!r} Hz must be in (0, {sfreq / 2:g}) Hz "
                            f"(below Nyquist at sfreq = {sfreq:g} Hz)")
        self.gain = float(gain)
        self.sfreq = float(sfreq)
        self.u_min, self.u_max = float(u_min), float(u_max)
        self.shift = int(round(delay * sfreq))
        self._sos = butter(2, q_cutoff / (sfreq / 2), output="ba")
        self.iteration = 0

    def next_input(self, u: np.ndarray, error: np.ndarray) -> np.ndarray:
        """The input for the next repetition from this one's input and error."""
        u = np.asarray(u, dtype=np.float64)
        e = np.asarray(error, dtype=np.float64)
        if u.shape != e.shape or u.ndim != 1:
            raise NmesError(f"ILC input {u.shape} and error {e.shape} must be equal 1-D shapes")
        if not np.isfinite(e).all():
            raise NmesError("ILC error contains NaN or infinite values")
        ahead = np.empty_like(e)
        if self.shift > 0:
            ahead[:-self.shift] = e[self.shift:]
            ahead[-self.shift:] = e[-1]
        else:
            ahead[:] = e
        raw = u + self.gain * ahead
        b, a = self._sos
        pad = min(len(raw) - 1, 3 * max(len(a), len(b)))
        filtered = filtfilt(b, a, raw, padlen=pad) if len(raw) > 3 else raw
        self.iteration += 1
        return np.clip(filtered, self.u_min, self.u_max)
