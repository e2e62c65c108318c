"""Adherence: sessions done against prescribed, intensity reached, comfort ratings.

A session is *done* when it delivered at least the prescription's ``done_share`` of the dose
its program plans (the session record's ``share``), however it ended; one stopped after a
contraction is *partial*, even though it was stopped on purpose.

Sessions come from the store. What was delivered is read from the recorded pulses (peak
amplitude per channel, contractions counted as pulse trains separated by more than 1 s);
where no pulses were recorded, ``intensity`` events are used. Events this module reads
(as written by ``opennmes.session``):

``intensity``
    ``{"channel": name, "new": A}`` (or ``"amplitude": A``): the live level of a channel.
``comfort``
    ``{"score": 0..10}`` (or ``"rating"``): 0 = worst, 10 = fully comfortable; the last
    one counts.
``skin_check`` with ``"ok": false``, ``adverse_event`` with a ``"note"``
    Listed in :attr:`SessionSummary.notes`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from opennmes.therapy._prescription import Schedule

__all__ = ["SessionSummary", "WeekAdherence", "Adherence", "summarise_session", "adherence",
           "CONTRACTION_GAP"]

CONTRACTION_GAP = 1.0
"""A pause longer than this (s) between pulses on a channel starts a new contraction."""


@dataclass(frozen=True)
class SessionSummary:
    """What one session delivered.

    Attributes
    ----------
    session_id : int
    started_at : datetime (UTC)
    status : str
        ``finished``, ``aborted``, ``interrupted`` or ``running``.
    duration : float
        Wall-clock length in s (0 while running).
    reached : dict of str to float
        Peak amplitude delivered per channel, A.
    comfort : float or None
        Last comfort rating, 0 (unbearable) .. 10 (fully comfortable).
    contractions : int
        Pulse trains on the busiest channel (gaps > :data:`CONTRACTION_GAP`).
    program_version : int
    notes : tuple of str
        Adverse events and failed skin checks, in order.
    charge : float
        Total first-phase charge delivered on all channels, C.
    stim_time : float
        Time with output on the busiest channel, s.
    tolerated : dict of str to float, or None
        Highest level felt without discomfort per channel, A (the dose record's
        ``tolerated_level``); None for a record written before it was kept.
    share : float or None
        Share of the program's planned dose delivered (the dose record's ``share``:
        contractions, or stimulation time for continuous channels, the smallest over the
        channels); None for a record without a plan (older records, functional channels only).
    done_share : float
        The prescription's threshold: at least this share makes the session done.
    """

    session_id: int
    started_at: dt.datetime
    status: str
    duration: float
    reached: dict[str, float]
    comfort: float | None
    contractions: int
    program_version: int
    notes: tuple[str, ...] = ()
    charge: float = 0.0
    stim_time: float = 0.0
    tolerated: dict[str, float] | None = None
    share: float | None = None
    done_share: float = 0.8

    def felt(self, channel: str) -> float:
        """The level tolerated on ``channel`` (A): the felt level where the record has it,
        else the peak delivered (older records)."""
        if self.tolerated is not None:
            return self.tolerated.get(channel, 0.0)
        return self.reached.get(channel, 0.0)

    @property
    def completed(self) -> bool:
        """True when the session gave its dose: at least ``done_share`` of the planned dose
        delivered, however it ended; where the record has no plan, when it finished
        normally."""
        if self.status == "running":
            return False
        if self.share is None:
            return self.status == "finished"
        return self.share >= self.done_share - 1e-9

    @property
    def partial(self) -> bool:
        """Ended without giving its dose."""
        return self.status != "running" and not self.completed

    @property
    def day(self) -> dt.date:
        """Calendar day (UTC) of the start."""
        return self.started_at.date()


def _rating(data: Mapping[str, object]) -> float | None:
    for key in ("score", "rating", "comfort", "value"):
        v = data.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            return float(min(10.0, max(0.0, v)))
    return None


def _tolerated(dose: object) -> dict[str, float] | None:
    """Tolerated (felt) level per channel from a dose record that keeps it, else None."""
    if not isinstance(dose, dict):
        return None
    chans = [c for c in dose.get("channels", []) if isinstance(c, dict) and "channel" in c]
    if not chans or any("tolerated_level" not in c for c in chans):
        return None
    try:
        return {str(c["channel"]): float(c["tolerated_level"]) for c in chans}
    except (TypeError, ValueError):
        return None


def _from_dose(dose: object) -> tuple[dict[str, float], int, float, float] | None:
    """(reached, contractions, charge, stim_time) from the session runner's dose record."""
    if not isinstance(dose, dict) or not str(dose.get("format", "")).startswith(
            "opennmes.session-dose/"):
        return None
    chans = [c for c in dose.get("channels", []) if isinstance(c, dict) and "channel" in c]
    if not chans:
        return None
    try:
        reached = {str(c["channel"]): float(c["peak_amplitude"]) for c in chans}
        return (reached, max(int(c["contractions"]) for c in chans),
                sum(float(c["total_charge"]) for c in chans),
                max(float(c["stim_time"]) for c in chans))
    except (KeyError, TypeError, ValueError):
        return None


def _share(dose: object) -> float | None:
    v = dose.get("share") if isinstance(dose, dict) else None
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def summarise_session(record: object, done_share: float = 0.8) -> SessionSummary:
    """A :class:`SessionSummary` from a store ``SessionRecord`` (``store.load_session``);
    ``done_share`` is the prescription's threshold for a session to count as done.

    The runner's dose record (``opennmes.session-dose/1``) is used when present (its
    contractions count only trains of at least half the planned contraction); otherwise the
    figures are computed from the recorded pulses."""
    info = record.info  # type: ignore[attr-defined]
    pulses = record.pulses  # type: ignore[attr-defined]
    reached: dict[str, float] = {}
    contractions = 0
    charge = stim_time = 0.0
    if len(pulses):
        charge = float((pulses.amplitude * pulses.phase_width).sum())
        for i, name in enumerate(pulses.channel_names):
            m = pulses.channel == i
            if not m.any():
                continue
            reached[name] = float(np.maximum(pulses.amplitude[m], pulses.amplitude2[m]).max())
            t = np.sort(pulses.t[m])
            gaps = np.diff(t)
            period = float(np.median(gaps)) if gaps.size else 0.0
            contractions = max(contractions, int(1 + (gaps > CONTRACTION_GAP).sum()))
            stim_time = max(stim_time, float(np.minimum(gaps, period).sum()) + period)
    from_dose = _from_dose(getattr(record, "dose", None))
    if from_dose is not None:
        reached, contractions, charge, stim_time = from_dose
    comfort = None
    notes: list[str] = []
    for ev in record.events:  # type: ignore[attr-defined]
        if ev.kind == "comfort":
            comfort = _rating(ev.data) if _rating(ev.data) is not None else comfort
        elif ev.kind == "intensity" and not len(pulses):
            ch = ev.data.get("channel")
            amp = ev.data.get("new", ev.data.get("amplitude"))
            if isinstance(ch, str) and isinstance(amp, int | float):
                reached[ch] = max(reached.get(ch, 0.0), float(amp))
        elif ev.kind == "adverse_event":
            notes.append(f"adverse event at {ev.t:.0f} s: {ev.data.get('note', '')}")
        elif ev.kind == "skin_check" and ev.data.get("ok") is False:
            where = f" ({ev.data['channel']})" if ev.data.get("channel") else ""
            notes.append(f"skin check failed{where}: {ev.data.get('note', '')}")
    end = info.ended_at
    duration = (end - info.started_at).total_seconds() if end is not None else 0.0
    return SessionSummary(info.id, info.started_at, info.status, max(0.0, duration), reached,
                          comfort, contractions, info.program_version, tuple(notes), charge,
                          stim_time, _tolerated(getattr(record, "dose", None)),
                          _share(getattr(record, "dose", None)), done_share)


@dataclass(frozen=True)
class WeekAdherence:
    """One programme week: sessions prescribed and done (``done`` counts finished ones)."""

    week: int
    start: dt.date
    prescribed: int
    done: int
    partial: int


@dataclass(frozen=True)
class Adherence:
    """Adherence to a prescription up to ``as_of``.

    Attributes
    ----------
    expected : int
        Sessions prescribed by the end of ``as_of`` (pro rata per day).
    done : int
        Sessions that gave their dose (:attr:`SessionSummary.completed`) in the programme
        window up to ``as_of``.
    partial : int
        Sessions that ended without giving their dose (stopped early, aborted, interrupted).
    rate : float or None
        ``done / expected`` (None before the first session is due).
    mean_reached : float or None
        Mean over sessions of (peak amplitude / target) over the channels with a target.
    mean_comfort : float or None
    minutes : float
        Total stimulation session time, min.
    contractions : int
        Contractions delivered in all counted sessions.
    weeks : tuple of WeekAdherence
    sessions : tuple of SessionSummary
        The sessions counted, oldest first.
    streak_days : int
        Consecutive days with a finished session, ending today (``as_of``) or yesterday.
    weeks_on_target : int
        Consecutive complete weeks with all prescribed sessions done, ending with the last
        complete week.
    """

    as_of: dt.date
    expected: int
    done: int
    partial: int
    rate: float | None
    mean_reached: float | None
    mean_comfort: float | None
    minutes: float
    contractions: int
    weeks: tuple[WeekAdherence, ...]
    sessions: tuple[SessionSummary, ...]
    streak_days: int = 0
    weeks_on_target: int = 0


def adherence(schedule: Schedule, sessions: Sequence[SessionSummary],
              targets: Mapping[str, float | None], as_of: dt.date) -> Adherence:
    """Sessions done against prescribed up to ``as_of``, with intensity and comfort.

    Parameters
    ----------
    schedule : Schedule
    sessions : sequence of SessionSummary
        The prescription's sessions (any order; those outside the programme are ignored).
    targets : mapping channel -> float or None
        Target amplitudes in A.
    as_of : datetime.date
    """
    last = min(as_of, schedule.end_date)
    inside = sorted((s for s in sessions if schedule.start_date <= s.day <= last),
                    key=lambda s: s.started_at)
    done = [s for s in inside if s.completed]
    partial = [s for s in inside if s.partial]
    expected = schedule.expected_by(as_of)
    fractions = []
    for s in done:
        ratios = [s.reached.get(ch, 0.0) / t for ch, t in targets.items() if t]
        if ratios:
            fractions.append(float(np.mean(ratios)))
    comforts = [s.comfort for s in inside if s.comfort is not None]
    weeks = []
    for w in range(schedule.weeks):
        start = schedule.start_date + dt.timedelta(days=7 * w)
        if start > as_of:
            break
        end = start + dt.timedelta(days=6)
        in_week = [s for s in inside if start <= s.day <= end]
        prescribed = schedule.expected_by(min(end, as_of)) - schedule.expected_by(
            start - dt.timedelta(days=1))
        weeks.append(WeekAdherence(w + 1, start, prescribed,
                                   sum(s.completed for s in in_week),
                                   sum(s.partial for s in in_week)))
    days = {s.day for s in done}
    streak, day = 0, as_of if as_of in days else as_of - dt.timedelta(days=1)
    while day in days:
        streak, day = streak + 1, day - dt.timedelta(days=1)
    on_target = 0
    for wk in reversed([x for x in weeks if x.start + dt.timedelta(days=6) <= as_of]):
        if wk.done < wk.prescribed:
            break
        on_target += 1
    return Adherence(
        streak_days=streak, weeks_on_target=on_target,
        as_of=as_of, expected=expected, done=len(done), partial=len(partial),
        rate=len(done) / expected if expected else None,
        mean_reached=float(np.mean(fractions)) if fractions else None,
        mean_comfort=float(np.mean(comforts)) if comforts else None,
        minutes=sum(s.duration for s in inside) / 60.0,
        contractions=sum(s.contractions for s in inside),
        weeks=tuple(weeks), sessions=tuple(inside))
