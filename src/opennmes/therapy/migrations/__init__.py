"""Alembic environment and revisions of the therapy tables (run by ``TherapyRecord``)."""
