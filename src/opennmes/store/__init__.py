"""The record: patients, programs, sessions, events, dose and streams in SQL.

SQLite in the user's data directory by default (no server), PostgreSQL by URL. One database,
one SQLAlchemy metadata (:data:`metadata`, :class:`Base`) on which the therapy record and the
web app put their tables too, and one Alembic history (shipped inside the package) that owns
the schema of all of them; it is migrated on open and by ``nmes db upgrade``, never as a side
effect of building an object. High-rate streams
are written in compressed chunks committed at least every second; a session left running by a
crashed process is marked ``interrupted`` on the next open, with what was recorded kept.
Sessions export to a documented folder of Parquet and JSON files and import back losslessly.
"""

from opennmes.store._engine import ENV_VAR, default_url
from opennmes.store._export import FORMAT_NAME, FORMAT_VERSION, export_session, import_session
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
