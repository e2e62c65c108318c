"""Synthetic surface EMG of a stimulated muscle: M-waves, artefact, volitional EMG and noise.

Per muscle, the EMG (V) at sampling rate ``sfreq`` is the sum of

* the **M-wave** after each pulse: a biphasic wave (first derivative of a Gaussian, width
  ``mwave_width``) starting ``mwave_latency`` after the pulse, peak amplitude
  ``mwave_max * r`` with ``r`` the fraction of motor units the pulse recruited (all recruited
  units fire together, so the M-wave scales with recruitment);
* the **stimulation artefact**: the pulse current through a gain (``artefact_gain`` V/A)
  during its phases (second phase inverted), then an exponential tail of
  ``artefact_tail`` times the first-phase value with time constant ``artefact_tau``;
* **volitional EMG**: band-limited (20-150 Hz, 2nd-order Butterworth) Gaussian noise with
  rms ``volitional_rms * a`` for voluntary activation ``a``;
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
               sfreq: float, mp: np.ndarray, out: np.ndarray) -> None:
    """Add M-waves and artefacts of pulses to ``out`` (samples k0..k0+n-1)."""
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
        from scipy.signal import butter, lfilter_zi

        self.model = model
        self.sfreq = sfreq
        self._rng_vol = rng_vol
        self._rng_noise = rng_noise
        hi = min(150.0, 0.45 * sfreq)
        lo = min(20.0, 0.5 * hi)
        b, a = butter(2, [lo / (sfreq / 2), hi / (sfreq / 2)], btype="band")
        self._b, self._a = b, a
        self._zi = lfilter_zi(b, a) * 0.0
        gain = math.sqrt(float(np.sum(_impulse(b, a, int(sfreq)) ** 2)))
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
        _pulse_emg(pulses["t"], pulses["recruitment"], pulses["amplitude"],
                   pulses["phase_width"], pulses["interphase_gap"], pulses["amplitude2"],
                   pulses["phase_width2"], k0, n, self.sfreq, self._mp, out)
        from scipy.signal import lfilter

        white = self._rng_vol.standard_normal(n)
        vol, self._zi = lfilter(self._b, self._a, white, zi=self._zi)
        out += self.model.volitional_rms * self._vol_scale * activation * vol
        out += self.model.noise_rms * self._rng_noise.standard_normal(n)
        return out


def _impulse(b: np.ndarray, a: np.ndarray, n: int) -> np.ndarray:
    from scipy.signal import lfilter

    x = np.zeros(max(n, 16))
    x[0] = 1.0
    return np.asarray(lfilter(b, a, x))
