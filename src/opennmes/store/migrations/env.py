"""Alembic environment: migrations run on the connection handed over by ``upgrade_schema``.

One history for the whole database: the store's tables and those the therapy record and the
web app put on the same metadata (``opennmes.store.metadata``). The revisions carry their own
DDL, so upgrading needs none of those packages imported; comparing models with revisions
(``tests/store/test_engine.py``) imports them all.
"""

from __future__ import annotations

from alembic import context

from opennmes.store._models import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by the plain `alembic` command
    raise RuntimeError("run migrations with `nmes db upgrade` or opennmes.store.open_store()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
