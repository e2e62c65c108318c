"""Receding-horizon control (MPC) as a session drive on sim:// with the virtual patient.

Figures measured here are reported in docs/control.md; the assertions hold them with margin.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from opennmes.design import RecedingHorizon
from opennmes.devices import VirtualClock, open_stimulator
from opennmes.errors import ProgramError
from opennmes.physiology import get_preset
from opennmes.session import MpcDrive, ScriptedOperator, SessionRunner
from opennmes.signals import Signals
from opennmes.stim import Channel, Electrode, Program

F = 30.0
PW = 300e-6
AREA = 80e-4
U_MAX = 0.09
START = 2.0


def _target() -> np.ndarray:
    """0 -> 100 N in 1 s, hold 1.5 s, back to 0 in 1 s (one value per pulse at 30 Hz)."""
    t = np.arange(int(3.5 * F)) / F
    return np.interp(t, [0.0, 1.0, 2.5, 3.5], [0.0, 100.0, 100.0, 0.0])


def _channel() -> Channel:
    return Channel(name="quadriceps", electrode=Electrode(area=AREA, site="quadriceps"),
                   frequency=F, pulse_width=PW, amplitude=U_MAX)


def _session(drive: MpcDrive, target: np.ndarray):  # type: ignore[no-untyped-def]
    program = Program(name="mpc", channels=[_channel()], duration=START + target.size / F + 0.5)
    with open_stimulator(f"sim://healthy-adult?sfreq={F:g}&seed=0&emg=0",
                         clock=VirtualClock()) as stim:
        runner = SessionRunner(program, stim, chunk=0.1, step=2e-3, drives=[drive])
        runner.add_hook(ScriptedOperator.titrate(["quadriceps"], {"quadriceps": U_MAX}, 2e-3,
                                                 0.0, 0.02))
        return runner.run()


@pytest.fixture(scope="module")
def quadriceps():  # type: ignore[no-untyped-def]
    return get_preset("healthy-adult").muscle("quadriceps")


def test_mpc_session_tracks_a_force_target(quadriceps) -> None:  # type: ignore[no-untyped-def]
    target = _target()
    drive = MpcDrive("quadriceps", target, quadriceps, signal="quadriceps.force", start=START)
    res = _session(drive, target)
    assert res.status == "finished", res.reason
    reps = [e for e in res.events if e.kind == "loop" and e.what == "repetition"]
    assert len(reps) == 1
    assert "(N)" in reps[0].detail
    assert reps[0].value < 2.0  # measured 0.26 N RMSE on the 100 N trapezoid
    assert not [e for e in res.events if e.kind == "loop" and e.what == "solver failed"]
    cap = [e for e in res.events if e.kind == "loop" and e.what == "capacity"]
    assert len(cap) == 1 and 0.8 < cap[0].value < 1.0  # fatigue predicted, not ignored
    assert drive.solves and all(ok for _, ok, _ in drive.solves)
    # the record: pulses only inside the repetition, never above the ceiling
    d = res.delivered
    assert len(d) > 0.8 * target.size
    assert d.amplitude.max() <= U_MAX + 1e-12
    assert d.t.min() >= START - 1e-9 and d.t.max() < START + target.size / F


def test_solver_failure_ends_in_zero_output_with_the_reason(quadriceps) -> None:  # type: ignore[no-untyped-def]
    """A controller that cannot converge (one IPOPT iteration) delivers nothing: every window
    fails, the output stays zero and the record says why."""
    target = _target()[: int(F)]
    g_max = float(quadriceps.nerve.recruitment(U_MAX, PW, AREA))
    weak = RecedingHorizon(quadriceps.force_model, 1 / F, decide="recruitment",
                           bounds=(0.0, g_max), f_ref=100.0, max_iter=1)
    drive = MpcDrive("quadriceps", target, quadriceps, start=START, solver=weak)
    res = _session(drive, target)
    assert res.status == "finished", res.reason
    failed = [e for e in res.events if e.kind == "loop" and e.what == "solver failed"]
    assert len(failed) == 1 and "did not converge" in failed[0].detail
    assert failed[0].t >= START - 1e-9
    assert len(res.delivered) == 0
    assert drive.solves and not any(ok for _, ok, _ in drive.solves)


def test_lost_measurement_opens_the_loop(quadriceps) -> None:  # type: ignore[no-untyped-def]
    """Measured force lost (NaN) for longer than the silence timeout: zero output and a
    ``silent`` event; when it is back the loop restarts (``measured``)."""
    target = np.full(int(3 * F), 50.0)
    drive = MpcDrive("quadriceps", target, quadriceps, start=0.0, silence_timeout=0.2)
    names = ("quadriceps",)
    drive.bind(_channel(), names, None)

    def feed(t0: float, value: float) -> None:
        data = np.full((1, 3), value)
        drive.observe(Signals(data, F, ("quadriceps.force",), ("N",), t0), "sim")

    amps = []
    t = 0.0
    for i in range(int(2.5 * F / 3)):
        lost = 0.5 <= t < 1.5
        feed(t, math.nan if lost else 20.0)
        out = drive.render(t, t + 0.1, U_MAX)
        amps.append((t, float(out.amplitude.max()) if len(out) else 0.0))
        t = round(t + 0.1, 6)
        del i
    ev = drive.take_events()
    whats = [e.what for e in ev]
    assert "silent" in whats and "measured" in whats
    silent = next(e for e in ev if e.what == "silent")
    assert 0.5 + 0.2 - 0.1 <= silent.t <= 0.5 + 0.2 + 0.1
    back = next(e for e in ev if e.what == "measured")
    # zero output from the silent event until the measurement is back
    assert all(a == 0.0 for tt, a in amps if silent.t + 0.1 <= tt < back.t - 0.1)
    assert any(a > 0 for tt, a in amps if tt < 0.5)
    assert any(a > 0 for tt, a in amps if tt > back.t)


def test_mpc_drive_refuses_what_it_cannot_control(quadriceps) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProgramError, match="finite forces"):
        MpcDrive("quadriceps", np.array([1.0, math.nan]), quadriceps)
    with pytest.raises(ProgramError, match="ding2003"):
        from opennmes.physiology import default_parameters

        m = quadriceps.__class__(name="q", force_model=default_parameters("hmed2018"),
                                 nerve=quadriceps.nerve)
        MpcDrive("quadriceps", np.ones(3), m)
