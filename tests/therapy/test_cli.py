"""``nmes protocols`` and ``nmes outcomes`` (in-process, through the real entry point)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from opennmes.stim import load_program
from opennmes.store import open_store
from opennmes.therapy import TherapyRecord
from tests.conftest import NmesResult, run_nmes


def _nmes(*args: str, env: dict[str, str] | None = None) -> NmesResult:
    return run_nmes(*args, env=env)


def test_list_show_and_new_program(tmp_path: Path) -> None:
    r = _nmes("protocols", "list", "--json")
    assert r.returncode == 0, r.stderr
    ids = [p["id"] for p in json.loads(r.stdout)]
    assert "total-knee-arthroplasty" in ids and "tens-burst" in ids
    r = _nmes("protocols", "show", "total-knee-arthroplasty")
    assert r.returncode == 0
    assert "Stevens-Lapsley" in r.stdout and "start: 2 to 14 days after surgery" in r.stdout
    out = tmp_path / "tka.yaml"
    r = _nmes("protocols", "new-program", "total-knee-arthroplasty", "-o", str(out), "--side",
              "left", "--amplitude", "65 mA", "--area", "quadriceps=80 cm2")
    assert r.returncode == 0, r.stderr
    p = load_program(out)
    assert p.channels[0].amplitude == 0.065 and p.channels[0].electrode.side == "left"
    bad = tmp_path / "bad.yaml"
    r = _nmes("protocols", "new-program", "acl-reconstruction", "-o", str(bad), "--side",
              "left", "--area", "quadriceps=4 cm2")
    assert r.returncode == 2 and "rms current density" in r.stderr and not bad.exists()


def test_prescribe_outcomes_and_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with open_store(url) as store:
        store.add_patient("P1", contraindications=[{"factor": "dvt", "site": "left calf"}])
    env = {**os.environ, "NMES_DB_URL": url, "XDG_DATA_HOME": str(tmp_path)}
    r = _nmes("protocols", "prescribe", "P1", "knee-osteoarthritis", "--side", "left", env=env)
    assert r.returncode == 2 and "refused by the contraindication screening" in r.stderr
    r = _nmes("protocols", "prescribe", "P1", "knee-osteoarthritis", "--side", "right",
              env=env)
    assert r.returncode == 0, r.stderr
    assert "prescription 1: knee-osteoarthritis for P1" in r.stdout
    sheet = tmp_path / "rx.html"
    r = _nmes("protocols", "sheet", "1", "--html", str(sheet), env=env)
    assert r.returncode == 0, r.stderr
    assert "<svg" in sheet.read_text() and "Nussbaum" in sheet.read_text()
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=14)
    with open_store(url) as store:
        TherapyRecord(store).record_outcome("P1", "pain_nrs", 7, measured_on=day)
    r = _nmes("outcomes", "add", "P1", "pain_nrs", "11", env=env)
    assert r.returncode == 2 and "outside the valid range 0 points .. 10 points" in r.stderr
    r = _nmes("outcomes", "add", "P1", "pain_nrs", "4", env=env)
    assert r.returncode == 0 and "improved beyond the MCID" in r.stdout
    # the same test entered twice on one day: saved, with a warning that names the way out
    r = _nmes("outcomes", "add", "P1", "pain_nrs", "4", env=env)
    assert r.returncode == 0
    assert f"warning: 1 other Pain numeric rating scale entry on {dt.datetime.now(dt.UTC).date()}" \
           ": 4 points; 1 with the same value." in r.stdout
    dup_id = int(r.stdout.split("(id ", 1)[1].split(")", 1)[0])
    assert f"`nmes outcomes delete {dup_id}`" in r.stdout
    r = _nmes("outcomes", "delete", str(dup_id), env=env)
    assert r.returncode == 0 and f"removed measurement {dup_id}" in r.stdout
    r = _nmes("outcomes", "history", "P1", env=env)
    assert "Pain numeric rating scale" in r.stdout
    assert "improved (beyond the MCID, chronic-pain)" in r.stdout
    assert "judged against: MCID (minimal clinically important difference) for chronic-pain" \
        in r.stdout and f"(id {dup_id})" not in r.stdout
    html, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    r = _nmes("outcomes", "report", "P1", "--html", str(html), "--pdf", str(pdf), env=env)
    assert r.returncode == 0, r.stderr
    assert html.stat().st_size > 1000 and pdf.read_bytes().startswith(b"%PDF")
    es = tmp_path / "informe.html"
    r = _nmes("outcomes", "report", "P1", "--html", str(es), "--lang", "es", env=env)
    assert r.returncode == 0, r.stderr
    assert '<html lang="es">' in es.read_text() and "Dosis y adherencia" in es.read_text()
    r = _nmes("outcomes", "report", "P1", "--html", str(es), "--lang", "fr", env=env)
    assert r.returncode == 2 and "--lang 'fr' is not one of en, de, es" in r.stderr
