"""The record: patients, programs, sessions, events, dose and streams in SQL.

SQLite in the user's data directory by default (no server), PostgreSQL by URL. One database,
one SQLAlchemy metadata (:data:`metadata`, :class:`Base`) on which the therapy record and the
web app put their tables too, and one Alembic history (shipped inside the package) that owns
the schema of all of them; it is migrated on open and by ``nmes db upgrade``, never as a side
effect of building an object. High-rate streams
are written in compressed chunks committed at least every second; a session left running by a
crashed process is marked ``interrupted`` on the next open, with what was recorded kept.
Sessions export to a documented folder of Parquet and JSON files and import back losslessly.

The package loads lazily: importing it costs nothing until a name is used (``ENV_VAR`` is
plain), so a command that never opens a database (``nmes simulate``) does not load
SQLAlchemy at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from opennmes.store._names import ENV_VAR

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.store._engine import default_url
    from opennmes.store._export import (
        FORMAT_NAME,
        FORMAT_VERSION,
        export_session,
        import_session,
    )
    from opennmes.store._models import Base, metadata
    from opennmes.store._records import (
        SESSION_STATUSES,
        Event,
        Patient,
        ProgramVersion,
        SessionInfo,
        SessionRecord,
        StreamInfo,
    )
    from opennmes.store._store import (
        STALE_AFTER,
        Store,
        check_contraindication,
        migrate,
        open_store,
    )
    from opennmes.store._writer import SessionWriter

_WHERE = {
    "default_url": "_engine",
    "FORMAT_NAME": "_export", "FORMAT_VERSION": "_export", "export_session": "_export",
    "import_session": "_export",
    "Base": "_models", "metadata": "_models",
    "SESSION_STATUSES": "_records", "Event": "_records", "Patient": "_records",
    "ProgramVersion": "_records", "SessionInfo": "_records", "SessionRecord": "_records",
    "StreamInfo": "_records",
    "STALE_AFTER": "_store", "Store": "_store", "check_contraindication": "_store",
    "migrate": "_store", "open_store": "_store",
    "SessionWriter": "_writer",
}


def __getattr__(name: str) -> Any:
    """Load the submodule that defines ``name`` on first use (PEP 562)."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})

__all__ = [
    "open_store",
    "migrate",
    "Store",
    "SessionWriter",
    "Patient",
    "ProgramVersion",
    "SessionInfo",
    "SessionRecord",
    "StreamInfo",
    "Event",
    "SESSION_STATUSES",
    "STALE_AFTER",
    "check_contraindication",
    "ENV_VAR",
    "default_url",
    "export_session",
    "import_session",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Base",
    "metadata",
]
