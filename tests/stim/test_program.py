"""Programs: the issue's example file, trains, envelopes, timing, phases and file errors."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.errors import ProgramError
from opennmes.stim import (
    Channel,
    Electrode,
    Program,
    PulseSchedule,
    Waveform,
    load_program,
    load_program_text,
    save_program,
)

EXAMPLE = """
name: Quadriceps strengthening
channels:
  - name: right quadriceps
    electrode: {area: 80 cm2, site: quadriceps, side: right}
    waveform: symmetric-biphasic
    frequency: 35 Hz
    pulse_width: 300 us
    amplitude: 40 mA
    ramp_up: 2 s
    on: 10 s
    ramp_down: 1 s
    off: 30 s
repetitions: 15
"""


def _chan(**kw: object) -> Channel:
    base: dict[str, object] = dict(
        name="ch", electrode=Electrode(area=45e-4, site="quadriceps"), frequency=50.0,
        pulse_width=300e-6, amplitude=0.05)
    base.update(kw)
    return Channel(**base)  # type: ignore[arg-type]


def test_issue_example_loads_as_written() -> None:
    p = load_program_text(EXAMPLE)
    c = p.channels[0]
    assert c.frequency == 35.0
    assert c.pulse_width == pytest.approx(300e-6)
    assert c.amplitude == pytest.approx(0.040)
    assert c.electrode.area_m2 == pytest.approx(80e-4)
    assert (c.ramp_up, c.on, c.ramp_down, c.off) == (2.0, 10.0, 1.0, 30.0)
    assert p.duration_s == pytest.approx(15 * 43.0)


def test_example_expansion_counts_and_envelope() -> None:
    s = load_program_text(EXAMPLE).expand()
    # 13 s of contraction at 35 Hz: onsets k/35 for k = 1..454 (k = 0 has zero amplitude)
    assert len(s) == 15 * 454
    first = s.window(0.0, 43.0)
    assert first.t[0] == pytest.approx(1 / 35, abs=1e-6)
    # linear ramp: amplitude = 40 mA * t / 2 s
    ramp = first.window(0.0, 2.0)
    np.testing.assert_allclose(ramp.amplitude, 0.040 * ramp.t / 2.0, atol=2e-8)
    plateau = first.window(2.0, 12.0)
    assert np.all(plateau.amplitude == pytest.approx(0.040))
    down = first.window(12.0 + 1e-9, 13.0)
    np.testing.assert_allclose(down.amplitude, 0.040 * (13.0 - down.t), atol=2e-8)
    # second contraction starts one cycle (43 s) later
    assert s.window(13.0, 44.0).t[0] == pytest.approx(43.0 + 1 / 35, abs=1e-6)
    assert np.all(s.waveform == Waveform.SYMMETRIC_BIPHASIC)
    np.testing.assert_array_equal(s.amplitude, s.amplitude2)


def test_exact_to_the_microsecond_over_an_hour() -> None:
    p = Program(name="hour", channels=[_chan(frequency=35.0)], duration=3600.0)
    s = p.expand()
    k = np.arange(len(s))
    us = s.t * 1e6
    np.testing.assert_allclose(us, np.round(us), atol=1e-6)  # whole microseconds
    assert np.max(np.abs(s.t - k / 35.0)) <= 0.5e-6 + 1e-12
    assert len(s) == 126000


def test_waveforms_charge_balance() -> None:
    asym = _chan(waveform="asymmetric-biphasic", asymmetry=4.0).model_copy()
    p = Program(name="a", channels=[asym], duration=1.0)
    s = p.expand()
    np.testing.assert_allclose(s.amplitude * s.phase_width, s.amplitude2 * s.phase_width2)
    np.testing.assert_allclose(s.phase_width2, 4 * s.phase_width)
    mono = Program(name="m", channels=[_chan(waveform="monophasic")], duration=1.0).expand()
    assert np.all(mono.amplitude2 == 0) and np.all(mono.phase_width2 == 0)


def test_russian_current_bursts() -> None:
    """2500 Hz sine carrier in 50 Hz bursts, 50 % duty (Kots; CPS §2.6): 25 cycles per 10 ms
    burst, a burst every 20 ms, 10 s on / 50 s off."""
    ch = _chan(waveform="sine", frequency=2500.0, pulse_width=None,
               train={"kind": "burst", "burst_frequency": 50.0, "burst_duty": 0.5},
               on=10.0, off=50.0)
    s = Program(name="russian", channels=[ch], repetitions=1).expand()
    assert np.all(s.waveform == Waveform.SINE_CYCLE)
    assert s.phase_width[0] == pytest.approx(200e-6)
    first = s.window(0.0, 0.02)
    assert len(first) == 25
    np.testing.assert_allclose(np.diff(first.t), 400e-6, atol=1e-6)
    assert s.window(0.02, 0.04).t[0] == pytest.approx(0.02)
    assert len(s) == 500 * 25


def test_doublet_trains() -> None:
    vft = _chan(frequency=20.0, train={"kind": "doublet", "doublet_interval": 0.005})
    s = Program(name="v", channels=[vft], duration=1.0).expand()
    np.testing.assert_allclose(s.t[:4], [0.0, 0.005, 0.055, 0.105], atol=1e-9)
    dft = _chan(frequency=20.0, train={"kind": "doublet", "doublet_interval": 0.005,
                                       "doublets": "all"})
    s2 = Program(name="d", channels=[dft], duration=1.0).expand()
    np.testing.assert_allclose(s2.t[:4], [0.0, 0.005, 0.05, 0.055], atol=1e-9)
    assert len(s2) == 40


def test_variable_intervals_repeat() -> None:
    ch = _chan(train={"kind": "variable", "intervals": [0.005, 0.045]})
    s = Program(name="v", channels=[ch], duration=0.2).expand()
    np.testing.assert_allclose(s.t, [0, 0.005, 0.05, 0.055, 0.1, 0.105, 0.15, 0.155], atol=1e-9)


def test_tens_modes() -> None:
    conventional = Program(name="c", channels=[_chan(frequency=100.0, pulse_width=100e-6)],
                           duration=2.0).expand()
    assert len(conventional) == 200
    burst = _chan(frequency=100.0, pulse_width=200e-6,
                  train={"kind": "burst", "burst_frequency": 2.0, "pulses_per_burst": 7})
    b = Program(name="b", channels=[burst], duration=1.0).expand()
    np.testing.assert_allclose(b.t, [0, .01, .02, .03, .04, .05, .06,
                                     .5, .51, .52, .53, .54, .55, .56], atol=1e-9)
    mod = _chan(frequency=10.0, pulse_width=200e-6, train={"kind": "modulated", "modulation": [
        {"parameter": "frequency", "low": "2 Hz", "high": "125 Hz", "period": "12 s"},
        {"parameter": "pulse_width", "low": "200 us", "high": "100 us", "period": "12 s"}]})
    m = Program(name="m", channels=[mod], duration=24.0).expand()
    rate = 1 / np.diff(m.t)
    assert rate.min() >= 2.0 - 1e-6 and rate.max() <= 125.0 + 1e-6
    assert rate.max() > 100.0
    assert m.phase_width.min() >= 100e-6 - 1e-12 and m.phase_width.max() <= 200e-6 + 1e-12
    # the 12 s modulation cycle repeats
    first, second = m.window(0, 12.0), m.window(12.0, 24.0)
    np.testing.assert_allclose(second.t - 12.0, first.t, atol=1e-6)


def test_alternating_and_sequenced_timing() -> None:
    a = _chan(name="quadriceps", ramp_up=1.0, on=4.0, ramp_down=1.0, off=6.0)
    b = _chan(name="hamstrings", ramp_up=1.0, on=4.0, ramp_down=1.0, off=6.0)
    p = Program(name="recip", channels=[a, b], repetitions=2, timing={"mode": "alternating"})
    s = p.expand()
    qa, ha = s.for_channel("quadriceps"), s.for_channel("hamstrings")
    assert ha.t[0] == pytest.approx(6.0 + 0.02)
    assert qa.window(0, 12).t[-1] < 6.0 < ha.t[0]
    with pytest.raises(ValueError, match="lengthen 'off'"):
        Program(name="x", channels=[a.model_copy(update={"off": 2.0}), b], repetitions=1,
                timing={"mode": "alternating"})
    # shoulder-subluxation pattern: overlapping ramps, supraspinatus leads the deltoid
    sup = _chan(name="supraspinatus", ramp_up=2.0, on=10.0, ramp_down=2.0, off=6.0)
    dlt = _chan(name="posterior deltoid", ramp_up=2.0, on=10.0, ramp_down=2.0, off=6.0)
    q = Program(name="sh", channels=[sup, dlt], repetitions=3,
                timing={"mode": "sequenced", "offset": "4 s"})
    qs = q.expand()
    d = qs.for_channel("posterior deltoid")
    assert d.t[0] == pytest.approx(4.02)
    both = qs.window(6.0, 12.0)
    assert set(both.channel.tolist()) == {0, 1}


def test_phases_run_in_order() -> None:
    text = EXAMPLE.replace("repetitions: 15", """phases:
  - {name: warm-up, duration: 3 min, frequency: 5 Hz, amplitude_scale: 50 %}
  - {name: work, repetitions: 10}
  - {name: cool-down, duration: 2 min, frequency: 5 Hz, amplitude_scale: 30 %}""")
    p = load_program_text(text)
    assert p.duration_s == pytest.approx(180 + 430 + 120)
    s = p.expand()
    warm = s.window(0, 180)
    assert np.diff(warm.t).max() > 0.19  # 5 Hz within contractions
    assert warm.amplitude.max() == pytest.approx(0.020)
    work = s.window(180, 610)
    assert len(work) == 10 * 454
    assert work.t[0] == pytest.approx(180 + 1 / 35, abs=1e-6)
    cool = s.window(610, 730)
    assert cool.amplitude.max() == pytest.approx(0.012)


@pytest.mark.parametrize(("edit", "match"), [
    (("frequency: 35 Hz", "frequency: 35"), r"channels\[0\]\.frequency: .*no unit"),
    (("pulse_width: 300 us", "pulse_width: 300 mA"), r"pulse_width: .*is a current"),
    (("off: 30 s", "of: 30 s"), r"channels\[0\]\.of: unknown field"),
    (("    amplitude: 40 mA\n", ""), r"channels\[0\]\.amplitude: required field is missing"),
    (("repetitions: 15", "repetitions: 15\nduration: 10 min"), r"exactly one of"),
    (("35 Hz", "2 kHz"), r"not shorter than the period"),
    (("area: 80 cm2", "area: 0 cm2"), r"area must be > 0"),
])
def test_file_errors_name_field_and_fix(tmp_path, edit, match) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(EXAMPLE.replace(*edit))
    with pytest.raises(ProgramError, match=match) as info:
        load_program(f)
    assert str(f) in str(info.value)


def test_not_yaml_and_not_a_mapping() -> None:
    with pytest.raises(ProgramError, match="line 1"):
        load_program_text("name: [unclosed", source="x.yaml")
    with pytest.raises(ProgramError, match="mapping"):
        load_program_text("- a\n- b")
    with pytest.raises(ProgramError, match="cannot open"):
        load_program("/nonexistent/p.yaml")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_save_and_load_round_trip(tmp_path, suffix) -> None:
    p = load_program_text(EXAMPLE.replace("repetitions: 15", """phases:
  - {name: warm-up, duration: 3 min, frequency: 5 Hz, amplitude_scale: 50 %}
  - {name: work, repetitions: 10}"""))
    f = tmp_path / f"p{suffix}"
    save_program(p, f)
    q = load_program(f)
    assert q == p
    assert q.expand().equals(p.expand())


def test_schedule_files_round_trip(tmp_path) -> None:
    s = load_program_text(EXAMPLE).expand()
    for name in ("p.csv", "p.parquet"):
        s.write(str(tmp_path / name))
        r = PulseSchedule.read(str(tmp_path / name))
        assert r.equals(s, atol_t=1e-9, atol_a=1e-12)


def test_schedule_validation() -> None:
    with pytest.raises(ProgramError, match="sorted"):
        PulseSchedule.from_arrays([0.1, 0.0], 0.01, 1e-4)
    with pytest.raises(ProgramError, match="amplitude = -0.01"):
        PulseSchedule.from_arrays([0.0], -0.01, 1e-4)
    with pytest.raises(ProgramError, match="differ in length"):
        PulseSchedule(t=[0.0], channel=[0, 0], amplitude=[0.0], phase_width=[0.0],
                      interphase_gap=[0.0], amplitude2=[0.0], phase_width2=[0.0],
                      waveform=[1], channel_names=("a",))


def test_chunks_concatenate_to_the_whole() -> None:
    s = load_program_text(EXAMPLE).expand()
    parts = s.chunks(0.1)
    assert sum(len(c) for c in parts) == len(s)
    assert PulseSchedule.concat(parts).equals(s)


def test_describe_is_a_human_summary() -> None:
    text = load_program_text(EXAMPLE).describe()
    assert text.splitlines()[0] == ("Quadriceps strengthening: 10 min 45.0 s, phases: main, "
                                    "timing: synchronous")
    assert ("right quadriceps: symmetric-biphasic, 35 Hz, 300 us, 40 mA, constant train, "
            "ramp 2 s / on 10 s / down 1 s / off 30 s; electrode 80 cm2 on right quadriceps"
            ) in text
