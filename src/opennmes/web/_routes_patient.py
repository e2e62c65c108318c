"""The patient's home view: today's session, comfort, adherence and progress in plain words."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from opennmes.web._accounts import User
from opennmes.web._app import render
from opennmes.web._routes_clinic import load_patient
from opennmes.web._security import require

__all__ = ["router"]

router = APIRouter()


@router.get("/home")
def home_page(request: Request, user: User = Depends(require("patient"))) -> Response:
    """Today's session and how things are going."""
    assert user.patient_id is not None
    patient = load_patient(request, user.patient_id, user)
    sessions = request.app.state.store.list_sessions(patient_id=patient.id, limit=20)
    return render(request, "home.html", user, patient=patient, sessions=sessions)
