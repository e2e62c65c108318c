"""A database on a read-only file system (or a read-only file or folder) is opened read-only:
sessions and patients can be listed, nothing is migrated or written, and a schema that is
out of date is one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from opennmes.errors import StoreError
from opennmes.stim import load_program_text
from opennmes.store import open_store
from opennmes.store._engine import make_engine, upgrade_schema
from tests.cli_errors import one_error_line
from tests.conftest import run_nmes

PROGRAM = """
name: ro test
channels:
  - name: quad
    electrode: {area: 50 cm2, site: quadriceps, side: right}
    frequency: 35 Hz
    pulse_width: 300 us
    amplitude: 30 mA
duration: 2 s
"""


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` read-only for this process: a read-only bind mount when running as
    root (permissions do not bind root), else permission bits. Skips when neither works."""
    if os.geteuid() != 0:
        files = [p for p in folder.iterdir() if p.is_file()]
        for p in files:
            p.chmod(0o444)
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
            for p in files:
                p.chmod(0o644)
        return
    mount = shutil.which("mount")
    ok = mount is not None and subprocess.run(
        [mount, "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    if ok:
        ok = subprocess.run([mount, "-o", "remount,bind,ro", str(folder)],
                            capture_output=True).returncode == 0
        if not ok:
            subprocess.run(["umount", str(folder)], capture_output=True)
    if not ok:
        pytest.skip("cannot make a read-only folder here (root without mount permission)")
    try:
        yield
    finally:  # a file still open under it (a leak to fix) must not leave the mount behind
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
            raise AssertionError(f"{folder} was still in use after the test")


@pytest.fixture
def ro_db(tmp_path: Path) -> Iterator[str]:
    """The URL of a database with a patient and one finished session, in a read-only
    folder (no ``-wal``/``-shm`` files: the last writer closed cleanly)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    url = f"sqlite:///{folder / 'sessions.db'}"
    with open_store(url) as store:
        store.add_patient("P1", contraindications=[{"factor": "pacemaker"}])
        prog = load_program_text(PROGRAM)
        pv = store.save_program(prog.to_file_dict(), prog.name)
        with store.begin_session("P1", pv.id, "sim://") as w:
            w.log_event("start", 0.0)
    with read_only(folder):
        yield url


def test_read_only_database_can_be_listed(ro_db: str) -> None:
    before = sorted(p.name for p in Path(ro_db[10:]).parent.iterdir())
    with open_store(ro_db) as store:
        assert store.read_only is not None and "read-only" in store.read_only
        assert [s.status for s in store.list_sessions()] == ["finished"]
        assert [p.id for p in store.list_patients()] == ["P1"]
        assert store.load_session(1).events[0].kind == "start"
        assert store.info()["sessions"] == 1
        with pytest.raises(StoreError, match="cannot add a patient: the database .* was "
                                             "opened read-only"):
            store.add_patient("P2")
        for call in (lambda: store.save_program({"name": "x"}, "x"),
                     lambda: store.begin_session("P1", 1, "sim://"),
                     lambda: store.update_patient("P1", notes="n")):
            with pytest.raises(StoreError, match="read-only"):
                call()
    assert sorted(p.name for p in Path(ro_db[10:]).parent.iterdir()) == before


@pytest.mark.parametrize("args", [("sessions", "list"), ("db", "sessions"),
                                  ("db", "patients"), ("db", "info")])
def test_read_only_cli_lists(ro_db: str, args: tuple[str, ...]) -> None:
    r = run_nmes(*args, "--db", ro_db)
    assert r.returncode == 0, r.stderr
    assert ("P1" in r.stdout) or ("sessions           1" in r.stdout), r.stdout


def test_read_only_cli_writes_are_one_line(ro_db: str) -> None:
    one_error_line(run_nmes("db", "add-patient", "P2", "--db", ro_db), "read-only",
                   "nothing was written")


def test_out_of_date_read_only_schema_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    url = f"sqlite:///{folder / 'old.db'}"
    engine = make_engine(url)
    upgrade_schema(engine, "0001")
    engine.dispose()
    with read_only(folder):
        with pytest.raises(StoreError, match=r"schema revision '0001', older than this "
                                             r"OpenNMES .* cannot be migrated: it is "
                                             r"read-only"):
            open_store(url)
        line = one_error_line(run_nmes("sessions", "list", "--db", url), "'0001'",
                              "cannot be migrated", "nmes db upgrade")
        assert "Traceback" not in line
        assert sorted(p.name for p in folder.iterdir()) == ["old.db"]


def test_new_database_in_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    with read_only(folder):
        one_error_line(run_nmes("db", "info", "--db", f"sqlite:///{folder / 'new.db'}"),
                       f"folder {folder} is read-only")


def test_db_sessions_and_db_export_are_the_sessions_commands(ro_db: str, tmp_path: Path) -> None:
    """One command under two names: the same lines and JSON, the same exported files."""
    for extra in ((), ("--json",), ("--patient", "P1", "--limit", "1")):
        a = run_nmes("sessions", "list", "--db", ro_db, *extra)
        b = run_nmes("db", "sessions", "--db", ro_db, *extra)
        assert a.returncode == b.returncode == 0, a.stderr + b.stderr
        assert a.stdout == b.stdout and "P1" in a.stdout
    a = run_nmes("sessions", "export", "1", str(tmp_path / "a"), "--db", ro_db)
    b = run_nmes("db", "export", "1", str(tmp_path / "b"), "--db", ro_db)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names and names == sorted(p.name for p in (tmp_path / "b").iterdir())
