"""Opening a store: URLs, defaults, clear errors, WAL, and migrations that match the models."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from opennmes.errors import StoreError
from opennmes.store import ENV_VAR, Base, default_url, metadata, open_store
from opennmes.store._engine import current_revision, head_revision, resolve_url


def test_default_is_sqlite_in_user_data_dir(tmp_path: Path) -> None:
    """The conftest points XDG_DATA_HOME at a tmp folder: the default lands there."""
    url = default_url()
    assert url == f"sqlite:///{tmp_path / 'xdg-data' / 'opennmes' / 'opennmes.db'}"
    assert resolve_url(None) == (url, "default")
    with open_store() as store:
        assert store.backend == "sqlite"
    assert (tmp_path / "xdg-data" / "opennmes" / "opennmes.db").is_file()


def test_env_var_chooses_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv(ENV_VAR, url)
    assert resolve_url(None) == (url, ENV_VAR)
    assert resolve_url("sqlite:///x.db") == ("sqlite:///x.db", "argument")
    with open_store() as store:
        assert store.url == url
    assert (tmp_path / "env.db").is_file()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    con = sqlite3.connect(tmp_path / "w.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent
    con.close()


def test_unreachable_postgres_is_a_clear_error_with_password_hidden() -> None:
    url = "postgresql://someone:secret@127.0.0.1:1/nmes"
    with pytest.raises(StoreError, match=r"cannot reach the database "
                       r"postgresql\+psycopg://someone:\*\*\*@127.0.0.1:1/nmes \(from "
                       r"argument\).*check the URL \(--db or NMES_DB_URL\)") as info:
        open_store(url)
    assert "secret" not in str(info.value)


def test_bad_urls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        open_store("mysql://u@localhost/db")
    with pytest.raises(StoreError, match="cannot parse the database URL"):
        open_store("not a url")
    with pytest.raises(StoreError, match="in-memory SQLite"):
        open_store("sqlite://")
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(StoreError, match=f"folder {missing} does not exist"):
        open_store(f"sqlite:///{missing / 'x.db'}")
    assert not missing.exists()  # nothing written


def test_fresh_database_is_at_head_and_models_match_migrations(db_url: str) -> None:
    """Alembic's autogenerate comparison finds no difference between the models of the whole
    database and its one history of revisions.

    The therapy record's and the web app's tables are on the store's metadata once their
    packages are imported: they are compared too (an `alembic check` of the whole database).
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import opennmes.therapy  # noqa: F401  (registers the therapy tables)
    import opennmes.web  # noqa: F401  (registers accounts, login sessions, audit log)

    tables = set(metadata.tables)
    assert {"patients", "sessions", "pulse_chunks", "therapy_prescriptions",
            "therapy_adjustments", "therapy_outcomes", "users", "web_sessions",
            "audit_log"} <= tables
    assert Base.metadata is metadata

    with open_store(db_url) as store:
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
        assert diff == []
        assert store.info()["revision"] == head_revision()
        assert store.info()["sessions"] == 0
        with store.engine.connect() as conn:
            # every table of the database is a model, and nothing else is there
            assert set(sa.inspect(conn).get_table_names()) == tables | {"alembic_version"}


def test_reopening_does_not_migrate_again(db_url: str) -> None:
    open_store(db_url).close()
    with open_store(db_url) as store:
        assert store.info()["revision"] == head_revision()


def test_newer_schema_is_refused(db_url: str) -> None:
    with open_store(db_url) as store:
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="revision '9999', unknown to this OpenNMES.*upgrade "
                       "OpenNMES"):
        open_store(db_url)


def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"these are my notes, not a database" * 10)
    with pytest.raises(StoreError, match=r"cannot open the SQLite database .*notes.db "
                       r"\(from argument\): file is not a database"):
        open_store(f"sqlite:///{junk}")
    assert junk.read_bytes() == b"these are my notes, not a database" * 10


def test_migrations_downgrade_and_upgrade_again(db_url: str) -> None:
    """Every revision can be undone and redone (the schema after is the schema before)."""
    from alembic import command

    from opennmes.store._engine import _alembic_config

    with open_store(db_url) as store:
        with store.engine.connect() as conn:
            before = sorted(sa.inspect(conn).get_table_names())
        with store.engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "base")
        with store.engine.connect() as conn:
            assert sorted(sa.inspect(conn).get_table_names()) == ["alembic_version"]
        assert current_revision(store.engine) is None
    with open_store(db_url) as store:
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as conn:
            assert sorted(sa.inspect(conn).get_table_names()) == before
