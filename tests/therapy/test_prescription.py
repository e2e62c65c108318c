"""Prescriptions (pure part): adapting a protocol to a patient, screening first, checks."""

from __future__ import annotations

import datetime as dt

import pytest

from opennmes.errors import ContraindicationError
from opennmes.safety import PatientFactor
from opennmes.therapy import (
    PrescriptionError,
    Schedule,
    build_program,
    factors_from_record,
    get_protocol,
    plan_prescription,
)

DAY = dt.date(2026, 11, 24)


def test_plan_adapts_side_electrodes_ceiling_and_schedule() -> None:
    plan = plan_prescription(
        "total-knee-arthroplasty", patient_id="P1", factors=[], start_date=DAY, side="left",
        electrodes={"quadriceps": {"area": "80 cm2", "placement": "lateral, clear of scar"}},
        max_amplitude=0.070, target_amplitude=0.030, sessions_per_day=1,
        sessions_per_week=5, reference_date=DAY - dt.timedelta(days=3))
    c = plan.program.channels[0]
    assert c.electrode.side == "left" and c.electrode.area_m2 == pytest.approx(80e-4)
    assert c.electrode.placement == "lateral, clear of scar"
    assert c.amplitude == pytest.approx(0.070)
    assert plan.channels[0].target_amplitude == pytest.approx(0.030)
    assert plan.schedule.sessions_per_week == 5 and plan.schedule.weeks == 6
    assert plan.document()["protocol_id"] == "total-knee-arthroplasty"


def test_bilateral_doubles_a_one_sided_protocol_and_sides_filter_two_sided_ones() -> None:
    p = build_program(get_protocol("knee-osteoarthritis"), side="bilateral")
    assert p.channel_names == ("left quadriceps", "right quadriceps")
    assert [c.electrode.side for c in p.channels] == ["left", "right"]
    icu = build_program(get_protocol("icu-critical-illness"), side="right")
    assert len(icu.channels) == 3 and all(c.electrode.side == "right" for c in icu.channels)
    with pytest.raises(PrescriptionError, match="is one-sided: give the side"):
        build_program(get_protocol("acl-reconstruction"))
    with pytest.raises(PrescriptionError, match="side 'up' must be left, right or bilateral"):
        build_program(get_protocol("acl-reconstruction"), side="up")


def test_screening_comes_first_and_names_what_and_why() -> None:
    """DVT in the right calf blocks quadriceps NMES on the right (adjacent region; Enraf,
    PowerDot MT IFUs, CPS §5) and the message lists the block with its reason and source."""
    dvt = [PatientFactor("dvt", ("right calf",))]
    with pytest.raises(ContraindicationError, match=(
            r"(?s)prescription of 'total-knee-arthroplasty' for patient 'P1' refused by the "
            r"contraindication screening; nothing was saved.*block: channel 'quadriceps' "
            r"\(quadriceps\): dvt: over or near the thrombosis \(right calf\)")):
        plan_prescription("total-knee-arthroplasty", patient_id="P1", factors=dvt,
                          start_date=DAY, side="right")
    # the other leg is fine (a warning is recorded)
    plan = plan_prescription("total-knee-arthroplasty", patient_id="P1", factors=dvt,
                             start_date=DAY, side="left")
    assert any("thrombosis elsewhere" in f for f in plan.findings)
    # pacemaker: liftable with a recorded specialist opinion
    pm = [PatientFactor("pacemaker")]
    with pytest.raises(ContraindicationError, match="active implant"):
        plan_prescription("knee-osteoarthritis", patient_id="P1", factors=pm, start_date=DAY,
                          side="right")
    ok = plan_prescription("knee-osteoarthritis", patient_id="P1", factors=pm,
                           start_date=DAY, side="right",
                           acknowledged={"pacemaker": "cardiology cleared lower-limb NMES"})
    assert any("acknowledged: cardiology" in f for f in ok.findings)


def test_pregnancy_blocks_tens_on_the_low_back() -> None:
    with pytest.raises(ContraindicationError, match="pregnancy: not over the abdomen"):
        plan_prescription("tens-conventional", patient_id="P1",
                          factors=[PatientFactor("pregnancy")], start_date=DAY)


def test_unsafe_adaptation_is_refused_with_the_limit() -> None:
    """100 mA at 300 us, 50 Hz on a 4 cm2 pad: 4.3 mA/cm2 rms, above the IEC 60601-2-10
    advisory of 2 mA/cm2 (CPS §4.1-4.2)."""
    with pytest.raises(PrescriptionError, match=(
            r"(?s)breaks safety limits; nothing was saved.*rms current density.*2 mA/cm2")):
        plan_prescription("acl-reconstruction", patient_id="P1", factors=[], start_date=DAY,
                          side="right", electrodes={"quadriceps": {"area": "4 cm2"}})


def test_start_window_and_schedule_checks() -> None:
    """TKA from 48 h after surgery (Stevens-Lapsley 2012, S18): a start on day 1 is refused
    unless acknowledged; a late start is a warning."""
    surgery = DAY - dt.timedelta(days=1)
    with pytest.raises(PrescriptionError, match="before the protocol's start window "
                                                r"\(2-14 days after surgery"):
        plan_prescription("total-knee-arthroplasty", patient_id="P1", factors=[],
                          start_date=DAY, side="right", reference_date=surgery)
    ok = plan_prescription("total-knee-arthroplasty", patient_id="P1", factors=[],
                           start_date=DAY, side="right", reference_date=surgery,
                           acknowledged={"start_window": "surgeon agreed"})
    assert any("surgeon agreed" in f for f in ok.findings)
    late = plan_prescription("acl-reconstruction", patient_id="P1", factors=[],
                             start_date=DAY, side="right",
                             reference_date=DAY - dt.timedelta(days=30))
    assert any("after the start window" in f for f in late.findings)
    with pytest.raises(PrescriptionError, match="sessions_per_week = 20 must be within 1..7"):
        plan_prescription("acl-reconstruction", patient_id="P1", factors=[], start_date=DAY,
                          side="right", sessions_per_week=20)
    with pytest.raises(PrescriptionError, match=r"target_amplitude of 'quadriceps' = 120 mA "
                                                r"must be within 0..100 mA"):
        plan_prescription("acl-reconstruction", patient_id="P1", factors=[], start_date=DAY,
                          side="right", target_amplitude=0.120)


def test_factors_from_a_store_record() -> None:
    fs = factors_from_record([{"factor": "dvt", "site": "left calf"},
                              {"factor": "dvt", "site": "right calf"},
                              {"factor": "epilepsy", "site": None}])
    assert fs == [PatientFactor("dvt", ("left calf", "right calf")), PatientFactor("epilepsy")]
    with pytest.raises(PrescriptionError, match="unknown patient factor 'diabetes'"):
        factors_from_record([{"factor": "diabetes", "site": None}])


def test_schedule_expected_sessions() -> None:
    s = Schedule(1, 3, 6, DAY)
    assert s.total_sessions == 18 and s.end_date == DAY + dt.timedelta(days=41)
    assert s.expected_by(DAY - dt.timedelta(days=1)) == 0
    assert s.expected_by(DAY) == 1  # due from the first day
    assert s.expected_by(DAY + dt.timedelta(days=2)) == 2
    assert s.expected_by(DAY + dt.timedelta(days=6)) == 3
    assert s.expected_by(DAY + dt.timedelta(days=13)) == 6
    assert s.expected_by(DAY + dt.timedelta(days=400)) == 18


def test_ceiling_above_the_protocol_needs_a_reason() -> None:
    with pytest.raises(PrescriptionError, match=r"max_amplitude of 'quadriceps' = 120 mA is "
                       r"above the protocol's ceiling 100 mA.*acknowledge 'amplitude_ceiling'"):
        plan_prescription("acl-reconstruction", patient_id="P1", factors=[], start_date=DAY,
                          side="right", max_amplitude=0.120)
    ok = plan_prescription("acl-reconstruction", patient_id="P1", factors=[], start_date=DAY,
                           side="bilateral", max_amplitude=0.120,
                           acknowledged={"amplitude_ceiling": "large thighs, 9 x 15 cm pads"})
    assert sum("acknowledged: large thighs" in f for f in ok.findings) == 2
