"""Contraindication factors and body sites are checked when a patient is entered (the store
API and ``nmes db add-patient``): an unknown name is refused with the known ones listed, so
the record never holds a factor that would block prescribing later."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from opennmes.errors import StoreError
from opennmes.safety import FACTORS, SITES
from opennmes.session import patient_factors
from opennmes.store import Store, check_contraindication
from opennmes.therapy import TherapyRecord, factors_from_record
from tests.cli_errors import one_error_line
from tests.conftest import run_nmes


@pytest.mark.parametrize("factor, site, says", [
    ("metal_implant", "knee_left", "metal_implant: unknown body site 'knee_left'; give one of"),
    ("metal", None, "unknown factor 'metal'; known factors: active_cancer"),
    ("dvt", "left calf, middle calf", "unknown body site 'middle calf'"),
    ("", None, "must be a mapping with a non-empty 'factor' name"),
])
def test_unknown_factor_or_site_is_refused(store: Store, factor: str, site: str | None,
                                           says: str) -> None:
    with pytest.raises(StoreError) as err:
        store.add_patient("P1", contraindications=[{"factor": factor, "site": site}])
    assert says in str(err.value)
    assert store.list_patients() == []  # nothing was written


def test_messages_list_every_known_name() -> None:
    with pytest.raises(StoreError) as err:
        check_contraindication("metal_implant", "knee_left")
    assert all(s in str(err.value) for s in SITES)
    with pytest.raises(StoreError) as err:
        check_contraindication("metal")
    assert all(f in str(err.value) for f in FACTORS)


def test_update_is_checked_too(store: Store) -> None:
    store.add_patient("P1")
    with pytest.raises(StoreError, match=r"contraindications\[1\]: .*unknown body site 'knee'"):
        store.update_patient("P1", contraindications=[{"factor": "pacemaker"},
                                                      {"factor": "metal_implant",
                                                       "site": "knee"}])
    assert store.get_patient("P1").contraindications == ()


def test_sites_are_normalised_and_may_be_several(store: Store) -> None:
    p = store.add_patient("P1", contraindications=[
        {"factor": "dvt", "site": " Left  Calf,right calf "}, {"factor": "pregnancy"}])
    assert p.contraindications == ({"factor": "dvt", "site": "left calf, right calf"},
                                   {"factor": "pregnancy", "site": None})
    # both readers of the record (prescribing, session screening) see two sites
    for factors in (factors_from_record(p.contraindications), patient_factors(p)):
        assert [(f.key, f.sites) for f in factors] == [
            ("dvt", ("left calf", "right calf")), ("pregnancy", ())]


def test_a_patient_entered_with_two_sites_can_be_prescribed_for(store: Store) -> None:
    """The web's screening form stores several sites in one field; prescribing reads them."""
    store.add_patient("P1", contraindications=[{"factor": "dvt",
                                                "site": "left calf, left foot"}])
    rx = TherapyRecord(store).prescribe("P1", "acl-reconstruction", side="right",
                                        start_date=dt.date(2026, 1, 5))
    assert rx.id > 0


def test_cli_refuses_unknown_site_and_factor(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    r = run_nmes("db", "add-patient", "P9", "--db", url, "--contraindication",
                 "metal_implant@knee_left")
    one_error_line(r, "--contraindication 'metal_implant@knee_left'",
                   "unknown body site 'knee_left'", "left quadriceps")
    r = run_nmes("db", "add-patient", "P9", "--db", url, "--contraindication", "implant")
    one_error_line(r, "--contraindication 'implant'", "unknown factor 'implant'", "pacemaker")
    r = run_nmes("db", "patients", "--db", url)
    assert r.returncode == 0 and "no patients" in r.stdout
    r = run_nmes("db", "add-patient", "P9", "--db", url, "--contraindication",
                 "dvt@left calf,right calf")
    assert r.returncode == 0, r.stderr
    assert "dvt@left calf, right calf" in run_nmes("db", "patients", "--db", url).stdout
