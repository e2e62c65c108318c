"""Dose arithmetic of a PulseSchedule: charge, current density, energy, power, net DC.

Formulas from IEC 60601-2-10 practice as worked in ``shared/reference/
clinical-protocols-and-safety.md`` §4.2 (S14, Enraf-Nonius) and ``muscle-and-nerve-models.md``
§5.2:

- charge per phase ``Q = I_peak * t_phase`` (a half-sine phase carries ``2/pi`` of that);
- rms current of a pulsed waveform ``I_rms = I_peak * sqrt(t_phase * f)``, with
  ``2 * t_phase`` for symmetric biphasic pulses; here computed exactly as
  ``sqrt(sum(I^2 * t) / window)`` over a sliding window, which equals the formula during a
  steady train;
- current density ``J = I_rms / A``; energy per phase into R ``E = I_peak^2 * R * t_phase``;
- average power density ``P/A = I_rms^2 * R / A``;
- Shannon's ``k = log10(D) + log10(Q)`` with Q in uC and D in uC/cm^2 (informational only for
  surface electrodes; Shannon 1992, IEEE TBME 39:424).

All inputs and outputs are SI (A, s, C, J, W, m^2) unless a name says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from opennmes.errors import SafetyLimitError
from opennmes.schedule import PulseSchedule, Waveform

__all__ = [
    "RMS_WINDOW",
    "phase_charges",
    "net_charge",
    "squared_current_time",
    "energy_per_pulse",
    "sliding_rms_current",
    "channel_areas",
    "shannon_k",
]

RMS_WINDOW = 1.0
"""Window of the sliding rms current, in s."""

_SINE_CHARGE = 2.0 / np.pi  # mean of |sin| over a half period
_SINE_POWER = 0.5  # mean of sin^2 over a half period


def phase_charges(s: PulseSchedule) -> tuple[np.ndarray, np.ndarray]:
    """Charge of the first and second phase of every pulse, in coulombs."""
    q1 = s.amplitude * s.phase_width
    q2 = s.amplitude2 * s.phase_width2
    sine = s.waveform == Waveform.SINE_CYCLE
    if sine.any():
        q1 = np.where(sine, q1 * _SINE_CHARGE, q1)
        q2 = np.where(sine, q2 * _SINE_CHARGE, q2)
    return q1, q2


def net_charge(s: PulseSchedule) -> np.ndarray:
    """Net charge (first minus second phase) of every pulse, in coulombs (net DC)."""
    q1, q2 = phase_charges(s)
    return q1 - q2


def squared_current_time(s: PulseSchedule) -> np.ndarray:
    """Integral of i(t)^2 over every pulse, in A^2 s (energy per ohm)."""
    e = s.amplitude**2 * s.phase_width + s.amplitude2**2 * s.phase_width2
    sine = s.waveform == Waveform.SINE_CYCLE
    if sine.any():
        e = np.where(sine, e * _SINE_POWER, e)
    return e


def energy_per_pulse(s: PulseSchedule, load_ohm: float) -> np.ndarray:
    """Energy of every pulse delivered into a resistive load of ``load_ohm`` ohms, in J."""
    return squared_current_time(s) * load_ohm


def sliding_rms_current(
    s: PulseSchedule,
    window: float = RMS_WINDOW,
    *,
    history: PulseSchedule | None = None,
) -> np.ndarray:
    """rms current of each pulse's channel over the ``window`` seconds ending at its onset.

    Parameters
    ----------
    s : PulseSchedule
    window : float
        Averaging window in s (default 1 s).
    history : PulseSchedule, optional
        Pulses delivered just before ``s`` (same channels), so that a chunked stream gives the
        same values as the whole schedule.

    Returns
    -------
    ndarray
        rms current in A, one value per pulse of ``s``.
    """
    out = np.zeros(len(s))
    if len(s) == 0:
        return out
    full = s if history is None or len(history) == 0 else PulseSchedule.concat([history, s])
    offset = len(full) - len(s) if history is not None else 0
    e_all = squared_current_time(full)
    for ch in np.unique(s.channel):
        idx = np.flatnonzero(full.channel == ch)
        t = full.t[idx]
        cum = np.concatenate([[0.0], np.cumsum(e_all[idx])])
        # pulses within (t - window, t]; onsets sit on a 1 us grid, so one window back is
        # excluded with a 2 us tolerance
        lo = np.searchsorted(t, t - window + 2e-6, side="left")
        rms = np.sqrt(np.maximum(cum[1:] - cum[lo], 0.0) / window)
        mine = idx >= offset
        out[idx[mine] - offset] = rms[mine]
    return out


def channel_areas(s: PulseSchedule, areas: Mapping[str, float]) -> np.ndarray:
    """Electrode area (m^2) of each pulse's channel, from a mapping channel name -> area."""
    missing = [n for n in s.channel_names if n not in areas]
    if missing:
        raise SafetyLimitError(
            "electrode area", float("nan"), 0.0, "cm2",
            "current density needs the electrode area (IEC 60601-2-10 IFU, §4.2 reference)",
            where=f"channels {missing}", hint="give each channel's electrode area",
            comparison=">",
        )
    per_channel = np.array([areas[n] for n in s.channel_names], dtype=np.float64)
    bad = ~(per_channel > 0)
    if bad.any():
        name = s.channel_names[int(np.argmax(bad))]
        raise SafetyLimitError("electrode area", float(per_channel[bad][0]) * 1e4, 0.0, "cm2",
                               "an electrode needs a positive area", where=f"channel {name!r}",
                               comparison=">")
    return per_channel[s.channel]


def shannon_k(charge: np.ndarray | float, area: np.ndarray | float) -> np.ndarray:
    """Shannon's k = log10(Q [uC] * D [uC/cm^2]) for charge per phase ``charge`` (C) on
    ``area`` (m^2). Damage was seen at k >= 1.85 on brain tissue; informational for surface
    electrodes (Shannon 1992, IEEE TBME 39:424)."""
    q_uc = np.asarray(charge, dtype=np.float64) * 1e6
    d = q_uc / (np.asarray(area, dtype=np.float64) * 1e4)
    with np.errstate(divide="ignore"):
        return np.asarray(np.log10(q_uc * d))
