"""Thin calls into :mod:`opennmes.therapy` (imported lazily: the web app starts without it)."""

from __future__ import annotations

from typing import Any

from opennmes.store import Store

__all__ = ["prescriptions"]


def prescriptions(store: Store, patient_id: str) -> list[Any]:
    """The patient's prescriptions, newest first (empty until therapy provides them)."""
    try:
        from opennmes import therapy
    except ImportError:
        return []
    fn = getattr(therapy, "list_prescriptions", None)
    return list(fn(store, patient_id)) if fn is not None else []
