"""Receding-horizon control (design.RecedingHorizon) against the virtual patient's muscle."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.design import RecedingHorizon
from opennmes.errors import ModelError
from opennmes.physiology import default_parameters, get_preset
from opennmes.schedule import PulseSchedule

F = 30.0
PW = 300e-6
AREA = 80e-4
U_MAX = 0.09


@pytest.fixture(scope="module")
def quadriceps():  # type: ignore[no-untyped-def]
    return get_preset("healthy-adult").muscle("quadriceps")


def _amplitude(muscle, g: float) -> float:  # type: ignore[no-untyped-def]
    amps = np.linspace(0.0, U_MAX, 4001)
    recs = muscle.nerve.recruitment(amps, np.full_like(amps, PW), AREA)
    on = recs > 0
    return 0.0 if g <= 1e-4 else float(np.interp(g, recs[on], amps[on]))


def _closed_loop(muscle, target: np.ndarray, fatigue_weight: float):  # type: ignore[no-untyped-def]
    """MPC on the bare patient stream, one solve per pulse; returns (rmse N, A/A_rest at the
    end, share converged)."""
    g_max = float(muscle.nerve.recruitment(U_MAX, PW, AREA))
    mpc = RecedingHorizon(muscle.force_model, 1 / F, decide="recruitment", bounds=(0.0, g_max),
                          f_ref=float(target.max()), fatigue_weight=fatigue_weight)
    stream = get_preset("healthy-adult").start(sfreq=F, emg=False,
                                               electrode_areas={"quadriceps": AREA},
                                               muscles=("quadriceps",))
    pad = np.concatenate([target, np.full(mpc.n + 1, target[-1])])  # the hold goes on
    y = np.zeros(target.size)
    ok = []
    for k in range(target.size):
        predicted = mpc.full_state()["F"]  # at k / F
        step = mpc.solve(pad[k:k + mpc.n + 1])
        ok.append(step.converged)
        a = _amplitude(muscle, mpc.first(step)) if step.converged else 0.0
        sched = PulseSchedule.from_arrays([k / F], a, PW, channel_names=("quadriceps",)) \
            if a > 0 else PulseSchedule.empty(("quadriceps",))
        # the samples before (k + 1) / F: the last is the force at k / F
        y[k] = float(stream.advance(sched, (k + 1) / F)["quadriceps.force"][-1])
        mpc.advance(float(muscle.nerve.recruitment(a, PW, AREA)) if a > 0 else 0.0)
        mpc.set_force(mpc.full_state()["F"] + y[k] - predicted)  # the measured error
    e = y - target
    a_end = stream.state()["quadriceps"]["A"] / muscle.force_model.a_rest
    return float(np.sqrt(np.mean(e ** 2))), a_end, float(np.mean(ok))


def test_the_window_predicts_the_patients_force(quadriceps) -> None:  # type: ignore[no-untyped-def]
    """The window's coarser sub-steps (MPC_SUBSTEP) against the patient's kernel: a varying
    train of 60 pulses at 30 Hz, predicted open loop within 1 % of the peak force."""
    g_max = float(quadriceps.nerve.recruitment(U_MAX, PW, AREA))
    mpc = RecedingHorizon(quadriceps.force_model, 1 / F, decide="recruitment",
                          bounds=(0.0, g_max), f_ref=100.0)
    rng = np.random.default_rng(1)
    amps = np.round(rng.uniform(0.025, U_MAX, 60), 4)
    stream = get_preset("healthy-adult").start(sfreq=F, emg=False,
                                               electrode_areas={"quadriceps": AREA},
                                               muscles=("quadriceps",))
    sig = stream.advance(PulseSchedule.from_arrays(np.arange(60) / F, amps, PW,
                                                   channel_names=("quadriceps",)), 60 / F + 1e-9)
    measured = sig["quadriceps.force"]
    pred = [0.0]
    for a in amps:
        mpc.advance(float(quadriceps.nerve.recruitment(a, PW, AREA)))
        pred.append(mpc.full_state()["F"])
    err = np.abs(np.asarray(pred[:measured.size]) - measured)
    assert measured.max() > 100.0
    assert err.max() < 0.01 * measured.max()
    assert abs(mpc.capacity() - stream.state()["quadriceps"]["A"] / 3009.0) < 1e-3


def test_mpc_tracks_and_the_fatigue_term_spares_capacity(quadriceps) -> None:  # type: ignore[no-untyped-def]
    """A 2-s hold at 150 N after a 0.5-s rise: every window converges and the force tracks;
    weighting the loss of A trades tracking for capacity kept."""
    t = np.arange(int(2.5 * F) + 1) / F
    target = np.interp(t, [0.0, 0.5, 2.5], [0.0, 150.0, 150.0])
    rmse0, a0, ok0 = _closed_loop(quadriceps, target, fatigue_weight=0.0)
    rmse1, a1, ok1 = _closed_loop(quadriceps, target, fatigue_weight=20.0)
    assert ok0 == 1.0 and ok1 == 1.0
    assert rmse0 < 2.0  # measured 0.19 N
    assert a1 > a0  # measured A/A_rest 0.956 -> 0.965 (RMSE 0.19 -> 29 N)
    assert rmse1 > rmse0


def test_a_model_with_only_times_decides_pulses() -> None:
    """Ding 2003 without recruitment: relaxed pulse weights per slot, given as whole pulses by
    sum-up rounding carried over the steps (the running sums never differ by more than 1/2)."""
    p = default_parameters("ding2003")
    mpc = RecedingHorizon(p, 0.01, decide="pulses", f_ref=150.0, horizon=0.3)
    assert mpc.n == 30
    step = mpc.solve(np.full(mpc.n + 1, 150.0))
    assert step.converged
    relaxed, given = 0.0, 0.0
    for k in range(mpc.n):
        b = mpc.first(step, k)
        assert b in (0.0, 1.0)
        relaxed += float(step.values[k])
        given += b
        assert abs(relaxed - given) <= 0.5 + 1e-9
    assert 0 < given < mpc.n


def test_move_blocking_keeps_at_most_30_decisions() -> None:
    p = default_parameters("hmed2018", fatigue=True)
    mpc = RecedingHorizon(p, 1 / 50, decide="amplitude", bounds=(0.04, 0.1), f_ref=100.0)
    assert (mpc.n, mpc.n_dec, mpc.block) == (50, 25, 2)
    step = mpc.solve(np.full(mpc.n + 1, 100.0))
    assert step.converged
    assert np.all(step.values[0::2] == step.values[1::2])
    assert np.all((step.values >= 0.04 - 1e-12) & (step.values <= 0.1 + 1e-12))


@pytest.mark.parametrize(("model", "decide", "match"), [
    ("ding2007", "recruitment", "needs the ding2003 model"),
    ("ding2003", "smile", "unknown decision"),
])
def test_refuses_what_it_cannot_decide(model: str, decide: str, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        RecedingHorizon(default_parameters(model), 1 / 30, decide=decide, f_ref=100.0)


def test_refuses_a_window_of_the_wrong_length(quadriceps) -> None:  # type: ignore[no-untyped-def]
    mpc = RecedingHorizon(quadriceps.force_model, 1 / F, decide="recruitment",
                          bounds=(0.0, 0.9), f_ref=100.0)
    with pytest.raises(ModelError, match="needs 31"):
        mpc.solve(np.zeros(10))


def test_a_compiled_window_solves_the_same_and_is_kept(quadriceps, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """compile_dir: the NLP compiled to C gives the interpreter's solution, and a second
    controller of the same problem loads the kept library (a small window keeps gcc short)."""
    kw = dict(decide="recruitment", bounds=(0.0, 0.9), f_ref=100.0, horizon=0.1)
    plain = RecedingHorizon(quadriceps.force_model, 1 / F, **kw)  # type: ignore[arg-type]
    built = RecedingHorizon(quadriceps.force_model, 1 / F, compile_dir=tmp_path, **kw)  # type: ignore[arg-type]
    assert built.compiled is not None and built.compiled.parent == tmp_path
    libs = sorted(tmp_path.iterdir())
    assert [p.suffix for p in libs] == [".so"]
    target = np.array([0.0, 20.0, 40.0, 60.0])
    a, b = plain.solve(target), built.solve(target)
    assert a.converged and b.converged
    assert np.allclose(a.values, b.values, atol=1e-6)
    mtime = libs[0].stat().st_mtime_ns
    again = RecedingHorizon(quadriceps.force_model, 1 / F, compile_dir=tmp_path, **kw)  # type: ignore[arg-type]
    assert again.compiled == built.compiled
    assert sorted(tmp_path.iterdir()) == libs and libs[0].stat().st_mtime_ns == mtime
