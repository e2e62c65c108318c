"""`nmes serve` as a subprocess: first start creates an admin, serves the login page."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from opennmes.store import open_store
from opennmes.web import Accounts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(tmp_path: Path, db: str, port: int) -> subprocess.Popen[str]:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    env.pop("NMES_SECRET_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "opennmes", "serve", "--db", db,
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _wait_up(port: int, proc: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            return httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("nmes serve did not answer")


def test_nmes_serve_first_start(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'clinic.db'}"
    port = _free_port()
    proc = _serve(tmp_path, db, port)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        m = re.match(r"created admin account 'admin' with password: (\S+)", first)
        assert m, first
        r = _wait_up(port, proc)
        assert r.status_code == 200 and 'name="csrf_token"' in r.text
        assert r.headers["x-frame-options"] == "DENY"
        assert httpx.get(f"http://127.0.0.1:{port}/patients", timeout=5).status_code == 303
        js = httpx.get(f"http://127.0.0.1:{port}/vendor/plotly.min.js", timeout=5)
        assert js.status_code == 200 and len(js.content) > 1_000_000  # served locally
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    key = tmp_path / "xdg" / "opennmes" / "web-secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with open_store(db) as store:
        accounts = Accounts(store)
        assert accounts.authenticate("admin", m.group(1)) is not None
        assert [u.role for u in accounts.list_users()] == ["admin"]
    # a second start creates no other account and keeps the key
    before = key.read_text()
    port = _free_port()
    proc = _serve(tmp_path, db, port)
    try:
        _wait_up(port, proc)
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=20)[0]
    assert "created admin" not in out
    assert key.read_text() == before


def test_nmes_serve_runs_a_session_and_stops_it_on_shutdown(tmp_path: Path) -> None:
    """Through `nmes serve`: a clinician starts a simulated session; stopping the server
    (Ctrl-C) stops the session and finishes its record with the reason."""
    import datetime as dt

    from opennmes.therapy import TherapyRecord

    db = f"sqlite:///{tmp_path / 'clinic.db'}"
    with open_store(db) as store:
        Accounts(store).create_user("clin", "clin-pass-123", "clinician")
        store.add_patient("P1", clinician="clin")
        rx = TherapyRecord(store).prescribe("P1", "total-knee-arthroplasty", side="right",
                                            start_date=dt.date.today())
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(tmp_path, db, port)
    try:
        r = _wait_up(port, proc)
        # the cookie is Secure (browsers accept it on localhost); carry it by hand here
        cookie = r.headers["set-cookie"].split(";")[0]

        def csrf(html: str) -> str:
            m = re.search(r'name="csrf_token" value="([^"]+)"', html)
            assert m
            return m.group(1)

        r = httpx.post(f"{base}/login", data={"csrf_token": csrf(r.text), "username": "clin",
                                              "password": "clin-pass-123"},
                       headers={"Cookie": cookie})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].split(";")[0]
        r = httpx.get(f"{base}/patients/P1", headers={"Cookie": cookie})
        cookie = r.headers.get("set-cookie", cookie).split(";")[0]  # the page's CSRF token
        r = httpx.post(f"{base}/patients/P1/sessions", timeout=60, headers={"Cookie": cookie},
                       data={"csrf_token": csrf(r.text), "prescription_id": str(rx.id),
                             "device_url": "sim://healthy-adult?sfreq=500&seed=1"})
        assert r.status_code == 303 and r.headers["location"].startswith("/live/"), r.text
        live = r.headers["location"]
        data = httpx.get(f"{base}{live}/data", headers={"Cookie": cookie}).json()
        assert data["state"] in ("running", "starting") and data["levels_mA"] == [0.0]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    with open_store(db) as store:
        [info] = store.list_sessions(patient_id="P1")
    assert info.status == "finished"
    assert info.end_reason == "stopped: server shutting down"
