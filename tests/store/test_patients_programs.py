"""Patients (pseudonymous, SI units, checked) and programs (immutable, content-hashed)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from opennmes.errors import StoreError
from opennmes.store import Store
from opennmes.store._models import PatientRow


def test_add_get_list_update_patient(store: Store) -> None:
    p = store.add_patient("TKA-007", year_of_birth=1956, sex="female", height=1.64, mass=71.5,
                          contraindications=[{"factor": "metal_implant", "site": "left quadriceps"},
                                             {"factor": "pregnancy"}],
                          clinician="dr.smith")
    assert p.height == 1.64 and p.mass == 71.5 and p.year_of_birth == 1956
    assert p.contraindications == ({"factor": "metal_implant", "site": "left quadriceps"},
                                   {"factor": "pregnancy", "site": None})
    assert store.get_patient("TKA-007") == p
    q = store.add_patient(clinician="dr.jones")
    assert q.id.startswith("P-") and len(q.id) == 10
    assert [x.id for x in store.list_patients()] == sorted(["TKA-007", q.id])
    assert [x.id for x in store.list_patients(clinician="dr.smith")] == ["TKA-007"]
    u = store.update_patient("TKA-007", mass=69.0, notes="lost weight")
    assert u.mass == 69.0 and u.notes == "lost weight" and u.height == 1.64
    assert store.get_patient("TKA-007").mass == 69.0


def test_unknown_patient_says_how_to_find_ids(store: Store) -> None:
    with pytest.raises(StoreError, match=r"unknown patient 'nobody'.*nmes db patients"):
        store.get_patient("nobody")
    with pytest.raises(StoreError, match="unknown patient 'nobody'"):
        store.update_patient("nobody", mass=70.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"patient_id": "Jane Doe"}, "must be 1 to 64 characters.*never a name"),
    ({"height": 164.0}, r"height = 164.0 m is outside 0.3..2.5 m; give the height in m"),
    ({"mass": 0.07}, r"mass = 0.07 kg is outside 1..400 kg"),
    ({"sex": "f"}, "sex = 'f' must be one of"),
    ({"year_of_birth": 1850}, "year_of_birth = 1850 must be within 1900"),
    ({"contraindications": ["pacemaker"]}, r"contraindications\[0\] = 'pacemaker' must be"),
    ({"contraindications": [{"factor": "x", "side": "l"}]}, "unknown keys"),
])
def test_bad_patient_fields_write_nothing(store: Store, kwargs: dict, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        store.add_patient(**kwargs)
    with store._orm() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(PatientRow)) == 0


def test_duplicate_patient_id_is_refused(store: Store) -> None:
    store.add_patient("A1")
    with pytest.raises(StoreError, match="'A1' exists already"):
        store.add_patient("A1", mass=80.0)
    assert store.get_patient("A1").mass is None


def test_programs_are_versioned_by_content(store: Store, program_doc: dict) -> None:
    v1 = store.save_program(program_doc, "tka")
    assert (v1.name, v1.version) == ("tka", 1)
    assert len(v1.content_hash) == 64
    # same content (key order does not matter): same version
    same = store.save_program(dict(reversed(list(program_doc.items()))), "tka")
    assert same.id == v1.id
    edited = {**program_doc, "train": {"kind": "constant", "on": 5.0, "off": 25.0}}
    v2 = store.save_program(edited, "tka")
    assert (v2.version, v2.id != v1.id) == (2, True)
    assert store.get_program("tka") == v2
    assert store.get_program("tka", 1).document == program_doc  # the old version is unchanged
    assert store.get_program_version(v1.id) == v1
    other = store.save_program(program_doc, "tka-copy")
    assert other.version == 1 and other.content_hash == v1.content_hash
    assert [(p.name, p.version) for p in store.list_programs()] == [
        ("tka", 1), ("tka", 2), ("tka-copy", 1)]


def test_program_errors(store: Store) -> None:
    with pytest.raises(StoreError, match=r"unknown program 'x'; saved programs: \[\]"):
        store.get_program("x")
    with pytest.raises(StoreError, match="must be plain JSON"):
        store.save_program({"amplitude": float("nan")}, "bad")
    with pytest.raises(StoreError, match="must be plain JSON"):
        store.save_program({"when": object()}, "bad")
    with pytest.raises(StoreError, match="program name"):
        store.save_program({}, " ")
    with pytest.raises(StoreError, match="unknown program version id 42"):
        store.get_program_version(42)
    assert store.list_programs() == []


def test_a_program_version_cannot_be_changed_in_place(store: Store, program_doc: dict) -> None:
    from opennmes.store._models import ProgramVersionRow

    v1 = store.save_program(program_doc, "tka")
    with store._orm() as s:
        row = s.get(ProgramVersionRow, v1.id)
        assert row is not None
        row.document = {**program_doc, "train": {"kind": "burst"}}
        with pytest.raises(StoreError, match=f"program version {v1.id} is immutable"):
            s.commit()
    assert store.get_program("tka").document == program_doc
