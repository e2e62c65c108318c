"""``nmes db``: through the real entry point (in-process), as a user runs it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from opennmes.store import export_session, open_store
from opennmes.store._engine import head_revision
from tests.conftest import NmesResult, run_nmes


def _nmes(*args: str, env: dict[str, str] | None = None) -> NmesResult:
    return run_nmes("db", *args, env=env)


def test_db_commands(tmp_path: Path, program_doc: dict) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    r = _nmes("upgrade", "--db", url)
    assert r.returncode == 0 and f"migrated from empty to {head_revision()}" in r.stdout, \
        r.stderr
    r = _nmes("add-patient", "P7", "--db", url, "--year-of-birth", "1970", "--sex", "male",
              "--height", "182 cm", "--mass", "90 kg", "--contraindication", "pacemaker",
              "--contraindication", "metal_implant@left quadriceps")
    assert r.returncode == 0 and "added patient P7" in r.stdout, r.stderr
    with open_store(url) as store:
        p = store.get_patient("P7")
        assert (p.height, p.mass, p.year_of_birth) == (1.82, 90.0, 1970)
        assert p.contraindications == ({"factor": "pacemaker", "site": None},
                                       {"factor": "metal_implant", "site": "left quadriceps"})
        w = store.begin_session("P7", store.save_program(program_doc, "tka").id, "sim://")
        w.log_event("start", 0.0)
        w.finish()
        export_session(store, w.id, tmp_path / "exp")
    env = {**os.environ, "NMES_DB_URL": url}
    r = _nmes("info", env=env)
    assert r.returncode == 0 and f"revision           {head_revision()}" in r.stdout
    assert "sessions           1" in r.stdout
    r = _nmes("patients", "--db", url)
    assert "P7" in r.stdout and "1.82 m" in r.stdout and "metal_implant@left quadriceps" in r.stdout
    r = _nmes("sessions", "--db", url, "--json")
    rows = json.loads(r.stdout)
    assert [(s["patient_id"], s["status"], s["program"]) for s in rows] == [
        ("P7", "finished", "tka")]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    r = _nmes("import", str(tmp_path / "exp"), "--db", other)
    assert r.returncode == 0 and "as session 1" in r.stdout, r.stderr
    with open_store(other) as store:
        assert store.load_session(1).events[0].kind == "start"


def test_db_errors_are_one_line(tmp_path: Path) -> None:
    r = _nmes("info", "--db", "postgresql://u:pw@127.0.0.1:1/x")
    assert r.returncode == 2
    assert r.stderr.startswith("error: cannot reach the database postgresql+psycopg://u:***@")
    assert len(r.stderr.strip().splitlines()) == 1 and "pw@" not in r.stderr
    r = _nmes("add-patient", "P8", "--db", f"sqlite:///{tmp_path / 'b.db'}", "--mass", "90")
    assert r.returncode == 2 and "give the body mass with its unit, e.g. '71.5 kg'" in r.stderr
