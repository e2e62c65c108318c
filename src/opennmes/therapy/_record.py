"""TherapyRecord: the service the CLI and the web app call for prescriptions, outcomes,
adherence and progression, stored beside the session store's tables."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from opennmes.errors import StoreError
from opennmes.safety import check_program
from opennmes.stim import Program, program_from_dict
from opennmes.therapy import _tables as T
from opennmes.therapy._adherence import Adherence, SessionSummary, adherence, summarise_session
from opennmes.therapy._errors import OutcomeError, PrescriptionError
from opennmes.therapy._instruments import get_instrument
from opennmes.therapy._library import get_protocol
from opennmes.therapy._outcomes import (
    Measurement,
    OutcomeHistory,
    choose_threshold,
    outcome_history,
    populations_for,
)
from opennmes.therapy._prescription import (
    Schedule,
    factors_from_record,
    plan_prescription,
)
from opennmes.therapy._progression import Adjustment, review_progression

__all__ = ["TherapyRecord", "Prescription", "AdjustmentRecord"]

log = logging.getLogger(__name__)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Prescription:
    """A saved prescription.

    Attributes
    ----------
    id : int
    patient_id, protocol_id : str
    program_name : str
        The store program its sessions play (all versions count for adherence).
    program_version_id : int
        The version to play now (changes when progression changes the program).
    status : {"active", "ended"}
    schedule : Schedule
    document : dict
        The prescription as prescribed (side, channels, findings, acknowledgements).
    state : dict
        Current ``targets`` and ``ceilings`` (channel -> A), ``repetitions``, ``minutes``.
    created_at : datetime (UTC)
    created_by : str or None
    ended_at : datetime or None
    end_reason : str or None
    """

    id: int
    patient_id: str
    protocol_id: str
    program_name: str
    program_version_id: int
    status: str
    schedule: Schedule
    document: dict[str, Any]
    state: dict[str, Any]
    created_at: dt.datetime
    created_by: str | None
    ended_at: dt.datetime | None
    end_reason: str | None

    @property
    def targets(self) -> dict[str, float | None]:
        """Current target amplitude per channel, A (None until the first session)."""
        return dict(self.state["targets"])

    @property
    def ceilings(self) -> dict[str, float]:
        """Amplitude ceiling per channel, A."""
        return dict(self.state["ceilings"])

    @property
    def findings(self) -> list[str]:
        """Warnings recorded at prescription time (precautions, ranges, start window)."""
        return list(self.document.get("findings", []))


@dataclass(frozen=True)
class AdjustmentRecord:
    """A saved progression step (or manual change): when, what, old and new value, why."""

    id: int
    prescription_id: int
    at: dt.datetime
    parameter: str
    channel: str | None
    old: float
    new: float
    reason: str
    by: str | None


class TherapyRecord:
    """Prescriptions, outcome measurements, adherence and progression.

    Parameters
    ----------
    store : opennmes.store.Store
        An open store (:func:`opennmes.store.open_store` brings its database to the newest
        schema, the therapy tables included). Building the record changes nothing in the
        database.

    Raises
    ------
    StoreError
        The database is not at this OpenNMES's schema (it says how to upgrade it:
        ``nmes db upgrade``).

    Examples
    --------
    >>> rec = TherapyRecord(store)                                     # doctest: +SKIP
    >>> rx = rec.prescribe("P-001", "total-knee-arthroplasty", side="right",
    ...                    start_date=date(2026, 11, 24))             # doctest: +SKIP
    >>> rec.record_outcome("P-001", "tug", 14.2, measured_on=date(2026, 11, 24))  # +SKIP
    """

    def __init__(self, store: Any):
        self.store = store
        self.engine: sa.Engine = store.engine
        store.check_schema()

    @contextlib.contextmanager
    def _begin(self, what: str) -> Iterator[sa.Connection]:
        """A transaction; a database error becomes a StoreError (the transaction is rolled
        back, so nothing of it is saved)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"{what} failed: {reason}; nothing was saved") from exc

    # ------------------------------------------------------------------ prescriptions
    def prescribe(self, patient_id: str, protocol: str, *, start_date: dt.date,
                  by: str | None = None, **options: Any) -> Prescription:
        """Screen, check and save a prescription; nothing is saved when anything fails.

        ``options`` are those of :func:`opennmes.therapy.plan_prescription` (``side``,
        ``reference_date``, ``electrodes``, ``max_amplitude``, ``target_amplitude``,
        ``sessions_per_day``, ``sessions_per_week``, ``weeks``, ``acknowledged``,
        ``profile``, ``notes``). The patient's contraindications come from the store.

        Raises
        ------
        StoreError
            Unknown patient.
        ContraindicationError, PrescriptionError
            See :func:`plan_prescription`.
        """
        if "program_name" in options or "factors" in options:
            raise PrescriptionError("program_name and factors are set by the record (the "
                                    "factors come from the patient's record in the store)")
        patient = self.store.get_patient(patient_id)
        factors = factors_from_record(patient.contraindications)
        proto = get_protocol(protocol)
        side = options.get("side")
        token = uuid.uuid4().hex[:8]
        name = f"{proto.program.name} [{patient_id}{', ' + side if side else ''}] rx-{token}"
        plan = plan_prescription(proto, patient_id=patient_id, factors=factors,
                                 start_date=start_date, program_name=name[:200], **options)
        doc = plan.document()
        doc["created_by"] = by
        program = plan.program
        pv = self.store.save_program(program.to_file_dict(), program.name)
        state = _initial_state(program, proto, {c.channel: c.target_amplitude
                                                for c in plan.channels},
                               pv.id)
        row = {"patient_id": patient_id, "protocol_id": proto.id, "program_name": program.name,
               "program_version_id": pv.id, "status": "active", "start_date": start_date,
               "document": doc, "state": state, "created_at": _now(), "created_by": by}
        with self._begin("saving the prescription") as conn:
            rid = conn.execute(sa.insert(T.prescriptions).values(**row)).inserted_primary_key
        assert rid is not None
        log.info("prescription %s: %s for %s from %s", rid[0], proto.id, patient_id, start_date)
        return self.get_prescription(int(rid[0]))

    def get_prescription(self, prescription_id: int) -> Prescription:
        """A prescription by id; StoreError when unknown."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(T.prescriptions).where(
                T.prescriptions.c.id == prescription_id)).mappings().first()
        if row is None:
            raise StoreError(f"unknown prescription id {prescription_id!r}; list them with "
                             "TherapyRecord.list_prescriptions(patient_id)")
        return _prescription(row)

    def list_prescriptions(self, patient_id: str | None = None, status: str | None = None
                           ) -> list[Prescription]:
        """Prescriptions (of a patient, with a status), newest first."""
        q = sa.select(T.prescriptions).order_by(T.prescriptions.c.id.desc())
        if patient_id is not None:
            q = q.where(T.prescriptions.c.patient_id == patient_id)
        if status is not None:
            q = q.where(T.prescriptions.c.status == status)
        with self.engine.connect() as conn:
            return [_prescription(r) for r in conn.execute(q).mappings()]

    def end_prescription(self, prescription_id: int, reason: str, by: str | None = None
                         ) -> Prescription:
        """Mark a prescription ended (kept with its history)."""
        if not reason or not reason.strip():
            raise PrescriptionError("give a reason to end a prescription")
        self.get_prescription(prescription_id)
        with self._begin("ending the prescription") as conn:
            conn.execute(sa.update(T.prescriptions).where(
                T.prescriptions.c.id == prescription_id).values(
                status="ended", ended_at=_now(), end_reason=reason if by is None
                else f"{reason} (by {by})"))
        return self.get_prescription(prescription_id)

    def program(self, prescription_id: int) -> Program:
        """The program version the prescription plays now."""
        rx = self.get_prescription(prescription_id)
        doc = self.store.get_program_version(rx.program_version_id).document
        return program_from_dict(doc, source=f"prescription {prescription_id}")

    # ------------------------------------------------------------------ sessions
    def session_summaries(self, prescription_id: int) -> list[SessionSummary]:
        """The prescription's sessions, oldest first: those that played any version of its
        program, or whose session ``meta`` names it (``{"prescription_id": id}``); test runs
        (``meta`` ``{"test_run": true}``: the therapist trying the program) are kept apart."""
        rx = self.get_prescription(prescription_id)
        infos = [s for s in self.store.list_sessions(patient_id=rx.patient_id)
                 if (s.program_name == rx.program_name
                     or s.meta.get("prescription_id") == rx.id)
                 and not s.meta.get("test_run")]
        out = [summarise_session(self.store.load_session(s.id), rx.schedule.done_share)
               for s in infos]
        return sorted(out, key=lambda s: s.started_at)

    def adherence(self, prescription_id: int, as_of: dt.date | None = None) -> Adherence:
        """Sessions done against prescribed, intensity reached and comfort, up to ``as_of``
        (today, UTC, by default)."""
        rx = self.get_prescription(prescription_id)
        day = as_of or _now().date()
        return adherence(rx.schedule, self.session_summaries(prescription_id), rx.targets, day)

    def check_session_allowed(self, prescription_id: int, when: dt.datetime | None = None
                              ) -> int:
        """Refuse a session the prescription does not allow now; else the sessions left today.

        A session is refused when the prescription has ended, before its start date or after
        its end date, and when today's dose is done: finished sessions, and stopped ones that
        lasted at least half the program, count against ``sessions_per_day`` (dose cap, CPS
        §4.6 item 6). Days are UTC.

        Raises
        ------
        PrescriptionError
            Saying why and when the next session is allowed.
        """
        rx = self.get_prescription(prescription_id)
        now = when or _now()
        day = now.date()
        sch = rx.schedule
        if rx.status != "active":
            raise PrescriptionError(f"prescription {rx.id} has ended ({rx.end_reason}); no "
                                    "session can be started from it")
        if day < sch.start_date:
            raise PrescriptionError(f"prescription {rx.id} starts on {sch.start_date}")
        if day > sch.end_date:
            raise PrescriptionError(f"prescription {rx.id} ended on {sch.end_date}; ask the "
                                    "therapist to renew it")
        half = 0.5 * self.program(prescription_id).duration_s
        today = [s for s in self.session_summaries(prescription_id) if s.day == day
                 and (s.completed or (s.status != "running" and s.duration >= half))]
        left = sch.sessions_per_day - len(today)
        if left <= 0:
            raise PrescriptionError(
                f"today's dose is done: {len(today)} of {sch.sessions_per_day} session(s) a "
                f"day (prescription {rx.id}); the next one is allowed tomorrow")
        return left

    def review_progression(self, prescription_id: int, as_of: dt.date | None = None
                           ) -> list[Adjustment]:
        """The adjustments the protocol's progression rules call for (nothing is saved)."""
        rx = self.get_prescription(prescription_id)
        return review_progression(get_protocol(rx.protocol_id), rx.state,
                                  self.session_summaries(prescription_id),
                                  rx.schedule.start_date, as_of or _now().date())

    def apply_progression(self, prescription_id: int, as_of: dt.date | None = None,
                          by: str | None = None) -> list[Adjustment]:
        """Apply the due adjustments: targets in the prescription state; repetitions, minutes
        and rest times in a new program version (checked against the safety limits first).
        All or nothing."""
        rx = self.get_prescription(prescription_id)
        if rx.status != "active":
            raise PrescriptionError(f"prescription {prescription_id} is {rx.status}")
        adj = self.review_progression(prescription_id, as_of)
        if not adj:
            return []
        state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in rx.state.items()}
        now = _now()
        program_changes: dict[str, Any] = {}
        for a in adj:
            key = f"{a.parameter}:{a.channel}" if a.channel else a.parameter
            state["changed"][key] = now.isoformat()
            if a.parameter == "amplitude":
                assert a.channel is not None
                state["targets"][a.channel] = a.new
            elif a.parameter == "off":
                state["off"][a.channel] = a.new
                program_changes.setdefault("off", {})[a.channel] = a.new
            else:
                state[a.parameter] = a.new
                if a.parameter != "minutes" or rx.state.get("base", {}).get(
                        "program_minutes", True):
                    program_changes[a.parameter] = a.new
        if program_changes:
            program = _changed_program(self.program(prescription_id), program_changes)
            report = check_program(program, "sim")
            if not report.ok:
                raise PrescriptionError("progression would break safety limits; nothing was "
                                        "changed:\n  " + "\n  ".join(report.errors()))
            pv = self.store.save_program(program.to_file_dict(), program.name)
            state["program_version_id"] = pv.id
        with self._begin("saving the progression") as conn:
            conn.execute(sa.update(T.prescriptions).where(
                T.prescriptions.c.id == prescription_id).values(
                state=state, program_version_id=state["program_version_id"]))
            for a in adj:
                conn.execute(sa.insert(T.adjustments).values(
                    prescription_id=prescription_id, at=now, parameter=a.parameter,
                    channel=a.channel, old=a.old if a.old is not None else 0.0, new=a.new,
                    reason=a.reason, by=by))
        return adj

    def adjustments(self, prescription_id: int) -> list[AdjustmentRecord]:
        """The saved progression steps of a prescription, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(T.adjustments).where(
                T.adjustments.c.prescription_id == prescription_id).order_by(
                T.adjustments.c.id)).mappings().all()
        return [AdjustmentRecord(r["id"], r["prescription_id"], _utc(r["at"]) or r["at"],
                                 r["parameter"], r["channel"], r["old"], r["new"], r["reason"],
                                 r["by"]) for r in rows]

    # ------------------------------------------------------------------ outcomes
    def record_outcome(self, patient_id: str, instrument: str, value: float | str, *,
                       measured_on: dt.date, side: str | None = None,
                       population: str | None = None, note: str | None = None,
                       by: str | None = None) -> Measurement:
        """Validate and save one measurement; nothing is saved when it is out of range.

        ``value`` is SI (float) or a string with its unit (``"95 deg"``, ``"1.1 m/s"``).

        Raises
        ------
        OutcomeError
            Unknown instrument or population, value outside the instrument's range (with
            the range and its source), bad side or a date in the future.
        StoreError
            Unknown patient.
        """
        inst = get_instrument(instrument)
        v = inst.parse(value) if isinstance(value, str) else inst.validate(value)
        if side not in (None, "left", "right"):
            raise OutcomeError(f"side {side!r} must be left, right or left out")
        if population is not None:
            choose_threshold(inst, population)
        if not isinstance(measured_on, dt.date) or isinstance(measured_on, dt.datetime):
            raise OutcomeError(f"measured_on = {measured_on!r} must be a date")
        if measured_on > _now().date() + dt.timedelta(days=1):
            raise OutcomeError(f"measured_on = {measured_on} is in the future")
        self.store.get_patient(patient_id)
        row = {"patient_id": patient_id, "instrument": instrument, "value": v, "side": side,
               "measured_on": measured_on, "population": population, "note": note, "by": by,
               "created_at": _now()}
        with self._begin("saving the measurement") as conn:
            rid = conn.execute(sa.insert(T.outcomes).values(**row)).inserted_primary_key
        assert rid is not None
        return Measurement(int(rid[0]), patient_id, instrument, v, measured_on, side,
                           population, note, by)

    def same_day(self, m: Measurement) -> list[Measurement]:
        """Other measurements of ``m``'s instrument and side on its day: a second entry of
        the same test is usually a duplicate (say so to whoever entered it)."""
        return [x for x in self.list_outcomes(m.patient_id, m.instrument)
                if x.id != m.id and x.side == m.side and x.measured_on == m.measured_on]

    def duplicate_warning(self, m: Measurement) -> str | None:
        """A sentence warning of same-day entries of ``m``'s test, or None."""
        others = self.same_day(m)
        if not others:
            return None
        inst = get_instrument(m.instrument)
        same = sum(1 for x in others if abs(x.value - m.value) < 1e-12)
        vals = ", ".join(inst.fmt(x.value) for x in others)
        return (f"warning: {len(others)} other {inst.name} entr"
                f"{'y' if len(others) == 1 else 'ies'} on {m.measured_on}"
                f"{' (' + m.side + ')' if m.side else ''}: {vals}"
                f"{'; ' + str(same) + ' with the same value' if same else ''}. The history judges "
                f"every entry: if this one is a duplicate, remove it (`nmes outcomes delete "
                f"{m.id}`).")

    def list_outcomes(self, patient_id: str, instrument: str | None = None
                      ) -> list[Measurement]:
        """A patient's measurements (of one instrument), oldest first."""
        q = sa.select(T.outcomes).where(T.outcomes.c.patient_id == patient_id)
        if instrument is not None:
            get_instrument(instrument)
            q = q.where(T.outcomes.c.instrument == instrument)
        q = q.order_by(T.outcomes.c.measured_on, T.outcomes.c.id)
        with self.engine.connect() as conn:
            return [Measurement(r["id"], r["patient_id"], r["instrument"], r["value"],
                                r["measured_on"], r["side"], r["population"], r["note"],
                                r["by"]) for r in conn.execute(q).mappings()]

    def delete_outcome(self, measurement_id: int) -> None:
        """Remove a measurement entered by mistake."""
        with self._begin("deleting the measurement") as conn:
            n = conn.execute(sa.delete(T.outcomes).where(T.outcomes.c.id == measurement_id))
        if not n.rowcount:
            raise StoreError(f"unknown measurement id {measurement_id!r}")

    def outcome_history(self, patient_id: str, instrument: str, side: str | None = None,
                        population: str | None = None) -> OutcomeHistory:
        """One instrument's history with changes judged against the published threshold
        for the patient's condition (:meth:`fitting_populations`)."""
        return outcome_history(self.list_outcomes(patient_id, instrument), instrument, side,
                               population, self.fitting_populations(patient_id))

    def outcome_histories(self, patient_id: str) -> list[OutcomeHistory]:
        """Every (instrument, side) the patient has measurements for."""
        ms = self.list_outcomes(patient_id)
        keys = sorted({(m.instrument, m.side or "") for m in ms})
        fits = self.fitting_populations(patient_id)
        return [outcome_history(ms, k, s or None, fits=fits) for k, s in keys]

    def fitting_populations(self, patient_id: str) -> tuple[str, ...]:
        """The threshold populations that fit the patient: from the protocols of their
        prescriptions (newest first), then the general ones (:func:`populations_for`)."""
        rxs = sorted(self.list_prescriptions(patient_id), key=lambda r: r.id, reverse=True)
        return populations_for(rx.protocol_id for rx in rxs)


def _initial_state(program: Program, protocol: Any, targets: Mapping[str, float | None],
                   pv_id: int) -> dict[str, Any]:
    """Targets, ceilings and the progressable values; ``minutes`` is the program's length,
    or for a triggered protocol (one burst per trigger) the session's time of use."""
    minutes = program.duration / 60.0 if program.duration is not None else None
    if minutes is None and protocol.mode == "triggered":
        minutes = protocol.dose.minutes_per_session
    off = {c.name: c.off for c in program.channels if c.on is not None}
    return {"targets": dict(targets),
            "ceilings": {c.name: c.amplitude for c in program.channels},
            "repetitions": program.repetitions, "minutes": minutes, "off": off,
            "base": {"repetitions": program.repetitions, "minutes": minutes, "off": dict(off),
                     "program_minutes": program.duration is not None},
            "changed": {}, "program_version_id": pv_id}


def _changed_program(program: Program, changes: Mapping[str, Any]) -> Program:
    data = program.model_dump()
    if "repetitions" in changes:
        data["repetitions"] = int(changes["repetitions"])
    if "minutes" in changes:
        data["duration"] = float(changes["minutes"]) * 60.0
    for ch in data["channels"]:
        if ch["name"] in changes.get("off", {}):
            ch["off"] = float(changes["off"][ch["name"]])
    return Program.model_validate(data)


def _prescription(row: Any) -> Prescription:
    doc = dict(row["document"])
    sch = doc["schedule"]
    schedule = Schedule(int(sch["sessions_per_day"]), int(sch["sessions_per_week"]),
                        int(sch["weeks"]), dt.date.fromisoformat(sch["start_date"]),
                        float(sch.get("done_share", Schedule.done_share)))
    created = _utc(row["created_at"])
    assert created is not None
    return Prescription(row["id"], row["patient_id"], row["protocol_id"], row["program_name"],
                        row["program_version_id"], row["status"], schedule, doc,
                        dict(row["state"]), created, row["created_by"], _utc(row["ended_at"]),
                        row["end_reason"])
