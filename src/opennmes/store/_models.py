"""The one declarative base and metadata of the database, and the session record's models.

:class:`Base` (and its ``metadata``, exported as :data:`opennmes.store.metadata`) holds every
table of the database: the store's tables below, and those that other packages put on it when
they are imported (``opennmes.therapy``: prescriptions, adjustments, outcomes; ``opennmes.web``:
accounts, login sessions, audit log). The schema of all of them is owned by the one Alembic
history in ``opennmes/store/migrations/versions``: a change to any table needs a new revision
there (a test compares models and revisions). Physical values are SI: height in m, mass in kg,
times in s, sampling rates in Hz.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from opennmes.errors import StoreError

__all__ = [
    "Base",
    "metadata",
    "PatientRow",
    "DeviceRow",
    "ProgramRow",
    "ProgramVersionRow",
    "SessionRow",
    "EventRow",
    "DoseRow",
    "StreamRow",
    "StreamChunkRow",
    "PulseChunkRow",
    "utcnow",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """The declarative base of every ORM model of the database, with a constraint naming
    convention (stable names for Alembic); Core tables go on its ``metadata``."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: DateTime(timezone=True), dict[str, Any]: JSON}


metadata = Base.metadata
"""The one :class:`sqlalchemy.MetaData` of the database (``Base.metadata``)."""


class PatientRow(Base):
    """A patient under a pseudonymous id; only what dosing and screening need."""

    __tablename__ = "patients"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    year_of_birth: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(16))
    height: Mapped[float | None] = mapped_column(Float)  # m
    mass: Mapped[float | None] = mapped_column(Float)  # kg
    contraindications: Mapped[Any] = mapped_column(JSON, nullable=False)
    clinician: Mapped[str | None] = mapped_column(String(128), index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False)


class DeviceRow(Base):
    """A stimulator, known by the URL it was opened with."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(512), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    info: Mapped[Any] = mapped_column(JSON, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False)


class ProgramRow(Base):
    """A named program; its content lives in immutable versions."""

    __tablename__ = "programs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False)


class ProgramVersionRow(Base):
    """One immutable version of a program: a JSON document and its SHA-256."""

    __tablename__ = "program_versions"
    __table_args__ = (
        UniqueConstraint("program_id", "version"),
        UniqueConstraint("program_id", "content_hash"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    document: Mapped[Any] = mapped_column(JSON, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False)


@event.listens_for(ProgramVersionRow, "before_update")
def _program_versions_are_immutable(_mapper: Any, _connection: Any,
                                    target: ProgramVersionRow) -> None:
    raise StoreError(f"program version {target.id} is immutable (sessions point at it); save "
                     "the edited program with Store.save_program() to get a new version")


class SessionRow(Base):
    """One stimulation session: who, what, on which device, how it ended."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_patient_id_started_at", "patient_id", "started_at"),
        Index("ix_sessions_status", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    patient_id: Mapped[str] = mapped_column(
        ForeignKey("patients.id", ondelete="RESTRICT"), nullable=False)
    program_version_id: Mapped[int] = mapped_column(
        ForeignKey("program_versions.id", ondelete="RESTRICT"), nullable=False)
    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="RESTRICT"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    started_at: Mapped[dt.datetime] = mapped_column(nullable=False)
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    end_reason: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    pulse_channels: Mapped[Any | None] = mapped_column(JSON)
    meta: Mapped[Any] = mapped_column(JSON, nullable=False)
    software_version: Mapped[str] = mapped_column(String(32), nullable=False)


class EventRow(Base):
    """Something that happened during a session, at session time ``t`` (s)."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    t: Mapped[float] = mapped_column(Float, nullable=False)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[Any] = mapped_column(JSON, nullable=False)


class DoseRow(Base):
    """The dose summary of a session (a JSON document from the safety layer)."""

    __tablename__ = "dose_summaries"
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    summary: Mapped[Any] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(nullable=False)


class StreamRow(Base):
    """A uniformly sampled stream of a session (channels sharing one rate)."""

    __tablename__ = "streams"
    __table_args__ = (UniqueConstraint("session_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    sfreq: Mapped[float] = mapped_column(Float, nullable=False)  # Hz
    t0: Mapped[float] = mapped_column(Float, nullable=False)  # s
    channel_names: Mapped[Any] = mapped_column(JSON, nullable=False)
    units: Mapped[Any] = mapped_column(JSON, nullable=False)
    dtype: Mapped[str] = mapped_column(String(8), nullable=False)
    n_samples: Mapped[int] = mapped_column(BigInteger, nullable=False)
    n_chunks: Mapped[int] = mapped_column(Integer, nullable=False)


class StreamChunkRow(Base):
    """Samples ``i0 .. i0 + n - 1`` of a stream, compressed."""

    __tablename__ = "stream_chunks"
    __table_args__ = (UniqueConstraint("stream_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    stream_id: Mapped[int] = mapped_column(
        ForeignKey("streams.id", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    i0: Mapped[int] = mapped_column(BigInteger, nullable=False)
    n: Mapped[int] = mapped_column(Integer, nullable=False)
    codec: Mapped[str] = mapped_column(String(32), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class PulseChunkRow(Base):
    """Delivered pulses of a session, compressed (onsets ``t_first .. t_last`` s)."""

    __tablename__ = "pulse_chunks"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    t_first: Mapped[float] = mapped_column(Float, nullable=False)
    t_last: Mapped[float] = mapped_column(Float, nullable=False)
    n: Mapped[int] = mapped_column(Integer, nullable=False)
    codec: Mapped[str] = mapped_column(String(32), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
