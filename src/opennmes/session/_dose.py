"""The dose record of a session: what was actually delivered, per channel.

Computed from the delivered pulses (the device's acknowledged record or the emulator's, never
the plan), with the dose arithmetic of :mod:`opennmes.safety` (CPS §4.2: Q = I t, I_rms =
I sqrt(t f), J = I_rms / A) and the live intensity levels the operator reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from opennmes.safety import dose_summary, phase_charges
from opennmes.schedule import PulseSchedule

__all__ = ["ChannelRecord", "channel_trains", "session_dose", "DOSE_FORMAT"]

DOSE_FORMAT = "opennmes.session-dose/1"
_BIN = 1e-3  # A: time-at-intensity bins are 1 mA wide


@dataclass(frozen=True)
class ChannelRecord:
    """Dose of one channel (SI units).

    Attributes
    ----------
    channel : str
    pulses : int
        Pulses delivered.
    contractions : int
        Pulse trains lasting at least half the planned contraction (ramp up + on + ramp
        down); all trains for continuous channels.
    trains : int
        Pulse trains (pulses less than ``max(3 / f, 0.25 s)`` apart).
    stim_time : float
        Time with output, s (sum over pulses of the interval to the next pulse, capped at
        the channel period).
    time_at_intensity : list of [float, float]
        ``[amplitude A (1 mA bins), time s]`` pairs, ascending.
    total_charge : float
        Sum of first-phase charges, C.
    max_charge_per_phase : float
        C.
    peak_amplitude : float
        Largest delivered amplitude, A.
    peak_current_density : float
        A/m^2.
    max_rms_current_density : float
        Largest 1 s-window rms current density, A/m^2.
    max_level : float
        Highest live intensity level set, A (the maximum tolerated intensity reached).
    final_level : float
        Level at the end, A.
    area : float
        Electrode area, m^2.
    """

    channel: str
    pulses: int
    contractions: int
    trains: int
    stim_time: float
    time_at_intensity: list[list[float]]
    total_charge: float
    max_charge_per_phase: float
    peak_amplitude: float
    peak_current_density: float
    max_rms_current_density: float
    max_level: float
    final_level: float
    area: float


def channel_trains(t: np.ndarray, period: float) -> list[tuple[float, float]]:
    """(start, end) of the pulse trains in onsets ``t`` (s) of a channel of ``period`` s."""
    if t.size == 0:
        return []
    gap = max(3.0 * period, 0.25)
    cut = np.flatnonzero(np.diff(t) > gap) + 1
    starts = np.concatenate(([0], cut))
    ends = np.concatenate((cut - 1, [t.size - 1]))
    return [(float(t[a]), float(t[b]) + period) for a, b in zip(starts, ends, strict=True)]


def session_dose(
    delivered: PulseSchedule,
    areas: Mapping[str, float],
    periods: Mapping[str, float],
    contraction_time: Mapping[str, float | None],
    max_levels: Mapping[str, float],
    final_levels: Mapping[str, float],
) -> list[ChannelRecord]:
    """Per-channel dose of the delivered pulses.

    Parameters
    ----------
    delivered : PulseSchedule
        Pulses the device delivered.
    areas : mapping
        Electrode area per channel, m^2.
    periods : mapping
        Pulse period per channel, s (1 / frequency).
    contraction_time : mapping
        Planned ramp up + on + ramp down per channel, s (None: continuous).
    max_levels, final_levels : mapping
        Highest and last live intensity level per channel, A.
    """
    base = {d.channel: d for d in dose_summary(delivered, areas)}
    q1 = phase_charges(delivered)[0] if len(delivered) else np.empty(0)
    out = []
    for i, name in enumerate(delivered.channel_names):
        m = delivered.channel == i
        t = delivered.t[m]
        amp = delivered.amplitude[m]
        period = float(periods[name])
        trains = channel_trains(t, period)
        planned = contraction_time.get(name)
        if planned:
            contractions = sum(1 for a, b in trains if b - a >= 0.5 * planned)
        else:
            contractions = len(trains)
        dt = np.minimum(np.diff(t, append=t[-1] + period) if t.size else np.empty(0), period)
        stim_time = float(dt.sum())
        tai: list[list[float]] = []
        if t.size:
            bins = np.round(amp / _BIN).astype(np.int64)
            for b in np.unique(bins):
                tai.append([float(b * _BIN), float(dt[bins == b].sum())])
        d = base[name]
        out.append(ChannelRecord(
            channel=name, pulses=int(m.sum()), contractions=contractions, trains=len(trains),
            stim_time=stim_time, time_at_intensity=tai,
            total_charge=float(q1[m].sum()) if t.size else 0.0,
            max_charge_per_phase=d.max_charge_per_phase,
            peak_amplitude=float(amp.max()) if t.size else 0.0,
            peak_current_density=d.peak_current_density,
            max_rms_current_density=d.max_rms_current_density,
            max_level=float(max_levels.get(name, 0.0)),
            final_level=float(final_levels.get(name, 0.0)),
            area=float(areas[name]),
        ))
    return out


def dose_document(records: list[ChannelRecord], *, complete: bool) -> dict[str, object]:
    """The plain JSON stored with the session (``complete`` False while it runs)."""
    return {"format": DOSE_FORMAT, "complete": complete, "units": {
        "stim_time": "s", "time_at_intensity": "[A, s]", "total_charge": "C",
        "max_charge_per_phase": "C", "peak_amplitude": "A", "peak_current_density": "A/m^2",
        "max_rms_current_density": "A/m^2", "max_level": "A", "final_level": "A",
        "area": "m^2"},
        "channels": [asdict(r) for r in records]}
