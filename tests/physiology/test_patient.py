"""Presets, channel mapping, personalisation, simulate() results and EMG synthesis."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.errors import ModelError
from opennmes.physiology import PRESETS, get_preset, simulate
from opennmes.signals import Signals
from opennmes.stim import PulseSchedule


def _train(channel: str = "right quadriceps", amp: float = 0.045, dur: float = 2.0
           ) -> PulseSchedule:
    t = np.round(np.arange(0, dur, 1 / 35), 6)
    return PulseSchedule.from_arrays(t, amp, 300e-6, channel_names=(channel,))


def test_presets_registry() -> None:
    assert set(PRESETS) == {"healthy-adult", "post-surgery", "stroke", "icu"}
    for name in PRESETS:
        p = get_preset(name)
        assert p.name == name and p.sources and p.description
        assert {"quadriceps", "tibialis_anterior", "wrist_extensors"} <= set(p.muscle_names)
    with pytest.raises(ModelError, match=r"unknown patient preset 'x'.*'healthy-adult'"):
        get_preset("x")


def test_presets_differ_as_described() -> None:
    """Post-surgery and ICU quadriceps are weaker; ICU fatigues fastest; stroke voluntary
    drive is reduced."""
    on = np.round(np.concatenate([k * 4 + np.arange(0, 2, 1 / 35) for k in range(20)]), 6)
    s = PulseSchedule.from_arrays(on, 0.045, 300e-6, channel_names=("quadriceps",))
    out = {}
    for name in PRESETS:
        res = simulate(s, get_preset(name).isometric(), sfreq=200.0, t_end=80.0)
        f = res.force("quadriceps")
        peaks = f[:16000].reshape(20, 800).max(axis=1)
        out[name] = (peaks[0], 1 - peaks[-1] / peaks[0])
    assert out["post-surgery"][0] == pytest.approx(0.6 * out["healthy-adult"][0], rel=0.02)
    assert out["icu"][0] < out["healthy-adult"][0]
    assert out["icu"][1] > out["stroke"][1] > out["healthy-adult"][1]
    assert get_preset("stroke").muscle("quadriceps").voluntary_capacity == 0.3


def test_channel_mapping_rules() -> None:
    p = get_preset("healthy-adult")
    assert p.muscle_for("right quadriceps") == "quadriceps"
    assert p.muscle_for("ch1", site="tibialis anterior") == "tibialis_anterior"
    assert p.muscle_for("ch1", site="peroneal nerve") == "tibialis_anterior"
    assert p.muscle_for("ch2", site="supraspinatus") == "deltoid"
    assert p.muscle_for("ch3") == "quadriceps"  # default: the first muscle


def test_program_sites_drive_their_muscles() -> None:
    from opennmes.stim import load_program_text

    prog = load_program_text("""
name: two sites
channels:
  - name: a
    electrode: {area: 25 cm2, site: tibialis anterior}
    frequency: 35 Hz
    pulse_width: 300 us
    amplitude: 35 mA
    on: 1 s
    off: 1 s
  - name: b
    electrode: {area: 25 cm2, site: supraspinatus}
    frequency: 30 Hz
    pulse_width: 250 us
    amplitude: 30 mA
    on: 1 s
    off: 1 s
repetitions: 1
""")
    res = simulate(prog, get_preset("healthy-adult"), sfreq=200.0)
    assert res.force("tibialis_anterior").max() > 1.0
    assert res.force("deltoid").max() > 1.0
    assert "quadriceps.force" not in res.names
    assert res.t[-1] == pytest.approx(prog.duration_s, abs=0.005)  # rests included


def test_simulation_result_api(tmp_path) -> None:  # type: ignore[no-untyped-def]
    res = simulate(_train(), get_preset("healthy-adult"), sfreq=100.0, t_end=3.0)
    assert isinstance(res.signals, Signals)
    assert res.t.size == 301 and res.t[-1] == pytest.approx(3.0)
    df = res.to_pandas()
    assert list(df.columns[:3]) == ["t", "quadriceps.force", "quadriceps.CN"]
    fat = res.fatigue()
    assert fat["A"][-1] < fat["A"][0]
    fig = res.plot()
    fig.savefig(tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 5000
    with pytest.raises(ModelError, match="PulseSchedule or a Program"):
        simulate([0.0, 0.1], get_preset("icu"), sfreq=100.0)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="sfreq"):
        simulate(_train(), get_preset("icu"), sfreq=-1.0)


def test_voluntary_drive_array_and_personalise() -> None:
    pat = get_preset("stroke")
    n = 201
    drive = np.where(np.arange(n) >= 50, 1.0, 0.0)
    res = simulate(PulseSchedule.empty(("quadriceps",)), pat, sfreq=100.0, t_end=2.0,
                   voluntary_drive={"quadriceps": drive})
    f = res.force("quadriceps")
    assert f[:50].max() == 0.0
    assert f[-1] == pytest.approx(0.3 * 0.7 * 650.0, rel=1e-3)  # 30 % of 0.7 x 650 N
    strong = pat.personalise("quadriceps", strength=2.0, force_params={"tau_fat": 90.0})
    m = strong.muscle("quadriceps")
    assert m.force_model.tau_fat == 90.0
    assert m.force_model.a_rest == pytest.approx(2 * pat.muscle("quadriceps").force_model.a_rest)
    with pytest.raises(ModelError, match="strength"):
        pat.personalise(strength=0.0)
    with pytest.raises(ModelError, match="no muscle 'biceps'"):
        pat.personalise("biceps")


def test_emg_mwave_scales_with_recruitment_and_artefact() -> None:
    """The M-wave after each pulse grows with the recruited fraction; the artefact sits at
    the pulse; volitional EMG grows with voluntary drive."""
    pat = get_preset("healthy-adult").isometric()
    amps = []
    for amp in (0.025, 0.035, 0.060):
        s = PulseSchedule.from_arrays([0.1], amp, 300e-6, channel_names=("quadriceps",))
        res = simulate(s, pat, sfreq=10000.0, t_end=0.2, emg=True, seed=0)
        emg = res["quadriceps.emg"]
        win = (res.t > 0.103) & (res.t < 0.120)
        amps.append(np.ptp(emg[win]))
        assert np.abs(emg[(res.t >= 0.1) & (res.t < 0.1003)]).max() > 1e-3  # artefact
    rec = pat.muscle("quadriceps").nerve.recruitment(np.array([0.025, 0.035, 0.060]),
                                                      300e-6, None)
    assert amps[0] < amps[1] < amps[2]
    np.testing.assert_allclose(np.array(amps) / amps[2], rec / rec[2], rtol=0.05, atol=0.01)
    e = PulseSchedule.empty(("quadriceps",))
    lo = simulate(e, pat, sfreq=2000.0, t_end=1.0, emg=True, voluntary_drive=0.1, seed=1)
    hi = simulate(e, pat, sfreq=2000.0, t_end=1.0, emg=True, voluntary_drive=0.8, seed=1)
    rms = [np.sqrt(np.mean(r["quadriceps.emg"][1000:] ** 2)) for r in (lo, hi)]
    assert rms[1] / rms[0] == pytest.approx(8.0, rel=0.1)


def test_cohort_equals_individual_simulations() -> None:
    """simulate_cohort (parallel kernel) gives each patient's isometric simulate() force."""
    from opennmes.physiology import simulate_cohort

    base = get_preset("healthy-adult").isometric()
    cohort = [base.personalise("quadriceps", strength=s, fatigability=f)
              for s, f in ((0.6, 1.0), (1.0, 2.0), (1.4, 0.5))]
    s = _train("quadriceps", amp=0.04, dur=3.0)
    forces = simulate_cohort(s, cohort, muscle="quadriceps", sfreq=200.0, t_end=4.0)
    assert forces.shape == (3, 801)
    for i, pat in enumerate(cohort):
        ref = simulate(s, pat, sfreq=200.0, t_end=4.0).force("quadriceps")
        np.testing.assert_allclose(forces[i], ref, rtol=1e-12, atol=1e-12)
    # below-threshold pulses recruit nothing in anyone
    weak = simulate_cohort(_train("quadriceps", amp=0.010), cohort, muscle="quadriceps",
                           sfreq=200.0, t_end=1.0)
    assert np.all(weak == 0.0)


def test_states_false_outputs_force_and_joints_only() -> None:
    pat = get_preset("healthy-adult")
    full = simulate(_train(), pat, sfreq=200.0, t_end=3.0)
    lean = simulate(_train(), pat, sfreq=200.0, t_end=3.0, states=False)
    assert lean.names == ("quadriceps.force", "knee.angle", "knee.velocity", "knee.torque")
    for name in lean.names:
        np.testing.assert_allclose(lean[name], full[name], rtol=1e-12, atol=1e-12)


def test_refractory_period_limits_firing() -> None:
    """Pulses closer than the axons' refractory period (1 ms) elicit nothing: a 2500-Hz
    carrier (0.4-ms cycles) drives the muscle like its every third cycle (1.2 ms), and a
    second channel on the same muscle at the same instants adds nothing."""
    pat = get_preset("healthy-adult").isometric()
    carrier = PulseSchedule.from_arrays(np.round(np.arange(0, 0.2, 0.0004), 7), 0.06, 200e-6,
                                        channel_names=("quadriceps",))
    khz = PulseSchedule.from_arrays(np.round(np.arange(0, 0.2, 0.0012), 7), 0.06, 200e-6,
                                    channel_names=("quadriceps",))
    f1 = simulate(carrier, pat, sfreq=1000.0, t_end=0.3).force("quadriceps")
    f2 = simulate(khz, pat, sfreq=1000.0, t_end=0.3).force("quadriceps")
    np.testing.assert_allclose(f1, f2, rtol=1e-12, atol=1e-12)
    t = np.round(np.arange(0, 1, 1 / 30), 6)
    one = PulseSchedule.from_arrays(t, 0.04, 300e-6, channel_names=("a quadriceps",))
    two = PulseSchedule.concat([
        PulseSchedule.from_arrays(t, 0.04, 300e-6, channel=c,
                                  channel_names=("a quadriceps", "b quadriceps"))
        for c in (0, 1)])
    np.testing.assert_allclose(simulate(two, pat, sfreq=500.0, t_end=1.0).force(),
                               simulate(one, pat, sfreq=500.0, t_end=1.0).force(), rtol=1e-12)


def test_result_metadata_for_reproducible_exports() -> None:
    res = simulate(_train(), get_preset("icu"), sfreq=100.0, t_end=1.0, seed=7)
    attrs = res.to_pandas().attrs
    assert attrs["patient"] == "icu" and attrs["seed"] == 7 and attrs["sfreq"] == 100.0
    assert attrs["force_models"]["quadriceps"]["model"] == "ding2003"
    assert attrs["opennmes_version"]


def test_protocol_library_sites_reach_muscles() -> None:
    """Every electrode site used by the protocol library and examples maps to a muscle of
    the presets (low-back TENS reaches the erector spinae, not the quadriceps)."""
    p = get_preset("stroke")
    for site, muscle in (("quadriceps", "quadriceps"), ("vastus medialis", "quadriceps"),
                         ("low back", "erector_spinae"), ("wrist extensors", "wrist_extensors"),
                         ("tibialis anterior", "tibialis_anterior"),
                         ("common peroneal nerve", "tibialis_anterior"),
                         ("supraspinatus", "deltoid"), ("posterior deltoid", "deltoid"),
                         ("gastrocnemius", "gastrocnemius"), ("hamstrings", "hamstrings")):
        assert p.muscle_for("ch", site=site) == muscle, site
    # the hamstrings flex the knee (negative moment arm)
    s = _train("hamstrings", amp=0.05, dur=1.0)
    res = simulate(s, get_preset("healthy-adult"), sfreq=500.0, t_end=1.5)
    assert res.angle("knee").min() < -0.05
