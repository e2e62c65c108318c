"""Shared test helpers: repository paths and running ``nmes`` (in-process by default)."""

from __future__ import annotations

import os
import subprocess as _subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
EXAMPLES = REPO / "examples"
# what every ``nmes`` call in the tests sees: no GUI backend, wide lines (Rich reads COLUMNS
# when a console is made, so in-process calls get it too)
CLI_ENV = {"MPLBACKEND": "Agg", "COLUMNS": "200"}


@dataclass
class NmesResult:
    """What one ``nmes`` command left: exit status and its two output streams (text)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_nmes(*args: str, timeout: float = 120, cwd: Path | None = None,
             env: dict[str, str] | None = None, input: str | None = None,
             subprocess: bool = False) -> NmesResult:
    """Run ``nmes ARGS`` through its real entry point, :func:`opennmes.cli.main`.

    In-process by default, under Typer's (Click's) test-runner isolation: its own stdin, stdout
    and stderr, the environment overrides in ``env``, ``sys.argv`` and the working directory,
    with the exit status taken from ``SystemExit`` as the shell would see it (an uncaught
    exception is a traceback on stderr and status 1, as from the installed command).
    ``subprocess=True`` runs ``python -m opennmes`` instead, for the few tests that need a
    process of its own (signals, the installed entry point); ``timeout`` applies to it only.
    """
    if subprocess:
        full_env = dict(os.environ)
        full_env.update(CLI_ENV)
        if env:
            full_env.update(env)
        r = _subprocess.run(
            [sys.executable, "-m", "opennmes", *args], input=input,
            capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO, env=full_env,
        )
        return NmesResult(list(args), r.returncode, r.stdout, r.stderr)
    from typer.testing import CliRunner

    from opennmes.cli import main

    runner = CliRunner()
    old_argv, old_cwd = sys.argv, os.getcwd()
    code: int
    with runner.isolation(input=input, env={**CLI_ENV, **(env or {})}) as (out, err, _):
        sys.argv = ["nmes", *args]
        os.chdir(cwd or REPO)
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                sys.stderr.write(exc.code + "\n")
        except BaseException:  # what the installed command would print before exiting with 1
            traceback.print_exc(file=sys.stderr)
            code = 1
        finally:
            sys.argv = old_argv
            os.chdir(old_cwd)
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode("utf-8", "replace")
    return NmesResult(list(args), code, stdout, stderr)


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


@pytest.fixture(scope="session")
def _playwright():  # type: ignore[no-untyped-def]
    """The one Playwright of the test process, shared by every browser test (tests/web's
    pages, tests/therapy's PDF renders). Playwright's sync API runs an event loop in the
    thread that starts it, and a second ``sync_playwright()`` in that thread is refused, so
    the browser fixtures take this one instead of starting their own."""
    from tests.browser_tools import CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium; run "
                    "scripts/ensure-chromium.sh (make test does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        yield pw
