"""Synthetic surface EMG of a stimulated muscle: M-waves, artefact, volitional EMG and noise.

Per muscle, the EMG (V) at sampling rate ``sfreq`` is the sum of

* the **M-wave** after each pulse: a biphasic wave (first derivative of a Gaussian, width
  ``mwave_width``) starting ``mwave_latency`` after the pulse, peak amplitude
  ``mwave_max * r`` with ``r`` the fraction of motor units the pulse recruited (all recruited
  units fire together, so the M-wave scales with recruitment);
* the **stimulation artefact**: the pulse current through a gain (``artefact_gain`` V/A)
  during its phases (second phase inverted), then an exponential tail of
  ``artefact_tail`` times the first-phase value with time constant ``artefact_tau``;
* **volitional EMG**: band-limited Gaussian noise (2nd-order Butterworth high-pass at 20 Hz and
  low-pass at 150 Hz, as two biquads) with rms ``volitional_rms * a`` for voluntary activation
  ``a``;
* white **noise** of rms ``noise_rms``.

The random parts come from per-muscle generators spawned from one seed and drawn sample by
sample in order, and the filter carries its state: chunk-by-chunk synthesis gives the same
numbers as one call. Typical shapes and latencies are modelling choices (quadriceps M-wave
latency from motor-point stimulation ~3-6 ms), not fixtures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from opennmes.errors import ModelError

__all__ = ["EmgModel", "EmgSynth"]


@dataclass(frozen=True)
class EmgModel:
    """EMG synthesis parameters of one muscle (volts, seconds).

    Parameters
    ----------
    mwave_max : float
        Peak M-wave amplitude at full recruitment, V.
    mwave_latency : float
        Delay from pulse onset to the M-wave start, s.
    mwave_width : float
        Width (Gaussian sigma) of the M-wave phases, s.
    artefact_gain : float
        Artefact voltage per ampere of stimulation current, V/A.
    artefact_tail : float
        Tail amplitude relative to the first-phase artefact.
    artefact_tau : float
        Time constant of the artefact tail, s.
    volitional_rms : float
        Rms of the volitional EMG at full voluntary activation, V.
    noise_rms : float
        Rms of the white measurement noise, V.
    """

    mwave_max: float = 5e-3
    mwave_latency: float = 4e-3
    mwave_width: float = 1.5e-3
    artefact_gain: float = 0.05
    artefact_tail: float = 0.1
    artefact_tau: float = 1e-3
    volitional_rms: float = 0.5e-3
    noise_rms: float = 5e-6

    def __post_init__(self) -> None:
        for k, v in self.__dict__.items():
            if not (math.isfinite(v) and v >= 0):
                raise ModelError(f"EMG parameter {k} = {v!r} must be finite and >= 0")
        if self.mwave_width <= 0 or self.artefact_tau <= 0:
            raise ModelError("mwave_width and artefact_tau must be > 0 s")

    @property
    def reach(self) -> float:
        """How long after a pulse it still contributes to the EMG, s."""
        return max(self.mwave_latency + 8 * self.mwave_width, 12 * self.artefact_tau) + 1e-3


@njit(cache=True)
def _pulse_emg(pt: np.ndarray, rec: np.ndarray, amp: np.ndarray, pw: np.ndarray,
               gap: np.ndarray, amp2: np.ndarray, pw2: np.ndarray, k0: int, n: int,
               sfreq: float, mp: np.ndarray, white: np.ndarray, vol_amp: np.ndarray,
               sos: np.ndarray, zi: np.ndarray, noise: np.ndarray, out: np.ndarray) -> None:
    """EMG samples k0..k0+n-1 into ``out``: M-waves and artefacts of the pulses, then the
    band-limited volitional EMG (``white`` through the biquads ``sos`` with state ``zi``,
    scaled per sample by ``vol_amp``) and the ``noise``. One kernel, one compilation."""
    y = _biquads(white, sos, zi)
    for j in range(n):
        out[j] = vol_amp[j] * y[j] + noise[j]
    mmax, lat, sig, gain, tail, tau, reach = mp[0], mp[1], mp[2], mp[3], mp[4], mp[5], mp[6]
    for i in range(pt.shape[0]):
        j0 = int(math.ceil(pt[i] * sfreq - 1e-9)) - k0
        j1 = int(math.floor((pt[i] + reach) * sfreq)) - k0 + 1
        if j0 < 0:
            j0 = 0
        if j1 > n:
            j1 = n
        end1 = pw[i]
        start2 = pw[i] + gap[i]
        end2 = start2 + pw2[i]
        for j in range(j0, j1):
            s = (k0 + j) / sfreq - pt[i]
            if s < 0.0 or s >= reach - 1e-3:  # the 1 ms margin keeps chunking exact
                continue
            v = 0.0
            if rec[i] > 0.0:
                x = (s - lat - 3.0 * sig) / sig
                if -4.0 < x < 4.0:
                    v += -mmax * rec[i] * x * math.exp(0.5 - 0.5 * x * x)
            if s < end1:
                v += gain * amp[i]
            elif s >= start2 and s < end2:
                v -= gain * amp2[i]
            elif s >= end2:
                v += gain * amp[i] * tail * math.exp(-(s - end2) / tau)
            out[j] += v


class EmgSynth:
    """Stateful EMG synthesiser of one muscle (streaming-safe).

    Parameters
    ----------
    model : EmgModel
        Parameters.
    sfreq : float
        Sampling rate, Hz.
    rng_vol, rng_noise : numpy.random.Generator
        Generators of the volitional EMG and the noise.
    """

    def __init__(self, model: EmgModel, sfreq: float, rng_vol: np.random.Generator,
                 rng_noise: np.random.Generator) -> None:
        self.model = model
        self.sfreq = sfreq
        self._rng_vol = rng_vol
        self._rng_noise = rng_noise
        hi = min(150.0, 0.45 * sfreq)
        lo = min(20.0, 0.5 * hi)
        self._sos = np.vstack([_biquad("high", lo, sfreq), _biquad("low", hi, sfreq)])
        self._zi = np.zeros((2, 2))
        gain = _impulse_rms(self._sos, max(int(sfreq), 16))
        self._vol_scale = 1.0 / gain if gain > 0 else 0.0
        m = model
        self._mp = np.array([m.mwave_max, m.mwave_latency, m.mwave_width, m.artefact_gain,
                             m.artefact_tail, m.artefact_tau, m.reach])

    def render(self, k0: int, n: int, pulses: dict[str, np.ndarray],
               activation: np.ndarray) -> np.ndarray:
        """EMG samples ``k0 .. k0+n-1``.

        ``pulses`` holds arrays ``t, recruitment, amplitude, phase_width, interphase_gap,
        amplitude2, phase_width2`` of every pulse that can reach these samples (from
        ``reach`` s before the first one); ``activation`` the voluntary activation per sample.
        """
        out = np.zeros(n)
        if n == 0:
            return out
        white = self._rng_vol.standard_normal(n)
        noise = self.model.noise_rms * self._rng_noise.standard_normal(n)
        vol_amp = self.model.volitional_rms * self._vol_scale * activation
        _pulse_emg(pulses["t"], pulses["recruitment"], pulses["amplitude"],
                   pulses["phase_width"], pulses["interphase_gap"], pulses["amplitude2"],
                   pulses["phase_width2"], k0, n, self.sfreq, self._mp, white, vol_amp,
                   self._sos, self._zi, noise, out)
        return out


def _biquad(kind: str, f0: float, fs: float) -> np.ndarray:
    """RBJ-cookbook Butterworth (Q = 1/sqrt 2) biquad ``[b0, b1, b2, a1, a2]`` (a0 = 1)."""
    w0 = 2.0 * math.pi * f0 / fs
    alpha = math.sin(w0) / (2.0 / math.sqrt(2.0))
    c = math.cos(w0)
    if kind == "low":
        b = [(1.0 - c) / 2.0, 1.0 - c, (1.0 - c) / 2.0]
    else:
        b = [(1.0 + c) / 2.0, -(1.0 + c), (1.0 + c) / 2.0]
    a0 = 1.0 + alpha
    return np.array([b[0] / a0, b[1] / a0, b[2] / a0, -2.0 * c / a0, (1.0 - alpha) / a0])


def _impulse_rms(sos: np.ndarray, n: int) -> float:
    """Root of the summed squared impulse response of the biquad cascade (plain Python)."""
    x = [1.0] + [0.0] * (n - 1)
    for b0, b1, b2, a1, a2 in sos.tolist():
        z1 = z2 = 0.0
        y = []
        for xi in x:
            yi = b0 * xi + z1
            z1 = b1 * xi - a1 * yi + z2
            z2 = b2 * xi - a2 * yi
            y.append(yi)
        x = y
    return math.sqrt(sum(v * v for v in x))


@njit(cache=True, inline="always")
def _biquads(x: np.ndarray, sos: np.ndarray, zi: np.ndarray) -> np.ndarray:
    """Cascade of biquads (transposed direct form II); ``zi`` (n_sections, 2) is updated."""
    y = x.copy()
    for k in range(sos.shape[0]):
        b0, b1, b2, a1, a2 = sos[k, 0], sos[k, 1], sos[k, 2], sos[k, 3], sos[k, 4]
        z1 = zi[k, 0]
        z2 = zi[k, 1]
        for i in range(y.shape[0]):
            xi = y[i]
            yi = b0 * xi + z1
            z1 = b1 * xi - a1 * yi + z2
            z2 = b2 * xi - a2 * yi
            y[i] = yi
        zi[k, 0] = z1
        zi[k, 1] = z2
    return y
