"""Tables of the therapy record: prescriptions, their adjustments, outcome measurements.

They live in the store's database beside the store's tables, with their own metadata and
their own Alembic revisions (``opennmes/therapy/migrations``, version table
``therapy_alembic_version``), so the store's schema is never touched. Foreign keys to
``patients`` and ``program_versions`` are declared in the revision (the store owns those
tables). Physical values are SI.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["METADATA", "VERSION_TABLE", "prescriptions", "adjustments", "outcomes"]

VERSION_TABLE = "therapy_alembic_version"

METADATA = sa.MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

prescriptions = sa.Table(
    "therapy_prescriptions", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.String(64), nullable=False, index=True),
    sa.Column("protocol_id", sa.String(64), nullable=False),
    sa.Column("program_name", sa.String(200), nullable=False),
    sa.Column("program_version_id", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("end_reason", sa.Text),
)

adjustments = sa.Table(
    "therapy_adjustments", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("prescription_id", sa.Integer, nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("parameter", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(128)),
    sa.Column("old", sa.Float, nullable=False),
    sa.Column("new", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by", sa.String(128)),
)

outcomes = sa.Table(
    "therapy_outcomes", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("instrument", sa.String(32), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("side", sa.String(8)),
    sa.Column("measured_on", sa.Date, nullable=False),
    sa.Column("population", sa.String(64)),
    sa.Column("note", sa.Text),
    sa.Column("by", sa.String(128)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_therapy_outcomes_patient_id_instrument", "patient_id", "instrument"),
)
