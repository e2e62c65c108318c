"""``nmes demo`` (what ``make demo`` runs): embedded defaults, no TTY, and again on the
same database (its duration is measured in bench/, not here)."""

from __future__ import annotations

import re
from pathlib import Path

from opennmes.store import open_store

from ..conftest import run_nmes


def test_demo_runs_stores_and_reports_twice(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "NMES_DB_URL": ""}
    r = run_nmes("demo", env=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "session 1: finished (completed: program completed)" in out
    assert "15 contractions, tolerated 55.0 mA (felt without discomfort), highest delivered " \
           "55.0 mA, highest set 55.0 mA" in out
    for ev in ("event pause", "event resume", "event comfort", "event skin_check"):
        assert ev in out  # plain progress lines without a TTY
    path = Path(re.search(r"report: (\S+)", out).group(1))  # type: ignore[union-attr]
    html = path.read_text()
    assert "Dose delivered" in html and html.count("data:image/png") == 2
    db = tmp_path / "data" / "opennmes" / "demo.db"
    assert db.is_file()
    # one reports folder per database, and the commands to look at the session again
    assert path.parent == tmp_path / "data" / "opennmes" / "reports" / "demo"
    again = [ln.strip() for ln in out.splitlines()[out.splitlines().index("look at it again:")
                                                    + 1:][:3]]
    assert again == [f"nmes sessions list --db sqlite:///{db}",
                     f"nmes sessions show 1 --db sqlite:///{db}",
                     f"nmes sessions report 1 --db sqlite:///{db}"]
    listed = run_nmes(*again[0].split()[1:], env=env)
    assert listed.returncode == 0
    assert "finished" in listed.stdout and "demo-post-tka" in listed.stdout
    r2 = run_nmes("demo", "--out", str(tmp_path / "reports"), env=env)
    assert r2.returncode == 0, r2.stderr
    assert "session 2: finished" in r2.stdout
    assert (tmp_path / "reports" / "session-2.html").is_file()
    with open_store(f"sqlite:///{db}") as s:
        rows = s.list_sessions()
        assert [x.status for x in rows] == ["finished", "finished"]
        rec = s.load_session(1)
    kinds = [e.kind for e in rec.events]
    assert kinds.count("pause") == 1 and kinds.count("comfort") >= 1
    assert rec.dose["channels"][0]["max_level"] == 0.055  # type: ignore[index]
