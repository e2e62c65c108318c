"""Store benchmarks: writing a 60-minute session, its database size, and crash loss.

The session: 8 stimulation channels at 35 Hz (1.0 M pulses), 4 EMG channels at 2 kHz (real
Delsys Trigno shoulder EMG from ../shared/data, repeated to 60 min), knee angle and force at
100 Hz, an event every 10 s, written in 100 ms blocks as the session runner does. Measured on
SQLite (the default) and, when NMES_TEST_PG_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from opennmes.signals import Signals
from opennmes.stim import PulseSchedule
from opennmes.store import open_store

ROOT = Path(__file__).resolve().parents[1]
EMG_FILE = ROOT.parent / "shared" / "data" / "emg" / "delsys_trigno_shoulder_2000hz.c3d"
DURATION = 3600.0  # s
BLOCK = 0.1  # s
SFREQ = 2000.0  # Hz


def _emg_source() -> tuple[np.ndarray, str]:
    """4 channels of real EMG in volts (synthetic noise if the file is missing)."""
    try:
        import ezc3d

        c3d = ezc3d.c3d(str(EMG_FILE))
        data = np.asarray(c3d["data"]["analogs"][0], dtype=np.float64)[:4]
        return data, "Delsys Trigno EMG (real, repeated)"
    except Exception:  # noqa: BLE001 - the benchmark still runs on synthetic data
        rng = np.random.default_rng(0)
        return rng.normal(0, 5e-5, (4, 11600)), "synthetic EMG"


def _write_session(url: str, dtype: str, emg: np.ndarray) -> dict[str, float]:
    store = open_store(url)
    store.add_patient("BENCH")
    pv = store.save_program({"name": "bench", "channels": 8}, "bench")
    names = tuple(f"ch{i}" for i in range(8))
    n_block = int(BLOCK * SFREQ)
    period = emg.shape[1] - emg.shape[1] % n_block
    t_start = time.perf_counter()
    w = store.begin_session("BENCH", pv.id, "sim://")
    n_blocks = int(round(DURATION / BLOCK))
    pulse_t = np.arange(0.0, DURATION, 1 / 35.0)
    bounds = np.searchsorted(pulse_t, np.arange(n_blocks + 1) * BLOCK)
    for k in range(n_blocks):
        t0 = k * BLOCK
        a = (k * n_block) % period
        w.write_signals(Signals(emg[:, a:a + n_block], SFREQ, ("emg1", "emg2", "emg3", "emg4"),
                                ("V",) * 4, t0), "emg", dtype=dtype)  # type: ignore[arg-type]
        tt = t0 + np.arange(10) / 100.0
        w.write_signals(Signals(np.vstack([0.6 * np.sin(tt), 80 + 20 * np.sin(3 * tt)]), 100.0,
                                ("knee_angle", "knee_torque"), ("rad", "N*m"), t0), "mech",
                        dtype=dtype)  # type: ignore[arg-type]
        on = np.round(pulse_t[bounds[k]:bounds[k + 1]], 6)
        if on.size:
            w.write_pulses(PulseSchedule.from_arrays(
                np.repeat(on, 8), 0.03, 300e-6, channel=np.tile(np.arange(8), on.size),
                interphase_gap=50e-6, channel_names=names))
        if k % 100 == 0:
            w.log_event("tick", t0, {"k": k})
    w.set_dose({"channels": 8})
    w.finish("completed")
    write_s = time.perf_counter() - t_start
    t_load = time.perf_counter()
    rec = store.load_session(w.id)
    load_s = time.perf_counter() - t_load
    n_pulses = len(rec.pulses)
    assert rec.streams["emg"].n_samples == int(DURATION * SFREQ)
    if store.backend == "sqlite":
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        size = Path(store.engine.url.database or "").stat().st_size
    else:
        with store.engine.connect() as conn:
            size = int(conn.exec_driver_sql("SELECT pg_database_size(current_database())")
                       .scalar() or 0)
    store.close()
    return {"write_s": write_s, "load_s": load_s, "size": float(size),
            "pulses": float(n_pulses)}


def _crash_loss(url: str, after: float) -> float:
    """Seconds of EMG handed to the writer but lost when it is killed with SIGKILL ``after``
    seconds into a session."""
    writer = ROOT / "tests" / "store" / "_crash_writer.py"
    proc = subprocess.Popen([sys.executable, str(writer), url], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    sid = int(line[1])
    time.sleep(after)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    handed = [float(x.split()[1]) for x in proc.stdout.read().splitlines() if x.startswith("w ")]
    with open_store(url) as store:
        info = store.get_session(sid)
        assert info.status == "interrupted"
        return handed[-1] - info.streams[0].t_end


def _visible_after(url: str, repeats: int = 5) -> list[float]:
    """Seconds from a write (with no further write) until a reader on another connection sees
    it: the flush timer's work (flush interval 0.5 s); was a unit-test assertion."""
    from opennmes.signals import Signals

    out: list[float] = []
    with open_store(url) as store:
        store.add_patient("BENCH")
        pv = store.save_program({"name": "bench", "channels": 1}, "bench")
        for k in range(repeats):
            w = store.begin_session("BENCH", pv.id, "sim://", flush_interval=0.5)
            w.write_signals(Signals(np.zeros((1, 200)), 2000.0, ("emg",), ("V",)), "emg")
            t0 = time.monotonic()
            with open_store(url, recover=False) as reader:
                while not reader.get_session(w.id).streams:
                    time.sleep(0.005)
            out.append(time.monotonic() - t0)
            w.finish()
            time.sleep(0.1 * k)  # different phases of the flush timer
    return out


def _pg_url() -> str | None:
    base = os.environ.get("NMES_TEST_PG_URL")
    if not base:
        return None
    import psycopg
    import sqlalchemy as sa

    u = sa.make_url(base)
    name = f"nmes_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                         dbname=u.database, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)


def _drop_pg(url: str) -> None:
    import psycopg
    import sqlalchemy as sa

    u = sa.make_url(url)
    base = sa.make_url(os.environ["NMES_TEST_PG_URL"])
    with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                         dbname=base.database, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')


def run() -> list[dict]:
    emg, emg_note = _emg_source()
    rows: list[dict] = []
    raw_mb = DURATION * SFREQ * 4 * 8 / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        variants: list[tuple[str, str, str]] = [
            ("sqlite", f"sqlite:///{tmp}/f64.db", "float64"),
            ("sqlite", f"sqlite:///{tmp}/f32.db", "float32"),
        ]
        pg = _pg_url()
        if pg:
            variants.append(("postgresql", pg, "float64"))
        for backend, url, dtype in variants:
            try:
                r = _write_session(url, dtype, emg)
            finally:
                if backend == "postgresql":
                    _drop_pg(url)
            label = f"{backend}, {dtype}"
            rows += [
                {"name": f"write 60 min session ({label})", "value": round(r["write_s"], 2),
                 "unit": "s", "goal": "< 360 s (10x faster than real time)",
                 "passed": r["write_s"] < 360.0,
                 "note": f"{DURATION / r['write_s']:.0f}x real time; 4 EMG at 2 kHz + 2 at "
                         f"100 Hz + {r['pulses'] / 1e6:.2f} M pulses on 8 channels; "
                         f"{emg_note}"},
                {"name": f"database size of 60 min session ({label})",
                 "value": round(r["size"] / 1e6, 1), "unit": "MB",
                 "goal": f"< {raw_mb:.0f} MB (raw float64 EMG)", "passed": r["size"] < raw_mb * 1e6,
                 "note": "lossless" if dtype == "float64" else "single precision (2^-24)"},
                {"name": f"load 60 min session ({label})", "value": round(r["load_s"], 2),
                 "unit": "s", "goal": "< 30 s", "passed": r["load_s"] < 30.0},
            ]
        seen = _visible_after(f"sqlite:///{tmp}/flush.db")
        rows.append({"name": f"write visible to another reader (worst of {len(seen)}, SQLite)",
                     "value": round(max(seen), 3), "unit": "s", "goal": "<= 1 s",
                     "passed": max(seen) <= 1.0,
                     "note": "flush interval 0.5 s, no further write; "
                             + ", ".join(f"{x:.3f}" for x in seen) + " s"})
        kill_times = (2.2, 2.35, 2.5, 2.65, 2.8)
        losses = [_crash_loss(f"sqlite:///{tmp}/crash{i}.db", after)
                  for i, after in enumerate(kill_times)]
        rows.append({"name": f"EMG lost at kill -9 (worst of {len(losses)}, SQLite)",
                     "value": round(max(losses), 3), "unit": "s", "goal": "<= 1 s",
                     "passed": max(losses) <= 1.0,
                     "note": "killed at " + ", ".join(f"{a:g}" for a in kill_times)
                     + " s: lost " + ", ".join(f"{x:.3f}" for x in losses) + " s"})
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
