"""Clinician pages over :mod:`opennmes.therapy`: prescribe from the library, start a session,
enter outcomes, and the progress report."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opennmes.errors import NmesError, StoreError
from opennmes.store import Patient
from opennmes.web import _therapy
from opennmes.web._accounts import User
from opennmes.web._app import flash, render
from opennmes.web._forms import FormError, optional_date, optional_int, optional_number
from opennmes.web._routes_clinic import STAFF, load_patient
from opennmes.web._security import require

__all__ = ["router", "progress_context"]

router = APIRouter()
_MAX_UPLOAD = 256 * 1024  # bytes of a protocol file


def _protocols() -> list[Any]:
    from opennmes.therapy import list_protocols

    return list_protocols()


def _prescribe_page(request: Request, user: User, patient: Patient, status_code: int = 200,
                    **extra: Any) -> Response:
    from opennmes.therapy import DIAGRAMS

    return render(request, "prescribe.html", user, status_code=status_code, patient=patient,
                  protocols=_protocols(), diagrams=DIAGRAMS,
                  today=dt.date.today().isoformat(), form=extra.pop("form", {}), **extra)


@router.get("/patients/{patient_id}/prescribe")
def prescribe_page(request: Request, patient_id: str,
                   user: User = Depends(require(*STAFF))) -> Response:
    """The protocol library, and the prescription form."""
    patient = load_patient(request, patient_id, user)
    return _prescribe_page(request, user, patient)


@router.post("/patients/{patient_id}/prescribe")
def prescribe(request: Request, patient_id: str, protocol_id: str = Form(""),
              side: str = Form(""), start_date: str = Form(""), reference_date: str = Form(""),
              max_amplitude_ma: str = Form(""), weeks: str = Form(""), notes: str = Form(""),
              user: User = Depends(require(*STAFF))) -> Response:
    """Screen, check and save a prescription (all or nothing: a refusal saves nothing)."""
    patient = load_patient(request, patient_id, user)
    form = {"protocol_id": protocol_id, "side": side, "start_date": start_date,
            "reference_date": reference_date, "max_amplitude_ma": max_amplitude_ma,
            "weeks": weeks, "notes": notes}
    rec = _therapy.record(request)
    try:
        if not protocol_id:
            raise FormError("protocol", "choose a protocol from the library")
        options: dict[str, Any] = {"notes": notes.strip() or None}
        if side:
            options["side"] = side
        ref = optional_date("reference date", reference_date)
        if ref is not None:
            options["reference_date"] = ref
        amp = optional_number("maximum amplitude", max_amplitude_ma, low=1, high=200,
                              unit="mA", scale=1e-3)
        if amp is not None:
            options["max_amplitude"] = amp
        n_weeks = optional_int("weeks", weeks, low=1, high=104)
        if n_weeks is not None:
            options["weeks"] = n_weeks
        start = optional_date("start date", start_date) or dt.date.today()
        rx = rec.prescribe(patient.id, protocol_id, start_date=start, by=user.username,
                           **options)
    except (FormError, NmesError) as exc:
        return _prescribe_page(request, user, patient, status_code=400, error=str(exc),
                               form=form)
    request.app.state.accounts.audit(
        user, "prescribed", f"{rx.protocol_id} prescribed to {patient.id} "
        f"({rx.schedule.sessions_per_week}/week for {rx.schedule.weeks} weeks)",
        patient_id=patient.id,
        detail={"prescription_id": rx.id, "protocol": rx.protocol_id,
                "program": rx.program_name, "ceilings_A": rx.ceilings,
                "side": rx.document.get("side"), "findings": rx.findings})
    flash(request, f"Prescribed: {rx.document.get('protocol_title', rx.protocol_id)}.")
    for finding in rx.findings:
        flash(request, finding, "warn")
    return RedirectResponse(f"/patients/{patient.id}", status_code=303)


@router.post("/patients/{patient_id}/protocol-check")
async def check_protocol_file(request: Request, patient_id: str,
                              file: UploadFile | None = File(None),
                              user: User = Depends(require(*STAFF))) -> Response:
    """Check an uploaded protocol file (YAML) and say what is wrong; nothing is saved."""
    from opennmes.therapy import load_protocol_text

    patient = await run_in_threadpool(load_patient, request, patient_id, user)
    data = await file.read(_MAX_UPLOAD + 1) if file is not None else b""
    name = (file.filename if file is not None else None) or "upload"
    try:
        if not data:
            raise FormError("file", "choose a protocol file to check (it is empty or missing)")
        if len(data) > _MAX_UPLOAD:
            raise FormError("file", f"{name} is larger than {_MAX_UPLOAD // 1024} KiB")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise FormError("file", f"{name} is not UTF-8 text") from None
        proto = load_protocol_text(text, source=name)
    except (FormError, NmesError) as exc:
        message = f"protocol file {name}: {exc}"
        return await run_in_threadpool(lambda: _prescribe_page(
            request, user, patient, status_code=400, error=message))
    flash(request, f"{name}: protocol {proto.id!r} ({proto.title}) is valid. Add it to the "
                   "protocol library to prescribe it.")
    return RedirectResponse(f"/patients/{patient.id}/prescribe", status_code=303)


@router.post("/patients/{patient_id}/sessions")
def start_session(request: Request, patient_id: str, prescription_id: str = Form(""),
                  device_url: str = Form(""), test_run: str = Form(""),
                  user: User = Depends(require(*STAFF))) -> Response:
    """Start the prescription's program on the chosen device; open the live view. A test run
    (the therapist trying the program) is recorded but kept apart from adherence."""
    patient = load_patient(request, patient_id, user)
    try:
        rx = _prescription_of(request, patient, prescription_id)
        program = _therapy.record(request).program(rx.id)
        meta: dict[str, object] = {"prescription_id": rx.id}
        if test_run:
            meta["test_run"] = True
        run = request.app.state.live.start(user, patient.id, program, device_url, meta=meta)
    except (FormError, NmesError) as exc:
        flash(request, f"The session did not start: {exc}", "error")
        return RedirectResponse(f"/patients/{patient.id}", status_code=303)
    return RedirectResponse(f"/live/{run.id}", status_code=303)


def _prescription_of(request: Request, patient: Patient, prescription_id: str) -> Any:
    rid = optional_int("prescription", prescription_id, low=1, high=2**31)
    if rid is None:
        raise FormError("prescription", "choose a prescription")
    try:
        rx = _therapy.record(request).get_prescription(rid)
    except StoreError:
        rx = None
    if rx is None or rx.patient_id != patient.id:
        raise FormError("prescription", f"prescription {rid} is not one of {patient.id}'s")
    if rx.status != "active":
        raise FormError("prescription", f"prescription {rid} is {rx.status}")
    return rx


def _outcomes_page(request: Request, user: User, patient: Patient, status_code: int = 200,
                   **extra: Any) -> Response:
    rec = _therapy.record(request)
    return render(request, "outcomes.html", user, status_code=status_code, patient=patient,
                  instruments=_therapy.instrument_choices(),
                  histories=rec.outcome_histories(patient.id),
                  today=dt.date.today().isoformat(), form=extra.pop("form", {}), **extra)


@router.get("/patients/{patient_id}/outcomes")
def outcomes_page(request: Request, patient_id: str,
                  user: User = Depends(require(*STAFF))) -> Response:
    """Outcome measures: entry form and each instrument's history against its MCID."""
    patient = load_patient(request, patient_id, user)
    return _outcomes_page(request, user, patient)


@router.post("/patients/{patient_id}/outcomes")
def add_outcome(request: Request, patient_id: str, instrument: str = Form(""),
                value: str = Form(""), side: str = Form(""), measured_on: str = Form(""),
                note: str = Form(""), user: User = Depends(require(*STAFF))) -> Response:
    """Validate and save one measurement (out-of-range values are refused, nothing saved)."""
    patient = load_patient(request, patient_id, user)
    form = {"instrument": instrument, "value": value, "side": side,
            "measured_on": measured_on, "note": note}
    rec = _therapy.record(request)
    try:
        if not value.strip():
            raise FormError("value", "value: enter the measured value")
        day = optional_date("date", measured_on) or dt.date.today()
        m = rec.record_outcome(patient.id, instrument, value.strip(), measured_on=day,
                               side=side or None, note=note.strip() or None,
                               by=user.username)
    except (FormError, NmesError) as exc:
        return _outcomes_page(request, user, patient, status_code=400, error=str(exc),
                              form=form)
    from opennmes.therapy import get_instrument

    inst = get_instrument(m.instrument)
    request.app.state.accounts.audit(
        user, "outcome_recorded", f"{inst.name} = {inst.fmt(m.value)} for {patient.id}",
        patient_id=patient.id, detail={"measurement_id": m.id, "instrument": m.instrument,
                                       "value_si": m.value, "side": m.side,
                                       "measured_on": m.measured_on.isoformat()})
    dup = rec.duplicate_warning(m)
    flash(request, f"Saved: {inst.name} {inst.fmt(m.value)} on {m.measured_on}."
          + (f" {dup[0].upper()}{dup[1:]}" if dup else ""))
    return RedirectResponse(f"/patients/{patient.id}/outcomes", status_code=303)


def progress_context(request: Request, patient: Patient) -> dict[str, Any]:
    """Outcome histories, adherence of each prescription and recent sessions."""
    rec = _therapy.record(request)
    histories = rec.outcome_histories(patient.id)
    rx_rows = []
    for rx in rec.list_prescriptions(patient.id):
        rx_rows.append({"rx": rx, "adherence": rec.adherence(rx.id)})
    charts = [{"id": f"chart-{i}", "title": f"{h.instrument.name}"
               + (f" ({h.side})" if h.side else ""), "unit": h.instrument.unit,
               "x": [m.measured_on.isoformat() for m in h.measurements],
               "y": [m.value * h.instrument.scale for m in h.measurements]}
              for i, h in enumerate(histories)]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {"patient": patient, "histories": histories, "prescriptions": rx_rows,
            "charts": charts, "now": now,
            "sessions": request.app.state.store.list_sessions(patient_id=patient.id, limit=20)}


@router.get("/patients/{patient_id}/progress")
def progress_page(request: Request, patient_id: str,
                  user: User = Depends(require(*STAFF))) -> Response:
    """The progress report: outcomes against MCIDs, adherence, sessions (printable)."""
    patient = load_patient(request, patient_id, user)
    return render(request, "progress.html", user, **progress_context(request, patient))
