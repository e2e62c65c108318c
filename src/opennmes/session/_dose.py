"""The dose record of a session: what was actually delivered, per channel.

Computed from the delivered pulses (the device's acknowledged record or the emulator's, never
the plan), with the dose arithmetic of :mod:`opennmes.safety` (CPS §4.2: Q = I t, I_rms =
I sqrt(t f), J = I_rms / A) and the live intensity levels the operator reached.

A level is *tolerated* only when it was felt: delivered without a break for
:data:`TOLERATED_AFTER` s of one pulse train (or the whole plateau of a shorter contraction,
:func:`hold_time`; for a triggered or closed-loop channel, whose bursts last as long as the
movement, half of the burst), and not at or above the amplitude playing when
the patient reported discomfort in that train (a comfort rating of :data:`DISCOMFORT_SCORE` or
less, an adverse event, an emergency stop, up to :data:`TOLERATED_AFTER` s after the train).
A level set during the off phase and never played, or played for less than that, is the
highest level *set* (``max_level``), not a tolerated one; the highest level *delivered* is
``peak_amplitude``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from opennmes.safety import dose_summary, phase_charges
from opennmes.schedule import PulseSchedule

__all__ = ["ChannelRecord", "channel_trains", "session_dose", "tolerated_levels", "DOSE_FORMAT",
           "TOLERATED_AFTER", "DISCOMFORT_SCORE", "hold_time", "planned_dose", "dose_share",
           "dose_document"]

DOSE_FORMAT = "opennmes.session-dose/1"
TOLERATED_AFTER = 2.0
"""A level counts as tolerated after this long without a break in one pulse train, s
(OpenNMES rule: long enough to be felt as a contraction, shorter than every plateau of the
protocol library, 3-15 s)."""
DISCOMFORT_SCORE = 3
"""A comfort rating at or below this (0 unbearable, 10 fully comfortable) reports discomfort."""
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
        Highest live intensity level set, A (set, not necessarily felt).
    tolerated_level : float
        Highest level felt without discomfort (see the module notes), A; 0 when none was.
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
    tolerated_level: float = 0.0


def channel_trains(t: np.ndarray, period: float) -> list[tuple[float, float]]:
    """(start, end) of the pulse trains in onsets ``t`` (s) of a channel of ``period`` s."""
    if t.size == 0:
        return []
    gap = max(3.0 * period, 0.25)
    cut = np.flatnonzero(np.diff(t) > gap) + 1
    starts = np.concatenate(([0], cut))
    ends = np.concatenate((cut - 1, [t.size - 1]))
    return [(float(t[a]), float(t[b]) + period) for a, b in zip(starts, ends, strict=True)]


def _train_counts(t: np.ndarray, period: float, planned: float | None
                  ) -> tuple[list[tuple[float, float]], int, np.ndarray]:
    """(trains, contractions, time each pulse stands for) of one channel's onsets ``t``: a
    contraction is a train of at least half the ``planned`` one (every train when None), a
    pulse stands for the interval to the next one, at most a period."""
    trains = channel_trains(t, period)
    contractions = sum(1 for a, b in trains if b - a >= 0.5 * planned) if planned \
        else len(trains)
    dt = np.minimum(np.diff(t, append=t[-1] + period) if t.size else np.empty(0), period)
    return trains, contractions, dt


def hold_time(on: float | None, *, driven: bool = False) -> float | None:
    """How long a level must play without a break to count as felt, s:
    :data:`TOLERATED_AFTER`, or the whole plateau of a channel whose ``on`` time is shorter;
    None for a triggered or closed-loop (``driven``) channel: half of each burst, at most
    :data:`TOLERATED_AFTER`."""
    if driven:
        return None
    return TOLERATED_AFTER if not on or on <= 0 else min(TOLERATED_AFTER, float(on))


def _discomfort_times(events: Iterable[Any]) -> list[float]:
    """Session times at which the patient signalled discomfort."""
    out = []
    for ev in events:
        kind = getattr(ev, "kind", "")
        if (kind == "comfort" and int(getattr(ev, "score", 10)) <= DISCOMFORT_SCORE) \
                or kind == "adverse_event" \
                or (kind == "stop" and getattr(ev, "how", "") == "emergency"):
            out.append(float(ev.t))
    return sorted(out)


def tolerated_levels(delivered: PulseSchedule, periods: Mapping[str, float],
                     events: Iterable[Any] = (),
                     holds: Mapping[str, float | None] | None = None) -> dict[str, float]:
    """The highest amplitude each channel delivered without a break for its hold time
    (``holds``, default :data:`TOLERATED_AFTER` s; None: half of each train) in one train,
    below any amplitude that was playing when discomfort was reported (A; 0 where none
    qualifies)."""
    bad = _discomfort_times(events)
    out: dict[str, float] = {}
    for i, name in enumerate(delivered.channel_names):
        m = delivered.channel == i
        t, amp = delivered.t[m], delivered.amplitude[m]
        period = float(periods[name])
        given = (holds or {}).get(name, TOLERATED_AFTER)
        best = 0.0
        for a, b in channel_trains(t, period):
            hold = min(TOLERATED_AFTER, 0.5 * (b - a)) if given is None else float(given)
            lo = int(np.searchsorted(t, a - 1e-9, side="left"))
            hi = int(np.searchsorted(t, b - period + 1e-9, side="right"))
            tt, aa = t[lo:hi], amp[lo:hi]
            ceiling = np.inf  # levels at or above the amplitude playing at a discomfort report
            for td in bad:
                if a <= td <= b + TOLERATED_AFTER:
                    k = max(int(np.searchsorted(tt, td, side="right")) - 1, 0)
                    ceiling = min(ceiling, float(aa[k]))
            for level in np.unique(aa)[::-1]:
                if level <= best or level <= 0:
                    break
                if level >= ceiling - 1e-9:
                    continue
                on = aa >= level - 1e-9
                # longest run of consecutive pulses at or above the level, in s
                edges = np.flatnonzero(np.diff(np.concatenate(([0], on.astype(np.int8), [0]))))
                runs = [tt[e - 1] - tt[s0] + period for s0, e in zip(edges[::2], edges[1::2],
                                                                      strict=True)]
                if runs and max(runs) >= hold - 1e-9:
                    best = float(level)
                    break
        out[name] = best
    return out


def session_dose(
    delivered: PulseSchedule,
    areas: Mapping[str, float],
    periods: Mapping[str, float],
    contraction_time: Mapping[str, float | None],
    max_levels: Mapping[str, float],
    final_levels: Mapping[str, float],
    events: Iterable[Any] = (),
    holds: Mapping[str, float | None] | None = None,
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
    events : iterable of SessionEvent
        The session's events: discomfort reports bound the tolerated level.
    holds : mapping, optional
        Per channel, how long a level must play to count as felt, s (:func:`hold_time`).
    """
    base = {d.channel: d for d in dose_summary(delivered, areas)}
    tolerated = tolerated_levels(delivered, periods, events, holds)
    q1 = phase_charges(delivered)[0] if len(delivered) else np.empty(0)
    out = []
    for i, name in enumerate(delivered.channel_names):
        m = delivered.channel == i
        t = delivered.t[m]
        amp = delivered.amplitude[m]
        period = float(periods[name])
        trains, contractions, dt = _train_counts(t, period, contraction_time.get(name))
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
            tolerated_level=tolerated[name],
        ))
    return out


def planned_dose(plan: PulseSchedule, periods: Mapping[str, float],
                 contraction_time: Mapping[str, float | None]) -> dict[str, dict[str, Any]]:
    """What the program plans per channel, counted as :func:`session_dose` counts what was
    delivered: ``contractions`` (None for a continuous channel or one driven by a trigger or
    a closed loop, whose bursts cannot be planned) and ``stim_time`` (s; None when driven)."""
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(plan.channel_names):
        if name not in contraction_time:  # driven: no plan to compare with
            out[name] = {"contractions": None, "stim_time": None}
            continue
        planned = contraction_time[name]
        _, contractions, dt = _train_counts(plan.t[plan.channel == i], float(periods[name]),
                                            planned)
        out[name] = {"contractions": contractions if planned else None,
                     "stim_time": float(dt.sum())}
    return out


def dose_share(dose: Mapping[str, Any] | None) -> float | None:
    """The share of the planned dose a stored dose document delivered: per channel,
    contractions delivered / planned (stimulation time for continuous channels), the
    smallest over the channels with a plan; None when the document has no plan (an older
    record, or only driven channels)."""
    if not isinstance(dose, Mapping):
        return None
    plan = dose.get("planned")
    if not isinstance(plan, Mapping):
        return None
    shares = []
    for ch in dose.get("channels", []):
        p = plan.get(ch.get("channel")) if isinstance(ch, Mapping) else None
        if not isinstance(p, Mapping):
            continue
        if p.get("contractions"):
            shares.append(float(ch.get("contractions", 0)) / float(p["contractions"]))
        elif p.get("stim_time"):
            shares.append(float(ch.get("stim_time", 0.0)) / float(p["stim_time"]))
    return min(1.0, min(shares)) if shares else None


def dose_document(records: list[ChannelRecord], *, complete: bool,
                  planned: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, object]:
    """The plain JSON stored with the session (``complete`` False while it runs); with
    ``planned`` (:func:`planned_dose`), the program's plan beside what was delivered and
    the share delivered (:func:`dose_share`)."""
    doc = _dose_doc(records, complete)
    if planned is not None:
        doc["planned"] = {k: dict(v) for k, v in planned.items()}
        doc["share"] = dose_share(doc)
    return doc


def _dose_doc(records: list[ChannelRecord], complete: bool) -> dict[str, object]:
    return {"format": DOSE_FORMAT, "complete": complete, "units": {
        "stim_time": "s", "time_at_intensity": "[A, s]", "total_charge": "C",
        "max_charge_per_phase": "C", "peak_amplitude": "A", "peak_current_density": "A/m^2",
        "max_rms_current_density": "A/m^2", "max_level": "A", "final_level": "A",
        "area": "m^2", "tolerated_level": "A"},
        "channels": [asdict(r) for r in records]}
