"""Therapy tables join the one history: prescriptions, adjustments, outcome measurements.

Models: ``opennmes.therapy._tables`` (Core tables on the store's metadata). Up to OpenNMES
0.1.0 the therapy record kept these tables under an Alembic history of its own (revision
``t0001``, version table ``therapy_alembic_version``), created when a ``TherapyRecord`` was
first built. This revision adopts them: tables that exist (made by that history) are kept
with their rows, the ones missing are created (a new database gets all three), and the
version table ``therapy_alembic_version`` is dropped. Downgrading drops the three tables
(their rows too), like the downgrade of any revision that creates tables.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from opennmes.errors import StoreError

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OLD_VERSION_TABLE = "therapy_alembic_version"
OLD_REVISIONS = ("t0001",)  # every revision of the old therapy history (0.1.0 shipped t0001)


def _prescriptions() -> None:
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


def _adjustments() -> None:
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


def _outcomes() -> None:
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


def upgrade() -> None:
    conn = op.get_bind()
    tables = set(sa.inspect(conn).get_table_names())
    if OLD_VERSION_TABLE in tables:
        # checked before any change: the old history must be one this revision knows
        found = [r[0] for r in conn.execute(sa.text(
            f"SELECT version_num FROM {OLD_VERSION_TABLE}"))]
        unknown = [v for v in found if v not in OLD_REVISIONS]
        if unknown:
            raise StoreError(
                f"the therapy tables are at revision {unknown[0]!r} of their former history "
                f"(table {OLD_VERSION_TABLE}), unknown to this OpenNMES (it adopts "
                f"{', '.join(OLD_REVISIONS)}); they were not changed: upgrade OpenNMES")
    for name, create in (("therapy_prescriptions", _prescriptions),
                         ("therapy_adjustments", _adjustments),
                         ("therapy_outcomes", _outcomes)):
        if name not in tables:
            create()
    if OLD_VERSION_TABLE in tables:
        op.drop_table(OLD_VERSION_TABLE)


def downgrade() -> None:
    op.drop_table("therapy_outcomes")
    op.drop_table("therapy_adjustments")
    op.drop_table("therapy_prescriptions")
