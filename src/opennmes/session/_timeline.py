"""Where a program is at a given program time: phase, contraction, countdown."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from opennmes.schedule import PulseSchedule
from opennmes.session._dose import channel_trains
from opennmes.stim import Program, phase_lengths

__all__ = ["Timeline", "Position"]


@dataclass(frozen=True)
class Position:
    """The program at time ``program_time`` (s).

    ``next_contraction`` is the time (s) until the next contraction starts (None when none
    follows); ``contracting`` says whether one is under way and ``contraction`` counts them
    from 1 (0 before the first).
    """

    program_time: float
    phase: str
    phase_index: int
    contraction: int
    n_contractions: int
    contracting: bool
    next_contraction: float | None
    remaining: float


class Timeline:
    """Phases and contractions of a program, from its expanded (unscaled) schedule."""

    def __init__(self, program: Program, schedule: PulseSchedule) -> None:
        self.duration = float(program.duration_s)
        lengths = phase_lengths(program)
        self.phase_names = [p.name for p in program.phase_list()]
        self.phase_ends = np.cumsum(lengths)
        spans: list[tuple[float, float]] = []
        for i, ch in enumerate(program.channels):
            t = schedule.t[schedule.channel == i]
            spans += channel_trains(t, 1.0 / ch.frequency)
        spans.sort()
        merged: list[list[float]] = []
        for a, b in spans:  # overlapping channel trains are one contraction
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self.starts = np.array([m[0] for m in merged])
        self.ends = np.array([m[1] for m in merged])

    def at(self, program_time: float) -> Position:
        """The position at ``program_time`` s."""
        tau = float(program_time)
        pi = min(int(np.searchsorted(self.phase_ends, tau, side="right")),
                 len(self.phase_names) - 1)
        k = int(np.searchsorted(self.starts, tau, side="right"))  # contractions begun
        contracting = k > 0 and tau < self.ends[k - 1]
        nxt = float(self.starts[k] - tau) if k < self.starts.size else None
        return Position(tau, self.phase_names[pi], pi, k, int(self.starts.size), bool(contracting),
                        nxt, max(self.duration - tau, 0.0))
