"""Therapy tables: prescriptions, adjustments (progression log) and outcome measurements.

Revision ID: t0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "t0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "therapy_prescriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("protocol_id", sa.String(length=64), nullable=False),
        sa.Column("program_name", sa.String(length=200), nullable=False),
        sa.Column("program_version_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="RESTRICT",
                                name=op.f("fk_therapy_prescriptions_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["program_version_id"], ["program_versions.id"], ondelete="RESTRICT",
            name=op.f("fk_therapy_prescriptions_program_version_id_program_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_therapy_prescriptions")),
    )
    op.create_index(op.f("ix_therapy_prescriptions_patient_id"), "therapy_prescriptions",
                    ["patient_id"])
    op.create_table(
        "therapy_adjustments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prescription_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parameter", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=128), nullable=True),
        sa.Column("old", sa.Float(), nullable=False),
        sa.Column("new", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["prescription_id"], ["therapy_prescriptions.id"], ondelete="CASCADE",
            name=op.f("fk_therapy_adjustments_prescription_id_therapy_prescriptions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_therapy_adjustments")),
    )
    op.create_index(op.f("ix_therapy_adjustments_prescription_id"), "therapy_adjustments",
                    ["prescription_id"])
    op.create_table(
        "therapy_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("instrument", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=True),
        sa.Column("measured_on", sa.Date(), nullable=False),
        sa.Column("population", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="RESTRICT",
                                name=op.f("fk_therapy_outcomes_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_therapy_outcomes")),
    )
    op.create_index("ix_therapy_outcomes_patient_id_instrument", "therapy_outcomes",
                    ["patient_id", "instrument"])


def downgrade() -> None:
    op.drop_table("therapy_outcomes")
    op.drop_table("therapy_adjustments")
    op.drop_table("therapy_prescriptions")
