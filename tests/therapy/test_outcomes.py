"""Outcome instruments: published ranges and MCIDs (CPS §6, S35) and the change flags."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opennmes.therapy import (
    INSTRUMENTS,
    Measurement,
    OutcomeError,
    assess_change,
    get_instrument,
    outcome_history,
)

REQUIRED = ["rom", "mvic_torque", "hhd_force", "muscle_thickness", "fma_ue", "arat",
            "ten_metre_walk", "six_minute_walk", "tug", "mrc_sum", "subluxation", "pain_nrs",
            "eq5d_index"]


def _t(key: str, population: str | None = None) -> tuple[float | None, float | None]:
    inst = get_instrument(key)
    for t in inst.thresholds:
        if population is None or t.population == population:
            return t.low, t.high
    raise AssertionError(population)


def test_every_required_instrument_exists_with_a_range_and_source() -> None:
    assert set(REQUIRED) <= set(INSTRUMENTS)
    for inst in INSTRUMENTS.values():
        assert inst.minimum < inst.maximum and inst.range_source
        for t in inst.thresholds:
            assert t.source and ("[V]" in t.source or "[R]" in t.source)


def test_fugl_meyer_ue() -> None:
    """FMA-UE 0-66; MCID 4.25-7.25 chronic (Page 2012), 9-10 subacute (Arya 2011), 12-13
    moderate-severe acute (Neurorehabil Neural Repair 2023) (CPS §6, S35)."""
    fma = get_instrument("fma_ue")
    assert (fma.minimum, fma.maximum) == (0, 66)
    assert _t("fma_ue", "chronic-stroke") == (4.25, 7.25)
    assert _t("fma_ue", "subacute-stroke") == (9, 10)
    assert _t("fma_ue", "acute-moderate-severe-stroke") == (12, 13)


def test_arat_grip_walk_tests() -> None:
    """ARAT 0-57, MCID 12 / 17 early stroke (Lang 2008); grip 5.0 / 6.2 kg (Lang 2008);
    10MWT 0.16 m/s subacute stroke (Tilson 2010), 0.13 inpatient, 0.05 / 0.10 general
    (Perera 2006); 6MWT 25 m COPD (Holland 2010), about 35 m (Puhan 2008), 34-44 m slow
    stroke walkers (Fulk 2018), 17.8 m frail older adults (CPS §6, S35)."""
    arat = get_instrument("arat")
    assert (arat.minimum, arat.maximum) == (0, 57)
    assert _t("arat", "early-stroke-affected-dominant") == (12, 12)
    assert _t("arat", "early-stroke-affected-non-dominant") == (17, 17)
    grip = get_instrument("grip")
    lo, _ = _t("grip", "early-stroke-affected-dominant")
    assert lo is not None and lo * grip.scale == pytest.approx(5.0)
    assert _t("ten_metre_walk", "subacute-stroke") == (0.16, 0.16)
    assert _t("ten_metre_walk", "inpatient-rehab") == (0.13, 0.13)
    assert _t("ten_metre_walk", "general") == (0.05, 0.10)
    assert _t("six_minute_walk", "copd") == (25, 25)
    assert _t("six_minute_walk", "copd-puhan") == (35, 35)
    assert _t("six_minute_walk", "stroke-slow-walkers") == (34, 44)
    assert _t("six_minute_walk", "frail-older-adults") == (17.8, 17.8)


def test_tug_mrc_pain_eq5d_subluxation_strength() -> None:
    """TUG MDC 1.10-1.14 s in knee OA (BMC MSK 2015); MRC sum 0-60 with < 48 = ICU-AW
    (NINDS CDE); pain NRS 0-10, MCID 2 points or 30 % (Farrar 2001); EQ-5D index about -0.59
    to 1.0, MID 0.074 (Walters & Brazier 2005), 0.08-0.12 in stroke (Kim 2015); early ES
    prevented about 6.5 mm of subluxation (Ada & Foongchomcheay); MVIC MDC95 29-33 N m
    (revision TKA, Kittelson), 0.23 N m/kg (knee OA); HHD SDD 19-57 % (pre-TKA) (CPS §6)."""
    assert _t("tug", "knee-oa") == (1.10, 1.14)
    assert get_instrument("tug").higher_is_better is False
    mrc = get_instrument("mrc_sum")
    assert (mrc.minimum, mrc.maximum) == (0, 60)
    assert _t("mrc_sum", "icu") == (48, 48) and mrc.thresholds[0].kind == "cutoff"
    pain = get_instrument("pain_nrs")
    assert (pain.minimum, pain.maximum) == (0, 10)
    assert _t("pain_nrs") == (2, 2) and pain.thresholds[0].relative == 0.30
    eq = get_instrument("eq5d_index")
    assert round(eq.minimum, 2) == -0.59 and eq.maximum == 1.0
    assert _t("eq5d_index", "general") == (0.074, 0.074)
    assert _t("eq5d_index", "stroke") == (0.08, 0.12)
    assert _t("subluxation") == (6.5e-3, 6.5e-3)
    assert _t("mvic_torque") == (29, 33)
    assert _t("mvic_torque_per_kg") == (0.23, 0.23)
    hhd = get_instrument("hhd_force").thresholds[0]
    assert (hhd.relative, hhd.relative_high) == (0.19, 0.57)


def test_units_at_the_edge() -> None:
    rom = get_instrument("rom")
    assert rom.parse("95 deg") == pytest.approx(math.radians(95))
    assert rom.parse("95°") == pytest.approx(math.radians(95))
    assert get_instrument("subluxation").parse("12 mm") == pytest.approx(0.012)
    assert get_instrument("ten_metre_walk").parse("85 cm/s") == pytest.approx(0.85)
    assert get_instrument("grip").parse("20 kg") == pytest.approx(20 * 9.80665)
    assert get_instrument("fma_ue").parse("34") == 34
    with pytest.raises(OutcomeError, match=r"unit 'kg' does not fit; use one of \['deg'"):
        rom.parse("95 kg")


@pytest.mark.parametrize(("key", "value", "match"), [
    ("fma_ue", 67, r"Fugl-Meyer .* = 67 points is outside the valid range 0 points \.\. 66 "
                   r"points \(FMA-UE 0-66"),
    ("pain_nrs", -1, r"outside the valid range 0 points \.\. 10 points"),
    ("arat", 12.5, r"must be a whole number of points"),
    ("ten_metre_walk", 5.0, r"5 m/s is outside the valid range 0 m/s \.\. 3 m/s"),
    ("mrc_sum", float("nan"), "not a finite number"),
])
def test_out_of_range_values_are_refused_with_what_and_why(key: str, value: float,
                                                           match: str) -> None:
    with pytest.raises(OutcomeError, match=match):
        get_instrument(key).validate(value)


def test_unknown_instrument_lists_the_known() -> None:
    with pytest.raises(OutcomeError, match=r"unknown outcome instrument 'fma'; known: \["):
        get_instrument("fma")


def test_change_flags_against_mcid() -> None:
    """Farrar 2001: 2 points or 30 % counts on pain; a 3-point rise of FMA-UE in chronic
    stroke is below 4.25; +5 lies in 4.25-7.25; +8 is beyond it (Page 2012)."""
    a = assess_change("pain_nrs", 8, 6)
    assert a.status == "improved" and a.improvement == 2
    b = assess_change("pain_nrs", 3, 2)  # 1 point but 33 %
    assert b.status == "improved"
    c = assess_change("pain_nrs", 8, 7)  # 1 point, 12.5 %
    assert c.status == "no-meaningful-change" and not c.crossed
    assert assess_change("fma_ue", 20, 23, "chronic-stroke").status == "no-meaningful-change"
    p = assess_change("fma_ue", 20, 25, "chronic-stroke")
    assert p.status == "possibly-improved" and "4.25-7.25 points" in p.message
    assert assess_change("fma_ue", 20, 28, "chronic-stroke").status == "improved"
    assert assess_change("fma_ue", 20, 28, "subacute-stroke").status == "no-meaningful-change"
    assert assess_change("fma_ue", 20, 29, "subacute-stroke").status == "possibly-improved"
    w = assess_change("tug", 12.0, 13.5, "knee-oa")  # slower by 1.5 s: worse
    assert w.status == "worsened" and w.improvement == pytest.approx(-1.5)
    assert "across the cut-off 13.5 s" in w.message
    mrc = assess_change("mrc_sum", 40, 50)
    assert mrc.status == "no-threshold" and mrc.cutoff and "48" in mrc.cutoff
    assert assess_change("muscle_thickness", 0.02, 0.018).status == "no-threshold"
    with pytest.raises(OutcomeError, match="no published threshold for population 'copd'"):
        assess_change("fma_ue", 20, 28, "copd")


def test_history_judges_each_point_against_baseline() -> None:
    d0 = dt.date(2026, 1, 5)
    ms = [Measurement(i, "P1", "six_minute_walk", v, d0 + dt.timedelta(weeks=2 * i),
                      population="copd") for i, v in enumerate([300.0, 315.0, 330.0])]
    ms.append(Measurement(9, "P1", "tug", 12.0, d0))
    h = outcome_history(ms, "six_minute_walk")
    assert [m.value for m in h.measurements] == [300, 315, 330]
    assert [a.status for a in h.from_baseline] == ["no-meaningful-change", "improved"]
    assert h.latest is not None and h.latest.change == 30
    assert h.threshold is not None and h.threshold.low == 25


@given(st.sampled_from(sorted(INSTRUMENTS)), st.floats(0, 1), st.floats(0, 1))
def test_assessment_is_antisymmetric(key: str, a: float, b: float) -> None:
    """Swapping baseline and value flips the sign of the change and of the verdict."""
    inst = get_instrument(key)
    span = inst.maximum - inst.minimum
    x, y = inst.minimum + a * span, inst.minimum + b * span
    if inst.integer:
        x, y = round(x), round(y)
    fwd, back = assess_change(key, x, y), assess_change(key, y, x)
    assert fwd.change == pytest.approx(-back.change)
    if fwd.threshold is not None and fwd.threshold.relative is None:
        flip = {"improved": "worsened", "possibly-improved": "possibly-worsened"}
        flip |= {v: k for k, v in flip.items()} | {"no-meaningful-change":
                                                   "no-meaningful-change"}
        assert back.status == flip[fwd.status]
