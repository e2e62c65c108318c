"""Mapping schedule chunks onto a device that generates pulses on its own period grid.

Hasomed devices run each channel on a fixed period once started; the host changes amplitude,
pulse width (and, where the device allows it, the pulse pattern inside a period) by sending
updates. This module turns chunks of a :class:`PulseSchedule` into the updates to send and when,
and rebuilds, from the updates the device acknowledged, the pulses it delivered. It is pure: no
I/O, no clock.

Rules (checked, never approximated):

* every pulse of a channel falls in one period ``[k * period, (k + 1) * period)`` of that
  channel's grid; the pulses of one period form its *pattern* (onsets relative to the period
  start and shapes), which the backend accepts or refuses with an explanation;
* updates leave half a period before the period they change, so an update never races the
  pulse before it, and at most one update is needed per period.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from opennmes.errors import ProgramError
from opennmes.schedule import PulseSchedule

__all__ = ["GridChannel", "Pulse", "Pattern", "GridPlan", "Update", "TOL"]

TOL = 20e-6
"""Timing tolerance in s: programs put onsets on whole microseconds, device grids are exact."""
SEND_MARGIN = 5e-3
"""s between the end of a period's pulses and an update for the next period."""

_FIELDS = ("dt", "amplitude", "phase_width", "interphase_gap", "amplitude2", "phase_width2",
           "waveform")


class Pulse(NamedTuple):
    """One pulse of a period pattern: onset ``dt`` after the period start (s), shape in SI."""

    dt: float
    amplitude: float
    phase_width: float
    interphase_gap: float
    amplitude2: float
    phase_width2: float
    waveform: int


Pattern = tuple[Pulse, ...]
"""The pulses of one period of one channel (empty tuple = no output)."""


@dataclass(frozen=True)
class GridChannel:
    """A program channel as the device plays it.

    Attributes
    ----------
    name : str
        Program channel name.
    device_channel : int
        Device channel index (0-based).
    period : float
        Period of this channel on the device, in s.
    offset : float
        Delay the device adds to every onset of this channel (e.g. its time slot), in s.
    busy : float
        How long after each period start the device is still playing that period (e.g. its
        whole channel list), in s; updates for the next period leave after it.
    """

    name: str
    device_channel: int
    period: float
    offset: float = 0.0
    busy: float = 0.0


@dataclass(frozen=True)
class Update:
    """A time ``t`` (s, relative to the start) to send an update; the patterns it carries are
    taken at the actual send time with :meth:`GridPlan.vector_at`."""

    t: float
    patterns: tuple[Pattern, ...]
    first: bool = False


Validator = Callable[[GridChannel, float, Pattern], None]


class GridPlan:
    """Plans updates for a stream of chunks and keeps what the device acknowledged.

    Parameters
    ----------
    channels : sequence of GridChannel
    channel_names : sequence of str
        Channel names of the schedule chunks.
    validate : callable
        ``validate(channel, period_start, pattern)`` raises ProgramError if the device cannot
        play the pattern exactly.
    """

    def __init__(self, channels: Sequence[GridChannel], channel_names: Sequence[str],
                 validate: Validator) -> None:
        self.channels = tuple(channels)
        self.channel_names = tuple(channel_names)
        self.validate = validate
        self._sched_index = [self.channel_names.index(c.name) for c in self.channels]
        self.current: list[Pattern] = [() for _ in self.channels]
        self.window_end = 0.0
        self.started = False
        self._cmd_t: list[float] = []
        self._cmd_a: list[float] = []
        self._cmd_changed: list[tuple[bool, ...]] = []
        self._cmd_p: list[tuple[Pattern, ...]] = []
        self.start_uncertainty = 0.0
        """s: the device's t = 0 is within this much of the host's (half the start command's
        round trip)."""
        self._carry: PulseSchedule | None = None
        self._tl: list[dict[int, Pattern]] = [{} for _ in self.channels]

    @property
    def max_period(self) -> float:
        return max(c.period for c in self.channels)

    # ------------------------------------------------------------------ planning
    def _timeline(self, chunk: PulseSchedule, gi: int, start: float, until: float
                  ) -> tuple[int, list[Pattern]]:
        gc = self.channels[gi]
        p = gc.period
        k0 = math.ceil((start - TOL) / p)
        k1 = max(math.ceil((until - TOL) / p), k0)
        idx = np.flatnonzero(chunk.channel == self._sched_index[gi])
        ks = np.floor((chunk.t[idx] + TOL) / p).astype(np.int64)
        first = k0
        if idx.size and ks[0] < k0:
            # pulses of the period that straddles the previous window's end: amend it
            if ks[0] < k0 - 1 or not self.started:
                j = int(idx[0])
                raise ProgramError(
                    f"channel {gc.name!r}: pulse at t = {chunk.t[j]:.6f} s belongs to a period "
                    f"that was already played (the stream is at {start:.6f} s); send chunks in "
                    "time order")
            first = k0 - 1
        pats: list[Pattern] = [() for _ in range(k1 - first)]
        if first < k0:
            pats[0] = self.current[gi]
        if idx.size == 0:
            return first, pats
        bounds = np.flatnonzero(np.diff(ks)) + 1
        for seg in np.split(np.arange(idx.size), bounds):
            rows = idx[seg]
            k = int(ks[seg[0]])
            t_k = k * p
            pat = tuple(
                Pulse(round(max(float(chunk.t[r]) - t_k, 0.0), 7), float(chunk.amplitude[r]),
                      float(chunk.phase_width[r]), float(chunk.interphase_gap[r]),
                      float(chunk.amplitude2[r]), float(chunk.phase_width2[r]),
                      int(chunk.waveform[r]))
                for r in rows if chunk.amplitude[r] > 0 or chunk.amplitude2[r] > 0)
            if k < k0:
                pat = pats[0] + pat
            if pat:
                self.validate(gc, t_k, pat)
            pats[k - first] = pat
        return first, pats

    def plan(self, chunk: PulseSchedule, until: float | None) -> list[Update]:
        """Updates for one chunk covering ``[window_end, until)`` s (relative to the start).

        ``until`` defaults to the earliest end of a period holding a channel's last pulse in
        the chunk (and at least just after the chunk's last pulse).
        """
        start = self.window_end
        if until is None:
            # the earliest end of a period that holds a channel's last pulse, and at least
            # just after the chunk's last pulse
            ends = []
            for gi, gc in enumerate(self.channels):
                idx = np.flatnonzero(chunk.channel == self._sched_index[gi])
                if idx.size:
                    k = math.floor((chunk.t[idx[-1]] + TOL) / gc.period)
                    ends.append((k + 1) * gc.period)
            last = float(chunk.t[-1]) + TOL if len(chunk) else start
            until = max(min(ends, default=start), last, start)
        until = round(until, 9)
        if until < start - 1e-12:
            raise ProgramError(f"until = {until} s is before the end of the previous chunk "
                               f"({start} s)")
        if self._carry is not None:
            chunk = PulseSchedule.concat([self._carry, chunk])
            self._carry = None
        # pulses of periods that start at or after `until` wait for the next chunk
        later = np.zeros(len(chunk), dtype=bool)
        for gi, gc in enumerate(self.channels):
            m = chunk.channel == self._sched_index[gi]
            later |= m & (np.floor((chunk.t + TOL) / gc.period) * gc.period >= until - TOL)
        if later.any():
            self._carry = chunk.take(np.flatnonzero(later))
            chunk = chunk.take(np.flatnonzero(~later))
        lines = [self._timeline(chunk, gi, start, until) for gi in range(len(self.channels))]
        sends: set[float] = set()
        for gi, (k0, pats) in enumerate(lines):
            gc = self.channels[gi]
            prev = self.current[gi]
            tl = self._tl[gi]
            for j, v in enumerate(pats):
                k = k0 + j
                if v != prev:
                    sends.add(round(self._send_time(gi, k, prev), 9))
                tl[k] = v
                prev = v
            for old in [k for k in tl if k < k0 - 4]:
                del tl[old]
            if pats:
                self.current[gi] = pats[-1]
            del gc
        if not self.started:
            sends.add(0.0)
        out = [Update(s_, (), first=(not self.started and i == 0))
               for i, s_ in enumerate(sorted(sends))]
        self.started = True
        self.window_end = until
        return out

    def _send_time(self, gi: int, k: int, prev: Pattern) -> float:
        """When to send a change that takes effect at period ``k`` of channel ``gi``: as soon
        as the device has finished period ``k - 1`` (it plays each period with the values it
        had at the period's start)."""
        gc = self.channels[gi]
        if k <= 0:
            return 0.0
        span = max((q.dt + q.phase_width + q.interphase_gap + q.phase_width2 for q in prev),
                   default=0.0)
        after = min(max(gc.busy, gc.offset + span) + max(SEND_MARGIN, gc.period / 4),
                    gc.period / 2)
        return (k - 1) * gc.period + after

    def pattern_for(self, gi: int, k: int) -> Pattern:
        """The planned pattern of period ``k`` of channel ``gi`` (the latest known after the
        planned window, the oldest kept before it)."""
        tl = self._tl[gi]
        if k in tl:
            return tl[k]
        if not tl or k > max(tl):
            return self.current[gi]
        return tl[min(tl)]

    def vector_at(self, s: float) -> tuple[Pattern, ...]:
        """Patterns an update sent at ``s`` s must carry: for each channel, the pattern of its
        first period that starts at or after ``s``."""
        out = []
        for gi, gc in enumerate(self.channels):
            # a command at s governs the periods that start at or after s (as delivered())
            k = max(math.ceil((s - 1e-9) / gc.period), 0)
            out.append(self.pattern_for(gi, k))
        return tuple(out)

    # ------------------------------------------------------------------ the record
    def acknowledge(self, t: float, patterns: tuple[Pattern, ...],
                    ack: float | None = None) -> None:
        """The device took ``patterns``: the command left at ``t`` and its acknowledgement
        came back at ``ack`` (s, relative to the start; ``t`` when not known). The device
        applied it somewhere in between."""
        prev = self._cmd_p[-1] if self._cmd_p else patterns
        self._cmd_changed.append(tuple(a != b for a, b in zip(patterns, prev, strict=True)))
        self._cmd_t.append(float(t))
        self._cmd_a.append(float(t if ack is None else max(ack, t)))
        self._cmd_p.append(patterns)

    @property
    def commands(self) -> int:
        return len(self._cmd_t)

    def delivered(self, end: float) -> PulseSchedule:
        """Pulses delivered from the start until ``end`` s, rebuilt from acknowledged updates."""
        return self.record(end)[0]

    def record(self, end: float) -> tuple[PulseSchedule, np.ndarray]:
        """The pulses from the start until ``end`` s, rebuilt from the acknowledged updates,
        and for each one whether its shape is *uncertain*.

        The device applies an update when it reads it, somewhere between the send and the
        acknowledgement; a period of a channel whose pattern the update changed, starting
        inside that span (widened by the uncertainty of the start itself), may have been
        played with the old or the new pattern. Its pulses are recorded with the new
        pattern (the rule: a command governs the periods that start after it left) and
        flagged uncertain, together with the old pattern's pulses where they differ (one of
        the two was played).
        """
        cols: dict[str, list[np.ndarray]] = {k: [] for k in _FIELDS}
        cols["channel"] = []
        unsure: list[np.ndarray] = []
        if self._cmd_t:
            s = np.asarray(self._cmd_t)
            h = self.start_uncertainty
            for gi, gc in enumerate(self.channels):
                n = int(math.ceil(end / gc.period)) + 1
                tk = np.arange(n) * gc.period
                tk = tk[tk < end]
                ci = np.searchsorted(s, tk + 1e-9, side="right") - 1  # s <= period start
                keep = ci >= 0
                tk, ci = tk[keep], ci[keep]
                # periods an update may have reached late (or early): the other pattern
                alt = np.full(tk.size, -1)
                changed = np.flatnonzero([c[gi] for c in self._cmd_changed])
                if changed.size:
                    lo = np.searchsorted(tk, s[changed] - h)
                    hi = np.searchsorted(tk, np.asarray(self._cmd_a)[changed] + h + 1e-9)
                    for i, a_, b_ in zip(changed[hi > lo], lo[hi > lo], hi[hi > lo],
                                         strict=True):
                        alt[a_:b_] = np.where(ci[a_:b_] == i, i - 1, i)
                amb = alt >= 0
                for k in np.flatnonzero(amb):  # the other candidate's pulses, where they differ
                    mine = self._cmd_p[ci[k]][gi]
                    for q in self._cmd_p[alt[k]][gi]:
                        if q in mine:
                            continue
                        cols["dt"].append(np.array([tk[k] + gc.offset + q.dt]))
                        cols["channel"].append(np.array([self._sched_index[gi]]))
                        unsure.append(np.ones(1, dtype=bool))
                        for f_i, f in enumerate(_FIELDS[1:], start=1):
                            cols[f].append(np.array([q[f_i]], dtype=float))
                jmax = max((len(p[gi]) for p in self._cmd_p), default=0)
                for j in range(jmax):
                    table = np.array([list(p[gi][j]) if len(p[gi]) > j else [math.nan] * 7
                                      for p in self._cmd_p])
                    rows = table[ci]
                    live = ~np.isnan(rows[:, 0])
                    t = tk[live] + gc.offset + rows[live, 0]
                    m = t < end
                    cols["dt"].append(t[m])
                    cols["channel"].append(np.full(int(m.sum()), self._sched_index[gi]))
                    unsure.append(amb[live][m])
                    for f_i, f in enumerate(_FIELDS[1:], start=1):
                        cols[f].append(rows[live][m, f_i])
        a = {k: np.concatenate(v) if v else np.empty(0) for k, v in cols.items()}
        flags = np.concatenate(unsure) if unsure else np.zeros(0, dtype=bool)
        order = np.lexsort((a["channel"], a["dt"]))
        sched = PulseSchedule(
            t=a["dt"][order], channel=a["channel"][order].astype(np.int16),
            amplitude=a["amplitude"][order], phase_width=a["phase_width"][order],
            interphase_gap=a["interphase_gap"][order], amplitude2=a["amplitude2"][order],
            phase_width2=a["phase_width2"][order], waveform=a["waveform"][order].astype(np.int8),
            channel_names=self.channel_names)
        return sched, flags[order]
