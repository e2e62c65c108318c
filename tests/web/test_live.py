"""Live sessions: started in their own process, refused when the screening blocks, stopped
when the web server goes away."""

from __future__ import annotations

import datetime as dt
import time

from opennmes.stim import load_program_text
from opennmes.store import Store
from opennmes.therapy import TherapyRecord

from .conftest import make_client
from .test_access import PROGRAM


def _wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_start_is_refused_when_the_screening_changed_since_the_prescription(
        app, store: Store) -> None:  # type: ignore[no-untyped-def]
    """Screening is re-checked at every start (CPS §4.6 item 8): a DVT recorded under the
    electrode after the prescription stops the start, and nothing is recorded."""
    rx = TherapyRecord(store).prescribe("TKA-001", "total-knee-arthroplasty", side="right",
                                        start_date=dt.date.today())
    store.update_patient("TKA-001", contraindications=[{"factor": "dvt",
                                                        "site": "right quadriceps"}])
    c = make_client(app, "clin")
    c.page("/patients/TKA-001")
    r = c.submit("/patients/TKA-001/sessions", {"prescription_id": str(rx.id),
                                                "device_url": "sim://"})
    assert r.status_code == 303 and r.headers["location"] == "/patients/TKA-001"
    html = c.page("/patients/TKA-001")
    assert "The session did not start" in html and "dvt" in html
    assert store.list_sessions(patient_id="TKA-001") == []
    assert app.state.live.active("TKA-001") is None
    assert "stimulation_started" not in [e.action for e in app.state.accounts.list_audit()]


def test_live_feed_levels_and_stop(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    clin = next(u for u in app.state.accounts.list_users() if u.username == "clin")
    run = app.state.live.start(clin, "TKA-001", load_program_text(PROGRAM), "sim://")
    assert run.process.pid != __import__("os").getpid()  # its own process
    c = make_client(app, "clin")
    c.page(f"/live/{run.id}")
    for _ in range(3):
        r = c.post(f"/live/{run.id}/intensity", data={"direction": "up"},
                   headers={"X-CSRF-Token": c.csrf, "X-Requested-With": "fetch"})
        assert r.status_code == 200 and r.json()["error"] is None
    _wait(lambda: run.snapshot()["levels_mA"] == [3.0])
    snap = c.get(f"/live/{run.id}/data?since=-1").json()
    assert snap["state"] == "running" and snap["max_mA"] == [40.0]
    seqs = [s["seq"] for s in snap["samples"]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap
    later = c.get(f"/live/{run.id}/data?since={seqs[-1]}").json()["samples"]
    assert all(s["seq"] > seqs[-1] for s in later)
    r = c.post(f"/live/{run.id}/intensity", data={"direction": "up", "channel": "nope"},
               headers={"X-CSRF-Token": c.csrf, "X-Requested-With": "fetch"})
    assert r.status_code == 400 and "unknown channel 'nope'" in r.json()["error"]
    r = c.post(f"/live/{run.id}/comfort", data={"score": "11"},
               headers={"X-CSRF-Token": c.csrf, "X-Requested-With": "fetch"})
    assert r.status_code == 400 and "0 (unbearable) to 10" in r.json()["error"]
    r = c.post(f"/live/{run.id}/stop", data={"csrf_token": c.csrf}, follow_redirects=False)
    assert r.status_code == 303
    _wait(lambda: run.ended)  # the stop ends the session (its latency: bench/bench_web.py)
    assert run.outcome["how"] == "stopped"
    info = store.get_session(run.session_id)
    assert info.status == "finished" and info.end_reason.endswith("stop pressed by clin")
    levels = [e for e in store.load_session(run.session_id).events if e.kind == "intensity"]
    assert [e.data["new"] for e in levels] == [0.001, 0.002, 0.003]
    assert {e.data["by"] for e in levels} == {"clin"}


def test_session_stops_when_the_web_server_goes_away(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    """The session process watches its pipe to the web process: when it closes (the server
    crashed or was killed), the session stops and the record is finished."""
    clin = next(u for u in app.state.accounts.list_users() if u.username == "clin")
    run = app.state.live.start(clin, "TKA-001", load_program_text(PROGRAM), "sim://")
    run.conn.close()  # what the OS does when the web process dies
    _wait(lambda: run.ended)  # the run's reader thread joins the process (only it may)
    assert run.process.exitcode == 0
    info = store.get_session(run.session_id)
    assert info.status == "finished"
    assert "the web server went away" in (info.end_reason or "")


def test_a_therapist_test_run_is_recorded_but_not_counted(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    """Started with "Test run" ticked: the session is recorded (and says so in the list), and
    the patient's adherence does not count it."""
    rec = TherapyRecord(store)
    rx = rec.prescribe("TKA-001", "total-knee-arthroplasty", side="right",
                       start_date=dt.date.today())
    c = make_client(app, "clin")
    assert "Test run (not counted as the patient's session)" in c.page("/patients/TKA-001")
    r = c.submit("/patients/TKA-001/sessions", {"prescription_id": str(rx.id),
                                                "device_url": "sim://", "test_run": "1"})
    assert r.status_code == 303 and r.headers["location"].startswith("/live/")
    run = app.state.live.active("TKA-001")
    assert run is not None
    app.state.live.stop(run, None, "test over")
    _wait(lambda: run.ended)
    [info] = store.list_sessions(patient_id="TKA-001")
    assert info.meta["prescription_id"] == rx.id and info.meta["test_run"] is True
    assert rec.session_summaries(rx.id) == [] and rec.adherence(rx.id).partial == 0
