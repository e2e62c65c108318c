"""The runner on the emulated RehaStim 2 and P24 (real bytes over a pty, real time) and on
``sim://``: delivered pulses equal the plan, intensity changes take effect on the next pulse,
stop and emergency stop reach the device, the output ends at zero."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from opennmes.errors import SessionError
from opennmes.session import (
    IntensityChanged,
    ScriptedOperator,
    SessionRunner,
)

from ..devices.conftest import check_record, match
from .conftest import RELAXED, backend, make_program


def _full(runner: SessionRunner) -> None:
    """Raise every channel to its program amplitude, one step at a time."""
    for ch in runner.channels:
        for _ in range(int(round(runner.max_amplitude[ch] / runner.step))):
            runner.increase(ch)


def test_delivered_pulses_equal_the_plan(kind: str) -> None:
    prog = make_program(reps=2, amplitude="20 mA")
    with backend(kind) as (stim, emu):
        runner = SessionRunner(prog, stim, stall_margin=RELAXED)
        _full(runner)
        res = runner.run()
        plan = stim.quantize(prog.expand())
        assert res.status == "finished" and res.how == "completed"
        d, u = res.delivered, res.unconfirmed
        assert u is not None and len(plan) == 2 * 39  # 2 x 1 s at 40 Hz, less the 0 A start
        if emu is None:  # sim:// reports what it played: nothing is left unconfirmed
            assert len(u) == 0 and d.equals(plan, atol_t=1e-6, atol_a=1e-9)
        else:
            # a period whose update the pty delayed (a loaded machine) is flagged unconfirmed,
            # never recorded wrong: each planned pulse is in exactly one of the two, as planned
            assert len(d) + len(u) == len(plan)
            for s_ in (d, u):
                for j in range(len(s_)):
                    assert match(plan, int(s_.channel[j]), float(s_.t[j]),
                                 float(s_.amplitude[j])) is not None, s_.take([j]).to_pandas()
            # the device's own record agrees with the acknowledged one
            time.sleep(0.05)
            rec = emu.record.schedule()
            check_record(d, u, rec)
            assert len(d) <= len(rec) <= len(plan)
            assert emu.output_is_zero
        assert res.dose[0].pulses == len(d)
        assert res.dose[0].contractions == 2
        assert res.dose[0].max_level == pytest.approx(0.020)


def test_every_session_starts_at_zero(kind: str) -> None:
    """CPS §4.6 item 2: nothing is delivered until the intensity is raised."""
    prog = make_program(reps=1)
    with backend(kind) as (stim, _emu):
        runner = SessionRunner(prog, stim, stall_margin=RELAXED)
        res = runner.run()
        assert len(res.delivered) == 0
        assert res.dose[0].max_level == 0.0


def test_intensity_change_takes_effect_on_the_next_pulse(kind: str) -> None:
    prog = make_program(reps=1, on=1.5, amplitude="20 mA")
    with backend(kind) as (stim, _emu):
        runner = SessionRunner(prog, stim, step=2e-3, stall_margin=RELAXED)
        for _ in range(5):
            runner.increase()  # 10 mA
        runner.add_hook(ScriptedOperator([(0.8, "decrease", ()), (1.2, "increase", ()),
                                          (1.24, "increase", ())]))
        res = runner.run()
        d = res.delivered
        plan = prog.expand()
        changes = [e for e in res.events if isinstance(e, IntensityChanged)][5:]
        assert [round(c.new * 1e3) for c in changes] == [8, 10, 12]
        for c in changes:
            assert c.t_effective is not None
            i = int(np.argmin(np.abs(d.t - c.t_effective)))
            assert abs(d.t[i] - c.t_effective) < 1e-6
            j = int(np.argmin(np.abs(plan.t - d.t[i])))
            # the first pulse at the new level carries it, the one before the old level
            assert d.amplitude[i] == pytest.approx(plan.amplitude[j] * c.new / 0.020, abs=6e-4)
            assert d.amplitude[i - 1] == pytest.approx(plan.amplitude[j - 1] * c.old / 0.020,
                                                       abs=6e-4)
        assert d.amplitude.max() <= 0.012 + 1e-9
        assert res.dose[0].max_level == pytest.approx(0.012)


def test_intensity_never_above_the_program_and_small_steps() -> None:
    prog = make_program(amplitude="3 mA")
    with backend("sim") as (stim, _):
        runner = SessionRunner(prog, stim, stall_margin=RELAXED)
        for _ in range(10):
            runner.increase()
        res = runner.run()
        assert res.delivered.amplitude.max() == pytest.approx(0.003)
        assert res.dose[0].max_level == pytest.approx(0.003)
    with backend("sim") as (stim, _):
        with pytest.raises(SessionError, match="at most 2 mA"):
            SessionRunner(prog, stim, step=5e-3)
        runner = SessionRunner(prog, stim, stall_margin=RELAXED)
        with pytest.raises(Exception, match="intensity"):
            runner.set_level("quad", 0.004)  # above the program's 3 mA


@pytest.mark.parametrize("how", ["stop", "emergency_stop"])
def test_stop_reaches_the_device_and_output_is_zero(kind: str, how: str) -> None:
    prog = make_program(reps=3, on=1.0)
    with backend(kind, virtual=False) as (stim, emu):
        runner = SessionRunner(prog, stim, stall_margin=RELAXED)
        _full(runner)
        box: dict[str, float] = {}

        def press() -> None:  # 0.9 s into the session (real-time set-up comes first)
            while runner.state == "ready":
                time.sleep(0.002)
            time.sleep(max(0.0, 0.9 - runner.now()))
            box["t"] = time.monotonic()
            getattr(runner, how)(by="test")
            box["t1"] = time.monotonic()

        th = threading.Thread(target=press)
        th.start()
        res = runner.run()
        th.join()
        # the real-time session ran under realtime() and left the scheduling as it found it
        assert runner.realtime_state is not None
        if hasattr(os, "sched_getscheduler"):
            assert os.sched_getscheduler(0) == os.SCHED_OTHER
        assert res.how == ("stopped" if how == "stop" else "emergency")
        assert res.status == ("finished" if how == "stop" else "aborted")
        # order, not wall-clock figures (the stop latency is measured in bench/bench_session):
        # the session ended at the press, well before the program's end
        assert 0.9 - 0.02 <= res.duration < prog.duration_s
        assert res.delivered.t[-1] < res.duration
        assert [e.kind for e in res.events][-1] == "stop"
        if emu is not None:
            notes = [t for t, text in emu.log if "stimulation stopped" in text]
            assert notes, "the stop command never reached the device"
            assert box["t"] <= notes[0] <= box["t1"]  # at the device before stop() returned
            time.sleep(0.1)
            assert emu.output_is_zero
            n = len(emu.record)
            time.sleep(0.2)
            assert len(emu.record) == n  # nothing after the stop


def test_pause_holds_the_program_and_resume_ramps() -> None:
    prog = make_program(reps=2, on=1.0, amplitude="20 mA")
    with backend("sim") as (stim, _):
        runner = SessionRunner(prog, stim, resume_ramp=0.5)
        _full(runner)
        runner.add_hook(ScriptedOperator([(0.6, "pause", ()), (2.6, "resume", ())]))
        res = runner.run()
        d = res.delivered
        assert not ((d.t > 0.6 + 0.05) & (d.t < 2.6)).any()  # zero output while paused
        assert res.duration == pytest.approx(prog.duration_s + 2.0, abs=0.05)
        after = d.amplitude[d.t >= 2.6]
        assert after[0] < 0.005 and after[:5].tolist() == sorted(after[:5].tolist())
        kinds = [e.kind for e in res.events]
        assert kinds.count("pause") == 1 and kinds.count("resume") == 1
        assert len(d) == len(prog.expand())  # every planned pulse, none lost by the pause
        assert res.dose[0].contractions == 2


def test_comfort_skin_and_adverse_events_are_recorded() -> None:
    prog = make_program()
    with backend("sim") as (stim, _):
        runner = SessionRunner(prog, stim, stall_margin=RELAXED)
        runner.add_hook(ScriptedOperator([(0.2, "rate_comfort", (7,)),
                                          (0.4, "skin_check", (False, "redness", "quad")),
                                          (0.5, "adverse_event", ("tingling after",))]))
        res = runner.run()
        data = {e.kind: e.data() for e in res.events}
        assert data["comfort"]["score"] == 7
        assert data["skin_check"] == {"ok": False, "channel": "quad", "note": "redness",
                                      "by": "script"}
        assert data["adverse_event"]["note"] == "tingling after"
        with pytest.raises(SessionError, match="0 to 10"):
            runner.rate_comfort(11)
