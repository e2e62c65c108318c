"""Names of the record that cost nothing to import (no SQLAlchemy)."""

from __future__ import annotations

__all__ = ["ENV_VAR"]

ENV_VAR = "NMES_DB_URL"
"""Environment variable holding the database URL when ``--db`` is not given."""
