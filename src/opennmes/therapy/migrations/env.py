"""Alembic environment of the therapy tables: runs on the connection handed over by
``opennmes.therapy.upgrade_therapy_schema``, with its own version table."""

from __future__ import annotations

from alembic import context

from opennmes.therapy._tables import METADATA, VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by the plain `alembic` command
    raise RuntimeError("run therapy migrations with opennmes.therapy.TherapyRecord(store)")

context.configure(
    connection=connection,
    target_metadata=METADATA,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
