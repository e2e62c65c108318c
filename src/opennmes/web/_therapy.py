"""Access to :class:`opennmes.therapy.TherapyRecord` for the pages (one per app)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request

from opennmes.store import Store

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.therapy import TherapyRecord

__all__ = ["sensor_notes", "record", "prescriptions", "instrument_choices"]


_LOCK = threading.Lock()


def record(request: Request) -> TherapyRecord:
    """The app's therapy record (created once, under a lock: creating it migrates the therapy
    tables, which must not run twice at the same time; 503 when therapy cannot load)."""
    rec = getattr(request.app.state, "therapy", None)
    if rec is None:
        with _LOCK:
            rec = getattr(request.app.state, "therapy", None)
            if rec is None:
                try:
                    from opennmes.therapy import TherapyRecord
                except ImportError as exc:  # pragma: no cover - ships with the package
                    raise HTTPException(503, f"the therapy service is not available: "
                                             f"{exc}") from exc
                rec = TherapyRecord(request.app.state.store)
                request.app.state.therapy = rec
    return rec


def prescriptions(request: Request, store: Store, patient_id: str) -> list[Any]:
    """The patient's prescriptions, newest first."""
    return record(request).list_prescriptions(patient_id)


def sensor_notes(request: Request, prescriptions: list[Any]) -> dict[int, str]:
    """Active prescriptions whose program needs a live sensor the web app cannot read yet
    (EMG- or gait-triggered channels), by id, with a note saying so."""
    from opennmes.web._live import sensor_note

    rec = record(request)
    out = {}
    for rx in prescriptions:
        if rx.status == "active":
            note = sensor_note(rec.program(rx.id))
            if note is not None:
                out[rx.id] = note
    return out


def instrument_choices() -> list[dict[str, Any]]:
    """Outcome instruments for the entry form: key, name, display unit and valid range."""
    from opennmes.therapy import INSTRUMENTS

    return [{"key": k, "name": i.name, "unit": i.unit, "domain": i.domain,
             "range": f"{i.fmt(i.minimum)} .. {i.fmt(i.maximum)}"}
            for k, i in INSTRUMENTS.items()]
