"""The grid planner (pure): update times, patterns, carried pulses and the rebuilt record."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opennmes.devices._plan import GridChannel, GridPlan, Pattern
from opennmes.errors import ProgramError
from opennmes.stim import PulseSchedule


def _accept(gc: GridChannel, t_k: float, pat: Pattern) -> None:
    if len(pat) > 2:
        raise ProgramError("too many")


def _plan(periods: tuple[float, ...] = (0.04, 0.04)) -> GridPlan:
    chans = [GridChannel(f"c{i}", i, p) for i, p in enumerate(periods)]
    return GridPlan(chans, [c.name for c in chans], _accept)


def _sched(t: list[float], amp: list[float], ch: list[int], n: int = 2) -> PulseSchedule:
    return PulseSchedule.from_arrays(t, amp, 200e-6, channel=ch,
                                     channel_names=tuple(f"c{i}" for i in range(n)))


def test_updates_leave_right_after_the_previous_period() -> None:
    plan = _plan()
    s = _sched([0.0, 0.0, 0.04, 0.04, 0.08, 0.08], [0.01, 0.02, 0.01, 0.02, 0.015, 0.02],
               [0, 1, 0, 1, 0, 1])
    ups = plan.plan(s, until=0.12)
    # start at 0; c0 changes at period 2 (0.08 s): sent after period 1 plus max(5 ms, T/4)
    assert [u.t for u in ups] == pytest.approx([0.0, 0.04 + 0.0004 + 0.01])
    assert ups[0].first
    assert plan.vector_at(0.0505)[0][0].amplitude == 0.015
    assert plan.vector_at(0.0)[1][0].amplitude == 0.02


def test_record_follows_the_acknowledged_commands() -> None:
    plan = _plan()
    s = _sched([0.0, 0.0, 0.04, 0.04, 0.08, 0.08], [0.01, 0.02, 0.01, 0.02, 0.015, 0.02],
               [0, 1, 0, 1, 0, 1])
    plan.plan(s, until=0.12)
    plan.acknowledge(0.0, plan.vector_at(0.0))
    plan.acknowledge(0.0505, plan.vector_at(0.0505))
    assert plan.delivered(0.12).equals(s)
    # an update acknowledged late (after 0.08 s) changes the period after it only
    late = _plan()
    late.plan(s, until=0.12)
    late.acknowledge(0.0, late.vector_at(0.0))
    late.acknowledge(0.085, late.vector_at(0.0505))
    rec = late.delivered(0.16)
    np.testing.assert_allclose(rec.for_channel("c0").amplitude, [0.01, 0.01, 0.01, 0.015])


def test_pulses_after_until_wait_and_straddling_periods_are_amended() -> None:
    plan = _plan((0.05,))
    doublets = PulseSchedule.from_arrays([0.0, 0.006, 0.05, 0.056], 0.02, 200e-6,
                                         channel_names=("c0",))
    plan.plan(doublets.window(0, 0.053), until=0.053)  # cuts the second doublet
    plan.plan(doublets.window(0.053, 0.1), until=0.1)  # amends it
    assert len(plan.pattern_for(0, 1)) == 2
    plan.plan(PulseSchedule.from_arrays([0.1, 0.15], 0.02, 200e-6, channel_names=("c0",)),
              until=0.12)  # 0.15 s waits for the next chunk
    assert plan.window_end == pytest.approx(0.12)
    plan.plan(PulseSchedule.empty(("c0",)), until=0.2)
    assert len(plan.pattern_for(0, 3)) == 1


def test_out_of_order_and_refused_patterns() -> None:
    plan = _plan((0.05,))
    plan.plan(PulseSchedule.from_arrays([0.2], 0.02, 200e-6, channel_names=("c0",)),
              until=0.25)
    with pytest.raises(ProgramError, match="already played"):
        plan.plan(PulseSchedule.from_arrays([0.05], 0.02, 200e-6, channel_names=("c0",)),
                  until=0.3)
    with pytest.raises(ProgramError, match="too many"):
        _plan((0.05,)).plan(PulseSchedule.from_arrays([0.0, 0.01, 0.02], 0.02, 200e-6,
                                                      channel_names=("c0",)), until=0.05)


@given(st.lists(st.integers(0, 3), min_size=12, max_size=12),
       st.lists(st.integers(0, 3), min_size=10, max_size=10),
       st.lists(st.floats(0.01, 0.3), min_size=1, max_size=6))
@settings(max_examples=60, deadline=None)
def test_any_chunking_rebuilds_the_schedule(a0: list[int], a1: list[int],
                                            cuts: list[float]) -> None:
    """Channels at 25 Hz and 20 Hz (the second with doublets), amplitudes changing per period,
    cut into chunks anywhere: following the plan's updates rebuilds the schedule exactly."""
    t0 = np.arange(12) * 0.04
    t1 = np.repeat(np.arange(10) * 0.05, 2) + np.tile([0.0, 0.006], 10)
    amp = np.concatenate([np.array(a0) * 0.005, np.repeat(np.array(a1) * 0.005, 2)])
    t = np.concatenate([t0, t1])
    ch = np.concatenate([np.zeros(12, int), np.ones(20, int)])
    order = np.lexsort((ch, t))
    sched = _sched(list(t[order]), list(amp[order]), list(ch[order]))
    plan = GridPlan([GridChannel("c0", 0, 0.04), GridChannel("c1", 1, 0.05)], ("c0", "c1"),
                    _accept)
    edges = sorted({round(min(sum(cuts[: i + 1]), 0.5), 6) for i in range(len(cuts))} | {0.5})
    start = 0.0
    for end in edges:
        for u in plan.plan(sched.window(start, end), until=end):
            plan.acknowledge(u.t, plan.vector_at(u.t))
        start = end
    rec = plan.delivered(0.5)
    nz = sched.take(np.flatnonzero(sched.amplitude > 0))
    assert rec.equals(nz, atol_t=1e-9)
