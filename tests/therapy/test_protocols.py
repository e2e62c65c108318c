"""The protocol library: every file loads, matches its evidence, and passes the safety guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from opennmes.safety import SITES, SafetyGuard, check_program, device_profile
from opennmes.therapy import (
    DIAGRAMS,
    PROTOCOL_DIR,
    TherapyError,
    get_protocol,
    list_protocols,
    load_protocol,
    load_protocol_text,
)

REQUIRED = [
    "acl-reconstruction", "patellofemoral-pain", "knee-osteoarthritis", "total-knee-arthroplasty",
    "icu-critical-illness", "copd", "stroke-shoulder-subluxation", "stroke-hand-opening-cyclic",
    "stroke-hand-opening-emg", "drop-foot-fes", "russian-current", "tens-conventional",
    "tens-acupuncture-like", "tens-burst", "tens-brief-intense",
]
IDS = sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml"))


def test_library_holds_every_required_protocol() -> None:
    assert set(REQUIRED) <= set(IDS)
    assert [p.id for p in list_protocols()] == IDS
    assert {p.id for p in list_protocols(mode="tens")} >= {
        "tens-conventional", "tens-acupuncture-like", "tens-burst", "tens-brief-intense"}
    assert {p.id for p in list_protocols(mode="triggered")} == {
        "stroke-hand-opening-emg", "drop-foot-fes"}


@pytest.mark.parametrize("pid", IDS)
def test_every_protocol_passes_the_guard_with_its_typical_electrodes(pid: str) -> None:
    """The program at its amplitude ceiling, on the electrodes the file names, passes every
    hard and advisory limit of the base profile (no acknowledgement needed); a triggered
    protocol also passes with back-to-back bursts of the longest allowed length."""
    proto = get_protocol(pid)
    for program in (proto.program, proto.worst_case_program()):
        assert not program.acknowledgements
        report = check_program(program, "sim")
        assert report.ok, report.errors()
        guard = SafetyGuard.for_program(program, device_profile("sim"))
        for chunk in report.schedule.chunks(30.0):
            guard.check(chunk)  # the runtime guard, chunk by chunk, agrees
        for c in program.channels:
            assert c.electrode.site in SITES
            assert c.electrode.area_m2 >= 4.9e-4  # never below a 25 mm round pad


@pytest.mark.parametrize("pid", IDS)
def test_protocol_metadata_is_complete(pid: str) -> None:
    p = get_protocol(pid)
    assert p.evidence.sources and all(s.id.startswith("S") for s in p.evidence.sources)
    assert p.placement.diagram in DIAGRAMS
    assert {e.channel for e in p.placement.electrodes} == set(p.program.channel_names)
    assert p.dose.sessions_per_week >= p.dose.sessions_per_day
    if p.mode == "cyclic":
        assert p.dose.contractions_per_session == p.program.repetitions
    if p.mode == "tens":
        assert all(c.on is None for c in p.program.channels)


def test_consensus_tables_nussbaum_2017() -> None:
    """Nussbaum 2017 Tables 7, 9, 11 (CPS §2.2, S2-S4): frequency, pulse duration, on:off,
    contractions, 3 sessions a week and programme length lie in the consensus ranges."""
    acl = get_protocol("acl-reconstruction")
    c = acl.program.channels[0]
    assert acl.evidence.level == "consensus"
    assert 30 <= c.frequency <= 50 and 250e-6 <= c.pulse_width_s <= 400e-6
    assert 6 <= c.active_time <= 10 and 12 <= c.off <= 50  # ON includes the ramps
    assert 12 <= acl.dose.contractions_per_session <= 15  # type: ignore[operator]
    assert acl.dose.sessions_per_week == 3 and acl.dose.programme_weeks_range == (4, 6)
    assert acl.start_window.latest_days == 7
    pf = get_protocol("patellofemoral-pain").program.channels[0]
    assert 35 <= pf.frequency <= 50 and 250e-6 <= pf.pulse_width_s <= 500e-6
    assert 6 <= pf.active_time <= 10 and 10 <= pf.off <= 50
    oa = get_protocol("knee-osteoarthritis")
    c = oa.program.channels[0]
    assert c.frequency == 50 and 250e-6 <= c.pulse_width_s <= 300e-6
    assert c.active_time == 10 and c.off == 50  # 10 s : 50 s
    assert 15 <= oa.dose.contractions_per_session <= 20  # type: ignore[operator]
    assert oa.dose.programme_weeks_range == (4, 8)


def test_single_trial_presets() -> None:
    """Stevens-Lapsley 2012 TKA (S18/S19): 50 Hz, 250 us, 15 s on with 3 s ramp, 45 s off,
    15 contractions twice a day from 48 h for 6 weeks; Kho 2015 ICU (S22): 50 Hz, quadriceps
    400 us 5:10 s, TA/gastrocnemius 250 us 5:5 s, 60 min; Enraf-Nonius COPD (S23): 75 Hz,
    400 us, 6:8 s with 1 s ramps, 3 min 5 Hz warm-up, 18 min."""
    tka = get_protocol("total-knee-arthroplasty")
    c = tka.program.channels[0]
    assert (c.frequency, c.ramp_up, c.ramp_up + (c.on or 0), c.off) == (50, 3, 15, 45)
    assert c.pulse_width_s == pytest.approx(250e-6)
    assert tka.dose.sessions_per_day == 2 and tka.start_window.earliest_days == 2
    assert tka.evidence.level == "single-trial"
    icu = get_protocol("icu-critical-illness").program
    quad = icu.channels[0]
    assert quad.pulse_width_s == pytest.approx(400e-6) and quad.on == 5 and quad.off == 10
    ta = icu.channels[2]
    assert ta.pulse_width_s == pytest.approx(250e-6) and ta.on == 5 and ta.off == 5
    assert icu.duration_s == 3600
    copd = get_protocol("copd").program
    c = copd.channels[0]
    assert (c.frequency, c.on, c.off, c.ramp_up, c.ramp_down) == (75, 6, 8, 1, 1)
    assert c.pulse_width_s == pytest.approx(400e-6)
    assert copd.phases is not None and copd.phases[0].frequency == 5
    assert copd.duration_s == pytest.approx(18 * 60, abs=16)


def test_shoulder_is_two_channel_and_overlapping() -> None:
    p = get_protocol("stroke-shoulder-subluxation").program
    assert {c.electrode.site for c in p.channels} == {"supraspinatus", "posterior deltoid"}
    assert p.timing.mode == "sequenced"
    assert p.timing.offset is not None and p.timing.offset < p.channels[0].active_time
    assert all(c.frequency == 30 and c.pulse_width_s == 250e-6 for c in p.channels)  # S25 modes


def test_tens_modes_match_cps_2_5() -> None:
    """CPS §2.5 (S8-S10): conventional 80-150 Hz / 50-125 us; acupuncture-like 1-5 Hz /
    200-500 us; burst 70-100 Hz pulses in 1-5 bursts/s; brief intense 110-200 Hz."""
    conv = get_protocol("tens-conventional").program.channels[0]
    assert 80 <= conv.frequency <= 150 and 50e-6 <= conv.pulse_width_s <= 125e-6
    acu = get_protocol("tens-acupuncture-like").program.channels[0]
    assert 1 <= acu.frequency <= 5 and 200e-6 <= acu.pulse_width_s <= 500e-6
    burst = get_protocol("tens-burst").program.channels[0]
    assert 70 <= burst.frequency <= 100 and burst.train.kind == "burst"
    assert burst.train.burst_frequency is not None and 1 <= burst.train.burst_frequency <= 5
    brief = get_protocol("tens-brief-intense").program.channels[0]
    assert 110 <= brief.frequency <= 200


def test_russian_current_kots() -> None:
    """Kots 10/50/10 (CPS §2.6, S6): 2500 Hz carrier, 50 Hz bursts at 50 % duty, 10 s on,
    50 s off, 10 contractions in 10 min."""
    p = get_protocol("russian-current").program
    c = p.channels[0]
    assert c.waveform == "sine" and c.frequency == 2500
    assert c.train.burst_frequency == 50 and c.train.burst_duty == 0.5
    assert c.active_time == 10 and c.off == 50 and p.repetitions == 10
    assert p.duration_s == pytest.approx(600)


def test_triggered_protocols_carry_trigger_settings() -> None:
    foot = get_protocol("drop-foot-fes")
    assert foot.trigger is not None
    assert (foot.trigger.source, foot.trigger.start_on, foot.trigger.stop_on) == (
        "heel-switch", "heel-off", "heel-strike")
    assert foot.program.channels[0].electrode.site == "common peroneal nerve"
    worst = foot.worst_case_program(bursts=5)
    c = worst.channels[0]
    assert c.active_time == pytest.approx(foot.trigger.timeout)
    assert c.off == pytest.approx(foot.trigger.refractory) and worst.repetitions == 5
    hand = get_protocol("stroke-hand-opening-emg")
    assert hand.trigger is not None and hand.trigger.source == "emg"
    assert hand.trigger.threshold_unit == "x-baseline-rms"


def test_unknown_protocol_lists_the_known_ones() -> None:
    with pytest.raises(TherapyError, match=r"unknown protocol 'acl'; known: \[.*"
                                           r"'acl-reconstruction'"):
        get_protocol("acl")


def test_bad_protocol_file_names_field_and_fix(tmp_path: Path) -> None:
    text = (PROTOCOL_DIR / "acl-reconstruction.yaml").read_text()
    with pytest.raises(TherapyError, match=r"program\.channels\.0\.frequency|"
                                           r"program\.channels\[0\]\.frequency"):
        load_protocol_text(text.replace("frequency: 50 Hz", "frequency: 50"), source="x.yaml")
    with pytest.raises(TherapyError, match="contractions_per_session = 12 but "
                                           "program.repetitions = 15"):
        load_protocol_text(text.replace("contractions_per_session: 15",
                                        "contractions_per_session: 12"))
    with pytest.raises(TherapyError, match="site 'knee cap' is not a known body site"):
        load_protocol_text(text.replace("site: quadriceps", "site: knee cap"))
    with pytest.raises(TherapyError, match="placement.diagram 'nope' is unknown"):
        load_protocol_text(text.replace("diagram: quadriceps-2pad", "diagram: nope"))
    bad = tmp_path / "other-name.yaml"
    bad.write_text(text)
    with pytest.raises(TherapyError, match="must equal the file name 'other-name'"):
        load_protocol(bad)


@pytest.mark.parametrize("pid", IDS)
def test_protocol_round_trips_through_json(pid: str) -> None:
    """What `nmes protocols show --json` prints loads back as the same protocol."""
    import yaml

    p = get_protocol(pid)
    text = yaml.safe_dump(p.model_dump(mode="json", exclude_none=True), sort_keys=False)
    again = load_protocol_text(text, source=f"{pid}.json")
    assert again.model_dump(mode="json") == p.model_dump(mode="json")


def test_percent_mvic_target() -> None:
    """The intensity target can be a % of MVIC (CPS §2.3: record evoked % MVIC when a
    dynamometer is present); the value is required with that target."""
    text = (PROTOCOL_DIR / "knee-osteoarthritis.yaml").read_text()
    p = load_protocol_text(text.replace("  target: maximum-tolerated",
                                        "  target: percent-mvic\n  percent_mvic: 50 %"))
    assert p.intensity.target == "percent-mvic" and p.intensity.percent_mvic == 0.5
    with pytest.raises(TherapyError, match=r"target percent-mvic needs percent_mvic"):
        load_protocol_text(text.replace("  target: maximum-tolerated",
                                        "  target: percent-mvic"))
    with pytest.raises(TherapyError, match=r"intensity.target: Input should be"):
        load_protocol_text(text.replace("  target: maximum-tolerated", "  target: high"))


def test_which_devices_can_play_each_protocol() -> None:
    """RehaStim 2 plays symmetric biphasic pulses only (SP §1-2): the asymmetric ICU and
    drop-foot templates and the sine carrier of Russian current need another device; the P24
    plays everything but the sine carrier. (Documented in docs/protocols.md.)"""
    refused = {dev: sorted(p.id for p in list_protocols()
                           if not check_program(p.worst_case_program(), dev).ok)
               for dev in ("rehastim2", "p24")}
    assert refused == {"rehastim2": ["drop-foot-fes", "icu-critical-illness", "russian-current"],
                       "p24": ["russian-current"]}
