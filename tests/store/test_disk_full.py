"""A full disk while a session is recorded: the session's end is still stored, as
``aborted`` with a reason that says the disk is full, and the record stays consistent."""

from __future__ import annotations

import errno
from typing import Any

import pytest
import sqlalchemy as sa

from opennmes.errors import StoreError
from opennmes.store import SessionWriter, Store

from .conftest import emg_block

FULL_ERRORS = {
    "ENOSPC": OSError(errno.ENOSPC, "No space left on device"),
    "SQLITE_FULL": sa.exc.OperationalError("INSERT", {}, Exception("database or disk is full")),
}


def _fail_bulk_writes(w: SessionWriter, exc: BaseException,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes that carry samples fail as on a full disk; a small status update still fits
    (what a rolled-back transaction leaves free)."""
    real = w._write_batch

    def write(chunks: list[Any], *args: Any) -> None:
        if chunks:
            raise exc
        real(chunks, *args)

    monkeypatch.setattr(w, "_write_batch", write)


@pytest.fixture
def ids(store: Store, program_doc: dict[str, object]) -> tuple[str, int]:
    store.add_patient("P1")
    return "P1", store.save_program(program_doc, "tka").id


@pytest.mark.parametrize("kind", list(FULL_ERRORS))
def test_finish_on_a_full_disk_stores_the_end(store: Store, ids: tuple[str, int],
                                              monkeypatch: pytest.MonkeyPatch,
                                              kind: str) -> None:
    w = store.begin_session(*ids, "sim://")
    w.write_signals(emg_block(0), "emg")
    w.flush()
    _fail_bulk_writes(w, FULL_ERRORS[kind], monkeypatch)
    w.write_signals(emg_block(1), "emg")
    with pytest.raises(StoreError, match="ended as aborted: the disk is full"):
        w.finish("completed")
    assert w.finished
    info = store.get_session(w.id)
    assert info.status == "aborted"
    assert info.end_reason is not None and info.end_reason.startswith(
        "completed; recording failed: the disk is full")
    assert "after the last commit is lost" in info.end_reason
    assert store.load_session(w.id).streams["emg"].n_samples == emg_block(0).n_samples
    assert store.verify_session(w.id, decode=True) == []


def test_a_failed_commit_names_the_full_disk(store: Store, ids: tuple[str, int],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    w = store.begin_session(*ids, "sim://")
    _fail_bulk_writes(w, FULL_ERRORS["ENOSPC"], monkeypatch)
    w.write_signals(emg_block(0), "emg")
    with pytest.raises(StoreError, match=r"failed: the disk is full \(\[Errno 28\] No space "
                                         r"left on device\); the record up to the previous "
                                         r"commit is kept"):
        w.flush()
    monkeypatch.undo()  # space again: the kept batch is written at the next commit
    w.finish()
    assert store.get_session(w.id).status == "finished"
    assert store.load_session(w.id).streams["emg"].n_samples == emg_block(0).n_samples
