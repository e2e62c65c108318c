"""Alembic environment and revisions of the session store (run by ``open_store``)."""
