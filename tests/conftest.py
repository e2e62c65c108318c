"""Shared test helpers: repository paths and running the ``nmes`` command as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
EXAMPLES = REPO / "examples"


def run_nmes(*args: str, timeout: float = 120, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m opennmes ARGS`` and capture its output."""
    full_env = dict(os.environ)
    full_env.setdefault("MPLBACKEND", "Agg")
    full_env["COLUMNS"] = "200"
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "opennmes", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO, env=full_env,
    )


@pytest.fixture
def nmes():
    """The :func:`run_nmes` helper as a fixture."""
    return run_nmes


PG_URL = os.environ.get("NMES_TEST_PG_URL", "").strip()
PG_SKIP = "PostgreSQL tests need NMES_TEST_PG_URL (run `.ci/postgres.sh` to get one)"


def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database on the server of ``NMES_TEST_PG_URL``, dropped afterwards."""
    import psycopg
    import sqlalchemy as sa

    base = sa.make_url(PG_URL)
    name = f"nmes_t_{uuid.uuid4().hex[:12]}"
    conninfo = dict(host=base.host or "localhost", port=base.port or 5432, user=base.username,
                    password=base.password, dbname=base.database)
    with psycopg.connect(**conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        # a connection pool may still be closing; the drop is retried, and a database that
        # cannot be dropped is left behind (its random name never collides) rather than
        # failing a test over its clean-up
        for attempt in range(5):
            try:
                with psycopg.connect(**conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.Error:
                time.sleep(0.2 * (attempt + 1))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend (PostgreSQL when ``NMES_TEST_PG_URL`` is
    set, skipped with the reason otherwise)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if not PG_URL:
        pytest.skip(PG_SKIP)
    yield from pg_database()
