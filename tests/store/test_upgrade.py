"""Databases written by earlier versions upgrade to the one history without loss.

``data/opennmes-0.1.0.db`` was written by OpenNMES 0.1.0 (commit 840ed9d; how: data/README.md):
the store at revision 0002 and the therapy tables under their former own history (``t0001`` in
``therapy_alembic_version``). Revision 0004 adopts the therapy tables into the store's history.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import opennmes.therapy
from opennmes.errors import StoreError
from opennmes.store import Store, metadata, open_store
from opennmes.store._engine import current_revision, head_revision, make_engine, upgrade_schema
from opennmes.therapy import TherapyRecord

DATA = Path(__file__).with_name("data")
OLD_DB = DATA / "opennmes-0.1.0.db"
THERAPY = ("therapy_prescriptions", "therapy_adjustments", "therapy_outcomes")
PASSWORDS = {"admin": "admin-password-0.1.0", "clin": "clinician-password-0.1.0",
             "tka001": "patient-password-0.1.0"}


def _raw_tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as SQLite stores it (no type conversion), in rowid order."""
    con = sqlite3.connect(path)
    try:
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {n: con.execute(f'SELECT * FROM "{n}" ORDER BY rowid').fetchall() for n in names}
    finally:
        con.close()


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    copy = tmp_path / "opennmes-0.1.0.db"
    shutil.copy(OLD_DB, copy)
    return copy


def test_the_0_1_0_database_is_what_the_readme_says() -> None:
    raw = _raw_tables(OLD_DB)
    assert raw["alembic_version"] == [("0002",)]
    assert raw["therapy_alembic_version"] == [("t0001",)]
    assert "web_sessions" not in raw
    assert OLD_DB.stat().st_size < 400_000


def test_a_0_1_0_database_upgrades_with_every_row_intact(old_db: Path) -> None:
    before = _raw_tables(old_db)
    with open_store(f"sqlite:///{old_db}") as store:
        assert current_revision(store.engine) == head_revision()
        after = _raw_tables(old_db)
        # the former therapy history's version table is gone, the login sessions are new
        assert set(after) == set(before) - {"therapy_alembic_version"} | {"web_sessions"}
        assert after["web_sessions"] == []
        assert after["alembic_version"] == [(head_revision(),)]
        for name, rows in before.items():
            if name == "users":  # revision 0005 adds each user's language, none yet
                rows = [(*row, None) for row in rows]
            if name not in ("alembic_version", "therapy_alembic_version"):
                assert after[name] == rows, name  # every row, every value, unchanged
        counts = {n: len(r) for n, r in after.items()}
        assert counts == {"alembic_version": 1, "patients": 2, "devices": 1, "programs": 2,
                          "program_versions": 2, "sessions": 1, "events": 32,
                          "dose_summaries": 1, "streams": 1, "stream_chunks": 29,
                          "pulse_chunks": 16, "users": 3, "audit_log": 3, "web_sessions": 0,
                          "therapy_prescriptions": 1, "therapy_adjustments": 0,
                          "therapy_outcomes": 3}
        assert store.verify_session(1, decode=True) == []

        # the session, its pulses, events, stream and dose load as before
        [info] = store.list_sessions()
        assert (info.id, info.patient_id, info.status) == (1, "DEMO-01", "finished")
        assert info.uid == before["sessions"][0][1]
        assert info.end_reason == "completed: program completed"
        rec = store.load_session(1)
        assert rec.program.document["name"] == "Quadriceps short"
        assert len(rec.pulses) == 522
        assert rec.pulses.channel_names == ("right quadriceps",)
        assert np.max(rec.pulses.amplitude) == pytest.approx(0.030)
        assert np.all(np.diff(rec.pulses.t) > 0)
        assert len(rec.events) == 32
        assert (rec.events[0].kind, rec.events[-1].kind) == ("start", "stop")
        assert rec.events[-1].data["how"] == "completed"
        sig = rec.streams["patient"]
        assert sig.sfreq == 20.0 and sig.data.shape[1] == 540
        assert "quadriceps.force" in sig.names and np.all(np.isfinite(sig.data))
        assert rec.dose is not None and rec.dose["complete"] is True
        assert rec.patient is not None and rec.patient.id == "DEMO-01"

        # patients
        tka = store.get_patient("TKA-001")
        assert (tka.year_of_birth, tka.sex, tka.clinician) == (1957, "female", "clin")
        assert tka.height == pytest.approx(1.64) and tka.mass == pytest.approx(71.5)
        assert [dict(c) for c in tka.contraindications] == [
            {"factor": "metal_implant", "site": "left hip"}]

        # the prescription and the outcomes read back through the therapy record
        therapy = TherapyRecord(store)
        [rx] = therapy.list_prescriptions("TKA-001")
        assert (rx.id, rx.protocol_id, rx.status, rx.created_by) == (
            1, "total-knee-arthroplasty", "active", "clin")
        assert rx.schedule.start_date == dt.date(2026, 11, 24)
        assert rx.ceilings == {"quadriceps": pytest.approx(0.060)}
        assert rx.targets == {"quadriceps": None}
        assert rx.program_version_id == 2
        assert therapy.program(rx.id).repetitions == 15
        assert therapy.adjustments(rx.id) == []
        ms = therapy.list_outcomes("TKA-001")
        assert [(m.id, m.instrument, m.measured_on, m.side) for m in ms] == [
            (1, "tug", dt.date(2026, 11, 24), None), (2, "rom", dt.date(2026, 11, 24), "right"),
            (3, "tug", dt.date(2026, 12, 1), None)]
        assert [m.value for m in ms] == pytest.approx([14.2, np.radians(85.0), 12.1])
        tug = therapy.outcome_history("TKA-001", "tug")
        assert [m.value for m in tug.measurements] == pytest.approx([14.2, 12.1])
        # and new rows go on after the old ones
        m = therapy.record_outcome("TKA-001", "tug", "11.5 s", measured_on=dt.date(2026, 12, 2))
        assert m.id == 4


def test_0_1_0_accounts_log_in_after_the_upgrade(old_db: Path) -> None:
    import secrets

    from fastapi.testclient import TestClient

    from opennmes.web import Accounts, Settings, create_app

    with open_store(f"sqlite:///{old_db}") as store:
        accounts = Accounts(store)
        for name, role, patient in (("admin", "admin", None), ("clin", "clinician", None),
                                    ("tka001", "patient", "TKA-001")):
            user = accounts.authenticate(name, PASSWORDS[name])
            assert user is not None, name
            assert (user.role, user.patient_id) == (role, patient)
            assert accounts.authenticate(name, PASSWORDS[name] + "x") is None
        assert [e.summary for e in reversed(accounts.list_audit())] == [
            "admin account admin created", "clinician account clin created",
            "patient account tka001 created"]

        app = create_app(Settings(secret_key=secrets.token_urlsafe(40)), store=store)
        with TestClient(app, base_url="https://testserver") as client:
            page = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            r = client.post("/login", data={"csrf_token": token.group(1), "username": "clin",
                                            "password": PASSWORDS["clin"]},
                            follow_redirects=False)
            assert r.status_code == 303, r.text[:500]
            assert client.get("/patients").status_code == 200
        assert [s.username for s in app.state.sessions.list_live()] == ["clin"]


# ---------------------------------------------------------------- revision 0004, any backend
def _at_0003_with_old_therapy_tables(url: str, version: str = "t0001") -> sa.Engine:
    """A database as OpenNMES 0.1.0 + revision 0003 leaves it: the store's tables, and the
    therapy tables made by their former own history (same DDL), with rows."""
    engine = make_engine(url)
    upgrade_schema(engine, "0003")
    store = Store(engine)
    store.add_patient("P1")
    pv = store.save_program({"name": "x", "channels": []}, "x")
    tables = [metadata.tables[n] for n in THERAPY]
    now = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
    with engine.begin() as conn:
        metadata.create_all(conn, tables=tables)
        conn.execute(sa.text("CREATE TABLE therapy_alembic_version (version_num VARCHAR(32) "
                             "NOT NULL, CONSTRAINT therapy_alembic_version_pkc PRIMARY KEY "
                             "(version_num))"))
        conn.execute(sa.text("INSERT INTO therapy_alembic_version VALUES (:v)"), {"v": version})
        rx, adj, out = tables
        conn.execute(rx.insert().values(
            id=1, patient_id="P1", protocol_id="acl-reconstruction", program_name="x",
            program_version_id=pv.id, status="active", start_date=dt.date(2026, 11, 24),
            document={"a": 1}, state={"targets": {}}, created_at=now))
        conn.execute(adj.insert().values(id=1, prescription_id=1, at=now, parameter="amplitude",
                                         channel="q", old=0.02, new=0.025, reason="r"))
        conn.execute(out.insert().values(id=1, patient_id="P1", instrument="tug", value=14.2,
                                         measured_on=dt.date(2026, 11, 24), created_at=now))
    return engine


def test_revision_0004_adopts_existing_therapy_tables(db_url: str) -> None:
    assert opennmes.therapy  # the package registered its tables on the metadata
    engine = _at_0003_with_old_therapy_tables(db_url)
    engine.dispose()
    with open_store(db_url) as store:
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            assert "therapy_alembic_version" not in names
            assert set(THERAPY) <= names
            rows = {n: conn.execute(sa.select(metadata.tables[n])).mappings().all()
                    for n in THERAPY}
        assert [(r["id"], r["document"]) for r in rows["therapy_prescriptions"]] == [
            (1, {"a": 1})]
        assert [(r["prescription_id"], r["new"]) for r in rows["therapy_adjustments"]] == [
            (1, 0.025)]
        assert [(r["instrument"], r["value"]) for r in rows["therapy_outcomes"]] == [
            ("tug", 14.2)]
        [m] = TherapyRecord(store).list_outcomes("P1")
        assert (m.instrument, m.value, m.measured_on) == ("tug", 14.2, dt.date(2026, 11, 24))


def test_revision_0004_refuses_an_unknown_former_therapy_revision(db_url: str) -> None:
    engine = _at_0003_with_old_therapy_tables(db_url, version="t0002")
    engine.dispose()
    with pytest.raises(StoreError, match=r"therapy tables are at revision 't0002' of their "
                       r"former history \(table therapy_alembic_version\), unknown to this "
                       r"OpenNMES \(it adopts t0001\); they were not changed: upgrade OpenNMES"):
        open_store(db_url)
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == "0003"
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT version_num FROM therapy_alembic_version")) == \
                "t0002"
            assert conn.scalar(sa.text("SELECT count(*) FROM therapy_outcomes")) == 1
    finally:
        engine.dispose()


def test_building_a_therapy_record_never_migrates(db_url: str, other_url: str) -> None:
    """The schema changes only by migration: a store whose database is behind makes the
    therapy record say so (and how to upgrade), and nothing is created."""
    engine = make_engine(db_url)
    try:
        upgrade_schema(engine, "0003")
        with pytest.raises(StoreError, match=r"is at schema revision '0003', older than this "
                           rf"OpenNMES \('{head_revision()}'\); upgrade it with `nmes db "
                           r"upgrade`"):
            TherapyRecord(Store(engine))
        with engine.connect() as conn:
            assert not set(THERAPY) & set(sa.inspect(conn).get_table_names())
        assert current_revision(engine) == "0003"
    finally:
        engine.dispose()
    empty = make_engine(other_url)
    try:
        with pytest.raises(StoreError, match="holds no OpenNMES tables; upgrade it with"):
            TherapyRecord(Store(empty))
    finally:
        empty.dispose()
