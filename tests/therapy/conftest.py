"""Fixtures of the therapy tests: a fresh store and record per test, on SQLite and, when
``NMES_TEST_PG_URL`` is set (``.ci/postgres.sh`` prints it), on a fresh PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from opennmes.store import Store, open_store
from opennmes.therapy import TherapyRecord

PG_URL = os.environ.get("NMES_TEST_PG_URL", "").strip()


@pytest.fixture(autouse=True)
def _no_user_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user data directory or a configured database."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("NMES_DB_URL", raising=False)


def _pg_database() -> Iterator[str]:
    import psycopg
    import sqlalchemy as sa

    base = sa.make_url(PG_URL)
    name = f"nmes_th_{uuid.uuid4().hex[:12]}"
    conninfo = dict(host=base.host or "localhost", port=base.port or 5432, user=base.username,
                    password=base.password, dbname=base.database)
    with psycopg.connect(**conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'clinic.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need NMES_TEST_PG_URL (run `.ci/postgres.sh`)")
    yield from _pg_database()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def record(store: Store) -> TherapyRecord:
    return TherapyRecord(store)
