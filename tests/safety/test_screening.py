"""Contraindication screening (CPS §5)."""

from __future__ import annotations

import pytest

from opennmes.errors import ContraindicationError
from opennmes.safety import ElectrodeSite, PatientFactor, screen

QUADS = [ElectrodeSite("right quadriceps", "quadriceps", "right")]


def test_no_factors_no_findings_for_the_thigh() -> None:
    r = screen([], QUADS)
    assert not r.blocked and not r.findings


def test_pacemaker_blocks_but_a_specialist_opinion_lifts_it_away_from_the_chest() -> None:
    r = screen([PatientFactor("pacemaker")], QUADS)
    assert r.blocked
    assert "FDA" in r.blocks[0].source
    with pytest.raises(ContraindicationError, match="specialist"):
        r.raise_if_blocked()
    lifted = screen([PatientFactor("pacemaker")], QUADS,
                    {"pacemaker": "cardiology cleared lower-limb NMES, 2026-11-02"})
    assert not lifted.blocked
    assert lifted.warnings[0].acknowledged
    shoulder = [ElectrodeSite("deltoid", "posterior deltoid", "left")]
    still = screen([PatientFactor("pacemaker")], shoulder, {"pacemaker": "cleared"})
    assert still.blocked


@pytest.mark.parametrize("site", ["anterior neck", "carotid sinus", "head", "eyes"])
def test_site_contraindications_for_everyone(site: str) -> None:
    r = screen([], [ElectrodeSite("x", site)])
    assert r.blocked


def test_transthoracic_pair() -> None:
    r = screen([], [ElectrodeSite("a", "chest"), ElectrodeSite("b", "upper back")])
    assert any("transthoracic" in f.reason for f in r.blocks)
    assert not screen([], [ElectrodeSite("a", "chest")]).blocked


def test_pregnancy_blocks_trunk_only() -> None:
    assert screen([PatientFactor("pregnancy")], [ElectrodeSite("a", "abdomen")]).blocked
    r = screen([PatientFactor("pregnancy")], QUADS)
    assert not r.blocked and r.warnings


def test_dvt_near_the_site() -> None:
    dvt = PatientFactor("dvt", ("left calf",))
    assert screen([dvt], [ElectrodeSite("ta", "tibialis anterior", "left")]).blocked
    assert screen([dvt], [ElectrodeSite("q", "quadriceps", "left")]).blocked  # adjacent
    assert not screen([dvt], QUADS).blocked  # other leg
    assert screen([PatientFactor("dvt")], QUADS).blocked  # unknown site, lower limb


def test_broken_skin_cancer_and_precautions() -> None:
    assert screen([PatientFactor("broken_skin", ("right quadriceps",))], QUADS).blocked
    assert not screen([PatientFactor("broken_skin", ("left quadriceps",))], QUADS).blocked
    assert screen([PatientFactor("active_cancer", ("right thigh".replace("thigh",
                                                                      "hamstrings"),))],
                  QUADS).blocked
    r = screen([PatientFactor("impaired_sensation"), PatientFactor("epilepsy")], QUADS)
    assert not r.blocked and len(r.warnings) == 2


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ContraindicationError, match="unknown patient factor 'pacer'"):
        PatientFactor("pacer")
    with pytest.raises(ContraindicationError, match="unknown body site"):
        screen([], [ElectrodeSite("x", "elbowpit")])
