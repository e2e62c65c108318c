"""Web app load on loopback: 50 users browsing while 10 live sessions stream at 20 Hz.

The server (``opennmes.web`` under uvicorn, one process, SQLite; each live session in its own
process) runs in a subprocess; the load comes from one asyncio process with httpx. Each
browsing user logs in and opens patient pages (list, record, outcomes, progress report,
prescription form) with a think time of 1-5 s (reading the page). Each live client starts a
session on ``sim://healthy-adult`` (a virtual patient), raises the intensity 5 steps and
polls its live feed every 50 ms, as the live page does. Measured:
latency percentiles per kind, HTTP errors, samples lost in the live feeds, and whether any
session was cut short (watchdog, device error).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DURATION = 30.0  # s of measured load
N_BROWSERS = 50
N_LIVE = 10
LIVE_PERIOD = 0.05  # s: 20 Hz
N_CLINICIANS = 10
PASSWORD = "bench-password-1"
DEVICE = "sim://healthy-adult?sfreq=500&seed=1"
GOAL_P99 = 0.200  # s
THINK = (1.0, 5.0)  # s between a user's page views (reading the page)

SERVER = r"""
import datetime as dt, os, sys, uvicorn, secrets
from opennmes.store import open_store
from opennmes.therapy import TherapyRecord
from opennmes.web import Accounts, Settings, create_app
url, port, n_clin = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
password, device = sys.argv[4], sys.argv[5]
store = open_store(url)
acc = Accounts(store)
rec = TherapyRecord(store)
for c in range(n_clin):
    acc.create_user(f"clin{c}", password, "clinician")
    for p in range(5):
        pid = f"B{c:02d}-{p}"
        store.add_patient(pid, year_of_birth=1950 + p, clinician=f"clin{c}")
        rx = rec.prescribe(pid, "total-knee-arthroplasty", side="right",
                           start_date=dt.date.today() - dt.timedelta(days=14))
        rec.record_outcome(pid, "tug", 14.0, measured_on=dt.date.today() - dt.timedelta(days=14))
        rec.record_outcome(pid, "tug", 12.1, measured_on=dt.date.today())
settings = Settings(secret_key=secrets.token_urlsafe(40), db_url=url, cookie_secure=False,
                    device_urls=(device, "sim://"), login_max_failures=1000)
app = create_app(settings, store=store)
print("READY", flush=True)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False,
            timeout_keep_alive=30)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _csrf(html: str) -> str:
    import re

    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token"
    return m.group(1)


_LOGIN_SLOTS: list[asyncio.Semaphore] = []


async def _login(client: Any, username: str) -> str:
    """Log in through the form (two at a time: argon2 takes ~0.3 s of CPU per check)."""
    if not _LOGIN_SLOTS:
        _LOGIN_SLOTS.append(asyncio.Semaphore(2))
    async with _LOGIN_SLOTS[0]:
        return await _login_now(client, username)


async def _login_now(client: Any, username: str) -> str:
    r = await client.get("/login")
    token = _csrf(r.text)
    r = await client.post("/login", data={"csrf_token": token, "username": username,
                                          "password": PASSWORD})
    assert r.status_code == 303, (username, r.status_code)
    r = await client.get(r.headers["location"])
    return _csrf(r.text)


_LOGGED_IN = {"n": 0, "started": 0}  # clients logged in, live sessions started
_EVENTS: dict[str, asyncio.Event] = {}


class Stats:
    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = {"browse": [], "live": []}
        self.errors: dict[str, int] = {"browse": 0, "live": 0}
        self.lost = 0
        self.samples = 0
        self.error_notes: list[str] = []
        self.by_page: dict[str, list[float]] = {}
        self.server_cpu = float("nan")  # cores used by the web process while measured
        self.load = float("nan")  # machine load average (1 min) at the end

    def pct(self, kind: str, q: float) -> float:
        x = self.lat[kind]
        return float(np.percentile(x, q)) if x else float("nan")


async def _timed(stats: Stats, kind: str, coro: Any) -> Any:
    t0 = time.perf_counter()
    try:
        r = await coro
    except Exception as exc:  # noqa: BLE001 - counted as an error
        stats.errors[kind] += 1
        stats.error_notes.append(f"{kind}: {type(exc).__name__}")
        return None
    stats.lat[kind].append(time.perf_counter() - t0)
    if kind == "browse":
        page = r.request.url.path.split("/")[-1] if r.request.url.path.count("/") > 2 else (
            "record" if r.request.url.path.count("/") == 2 else "list")
        stats.by_page.setdefault(page, []).append(time.perf_counter() - t0)
    if r.status_code >= 400:
        stats.errors[kind] += 1
        stats.error_notes.append(f"{kind}: HTTP {r.status_code} {r.request.url.path}")
    return r


def run() -> list[dict[str, Any]]:
    """Start the server, apply the load, return the measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        env = dict(os.environ, XDG_DATA_HOME=str(Path(tmp) / "xdg"))
        proc = subprocess.Popen([sys.executable, "-c", SERVER, url, str(port),
                                 str(N_CLINICIANS), PASSWORD, DEVICE],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "READY" not in line:
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"the server did not start: {err}")
            base = f"http://127.0.0.1:{port}"
            _wait_listening(port)
            try:
                stats, outcomes = asyncio.run(_measure(base, proc.pid))
            except Exception:
                proc.terminate()
                err = proc.communicate(timeout=15)[1]
                sys.stderr.write(f"server log (tail):\n{err[-3000:]}\n")
                raise
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    cut = [o for o in outcomes if o["state"] == "ended"]
    rows = []
    for kind, label in (("browse", f"{N_BROWSERS} users browsing"),
                        ("live", f"{N_LIVE} live sessions polled at 20 Hz")):
        n = len(stats.lat[kind])
        p50, p99 = stats.pct(kind, 50), stats.pct(kind, 99)
        rows.append({"name": f"{label}: p50 latency", "value": round(p50 * 1e3, 1),
                     "unit": "ms", "goal": "-", "passed": None,
                     "note": f"{n} requests in {DURATION:.0f} s ({n / DURATION:.0f}/s)"})
        note = ""
        if kind == "browse":
            note = "p99 by page: " + ", ".join(
                f"{k} {np.percentile(v, 99) * 1e3:.0f} ms"
                for k, v in sorted(stats.by_page.items()))
        rows.append({"name": f"{label}: p99 latency", "value": round(p99 * 1e3, 1),
                     "unit": "ms", "goal": f"< {GOAL_P99 * 1e3:.0f} ms",
                     "passed": bool(p99 < GOAL_P99), "note": note})
        notes = [e for e in stats.error_notes if e.startswith(kind)]
        rows.append({"name": f"{label}: errors", "value": stats.errors[kind], "unit": "",
                     "goal": "0", "passed": stats.errors[kind] == 0,
                     "note": "; ".join(sorted(set(notes)))[:200]})
    n_req = len(stats.lat["browse"]) + len(stats.lat["live"])
    rows.append({"name": "web process CPU while measured", "value": round(stats.server_cpu, 2),
                 "unit": "cores", "goal": "-", "passed": None,
                 "note": f"{stats.server_cpu * DURATION / max(n_req, 1) * 1e3:.1f} ms CPU per "
                         f"request; machine load average {stats.load:.1f} on "
                         f"{os.cpu_count()} cores (shared)"})
    rows.append({"name": "live feed samples lost", "value": stats.lost, "unit": "samples",
                 "goal": "0", "passed": stats.lost == 0,
                 "note": f"{stats.samples} samples received (runner windows of 40 ms)"})
    rows.append({"name": "live sessions cut short during the load", "value": len(cut),
                 "unit": f"of {N_LIVE}", "goal": "0", "passed": not cut,
                 "note": "; ".join(str(o.get("outcome")) for o in cut)[:300] or
                 f"all on {DEVICE} at 5 mA, running"})
    return rows


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("the server is not listening")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, s (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


async def _measure(base: str, pid: int) -> tuple[Stats, list[Any]]:
    """Log everyone in, then run the measured load for DURATION seconds."""
    stats = Stats()
    ready = asyncio.Event()
    outcomes: list[Any] = []
    far = time.monotonic() + 3600
    holder = {"stop": far}

    async def browser(i: int) -> None:
        await _browser_loop(base, i, holder, stats, ready)

    async def live(i: int) -> None:
        await _live_loop(base, i, holder, stats, ready, outcomes)

    counter = _LOGGED_IN
    counter["n"] = counter["started"] = 0
    _LOGIN_SLOTS.clear()
    _EVENTS["logged_in"] = asyncio.Event()
    tasks = [asyncio.create_task(browser(i)) for i in range(N_BROWSERS)]
    tasks += [asyncio.create_task(live(i)) for i in range(N_LIVE)]
    deadline = time.monotonic() + 180
    while counter["n"] < N_BROWSERS + N_LIVE:  # logins: ~0.3 s of argon2 each
        if time.monotonic() > deadline or any(t.done() and t.exception() for t in tasks):
            for t in tasks:
                if t.done() and t.exception():
                    raise RuntimeError(f"a client failed to start: {t.exception()!r}")
            raise RuntimeError("logins did not finish in time")
        await asyncio.sleep(0.2)
    _EVENTS["logged_in"].set()
    while counter["started"] < N_LIVE:
        if time.monotonic() > deadline or any(t.done() and t.exception() for t in tasks):
            raise RuntimeError("live sessions did not start in time")
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # sessions settle
    holder["stop"] = time.monotonic() + DURATION
    cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
    ready.set()
    await asyncio.gather(*tasks)
    stats.server_cpu = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
    stats.load = os.getloadavg()[0]
    return stats, outcomes


async def _browser_loop(base: str, i: int, holder: dict[str, float], stats: Stats,
                        ready: asyncio.Event) -> None:
    import httpx

    rng = random.Random(i)
    c = i % N_CLINICIANS
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        await _login(client, f"clin{c}")
        _LOGGED_IN["n"] += 1
        await ready.wait()
        pages = ["/patients"] + [f"/patients/B{c:02d}-{p}{suffix}" for p in range(5)
                                 for suffix in ("", "/outcomes", "/progress", "/prescribe")]
        await asyncio.sleep(rng.uniform(0.0, THINK[1]))
        while time.monotonic() < holder["stop"]:
            await _timed(stats, "browse", client.get(rng.choice(pages)))
            await asyncio.sleep(rng.uniform(*THINK))


async def _live_loop(base: str, i: int, holder: dict[str, float], stats: Stats,
                     ready: asyncio.Event, outcomes: list[Any]) -> None:
    import re

    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        token = await _login(client, f"clin{i % N_CLINICIANS}")
        _LOGGED_IN["n"] += 1
        await _EVENTS["logged_in"].wait()  # no argon2 checks while sessions run
        pid = f"B{i % N_CLINICIANS:02d}-{i // N_CLINICIANS}"
        r = await client.get(f"/patients/{pid}")
        rx = re.search(r'name="prescription_id" value="(\d+)"', r.text)
        assert rx, "no prescription on the patient page"
        r = await client.post(f"/patients/{pid}/sessions", data={
            "csrf_token": token, "prescription_id": rx.group(1), "device_url": DEVICE})
        assert r.status_code == 303 and "/live/" in r.headers["location"], r.text[:300]
        live = r.headers["location"]
        for _ in range(5):  # a few steps up, as the therapist does
            await client.post(f"{live}/intensity", data={"csrf_token": token,
                                                         "direction": "up"},
                              headers={"X-Requested-With": "fetch"})
        _LOGGED_IN["started"] += 1
        await ready.wait()
        since = -1
        next_t = time.monotonic()
        while time.monotonic() < holder["stop"]:
            r = await _timed(stats, "live", client.get(f"{live}/data?since={since}"))
            if r is not None and r.status_code == 200:
                seqs = [s["seq"] for s in r.json()["samples"]]
                if seqs:
                    if since >= 0:
                        stats.lost += seqs[0] - since - 1
                    stats.lost += (seqs[-1] - seqs[0] + 1) - len(seqs)
                    stats.samples += len(seqs)
                    since = seqs[-1]
            next_t += LIVE_PERIOD
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        r = await client.get(f"{live}/data?since={2**62}")
        outcomes.append(r.json())
        await client.post(f"{live}/stop", data={"csrf_token": token})


if __name__ == "__main__":
    for row in run():
        print(row)
