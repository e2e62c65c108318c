"""Recording sessions: what is written comes back, bad input writes nothing, and commits
happen at least every second."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from opennmes.errors import StoreError
from opennmes.signals import Signals
from opennmes.stim import PulseSchedule
from opennmes.store import Store, open_store
from opennmes.store._models import SessionRow, StreamChunkRow, StreamRow

from .conftest import emg_block, pulse_block


@pytest.fixture
def ids(store: Store, program_doc: dict) -> tuple[str, int]:
    store.add_patient("P1", year_of_birth=1960, sex="male", height=1.8, mass=85.0)
    return "P1", store.save_program(program_doc, "tka").id


def _count(store: Store, model: type) -> int:
    with store._orm() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_everything_written_comes_back(store: Store, ids: tuple[str, int]) -> None:
    pid, pv = ids
    w = store.begin_session(pid, pv, "sim://", meta={"seed": 7, "operator": "pt1"},
                            device_info={"firmware": "1.0"})
    blocks = [emg_block(k) for k in range(23)]  # 2.3 s at 2 kHz, chunks of 1 s
    force = Signals(np.linspace(0, 50, 250)[None, :], 100.0, ("force",), ("N",), 0.0)
    pulses = [pulse_block(k * 0.5, 0.5) for k in range(5)]
    for k, b in enumerate(blocks):
        w.write_signals(b, "emg")
        if k < 5:
            w.write_pulses(pulses[k])
    w.write_signals(force)  # default stream name: channel names
    w.write_signals(Signals(np.full((4, 7), np.nan), 2000.0, blocks[0].names, blocks[0].units,
                            23 * 0.1), "emg")  # a gap filled with NaN is fine
    w.log_event("start", 0.0, {})
    w.log_event("intensity", 1.25, {"channel": "quad_l", "amplitude": 0.031})
    w.log_event("pause", 2.0)
    w.set_dose({"charge": 1.0})
    w.set_dose({"charge": 2.5, "channels": {"quad_l": {"rms_current_density": 0.7}}})
    w.finish("completed")
    assert w.finished

    rec = store.load_session(w.id)
    info = rec.info
    assert (info.status, info.end_reason, info.patient_id, info.device_url) == (
        "finished", "completed", pid, "sim://")
    assert info.program_version_id == pv and info.program_name == "tka"
    assert info.meta == {"seed": 7, "operator": "pt1"} and rec.device_info == {"firmware": "1.0"}
    assert info.started_at <= info.ended_at <= dt.datetime.now(dt.UTC)  # type: ignore[operator]
    emg = rec.streams["emg"]
    expected = np.hstack([b.data for b in blocks] + [np.full((4, 7), np.nan)])
    assert emg.data.shape == (4, 23 * 200 + 7)
    assert np.array_equal(emg.data, expected, equal_nan=True)
    assert (emg.sfreq, emg.t0, emg.names, emg.units) == (2000.0, 0.0, blocks[0].names,
                                                         ("V",) * 4)
    assert np.array_equal(rec.streams["force"].data, force.data)
    assert [s.name for s in info.streams] == ["emg", "force"]
    assert info.streams[0].t_end == pytest.approx(2.3035)
    all_pulses = PulseSchedule.concat(pulses)
    assert rec.pulses.equals(all_pulses) and len(rec.pulses) == 2 * 5 * 18
    assert info.pulse_channels == ("quad_l", "quad_r")
    assert [(e.seq, e.t, e.kind) for e in rec.events] == [
        (0, 0.0, "start"), (1, 1.25, "intensity"), (2, 2.0, "pause")]
    assert rec.events[1].data == {"channel": "quad_l", "amplitude": 0.031}
    assert rec.dose == {"charge": 2.5, "channels": {"quad_l": {"rms_current_density": 0.7}}}
    assert rec.program.document["train"]["on"] == 10.0
    assert rec.patient.mass == 85.0
    assert store.verify_session(w.id, decode=True) == []
    # EMG chunks hold at most one second (2000 samples)
    with store._orm() as s:
        ns = s.scalars(sa.select(StreamChunkRow.n).join(
            StreamRow, StreamRow.id == StreamChunkRow.stream_id).where(
            StreamRow.session_id == w.id, StreamRow.name == "emg")).all()
    assert max(ns) == 2000


def test_float32_streams_keep_single_precision(store: Store, ids: tuple[str, int]) -> None:
    w = store.begin_session(*ids, "sim://")
    b = emg_block(0, n=4000)
    w.write_signals(b, "emg", dtype="float32")
    with pytest.raises(StoreError, match="stored as <f4; got dtype <f8"):
        w.write_signals(emg_block(20), "emg")
    w.finish()
    back = store.load_session(w.id).streams["emg"].data
    assert np.array_equal(back, b.data.astype(np.float32).astype(np.float64))


def test_unknown_patient_or_program_writes_nothing(store: Store, ids: tuple[str, int]) -> None:
    _pid, pv = ids
    with pytest.raises(StoreError, match=r"unknown patient 'P404'.*nothing was recorded.*"
                       r"nmes db patients"):
        store.begin_session("P404", pv, "sim://")
    with pytest.raises(StoreError, match="unknown program version id 999"):
        store.begin_session("P1", 999, "sim://")
    with pytest.raises(StoreError, match="must be plain JSON"):
        store.begin_session("P1", pv, "sim://", meta={"x": float("inf")})
    with pytest.raises(StoreError, match="flush_interval = 2.0 s must be in"):
        store.begin_session("P1", pv, "sim://", flush_interval=2.0)
    assert _count(store, SessionRow) == 0
    assert store.list_sessions() == []


def test_bad_writes_are_refused(store: Store, ids: tuple[str, int]) -> None:
    w = store.begin_session(*ids, "sim://")
    w.write_signals(emg_block(0), "emg")
    with pytest.raises(StoreError, match=r"samples start at t0 = 0.2 s but the stream "
                       r"continues at 0.1 s"):
        w.write_signals(emg_block(2), "emg")
    with pytest.raises(StoreError, match="sampled at 2000 Hz; got 1000 Hz"):
        w.write_signals(emg_block(1, sfreq=1000.0), "emg")
    w.write_pulses(pulse_block(1.0, 0.5))
    with pytest.raises(StoreError, match=r"pulses at t = 0.0 s come before"):
        w.write_pulses(pulse_block(0.0, 0.5))
    with pytest.raises(StoreError, match="differ from the session's"):
        w.write_pulses(pulse_block(2.0, 0.5, names=("a", "b")))
    with pytest.raises(StoreError, match="event t = nan s must be a finite"):
        w.log_event("x", float("nan"))
    with pytest.raises(StoreError, match="data of event 'x' must be plain JSON"):
        w.log_event("x", 1.0, {"a": {1, 2}})
    w.finish("stopped by user", status="aborted")
    with pytest.raises(StoreError, match="is finished"):
        w.log_event("late", 3.0)
    rec = store.load_session(w.id)
    assert rec.info.status == "aborted" and rec.streams["emg"].n_samples == 200
    assert len(rec.pulses) == 36 and rec.events == []


def test_context_manager_records_an_exception_as_aborted(store: Store,
                                                         ids: tuple[str, int]) -> None:
    with pytest.raises(RuntimeError), store.begin_session(*ids, "sim://") as w:
        w.log_event("start", 0.0)
        raise RuntimeError("cable slipped")
    info = store.get_session(w.id)
    assert info.status == "aborted"
    assert info.end_reason == "error: RuntimeError: cable slipped"
    assert [e.kind for e in store.load_session(w.id).events] == ["start"]


def test_commits_at_least_every_second_without_further_writes(
        store: Store, ids: tuple[str, int], db_url: str) -> None:
    """A reader on another connection sees what was written with no further write to push it
    out (the flush timer commits it), and the heartbeat keeps beating while nothing is
    written. Asserted by what the reader sees, within generous timeouts; how soon (goal:
    within the 0.5 s flush interval plus one poll) is measured in bench/bench_store.py."""
    w = store.begin_session(*ids, "sim://", flush_interval=0.5)
    w.write_signals(emg_block(0), "emg")
    w.log_event("start", 0.0)
    with open_store(db_url, recover=False) as reader:
        _until(lambda: (reader.get_session(w.id).streams or [None])[0] is not None
               and reader.get_session(w.id).streams[0].n_samples == 200)
        assert [e.kind for e in reader.load_session(w.id).events] == ["start"]
        beat = reader.get_session(w.id).heartbeat_at
        _until(lambda: reader.get_session(w.id).heartbeat_at > beat)  # nothing written since
    w.finish()


def _until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``cond`` until it holds; the timeout is generous for a loaded machine and only
    ends a test that would otherwise hang."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sessions_are_listed_newest_first(store: Store, ids: tuple[str, int]) -> None:
    store.add_patient("P2")
    for pid in ("P1", "P2", "P1"):
        store.begin_session(pid, ids[1], "sim://").finish()
    sessions = store.list_sessions()
    assert [s.patient_id for s in sessions] == ["P1", "P2", "P1"]
    assert sessions[0].id > sessions[1].id > sessions[2].id
    assert [s.patient_id for s in store.list_sessions(patient_id="P2")] == ["P2"]
    assert len(store.list_sessions(limit=2)) == 2
    assert store.list_sessions(status="interrupted") == []
    with pytest.raises(StoreError, match="unknown session status 'done'"):
        store.list_sessions(status="done")
    with pytest.raises(StoreError, match="unknown session id 99"):
        store.load_session(99)


def test_recovery_marks_only_dead_or_silent_sessions(store: Store, ids: tuple[str, int],
                                                     db_url: str) -> None:
    live = store.begin_session(*ids, "sim://")
    dead = store.begin_session(*ids, "sim://")
    silent = store.begin_session(*ids, "sim://")
    for w in (dead, silent):  # stop their committer threads, leave them 'running'
        w._stopping = True
        w._wake.set()
        w._thread.join()
        w._closed = True
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    with store.engine.begin() as conn:
        conn.execute(sa.update(SessionRow).where(SessionRow.id == dead.id)
                     .values(pid=int(gone.stdout)))
        conn.execute(sa.update(SessionRow).where(SessionRow.id == silent.id)
                     .values(heartbeat_at=old))
    with open_store(db_url) as again:  # recovery runs on open
        assert again.get_session(live.id).status == "running"
        d, s = again.get_session(dead.id), again.get_session(silent.id)
        assert d.status == "interrupted" and "its process ended" in (d.end_reason or "")
        assert s.status == "interrupted" and "no heartbeat for 10 s" in (s.end_reason or "")
        assert s.ended_at == old
    live.finish()
    assert store.get_session(live.id).status == "finished"


def test_verify_finds_a_missing_chunk(store: Store, ids: tuple[str, int]) -> None:
    w = store.begin_session(*ids, "sim://")
    for k in range(25):
        w.write_signals(emg_block(k), "emg")
    w.finish()
    with store.engine.begin() as conn:
        conn.execute(sa.delete(StreamChunkRow).where(StreamChunkRow.seq == 1))
    problems = store.verify_session(w.id)
    assert "stream 'emg': chunk 1 numbered 2" in problems
    assert "stream 'emg': chunk 2 starts at sample 4000, expected 2000" in problems
    with pytest.raises(StoreError, match="inconsistent at sample 4000"):
        store.load_session(w.id)


def test_exit_without_finish_keeps_everything_and_marks_interrupted(
        store: Store, ids: tuple[str, int], db_url: str) -> None:
    """A script that ends without finishing: all it wrote is committed at exit."""
    code = (
        "import sys\n"
        "from opennmes.store import open_store\n"
        "from tests.store.conftest import emg_block\n"
        "s = open_store(sys.argv[1])\n"
        "w = s.begin_session('P1', int(sys.argv[2]), 'sim://', flush_interval=1.0)\n"
        "for k in range(3):\n"
        "    w.write_signals(emg_block(k), 'emg')\n"
        "w.log_event('last words', 0.3)\n"
        "print(w.id)\n"
    )
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", code, db_url, str(ids[1])], capture_output=True,
                       text=True, timeout=120, cwd=root)
    assert r.returncode == 0, r.stderr
    info = store.get_session(int(r.stdout))
    assert info.status == "interrupted" and "exited without finishing" in (info.end_reason or "")
    rec = store.load_session(info.id)
    assert rec.streams["emg"].n_samples == 600 and rec.events[-1].kind == "last words"


def test_a_failed_commit_is_reported_and_retried(store: Store, ids: tuple[str, int],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    w = store.begin_session(*ids, "sim://", flush_interval=0.2)
    real = w._write_batch
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(w, "_write_batch", flaky)
    w.write_signals(emg_block(0), "emg")
    deadline = time.monotonic() + 5
    while w._error is None and calls["n"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(StoreError, match="disk I/O error.*will be retried"):
        w.write_signals(emg_block(1), "emg")  # reported once; these samples are kept
    w.write_signals(emg_block(2), "emg")
    w.finish()
    rec = store.load_session(w.id)
    assert np.array_equal(rec.streams["emg"].data,
                          np.hstack([emg_block(k).data for k in range(3)]))
    assert store.verify_session(w.id) == []


def test_windows_of_streams_and_pulses(store: Store, ids: tuple[str, int]) -> None:
    w = store.begin_session(*ids, "sim://")
    for k in range(25):  # 2.5 s of EMG at 2 kHz, stored in 1 s chunks
        w.write_signals(emg_block(k), "emg")
    for k in range(5):
        w.write_pulses(pulse_block(k * 0.5, 0.5))
    w.finish()
    full = store.load_session(w.id)
    part = store.load_stream(w.id, "emg", 0.9, 2.1)
    ref = full.streams["emg"].crop(0.9, 2.1)
    assert part.t0 == ref.t0 == 0.9 and np.array_equal(part.data, ref.data)
    assert part.n_samples == 2400
    assert np.array_equal(store.load_stream(w.id, "emg").data, full.streams["emg"].data)
    assert store.load_stream(w.id, "emg", 2.4).n_samples == 200
    assert store.load_stream(w.id, "emg", 3.0, 4.0).n_samples == 0
    p = store.load_pulses(w.id, 0.75, 1.3)
    assert p.equals(full.pulses.window(0.75, 1.3)) and len(p) > 0
    assert store.load_pulses(w.id).equals(full.pulses)
    with pytest.raises(StoreError, match=r"has no stream 'force'; its streams: \['emg'\]"):
        store.load_stream(w.id, "force")


def test_a_running_session_can_be_followed(store: Store, ids: tuple[str, int],
                                           db_url: str) -> None:
    w = store.begin_session(*ids, "sim://")
    for k in range(12):
        w.write_signals(emg_block(k), "emg")
    w.flush()
    with open_store(db_url, recover=False) as reader:
        assert reader.get_session(w.id).status == "running"
        live = reader.load_stream(w.id, "emg", 1.0)
        assert live.n_samples == 400 and live.t0 == 1.0
        for k in range(12, 20):
            w.write_signals(emg_block(k), "emg")
        w.flush()
        assert reader.load_stream(w.id, "emg", 1.0).n_samples == 2000
        assert reader.load_session(w.id).streams["emg"].n_samples == 4000
    w.finish()


def test_sessions_starting_together_on_a_new_device(db_url: str, program_doc: dict) -> None:
    """Two stores (as two session processes) begin sessions on a device URL never seen
    before at the same moment: both get the one device row."""
    import threading

    first = open_store(db_url)
    first.add_patient("P1", year_of_birth=1960, sex="male", height=1.8, mass=85.0)
    pv = first.save_program(program_doc, "tka").id
    stores = [first, open_store(db_url)]
    barrier = threading.Barrier(2)
    writers: list = []
    errors: list = []

    def go(st: Store) -> None:
        barrier.wait()
        try:
            writers.append(st.begin_session("P1", pv, "p24:///dev/ttyACM7"))
        except Exception as exc:  # pragma: no cover - the failure this test guards against
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for w in writers:
        w.finish("completed")
    assert {first.get_session(w.id).device_url for w in writers} == {"p24:///dev/ttyACM7"}
    for st in stores:
        st.close()
