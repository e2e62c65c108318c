"""Crash test: ``kill -9`` in the middle of a session loses at most one second of record."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opennmes.store import open_store

WRITER = Path(__file__).with_name("_crash_writer.py")


@pytest.mark.skipif(os.name == "nt", reason="kill -9 is POSIX")
def test_kill_9_loses_at_most_one_second(db_url: str) -> None:
    proc = subprocess.Popen([sys.executable, str(WRITER), db_url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line and line[0] == "ready", proc.stderr.read() if proc.stderr else ""
        session_id, start_wall = int(line[1]), float(line[2])
        time.sleep(2.7)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        kill_wall = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        progress = [float(x.split()[1]) for x in proc.stdout.read().splitlines()
                    if x.startswith("w ")]
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    handed = progress[-1]  # session seconds of EMG handed to the writer before the kill
    assert handed >= 1.0
    assert handed <= kill_wall - start_wall + 0.01

    if db_url.startswith("sqlite:///"):
        con = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        con.close()
    with open_store(db_url) as store:  # recovery runs on open
        info = store.get_session(session_id)
        assert info.status == "interrupted"
        assert info.end_reason is not None and "its process ended" in info.end_reason
        assert store.verify_session(session_id, decode=True) == []
        rec = store.load_session(session_id)
        emg_end = rec.streams["emg"].t[-1] + 1 / rec.streams["emg"].sfreq
        assert handed - 1.0 <= emg_end <= handed, (handed, emg_end)
        assert handed - 1.0 - 1 / 35 <= rec.pulses.t[-1] <= handed, (handed, rec.pulses.t[-1])
        assert len(set(rec.pulses.channel.tolist())) == 8
        ticks = [e.t for e in rec.events]
        assert ticks[0] == 0.0 and ticks[-1] >= handed - 1.5
        assert info.ended_at is not None
        assert abs(info.ended_at.timestamp() - kill_wall) <= 1.0
        # the interrupted session can be exported like any other
        assert store.list_sessions(status="interrupted")[0].id == session_id
