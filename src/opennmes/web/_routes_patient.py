"""The patient's home view: today's session, comfort, adherence and progress in plain words."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from opennmes.errors import NmesError
from opennmes.web import _therapy
from opennmes.web._accounts import User
from opennmes.web._app import flash, render, translate
from opennmes.web._routes_clinic import load_patient
from opennmes.web._security import require

__all__ = ["router"]

router = APIRouter()


def _home_context(request: Request, user: User) -> dict[str, Any]:
    from markupsafe import Markup

    from opennmes.therapy import DIAGRAMS, diagram_svg, get_protocol

    assert user.patient_id is not None
    patient = load_patient(request, user.patient_id, user)
    rec = _therapy.record(request)
    active = [rx for rx in rec.list_prescriptions(patient.id) if rx.status == "active"]
    today = None
    if active:
        rx = active[0]
        proto = get_protocol(rx.protocol_id)
        ad = rec.adherence(rx.id)
        week = ad.weeks[-1] if ad.weeks else None
        day = dt.datetime.now(dt.UTC).date()
        done_today = sum(1 for x in ad.sessions if x.completed and x.day == day)
        partial_today = sum(1 for x in ad.sessions if x.partial and x.day == day)
        today = {"rx": rx, "protocol": proto, "diagram": DIAGRAMS.get(proto.placement.diagram, ""),
                 "picture": Markup(diagram_svg(proto.placement.diagram)),  # our own SVG
                 "adherence": ad, "week": week, "done_today": done_today,
                 "partial_today": partial_today,
                 "needs_sensor": bool(_therapy.sensor_notes(request, [rx]))}
    progress = [h for h in rec.outcome_histories(patient.id) if h.latest is not None]
    return {"patient": patient, "today": today, "progress": progress,
            "live": request.app.state.live.active(patient.id),
            "sessions": request.app.state.store.list_sessions(patient_id=patient.id, limit=10)}


@router.get("/home")
def home_page(request: Request, user: User = Depends(require("patient"))) -> Response:
    """Today's session and how things are going."""
    return render(request, "home.html", user, **_home_context(request, user))


@router.post("/home/start")
def home_start(request: Request, user: User = Depends(require("patient"))) -> Response:
    """Start today's session on the home unit (every channel starts at 0 mA)."""
    ctx = _home_context(request, user)
    if ctx["live"] is not None:
        return RedirectResponse(f"/live/{ctx['live'].id}", status_code=303)
    if ctx["today"] is None:
        flash(request, translate(request, "There is no session planned for you yet."), "error")
        return RedirectResponse("/home", status_code=303)
    rx = ctx["today"]["rx"]
    device = request.app.state.settings.device_urls[0]
    try:
        program = _therapy.record(request).program(rx.id)
        run = request.app.state.live.start(user, ctx["patient"].id, program, device,
                                           meta={"prescription_id": rx.id, "home": True})
    except NmesError as exc:
        flash(request, translate(request, "The session could not start: {error}. Please call "
                                          "your therapist.").format(error=exc), "error")
        return RedirectResponse("/home", status_code=303)
    return RedirectResponse(f"/live/{run.id}", status_code=303)
