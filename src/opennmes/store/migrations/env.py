"""Alembic environment: migrations run on the connection handed over by ``upgrade_schema``."""

from __future__ import annotations

from alembic import context

from opennmes.store._models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by the plain `alembic` command
    raise RuntimeError("run migrations with `nmes db upgrade` or opennmes.store.open_store()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
