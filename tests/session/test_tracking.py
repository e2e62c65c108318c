"""Closed-loop knee-angle control on the virtual patient (the body closes the loop).

Figures measured here are reported in docs/control.md; the assertions hold them with margin.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from opennmes.control import (
    PID,
    IterativeLearning,
    inverse_curve,
    seated_knee_target,
    standard_knee_target,
    static_curve,
)
from opennmes.physiology import get_preset
from opennmes.sensing import read_joint_angles
from opennmes.session import track, track_repetitions

from ..conftest import SHARED_DATA

F = 35.0
PW = 300e-6
AREA = 80e-4
U_MAX = 0.09


def _controller_factory(patient, f: float = F):  # type: ignore[no-untyped-def]
    amps = np.linspace(0.0, U_MAX, 19)
    ff = inverse_curve(amps, static_curve(patient, amps, frequency=f, pulse_width=PW,
                                          channel="quadriceps"))

    def make() -> PID:
        return PID(kp=0.005, ki=0.05, kd=0.002, dt=1 / f, u_min=0.0, u_max=U_MAX,
                   rate_limit=0.1, derivative_filter=0.05, feedforward=ff)

    return make


@pytest.fixture(scope="module")
def healthy():  # type: ignore[no-untyped-def]
    return get_preset("healthy-adult")


def test_pid_and_ilc_track_the_standard_knee_target(healthy) -> None:  # type: ignore[no-untyped-def]
    target = standard_knee_target(F)
    make = _controller_factory(healthy)
    pid_only = track_repetitions(healthy, target, make, repetitions=1, frequency=F,
                                 pulse_width=PW, channel="quadriceps", electrode_area=AREA)[0]
    ilc = IterativeLearning(gain=0.02, sfreq=F, u_min=-U_MAX, u_max=U_MAX, delay=0.3,
                            q_cutoff=2.0)
    runs = track_repetitions(healthy, target, make, repetitions=10, frequency=F,
                             pulse_width=PW, channel="quadriceps", electrode_area=AREA, ilc=ilc)
    rmse = [math.degrees(r.rmse()) for r in runs]
    assert math.degrees(pid_only.rmse()) < 4.0  # measured 2.8 deg
    assert rmse[-1] < 2.0  # measured 1.1 deg after 10 repetitions
    assert rmse[-1] < 0.6 * rmse[0]
    for r in runs:
        assert r.amplitude.min() >= 0 and r.amplitude.max() <= U_MAX
        assert np.max(np.abs(np.diff(r.amplitude))) <= 0.1 / F + 1e-9  # no jumps: 2.9 mA/pulse
        assert r.stopped is None


def _gait_knee_target(path: str, side: str = "right") -> np.ndarray:
    knee = read_joint_angles(SHARED_DATA / "gait" / path)
    return seated_knee_target(knee[f"{side}_knee_angle"], knee.sfreq, F, repeats=3)


@pytest.mark.parametrize(("path", "pid_max", "ilc_max"), [
    ("joint_angles_healthy_150hz.json", 40.0, 16.0),  # measured 34.8 -> 13.5 deg
    ("joint_angles_stroke_100hz.json", 28.0, 12.0),  # measured 23.9 -> 9.8 deg
])
def test_tracking_real_knee_trajectories(healthy, path: str, pid_max: float,  # type: ignore[no-untyped-def]
                                         ilc_max: float) -> None:
    """The knee angles of real walking (Fukuchi 2018; Van Criekinge 2023), three strides,
    replayed as an extension target on the seated knee. Quadriceps-only stimulation cannot
    pull the knee down faster than gravity, so the PID alone lags far behind; iterative
    learning over 10 repetitions more than halves the error."""
    target = _gait_knee_target(path)
    make = _controller_factory(healthy)
    ilc = IterativeLearning(gain=0.02, sfreq=F, u_min=-U_MAX, u_max=U_MAX, delay=0.3,
                            q_cutoff=2.0)
    runs = track_repetitions(healthy, target, make, repetitions=10, frequency=F,
                             pulse_width=PW, channel="quadriceps", electrode_area=AREA, ilc=ilc)
    rmse = [math.degrees(r.rmse()) for r in runs]
    assert rmse[0] < pid_max
    assert rmse[-1] < ilc_max
    assert rmse[-1] < 0.5 * rmse[0]


def test_fatiguing_muscle_is_tracked_until_saturation_then_reported() -> None:
    patient = get_preset("post-surgery")
    f_target = np.minimum(np.arange(int(110 * F)) / F / 2.0, 1.0) * math.radians(40.0)
    make = _controller_factory(patient)
    stream = patient.start(sfreq=F, seed=0, emg=False)
    res = track(stream, f_target, make(), frequency=F, pulse_width=PW, channel="quadriceps",
                electrode_area=AREA)
    assert res.saturated_at is not None and 50.0 < res.saturated_at < 110.0
    assert math.degrees(res.rmse(until=res.saturated_at - 5.0)) < 3.0  # tracked until then
    assert any("saturated" in e[1] for e in res.events)
    late = res.t > res.saturated_at + 5.0
    assert math.degrees(np.sqrt(np.mean(res.error[late] ** 2))) > 5.0


def test_guard_stops_the_loop_with_zero_output() -> None:
    """On a 1 cm2 electrode the rising amplitude breaks 2 mA/cm2 rms: the guard stops it."""
    patient = get_preset("healthy-adult")
    target = standard_knee_target(F)
    make = _controller_factory(patient)
    stream = patient.start(sfreq=F, seed=0, emg=False)
    res = track(stream, target, make(), frequency=F, pulse_width=PW, channel="quadriceps",
                electrode_area=1e-4)
    assert res.stopped is not None and "rms current density" in res.stopped
    stop_k = int(np.searchsorted(res.t, res.events[0][0]))
    assert stop_k > 0 and res.amplitude[:stop_k].max() > 0
    assert np.all(res.amplitude[stop_k:] == 0.0)


def test_a_tracking_plan_is_the_session_nmes_track_runs() -> None:
    """plan_tracking: one continuous channel lasting the ramp, the repetitions and their rests;
    the loop starts once the operator's ceiling has reached the program amplitude; a sim://
    preset gives the feed-forward and one sample per pulse; gains are set in mA/deg."""
    from opennmes.errors import ProgramError
    from opennmes.session import KNEE_GAINS, PER_MA_PER_DEG, knee_target, plan_tracking
    from opennmes.stim import load_program

    from ..conftest import EXAMPLES

    assert 0.087 * PER_MA_PER_DEG == pytest.approx(0.087e-3 / math.radians(1.0))
    assert KNEE_GAINS[0] == pytest.approx(0.087 * PER_MA_PER_DEG)
    prog = load_program(EXAMPLES / "programs" / "quadriceps.yaml")
    ch = prog.channels[0]
    tgt = knee_target("standard", ch.frequency, peak=math.radians(50))
    assert tgt.max() == pytest.approx(math.radians(50))
    plan = plan_tracking(prog, tgt, "sim://healthy-adult", repetitions=2, rest=3.0)
    assert plan.channel == ch.name and plan.ceiling == ch.amplitude
    assert plan.program.channel_names == (ch.name,)
    start = math.ceil(ch.amplitude / 2e-3 * 0.02 + 0.5)
    period = tgt.size / ch.frequency + 3.0
    assert plan.drive.start == start and plan.drive.period == pytest.approx(period)
    assert plan.program.duration_s == pytest.approx(start + 2 * period + 0.5, abs=1e-3)
    assert plan.device_url == f"sim://healthy-adult?sfreq={ch.frequency:g}&emg=0"
    assert plan.drive.controller.feedforward is not None
    assert plan.titration().actions[-1][0] == pytest.approx(
        (round(ch.amplitude / 2e-3) - 1) * 0.02)
    # on a device there is no preset to take a feed-forward from
    dev = plan_tracking(prog, tgt, "rehastim2:///dev/ttyUSB0", repetitions=1, ilc=False)
    assert dev.drive.controller.feedforward is None and dev.drive.period is None
    assert dev.device_url == "rehastim2:///dev/ttyUSB0"
    for kw, match in (({"repetitions": 0}, "repetitions = 0"), ({"rest": -1.0}, "rest = -1"),
                      ({"channel": "biceps"}, "channel 'biceps' is not in the program")):
        with pytest.raises(ProgramError, match=match):
            plan_tracking(prog, tgt, "sim://", **kw)  # type: ignore[arg-type]
    with pytest.raises(ProgramError, match="give 'standard' or a joint-angle JSON file"):
        knee_target("nowhere.json", ch.frequency)
