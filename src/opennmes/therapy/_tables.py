"""Tables of the therapy record: prescriptions, their adjustments, outcome measurements.

They live in the store's database on its one metadata (:data:`opennmes.store.metadata`),
registered when ``opennmes.therapy`` is imported; their schema is owned by the store's Alembic
history (revision ``0004`` adopted them), so building a :class:`TherapyRecord` never changes
the schema. Physical values are SI.
"""

from __future__ import annotations

import sqlalchemy as sa

from opennmes.store import metadata

__all__ = ["prescriptions", "adjustments", "outcomes"]

prescriptions = sa.Table(
    "therapy_prescriptions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.id", ondelete="RESTRICT"),
              nullable=False, index=True),
    sa.Column("protocol_id", sa.String(64), nullable=False),
    sa.Column("program_name", sa.String(200), nullable=False),
    sa.Column("program_version_id", sa.Integer,
              sa.ForeignKey("program_versions.id", ondelete="RESTRICT"), nullable=False),
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
    "therapy_adjustments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("prescription_id", sa.Integer,
              sa.ForeignKey("therapy_prescriptions.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("parameter", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(128)),
    sa.Column("old", sa.Float, nullable=False),
    sa.Column("new", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by", sa.String(128)),
)

outcomes = sa.Table(
    "therapy_outcomes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.id", ondelete="RESTRICT"),
              nullable=False),
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
