"""Database URLs, engines and schema migrations.

SQLite (one file, no server) is the default; PostgreSQL is chosen by URL. Every engine is
checked on open (a clear :class:`StoreError` when it cannot be reached) and brought to the
newest schema with the Alembic revisions shipped inside the package. A SQLite file that cannot
be written (a read-only file, folder or file system) is opened read-only: it can be read, never
migrated or written (:func:`read_only`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import urllib.parse
import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from opennmes.errors import StoreError
from opennmes.store._names import ENV_VAR

__all__ = [
    "ENV_VAR",
    "default_url",
    "resolve_url",
    "make_engine",
    "mask_url",
    "upgrade_schema",
    "current_revision",
    "head_revision",
    "read_only",
    "check_revision",
]

log = logging.getLogger(__name__)

_MIGRATIONS = "opennmes.store:migrations"
_READ_ONLY: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def read_only(engine: Engine) -> str | None:
    """Why the database of ``engine`` was opened read-only (None: it is writable)."""
    return _READ_ONLY.get(engine)


def _sqlite_read_only_reason(db: Path) -> str | None:
    """Why an existing SQLite file cannot be written (None when it can, or does not exist).

    SQLite writes the file and, beside it, its journal: both the file and its folder must be
    writable. ``os.access`` also sees a read-only file system (for root too)."""
    if not db.is_file():
        return None
    try:
        if os.statvfs(db.parent).f_flag & os.ST_RDONLY:
            return f"{db} is on a read-only file system"
    except (OSError, AttributeError):  # no statvfs (Windows): the checks below decide
        pass
    if not os.access(db, os.W_OK):
        return f"the file {db} is read-only"
    if not os.access(db.parent, os.W_OK | os.X_OK):
        return f"its folder {db.parent} is read-only (SQLite writes its journal there)"
    return None


def _read_only_connect(db: Path) -> Any:
    """A connection factory that opens ``db`` read-only. A WAL file without its ``-shm``
    index in a folder that cannot be written opens only as immutable (nothing can change
    it there)."""
    uri = "file:" + urllib.parse.quote(str(db))

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=30.0,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
        return sqlite3.connect(uri + "?immutable=1", uri=True, timeout=30.0,
                               check_same_thread=False)

    return connect


def default_url() -> str:
    """The SQLite file in the user's data directory (``platformdirs.user_data_dir``)."""
    import platformdirs

    return f"sqlite:///{Path(platformdirs.user_data_dir('opennmes')) / 'opennmes.db'}"


def resolve_url(url: str | None) -> tuple[str, str]:
    """The URL to use and where it came from (``"argument"``, ``ENV_VAR`` or ``"default"``)."""
    if url:
        return url, "argument"
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env, ENV_VAR
    return default_url(), "default"


def mask_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        parsed = url if isinstance(url, URL) else sa.make_url(url)
    except ArgumentError:
        return "<unparsable URL>"
    return parsed.render_as_string(hide_password=True)


def _parse(url: str) -> URL:
    try:
        parsed = sa.make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"cannot parse the database URL {url!r}; use sqlite:///path/to/file.db or "
            "postgresql://user:password@host:port/database"
        ) from exc
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if parsed.get_driver_name() in ("psycopg2", "") or "+" not in parsed.drivername:
            parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise StoreError(
            f"unsupported database {backend!r} in {mask_url(parsed)}; OpenNMES stores sessions "
            "in SQLite (sqlite:///path/file.db) or PostgreSQL (postgresql://...)"
        )
    return parsed


def make_engine(url: str, *, source: str = "argument") -> Engine:
    """An engine for ``url``, checked by connecting once.

    Raises
    ------
    StoreError
        The URL is malformed, names an unsupported database, or the database cannot be
        reached; the message names the (masked) URL and where it came from.
    """
    parsed = _parse(url)
    where = f"{mask_url(parsed)} (from {source})"
    kwargs: dict[str, Any] = {}
    ro_reason: str | None = None
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if db in ("", ":memory:") or db.startswith("file::memory:"):
            raise StoreError(
                f"in-memory SQLite ({where}) cannot hold a session record shared by several "
                "connections; give a file, e.g. sqlite:///sessions.db"
            )
        path = Path(db).expanduser().resolve()
        folder = path.parent
        if source == "default":
            folder.mkdir(parents=True, exist_ok=True)
        elif not folder.is_dir():
            raise StoreError(f"cannot open the database {where}: folder {folder} does not "
                             "exist; create it or choose another path")
        ro_reason = _sqlite_read_only_reason(path)
        if ro_reason is not None:
            kwargs["creator"] = _read_only_connect(path)
        elif not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
            raise StoreError(f"cannot create the database {where}: folder {folder} is "
                             "read-only; choose a writable folder")
        else:
            kwargs["connect_args"] = {"timeout": 30.0, "check_same_thread": False}
    else:
        kwargs["connect_args"] = {"connect_timeout": 5}
        kwargs["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"no database driver for {where}: {exc}; install psycopg "
                         "(pip install 'opennmes[postgres]')") from exc
    if parsed.get_backend_name() == "sqlite":
        if ro_reason is not None:
            _READ_ONLY[engine] = ro_reason
            sa.event.listen(engine, "connect", _sqlite_read_only_pragmas)
        else:
            sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except DBAPIError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if parsed.get_backend_name() == "sqlite":
            raise StoreError(f"cannot open the SQLite database {where}: {reason}; check the "
                             f"path (--db or {ENV_VAR}) or choose another file") from exc
        raise StoreError(
            f"cannot reach the database {where}: {reason}; check the URL (--db or "
            f"{ENV_VAR}) and that the database server is running"
        ) from exc
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL journal (readers never block the writer; a crash keeps every committed chunk),
    full sync at commit, enforced foreign keys."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_read_only_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """A read-only file: no journal change (that would write), queries only."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=ON")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _alembic_config(connection: sa.Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", _MIGRATIONS)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest schema revision shipped with this package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision of the database (None when it has no OpenNMES tables yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_schema(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the database to ``revision``; returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    target = head_revision() if revision == "head" else revision
    if before == target:
        return before, target
    known = _known_revisions()
    if before is not None and before not in known:
        raise StoreError(
            f"the database is at schema revision {before!r}, unknown to this OpenNMES "
            f"(newest known {target!r}); it was written by a newer version: upgrade OpenNMES"
        )
    ro = read_only(engine)
    if ro is not None:
        what = ("holds no OpenNMES tables" if before is None else
                f"is at schema revision {before!r}, older than this OpenNMES ({target!r})")
        raise StoreError(
            f"the database {mask_url(engine.url)} {what} and cannot be migrated: it is "
            f"read-only ({ro}); copy it to a writable folder and run `nmes db upgrade --db "
            "sqlite:///COPY`, or use the OpenNMES version that wrote it")
    log.info("migrating %s from %s to %s", mask_url(engine.url), before, target)
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), revision)
    except DBAPIError as exc:
        raise StoreError(f"migrating {mask_url(engine.url)} to revision {target} failed: "
                         f"{exc.orig}; nothing was changed") from exc
    return before, target


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def check_revision(engine: Engine) -> str:
    """The database's schema revision when it is this package's newest; StoreError otherwise.

    For code that uses the tables without migrating (the schema changes only by migration, at
    :func:`opennmes.store.open_store` and ``nmes db upgrade``). The message says whether the
    database is empty, older (and how to upgrade it) or written by a newer OpenNMES.
    """
    before = current_revision(engine)
    head = head_revision()
    if before == head:
        return head
    where = mask_url(engine.url)
    if before is not None and before not in _known_revisions():
        raise StoreError(
            f"the database {where} is at schema revision {before!r}, unknown to this OpenNMES "
            f"(newest known {head!r}); it was written by a newer version: upgrade OpenNMES")
    what = ("holds no OpenNMES tables" if before is None else
            f"is at schema revision {before!r}, older than this OpenNMES ({head!r})")
    ro = read_only(engine)
    if ro is not None:
        raise StoreError(
            f"the database {where} {what} and cannot be migrated: it is read-only ({ro}); copy "
            "it to a writable folder and run `nmes db upgrade --db sqlite:///COPY`, or use the "
            "OpenNMES version that wrote it")
    raise StoreError(
        f"the database {where} {what}; upgrade it with `nmes db upgrade` (--db URL), or open "
        "it with opennmes.store.open_store(), which migrates it")
