"""A session whose record hits a full disk (ENOSPC): the stimulation ends at zero output as
usual and the stored stop reason says the disk is full (the failure is injected into the
session's writer)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from opennmes.devices import VirtualClock, open_stimulator
from opennmes.physiology import get_preset
from opennmes.session import start_session
from opennmes.store import Store, open_store

from .conftest import make_program


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(f"sqlite:///{tmp_path / 'sessions.db'}")
    s.add_patient("P1")
    yield s
    s.close()


def _session(store: Store) -> Any:
    prog = make_program(reps=2, on=1.0, off=1.0, amplitude="40 mA")
    stim = open_stimulator("sim://?sfreq=100&emg=0", clock=VirtualClock(),
                           patient=get_preset("post-surgery").isometric(), seed=1)
    return stim, start_session(store, "P1", prog, stim, chunk=0.05, step=2e-3)


def test_commits_failing_with_enospc(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    stim, runner = _session(store)
    writer = runner.writer
    real = writer._write_batch

    def full_disk(chunks: list[Any], pulses: list[Any], *args: Any) -> None:
        if chunks or pulses:  # samples and pulses no longer fit; a status update does
            raise OSError(errno.ENOSPC, "No space left on device")
        real(chunks, pulses, *args)

    monkeypatch.setattr(writer, "_write_batch", full_disk)
    with stim:
        res = runner.run()
    info = store.get_session(writer.id)
    assert info.status == "aborted"
    assert info.end_reason is not None and "the disk is full" in info.end_reason, info.end_reason
    assert res.session_id == writer.id


def test_writer_calls_failing_with_enospc(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder thread's write fails: the runner is told to stop (record_error; on a
    virtual clock the program may end first) and the stored reason carries the operating
    system's words."""
    stim, runner = _session(store)
    writer = runner.writer

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer, "write_signals", full_disk)
    with stim:
        res = runner.run()
    assert res.how in ("record_error", "completed"), (res.how, res.reason)
    info = store.get_session(writer.id)
    assert info.status == "aborted"
    assert info.end_reason is not None and "No space left on device" in info.end_reason
