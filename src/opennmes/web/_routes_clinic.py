"""Clinician pages: patient list and record, screening, patient logins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from opennmes.errors import NmesError, StoreError
from opennmes.report.words import dose_head, dose_rows, session_words
from opennmes.store import Patient, Store
from opennmes.web._accounts import AccountError, Accounts, User
from opennmes.web._app import flash, language, render
from opennmes.web._forms import FormError, optional_number
from opennmes.web._security import Forbidden, check_patient_access, current_user, require

__all__ = ["router", "load_patient"]

router = APIRouter()
STAFF = ("admin", "clinician")


def load_patient(request: Request, patient_id: str, user: User) -> Patient:
    """The patient if ``user`` may see it; 403 otherwise (also for unknown ids, so that ids
    cannot be probed)."""
    store: Store = request.app.state.store
    try:
        patient = store.get_patient(patient_id)
    except StoreError:
        if user.role == "admin":
            from fastapi import HTTPException

            raise HTTPException(404, f"no patient {patient_id!r}") from None
        raise Forbidden("this patient's record is not yours to see") from None
    check_patient_access(user, patient)
    return patient


@router.get("/patients")
def patients_page(request: Request, user: User = Depends(require(*STAFF))) -> Response:
    """The clinician's patients (all of them for an admin)."""
    store: Store = request.app.state.store
    patients = store.list_patients(None if user.role == "admin" else user.username)
    return render(request, "patients.html", user, patients=patients, form={})


@router.post("/patients")
def add_patient(request: Request, patient_id: str = Form(""), year_of_birth: str = Form(""),
                sex: str = Form(""), height_cm: str = Form(""), mass_kg: str = Form(""),
                notes: str = Form(""), user: User = Depends(require(*STAFF))) -> Response:
    """Add a patient owned by the clinician (pseudonymous id, never a name)."""
    store: Store = request.app.state.store
    form = {"patient_id": patient_id, "year_of_birth": year_of_birth, "sex": sex,
            "height_cm": height_cm, "mass_kg": mass_kg, "notes": notes}
    try:
        yob = optional_number("year of birth", year_of_birth, low=1900, high=2100, unit="")
        height = optional_number("height", height_cm, low=30, high=250, unit="cm", scale=0.01)
        mass = optional_number("mass", mass_kg, low=1, high=400, unit="kg")
        patient = store.add_patient(
            patient_id.strip() or None, year_of_birth=int(yob) if yob is not None else None,
            sex=sex or None, height=height, mass=mass,
            clinician=user.username if user.role == "clinician" else None,
            notes=notes.strip() or None)
    except (FormError, NmesError) as exc:
        patients = store.list_patients(None if user.role == "admin" else user.username)
        return render(request, "patients.html", user, status_code=400, error=str(exc),
                      patients=patients, form=form)
    request.app.state.accounts.audit(user, "patient_added", f"patient {patient.id} added",
                                     patient_id=patient.id)
    flash(request, f"Patient {patient.id} added. Screen for contraindications next.")
    return RedirectResponse(f"/patients/{patient.id}", status_code=303)


def _patient_context(request: Request, patient: Patient) -> dict[str, Any]:
    from opennmes.web import _therapy

    store: Store = request.app.state.store
    accounts: Accounts = request.app.state.accounts
    prescriptions = _therapy.prescriptions(request, store, patient.id)
    return {
        "patient": patient,
        "sessions": store.list_sessions(patient_id=patient.id, limit=50),
        "audit": accounts.list_audit(patient_id=patient.id, limit=50),
        "account": accounts.patient_account(patient.id),
        "prescriptions": prescriptions,
        "sensor_notes": _therapy.sensor_notes(request, prescriptions),
        "live": request.app.state.live.for_patient(patient.id),
        "device_urls": request.app.state.settings.device_urls,
    }


@router.get("/patients/{patient_id}")
def patient_page(request: Request, patient_id: str,
                 user: User = Depends(require(*STAFF))) -> Response:
    """One patient's record: screening, prescriptions, sessions, outcomes, audit."""
    patient = load_patient(request, patient_id, user)
    return render(request, "patient.html", user, **_patient_context(request, patient))


@router.post("/patients/{patient_id}/account")
def add_patient_account(request: Request, patient_id: str, username: str = Form(""),
                        password: str = Form(""),
                        user: User = Depends(require(*STAFF))) -> Response:
    """Give the patient a login for the home view."""
    patient = load_patient(request, patient_id, user)
    accounts: Accounts = request.app.state.accounts
    try:
        new = accounts.create_user(username, password, "patient", patient.id)
    except AccountError as exc:
        return render(request, "patient.html", user, status_code=400, error=str(exc),
                      **_patient_context(request, patient))
    accounts.audit(user, "user_created", f"patient login {new.username} created",
                   patient_id=patient.id, detail={"username": new.username})
    flash(request, f"Login {new.username} created for patient {patient.id}.")
    return RedirectResponse(f"/patients/{patient.id}", status_code=303)


@router.get("/patients/{patient_id}/screening")
def screening_page(request: Request, patient_id: str,
                   user: User = Depends(require(*STAFF))) -> Response:
    """Contraindication screening form (CPS §5), prefilled with the stored answers."""
    from opennmes.safety import FACTORS

    patient = load_patient(request, patient_id, user)
    current = {c["factor"]: c.get("site") or "" for c in patient.contraindications}
    return render(request, "screening.html", user, patient=patient, factors=FACTORS,
                  current=current)


@router.post("/patients/{patient_id}/screening")
async def save_screening(request: Request, patient_id: str,
                         user: User = Depends(require(*STAFF))) -> Response:
    """Store the screening answers (all or nothing; unknown sites are named and refused)."""
    from starlette.concurrency import run_in_threadpool

    from opennmes.safety import FACTORS, PatientFactor

    patient = await run_in_threadpool(load_patient, request, patient_id, user)
    form = await request.form()
    answers: list[dict[str, Any]] = []
    current: dict[str, str] = {}
    try:
        for key in FACTORS:
            if form.get(f"factor_{key}") != "on":
                continue
            raw = str(form.get(f"site_{key}", "")).strip()
            current[key] = raw
            sites = tuple(s.strip() for s in raw.split(",") if s.strip())
            PatientFactor(key, sites)  # validates every site name
            answers.append({"factor": key, "site": ", ".join(sites) or None})
    except NmesError as exc:
        return render(request, "screening.html", user, status_code=400, patient=patient,
                      factors=FACTORS, current=current, error=str(exc))
    store: Store = request.app.state.store
    old = list(patient.contraindications)
    await run_in_threadpool(store.update_patient, patient.id, contraindications=answers)
    request.app.state.accounts.audit(
        user, "screening_changed",
        f"screening of {patient.id}: {', '.join(a['factor'] for a in answers) or 'none'}",
        patient_id=patient.id, detail={"old": old, "new": answers})
    flash(request, "Screening saved.")
    return RedirectResponse(f"/patients/{patient.id}", status_code=303)


@router.get("/sessions/{session_id}")
def session_page(request: Request, session_id: int,
                 user: User = Depends(current_user)) -> Response:
    """One recorded session: status, dose, events (clinician or the patient)."""
    store: Store = request.app.state.store
    try:
        info = store.get_session(session_id)
    except StoreError:
        raise Forbidden("this session is not yours to see") from None
    load_patient(request, info.patient_id, user)
    record = store.load_session(session_id)
    lang = language(request)
    return render(request, "session.html", user, info=info, dose_head=dose_head(lang),
                  dose_rows=dose_rows(record.dose, lang), **session_words(record.events, lang))
