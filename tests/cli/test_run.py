"""``nmes run`` and ``nmes sessions`` as a user runs them (subprocesses), the crash test
(kill -9 in the middle of a live session), and bad input that writes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opennmes.store import open_store

from ..conftest import REPO, run_nmes
from ..session.conftest import program_text


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    with open_store(url) as s:
        s.add_patient("P1")
        s.add_patient("P-pacer", contraindications=[{"factor": "pacemaker", "site": None}])
    return url


def _prog(tmp_path: Path, name: str = "prog.yaml", **kw: object) -> str:
    p = tmp_path / name
    p.write_text(program_text(**kw))  # type: ignore[arg-type]
    return str(p)


def _counts(url: str) -> tuple[int, int]:
    with open_store(url) as s:
        info = s.info()
    return info["sessions"], info["program_versions"]


def test_run_on_sim_then_list_show_export_report(tmp_path: Path, db: str) -> None:
    prog = _prog(tmp_path, reps=3, on=2.0, off=2.0, amplitude="30 mA")
    r = run_nmes("run", prog, "--device", "sim://post-surgery?sfreq=100&emg=0",
                 "--patient", "P1", "--db", db, "--virtual", "--titrate-to", "20",
                 "--titrate-interval", "0.1", "--plain", "--report", str(tmp_path / "r.html"))
    assert r.returncode == 0, r.stderr
    assert "session 1: finished (completed" in r.stdout
    assert "3 contractions, tolerated 20.0 mA (felt without discomfort), highest delivered " \
           "20.0 mA, highest set 20.0 mA" in r.stdout
    assert (tmp_path / "r.html").read_text().count("data:image/png") == 2
    r = run_nmes("sessions", "list", "--db", db)
    assert r.returncode == 0 and "finished" in r.stdout and "P1" in r.stdout
    r = run_nmes("sessions", "show", "1", "--db", db)
    assert r.returncode == 0
    assert "3 contractions" in r.stdout and "The program was completed." in r.stdout
    assert "tolerated 20.0 mA, highest delivered 20.0 mA, highest set 20.0 mA" in r.stdout
    # events in words and mA, never amperes; the titration's steps grouped
    assert "Intensity of quad raised from 0.0 mA to " in r.stdout and "old=" not in r.stdout
    # titration steps wait for a contraction: none lands in the first off phase
    # (ramp down 2.25-2.5 s, off 2.5-4.5 s, ramp up 4.5-4.75 s)
    with open_store(db) as s:
        steps = [e.t for e in s.load_session(1).events if e.kind == "intensity"]
    assert len(steps) == 20 and not [t for t in steps if 2.3 < t < 4.75]
    r = run_nmes("sessions", "export", "1", str(tmp_path / "exp"), "--db", db)
    assert r.returncode == 0 and (tmp_path / "exp").is_dir()
    r = run_nmes("sessions", "report", "1", "--db", db, "--out", str(tmp_path / "r2.html"))
    assert r.returncode == 0 and (tmp_path / "r2.html").is_file()
    r = run_nmes("sessions", "show", "7", "--db", db)
    assert r.returncode == 2 and "unknown session id 7" in r.stderr


def test_run_on_the_emulated_rehastim2(tmp_path: Path, db: str) -> None:
    from opennmes.devices.sciencemode2 import RehaStim2Emulator

    prog = _prog(tmp_path, reps=1, on=0.5)
    with RehaStim2Emulator() as emu:
        r = run_nmes("run", prog, "--device", f"rehastim2://{emu.port}", "--patient", "P1",
                     "--db", db, "--titrate-to", "10", "--titrate-interval", "0.02", "--plain",
                     "--stall-margin", "250")
        assert r.returncode == 0, r.stderr
        assert emu.output_is_zero and len(emu.record) > 0
    with open_store(db) as s:
        rec = s.load_session(1)
    # what the device played is recorded as delivered, or counted unconfirmed where an update
    # may have reached it late (a loaded machine); never recorded wrong
    unconfirmed = sum(sum(e.data["pulses"].values()) for e in rec.events
                      if e.kind == "unconfirmed")
    assert len(rec.pulses) <= len(emu.record) <= len(rec.pulses) + unconfirmed
    # every level the titration set was played (it waits for the contraction), up to 10 mA
    # (the device played it; the record holds it unless its period was left unconfirmed)
    highest_set = max(e.data["new"] for e in rec.events if e.kind == "intensity")
    assert emu.record.schedule().amplitude.max() == pytest.approx(highest_set)
    assert rec.pulses.amplitude.max() <= highest_set + 1e-12
    if not unconfirmed:
        assert rec.pulses.amplitude.max() == pytest.approx(highest_set)
    assert 0.001 <= highest_set <= 0.010


def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path: Path, db: str) -> None:
    prog = _prog(tmp_path)
    base = ("run", prog, "--device", "sim://", "--db", db, "--plain", "--virtual")
    r = run_nmes(*base, "--patient", "nobody")
    assert r.returncode == 2 and "error: unknown patient 'nobody'" in r.stderr
    r = run_nmes(*base, "--patient", "P-pacer")
    assert r.returncode == 2 and "contraindicated" in r.stderr and "pacemaker" in r.stderr
    from opennmes.devices.sciencemode2 import RehaStim2Emulator

    wide = _prog(tmp_path, "wide.yaml", pulse_width="600 us")
    with RehaStim2Emulator() as emu:
        r = run_nmes("run", wide, "--device", f"rehastim2://{emu.port}", "--patient", "P1",
                     "--db", db, "--plain")
    assert r.returncode == 2 and "phase width" in r.stderr.lower()
    assert _counts(db) == (0, 0)
    r = run_nmes(*base[:4], "--patient", "P1", "--db",
                 f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}")
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run_nmes(*base[:4], "--patient", "P1", "--db",
                 "postgresql://nobody:secret@127.0.0.1:1/nmes")
    assert r.returncode == 2 and "cannot reach the database" in r.stderr
    assert "secret" not in r.stderr


def test_kill_9_mid_session_leaves_a_consistent_interrupted_record(tmp_path: Path,
                                                                   db: str) -> None:
    """Crash test through ``nmes run`` (real time): kill -9 after a few seconds; on the next
    open the session is interrupted, the record is consistent, and nothing that a reader had
    seen committed before the kill is lost. (How much the last flush period can lose is the
    writer's flush interval, tested in tests/store; no wall-clock figure here.)"""
    prog = _prog(tmp_path, reps=20, on=1.0, off=1.0, amplitude="30 mA")
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen(
        [sys.executable, "-m", "opennmes", "run", prog, "--device",
         "sim://post-surgery?sfreq=100&emg=0", "--patient", "P1", "--db", db,
         "--titrate-to", "20", "--titrate-interval", "0.05", "--plain", "--stall-margin", "250"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen_before_kill = 0.0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.25)
            with open_store(db, recover=False) as s:
                rows = s.list_sessions()
                if rows and rows[0].streams and rows[0].streams[0].t_end > 3.0:
                    seen_before_kill = rows[0].streams[0].t_end
                    break
        else:
            pytest.fail("the session never got going")
        time.sleep(0.7)  # kill between two commits
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with open_store(db) as s:  # recovery runs on open
        info = s.get_session(1)
        assert info.status == "interrupted"
        assert "interrupted" in (info.end_reason or "")
        assert s.verify_session(1, decode=True) == []
        rec = s.load_session(1)
    stream_end = rec.streams["patient"].n_samples / 100.0
    assert stream_end >= seen_before_kill, (stream_end, seen_before_kill)
    assert len(rec.pulses) > 0 and rec.pulses.t[-1] > stream_end - 1.5
    kinds = [e.kind for e in rec.events]
    assert kinds[0] == "start" and "intensity" in kinds and "stop" not in kinds


@pytest.mark.parametrize(("sig", "status", "reason"), [
    (signal.SIGINT, "aborted", "emergency: KeyboardInterrupt"),
    (signal.SIGTERM, "finished", "stopped: SIGTERM received"),
])
def test_ctrl_c_is_an_emergency_stop_and_sigterm_a_stop(tmp_path: Path, db: str, sig: int,
                                                        status: str, reason: str) -> None:
    prog = _prog(tmp_path, reps=20, on=1.0, off=1.0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "opennmes", "run", prog, "--device", "sim://", "--patient", "P1",
         "--db", db, "--titrate-to", "5", "--plain", "--stall-margin", "250"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.25)
            with open_store(db, recover=False) as s:
                rows = s.list_sessions()
                if rows and rows[0].heartbeat_at > rows[0].started_at:
                    break
        time.sleep(1.0)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (1 if status == "aborted" else 0), err
    with open_store(db) as s:
        info = s.get_session(1)
    assert info.status == status and (info.end_reason or "").startswith(reason)


def test_gait_triggered_program_with_a_replayed_sensor(tmp_path: Path, db: str) -> None:
    """The drop-foot example (a gait trigger in the program file) run by a user on sim://
    with the real shank recording replayed as the live gyroscope: bursts in the swings, the
    triggers in the record and the report; when the recording ends the session stops (the
    end of the input, not a sensor fault) and everything recorded so far is kept."""
    text = (REPO / "examples" / "programs" / "drop-foot-gait-triggered.yaml").read_text()
    prog = tmp_path / "drop-foot.yaml"
    prog.write_text(text.replace("duration: 10 min", "duration: 40 s"))
    gait = REPO / ".." / "shared" / "data" / "gait" / "xsens_shank_walking_120hz.txt"
    r = run_nmes("run", str(prog), "--device", "sim://", "--patient", "P1", "--db", db,
                 "--virtual", "--titrate-to", "30", "--titrate-interval", "0.05", "--plain",
                 "--sensor", f"shank={gait}", "--report", str(tmp_path / "r.html"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the replayed recording 'shank' ended at 29.2" in r.stdout
    summary = [ln for ln in r.stdout.splitlines() if "triggered bursts" in ln]
    assert summary and int(summary[0].split(": ")[1].split()[0]) >= 18
    with open_store(db) as s:
        rec = s.load_session(1)
    assert rec.info.status == "finished"
    stop = [e for e in rec.events if e.kind == "stop"][-1]
    assert (stop.data["how"], stop.data["by"]) == ("stopped", "sensor:shank")
    assert not [e for e in rec.events if e.kind == "watchdog"]
    bursts = [e for e in rec.events if e.kind == "trigger" and e.data["result"] == "burst"]
    assert len(bursts) >= 18
    assert rec.streams["shank"].n_samples > 3000
    assert len(rec.pulses) > 300 and rec.pulses.amplitude.max() == pytest.approx(0.03)
    # with --sensor-loop the recording starts again and the program completes
    r = run_nmes("run", str(prog), "--device", "sim://", "--patient", "P1", "--db", db,
                 "--virtual", "--titrate-to", "30", "--titrate-interval", "0.05", "--plain",
                 "--sensor", f"shank={gait}", "--sensor-loop")
    assert r.returncode == 0, r.stderr
    assert "finished (completed" in r.stdout
    # a sensor file that does not exist: a clear error, nothing written
    r = run_nmes("run", str(prog), "--device", "sim://", "--patient", "P1", "--db", db,
                 "--virtual", "--plain", "--sensor", "shank=/nonexistent.txt")
    assert r.returncode != 0 and "no file '/nonexistent.txt'" in r.stderr
    assert _counts(db)[0] == 2


@pytest.mark.parametrize("site", ["anterior neck", "carotid sinus", "head"])
def test_program_check_refuses_the_sites_that_run_refuses(db: str, tmp_path: Path,
                                                          site: str) -> None:
    """`nmes program check` screens the electrode sites as `nmes run` does: a site that run
    refuses whatever the patient is refused by check too, with the same finding."""
    prog = tmp_path / "site.yaml"
    prog.write_text(program_text(site=site))
    check = run_nmes("program", "check", str(prog))
    run = run_nmes("run", str(prog), "--device", "sim://", "--patient", "P1", "--db", db,
                   "--virtual", "--plain")
    assert check.returncode == run.returncode == 2, check.stdout + check.stderr + run.stderr
    found = [ln for ln in check.stderr.splitlines() if "block:" in ln]
    assert found, check.stderr
    reason = found[0].split("): ", 1)[1].split(" (")[0]
    assert reason in run.stderr
    assert _counts(db)[0] == 0
