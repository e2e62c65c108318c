"""The dose record, the timeline and the events, on schedules with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.errors import SessionError
from opennmes.session import (
    EVENT_KINDS,
    TOLERATED_AFTER,
    AdverseEvent,
    ComfortRating,
    IntensityChanged,
    SessionStopped,
    Timeline,
    channel_trains,
    hold_time,
    session_dose,
    tolerated_levels,
)
from opennmes.stim import PulseSchedule

from .conftest import make_program


def _train(t0: float, n: int, f: float, amp: float) -> np.ndarray:
    return t0 + np.arange(n) / f, np.full(n, amp)


def test_cps_worked_example_quadriceps_dose() -> None:
    """CPS §4.2: symmetric biphasic 100 mA, 300 us per phase, 50 Hz on a 45 cm^2 pad:
    30 uC per phase, I_rms = 17.3 mA, J = 0.38 mA/cm^2 rms."""
    t, a = _train(0.0, 100, 50.0, 0.1)  # 2 s of pulses
    s = PulseSchedule.from_arrays(t, a, np.full(100, 300e-6), channel_names=("quad",))
    rec = session_dose(s, {"quad": 45e-4}, {"quad": 0.02}, {"quad": None}, {"quad": 0.1},
                       {"quad": 0.1})[0]
    assert rec.max_charge_per_phase == pytest.approx(30e-6)
    assert rec.total_charge == pytest.approx(100 * 30e-6)
    assert rec.max_rms_current_density * 0.1 == pytest.approx(0.385, abs=0.005)  # mA/cm^2
    assert rec.peak_current_density * 0.1 == pytest.approx(100 / 45)
    assert rec.pulses == 100 and rec.trains == 1 and rec.contractions == 1
    assert rec.stim_time == pytest.approx(2.0)
    assert rec.time_at_intensity == [[pytest.approx(0.1), pytest.approx(2.0)]]


def test_contractions_time_at_intensity_and_levels() -> None:
    parts = [_train(0.0, 40, 40.0, 0.010), _train(3.0, 40, 40.0, 0.012),
             _train(6.0, 10, 40.0, 0.012)]  # the last is a stopped, partial contraction
    t = np.concatenate([p[0] for p in parts])
    a = np.concatenate([p[1] for p in parts])
    s = PulseSchedule.from_arrays(t, a, np.full(t.size, 250e-6), channel_names=("c",))
    rec = session_dose(s, {"c": 50e-4}, {"c": 0.025}, {"c": 1.0}, {"c": 0.014},
                       {"c": 0.012})[0]
    assert rec.trains == 3 and rec.contractions == 2  # a train counts from half the plan
    assert rec.max_level == 0.014 and rec.final_level == 0.012
    tai = dict((round(x[0] * 1e3), x[1]) for x in rec.time_at_intensity)
    assert tai == {10: pytest.approx(1.0), 12: pytest.approx(1.25)}
    assert rec.stim_time == pytest.approx(2.25)
    assert channel_trains(np.array([0.0, 0.02, 1.0]), 0.02) == [(0.0, 0.04), (1.0, 1.02)]


def test_empty_record() -> None:
    s = PulseSchedule.empty(("c",))
    rec = session_dose(s, {"c": 50e-4}, {"c": 0.025}, {"c": 1.0}, {"c": 0.0}, {"c": 0.0})[0]
    assert rec.pulses == 0 and rec.contractions == 0 and rec.total_charge == 0.0


def test_timeline_positions() -> None:
    prog = make_program(reps=3, on=1.0, off=2.0, ramp=0.5)  # cycles of 4 s
    tl = Timeline(prog, prog.expand())
    assert tl.duration == pytest.approx(12.0)
    p = tl.at(1.0)
    assert p.contracting and p.contraction == 1 and p.n_contractions == 3
    p = tl.at(2.5)
    assert not p.contracting and p.next_contraction == pytest.approx(1.5, abs=0.03)
    assert tl.at(11.0).next_contraction is None
    assert tl.at(11.0).remaining == pytest.approx(1.0)


def test_events_validate_and_serialise() -> None:
    ev = IntensityChanged(1.5, "quad", 0.01, 0.011, "keyboard", 1.525)
    assert ev.kind == "intensity" and ev.data() == {"channel": "quad", "old": 0.01, "new": 0.011,
                                                    "by": "keyboard", "t_effective": 1.525}
    assert set(EVENT_KINDS) >= {"start", "intensity", "pause", "resume", "stop", "device_error",
                                "watchdog", "comfort", "skin_check", "adverse_event"}
    with pytest.raises(SessionError, match="0 to 10"):
        ComfortRating(0.0, 11)
    with pytest.raises(SessionError, match="note"):
        AdverseEvent(0.0, "  ")
    with pytest.raises(SessionError, match="stop kind"):
        SessionStopped(0.0, "because")


def test_tolerated_means_felt_for_the_hold_time_without_discomfort() -> None:
    """A level is tolerated once it played without a break for the hold time (2 s here) in
    one train, and not at or above the amplitude playing when discomfort was reported."""
    parts = [_train(0.0, 120, 40.0, 0.010),   # 3 s at 10 mA: felt
             _train(5.0, 40, 40.0, 0.012),    # 1 s at 12 mA: played, not long enough
             _train(8.0, 120, 40.0, 0.015)]   # 3 s at 15 mA, but the patient rated it 2/10
    t = np.concatenate([p[0] for p in parts])
    a = np.concatenate([p[1] for p in parts])
    s = PulseSchedule.from_arrays(t, a, np.full(t.size, 250e-6), channel_names=("c",))
    args = ({"c": 50e-4}, {"c": 0.025}, {"c": None}, {"c": 0.018}, {"c": 0.015})
    rec = session_dose(s, *args)[0]
    assert (rec.tolerated_level, rec.peak_amplitude, rec.max_level) == (0.015, 0.015, 0.018)
    rec = session_dose(s, *args, events=[ComfortRating(9.5, 2)])[0]
    assert (rec.tolerated_level, rec.peak_amplitude, rec.max_level) == (0.010, 0.015, 0.018)
    # a rating of 4 is not discomfort; an emergency stop and an adverse event are
    assert session_dose(s, *args, events=[ComfortRating(9.5, 4)])[0].tolerated_level == 0.015
    for ev in (SessionStopped(10.5, "emergency", "hurts", "patient"),
               AdverseEvent(9.0, "burning under the distal electrode")):
        assert session_dose(s, *args, events=[ev])[0].tolerated_level == 0.010
    # a shorter plateau (on = 0.5 s) is felt in full; a triggered burst in its half
    assert tolerated_levels(s, {"c": 0.025}, holds={"c": 0.5})["c"] == 0.015
    burst = PulseSchedule.from_arrays(*_train(0.0, 16, 40.0, 0.020), np.full(16, 250e-6),
                                      channel_names=("c",))  # a 0.4 s swing burst
    assert tolerated_levels(burst, {"c": 0.025}, holds={"c": None})["c"] == 0.020
    assert tolerated_levels(burst, {"c": 0.025})["c"] == 0.0
    assert hold_time(12.0) == TOLERATED_AFTER == 2.0 and hold_time(0.5) == 0.5
    assert hold_time(None) == 2.0 and hold_time(1.0, driven=True) is None


def test_levels_set_in_the_off_phase_are_not_tolerated_until_felt() -> None:
    """The titration finding of the issue "Truthful record": steps raised in the off phase
    took effect at the next contraction and were recorded as tolerated. Raised in the last
    off phase (no contraction follows), a level is the highest set, not tolerated; played
    in the next contraction it is."""
    from opennmes.session import ScriptedOperator, SessionRunner

    from .conftest import backend

    prog = make_program(reps=2, on=3.0, off=3.0, ramp=0.5, amplitude="30 mA")  # 7 s cycles
    raise_to = [(0.1, "set_level", ("quad", 0.002 * k)) for k in range(1, 6)]  # 10 mA
    more = [(11.0 + 0.1 * k, "set_level", ("quad", 0.010 + 0.002 * k)) for k in range(1, 6)]
    for extra, tolerated in ((more, 0.010), ([(4.5 + a[0] - 11.0, *a[1:]) for a in more],
                                             0.020)):
        with backend("sim") as (stim, _):
            runner = SessionRunner(prog, stim)
            runner.add_hook(ScriptedOperator(raise_to + extra))
            res = runner.run()
        (d,) = res.dose
        assert d.max_level == pytest.approx(0.020)
        assert d.tolerated_level == pytest.approx(tolerated)
        assert d.peak_amplitude == pytest.approx(tolerated)  # in the last off phase: never played
