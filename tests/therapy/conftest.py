"""Fixtures of the therapy tests: a fresh store and record per test, on SQLite and, when
``NMES_TEST_PG_URL`` is set (``.ci/postgres.sh`` prints it), on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opennmes.store import Store, open_store
from opennmes.therapy import TherapyRecord


@pytest.fixture(autouse=True)
def _no_user_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user data directory or a configured database."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("NMES_DB_URL", raising=False)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def record(store: Store) -> TherapyRecord:
    return TherapyRecord(store)
