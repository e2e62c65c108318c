"""Prescriptions: a protocol bound to a patient, screened and checked before anything is saved.

:func:`plan_prescription` is pure: it adapts the protocol's program to the patient (side,
electrodes, amplitude ceiling, schedule), screens the patient's contraindications against the
electrode sites and runs the safety checks. It raises on the first refusal, so a caller that
saves only a returned plan never saves half a prescription.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from opennmes.errors import ContraindicationError
from opennmes.safety import PatientFactor, ScreeningResult, check_program
from opennmes.stim import Program
from opennmes.therapy._errors import PrescriptionError
from opennmes.therapy._library import get_protocol
from opennmes.therapy._protocol import Protocol

__all__ = ["Schedule", "ChannelPlan", "PrescriptionPlan", "plan_prescription",
           "factors_from_record", "build_program"]

Side = Literal["left", "right", "bilateral"]
_OWN_ACKS = ("start_window", "amplitude_ceiling")


@dataclass(frozen=True)
class Schedule:
    """How often and how long: sessions per day and per week, programme weeks, from
    ``start_date`` to ``end_date`` (inclusive)."""

    sessions_per_day: int
    sessions_per_week: int
    weeks: int
    start_date: dt.date
    done_share: float = 0.8
    """A session counts as done when at least this share of its planned dose was delivered
    (contractions, or stimulation time for continuous channels). OpenNMES default, a
    judgement: most of the dose, allowing for a session stopped near its end."""

    @property
    def end_date(self) -> dt.date:
        """Last day of the programme."""
        return self.start_date + dt.timedelta(days=7 * self.weeks - 1)

    @property
    def total_sessions(self) -> int:
        """Sessions prescribed over the whole programme."""
        return self.sessions_per_week * self.weeks

    def expected_by(self, day: dt.date) -> int:
        """Sessions due by the end of ``day``: pro rata per day, rounded up (a session is due
        from the first day)."""
        if day < self.start_date:
            return 0
        days = min((day - self.start_date).days + 1, 7 * self.weeks)
        return min(self.total_sessions, -(-days * self.sessions_per_week // 7))


@dataclass(frozen=True)
class ChannelPlan:
    """One channel of a prescription: its ceiling and current target amplitude (A; target
    None until the first session sets the patient's tolerance)."""

    channel: str
    site: str
    side: str | None
    area: float
    max_amplitude: float
    target_amplitude: float | None


@dataclass(frozen=True)
class PrescriptionPlan:
    """A checked prescription, ready to save (see ``TherapyRecord.prescribe``)."""

    patient_id: str
    protocol: Protocol
    side: str | None
    program: Program
    schedule: Schedule
    channels: tuple[ChannelPlan, ...]
    screening: ScreeningResult
    findings: tuple[str, ...]
    acknowledged: dict[str, str] = field(default_factory=dict)
    reference_date: dt.date | None = None
    notes: str | None = None

    def document(self) -> dict[str, Any]:
        """Plain JSON of the prescription (as stored)."""
        return {
            "patient_id": self.patient_id,
            "protocol_id": self.protocol.id,
            "protocol_title": self.protocol.title,
            "side": self.side,
            "schedule": {"sessions_per_day": self.schedule.sessions_per_day,
                         "sessions_per_week": self.schedule.sessions_per_week,
                         "weeks": self.schedule.weeks,
                         "start_date": self.schedule.start_date.isoformat(),
                         "done_share": self.schedule.done_share},
            "reference_date": self.reference_date.isoformat() if self.reference_date else None,
            "channels": [c.__dict__ for c in self.channels],
            "findings": list(self.findings),
            "acknowledged": dict(self.acknowledged),
            "notes": self.notes,
            "intensity_target": self.protocol.intensity.target,
        }


def factors_from_record(contraindications: Iterable[Mapping[str, Any]]) -> list[PatientFactor]:
    """Screening factors from a store patient's ``contraindications`` list
    (``{"factor": key, "site": sites or None}``, sites separated by commas; one factor may
    appear at several sites)."""
    sites: dict[str, list[str]] = {}
    for i, item in enumerate(contraindications):
        key = item.get("factor")
        if not isinstance(key, str):
            raise PrescriptionError(f"contraindications[{i}] has no factor name: {item!r}")
        sites.setdefault(key, [])
        if item.get("site"):
            sites[key] += [s.strip() for s in str(item["site"]).split(",") if s.strip()]
    try:
        return [PatientFactor(k, tuple(v)) for k, v in sites.items()]
    except ContraindicationError as exc:
        raise PrescriptionError(f"the patient record lists {exc}; correct the record before "
                                "prescribing") from exc


def _per_channel(value: float | Mapping[str, float] | None, name: str, channels: Sequence[str]
                 ) -> dict[str, float]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(channels))
        if unknown:
            raise PrescriptionError(f"{name} names unknown channels {unknown}; channels: "
                                    f"{list(channels)}")
        return {k: float(v) for k, v in value.items()}
    return {c: float(value) for c in channels}


def build_program(protocol: Protocol, *, side: str | None = None,
                  electrodes: Mapping[str, Mapping[str, Any]] | None = None,
                  max_amplitude: float | Mapping[str, float] | None = None,
                  name: str | None = None) -> Program:
    """The protocol's program adapted to a patient.

    Parameters
    ----------
    protocol : Protocol
    side : {"left", "right", "bilateral"}, optional
        Required for a one-sided protocol. ``bilateral`` doubles a one-sided protocol into
        ``left ...`` and ``right ...`` channels; with a two-sided protocol (ICU, COPD)
        ``left`` or ``right`` keeps that side's channels.
    electrodes : mapping channel -> mapping, optional
        Electrode fields to replace (``area``/``width``/``height`` in m^2 / m or unit strings
        such as ``"50 cm2"``, ``placement``, ``muscle``).
    max_amplitude : float or mapping channel -> float, optional
        Amplitude ceiling in A (all channels, or per channel); default the protocol's.
    name : str, optional
        Program name (default the protocol program's).
    """
    data = protocol.program.model_dump()
    chans = data["channels"]
    sides = {c["electrode"]["side"] for c in chans}
    one_sided = len(sides) == 1 and sides <= {"left", "right"}
    if side is not None and side not in ("left", "right", "bilateral"):
        raise PrescriptionError(f"side {side!r} must be left, right or bilateral")
    if one_sided:
        if side is None:
            raise PrescriptionError(f"protocol {protocol.id!r} is one-sided: give the side "
                                    "(left, right or bilateral)")
        if side == "bilateral":
            doubled = []
            for s in ("left", "right"):
                for c in chans:
                    d = {**c, "name": f"{s} {c['name']}",
                         "electrode": {**c["electrode"], "side": s}}
                    doubled.append(d)
            chans = doubled
        else:
            chans = [{**c, "electrode": {**c["electrode"], "side": side}} for c in chans]
    elif side in ("left", "right"):
        chans = [c for c in chans if c["electrode"]["side"] == side]
        if not chans:
            raise PrescriptionError(f"protocol {protocol.id!r} has no {side} channels")
    elif side == "bilateral" and not sides & {"left", "right"}:
        raise PrescriptionError(f"protocol {protocol.id!r} is not sided (sides "
                                f"{sorted(sides, key=str)}); leave the side out")
    names = [c["name"] for c in chans]

    def base_name(n: str) -> str:
        return n.split(" ", 1)[1] if one_sided and side == "bilateral" else n

    for key in electrodes or {}:
        if key not in names and key not in {base_name(n) for n in names}:
            raise PrescriptionError(f"electrodes names unknown channel {key!r}; channels: "
                                    f"{names}")
    caps = _per_channel(max_amplitude, "max_amplitude", names + [base_name(n) for n in names])
    for c in chans:
        override = dict((electrodes or {}).get(c["name"]) or
                        (electrodes or {}).get(base_name(c["name"])) or {})
        if override:
            e = dict(c["electrode"])
            if "area" in override or "width" in override or "height" in override:
                e.update(area=None, width=None, height=None)
            e.update(override)
            c["electrode"] = e
        cap = caps.get(c["name"], caps.get(base_name(c["name"])))
        if cap is not None:
            if not 0 < cap:
                raise PrescriptionError(f"max_amplitude of {c['name']!r} = {cap * 1e3:g} mA "
                                        "must be > 0 mA")
            c["amplitude"] = cap
    phases = data.get("phases")
    if phases:
        for ph in phases:
            if ph.get("channels"):
                ph["channels"] = [n for n in names if base_name(n) in ph["channels"]
                                  or n in ph["channels"]]
    data["channels"] = chans
    if name is not None:
        data["name"] = name
    try:
        return Program.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise PrescriptionError(f"the adapted program is invalid: {where}: {msg}") from exc


def plan_prescription(
    protocol: Protocol | str,
    *,
    patient_id: str,
    factors: Sequence[PatientFactor],
    start_date: dt.date,
    side: str | None = None,
    reference_date: dt.date | None = None,
    electrodes: Mapping[str, Mapping[str, Any]] | None = None,
    max_amplitude: float | Mapping[str, float] | None = None,
    target_amplitude: float | Mapping[str, float] | None = None,
    sessions_per_day: int | None = None,
    sessions_per_week: int | None = None,
    weeks: int | None = None,
    acknowledged: Mapping[str, str] | None = None,
    profile: str = "sim",
    program_name: str | None = None,
    notes: str | None = None,
) -> PrescriptionPlan:
    """Adapt, screen and check a prescription; raise before anything could be saved.

    Parameters
    ----------
    protocol : Protocol or str
        A protocol or its id.
    patient_id : str
    factors : sequence of PatientFactor
        The patient's screening factors (see :func:`factors_from_record`).
    start_date : datetime.date
    side, electrodes, max_amplitude
        See :func:`build_program`. Amplitudes in A.
    reference_date : datetime.date, optional
        Date of the protocol's start-window reference (surgery, stroke, ICU admission).
    target_amplitude : float or mapping, optional
        Initial target in A (<= the ceiling); None: set from the first session.
    sessions_per_day, sessions_per_week, weeks : int, optional
        Override the protocol's dose.
    acknowledged : mapping, optional
        Recorded decisions: screening factor keys (e.g. ``{"pacemaker": "cardiology
        cleared lower-limb NMES"}``), ``start_window`` for a start before the window and
        ``amplitude_ceiling`` for a ceiling above the protocol's.
    profile : str
        Safety limit profile or device (``sim``, ``rehastim2``, ``p24``).

    Raises
    ------
    ContraindicationError
        The screening blocks: the message lists each block, its reason and source.
    PrescriptionError
        Bad side, electrodes, amplitudes or schedule, a start before the start window, or a
        program that breaks a safety limit (each violation with its limit and source).
    """
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    ack = dict(acknowledged or {})
    program = build_program(proto, side=side, electrodes=electrodes,
                            max_amplitude=max_amplitude, name=program_name)
    what = f"prescription of {proto.id!r} for patient {patient_id!r}"
    # 1. contraindications first
    report = check_program(program, profile, factors=list(factors),
                           screening_acknowledged={k: v for k, v in ack.items()
                                                   if k not in _OWN_ACKS})
    assert report.screening is not None
    if report.screening.blocked:
        lines = "\n  ".join(str(f) for f in report.screening.blocks)
        raise ContraindicationError(f"{what} refused by the contraindication screening; "
                                    f"nothing was saved:\n  {lines}")
    # 2. safety limits of the adapted program
    if not report.ok:
        lines = "\n  ".join(report.errors())
        raise PrescriptionError(f"{what}: the adapted program breaks safety limits; nothing "
                                f"was saved:\n  {lines}")
    findings = list(report.warnings)
    findings += [str(f) for f in report.screening.findings if f.severity == "info"]
    # 2b. above the protocol's ceiling only with a recorded reason
    template = {c.name: c.amplitude for c in proto.program.channels}
    for c in program.channels:
        base = template.get(c.name, template.get(c.name.split(" ", 1)[-1]))
        if base is not None and c.amplitude > base + 1e-9:
            msg = (f"max_amplitude of {c.name!r} = {c.amplitude * 1e3:g} mA is above the "
                   f"protocol's ceiling {base * 1e3:g} mA for its electrodes")
            if "amplitude_ceiling" not in ack:
                raise PrescriptionError(f"{what}: {msg}; nothing was saved; lower it or "
                                        "acknowledge 'amplitude_ceiling' with a reason")
            findings.append(f"{msg} [acknowledged: {ack['amplitude_ceiling']}]")
    # 3. start window
    sw = proto.start_window
    if reference_date is not None:
        days = (start_date - reference_date).days
        window = f"{sw.earliest_days:g}" + (f"-{sw.latest_days:g}" if sw.latest_days is not None
                                            else "+") + f" days after {sw.reference}"
        if days < sw.earliest_days:
            msg = (f"start {days} days after {sw.reference} is before the protocol's start "
                   f"window ({window}; {sw.note or proto.evidence.sources[0].citation})")
            if "start_window" not in ack:
                raise PrescriptionError(f"{what}: {msg}; nothing was saved; start later or "
                                        "acknowledge 'start_window' with a reason")
            findings.append(f"{msg} [acknowledged: {ack['start_window']}]")
        elif sw.latest_days is not None and days > sw.latest_days:
            findings.append(f"start {days} days after {sw.reference} is after the start "
                            f"window ({window})")
    # 4. schedule
    d = proto.dose
    spd = d.sessions_per_day if sessions_per_day is None else int(sessions_per_day)
    spw = d.sessions_per_week if sessions_per_week is None else int(sessions_per_week)
    wk = d.programme_weeks if weeks is None else int(weeks)
    if not 1 <= spd <= 6:
        raise PrescriptionError(f"sessions_per_day = {spd} must be 1..6")
    if not spd <= spw <= 7 * spd:
        raise PrescriptionError(f"sessions_per_week = {spw} must be within "
                                f"{spd}..{7 * spd} for {spd} sessions a day")
    if not 1 <= wk <= 104:
        raise PrescriptionError(f"weeks = {wk} must be 1..104")
    if d.programme_weeks_range and not d.programme_weeks_range[0] <= wk <= \
            d.programme_weeks_range[1]:
        findings.append(f"{wk} weeks is outside the protocol's {d.programme_weeks_range[0]}-"
                        f"{d.programme_weeks_range[1]} weeks")
    # 5. targets
    names = list(program.channel_names)
    targets = _per_channel(target_amplitude, "target_amplitude", names)
    chans = []
    for c in program.channels:
        t = targets.get(c.name)
        if t is not None and not 0 < t <= c.amplitude + 1e-12:
            raise PrescriptionError(f"target_amplitude of {c.name!r} = {t * 1e3:g} mA must be "
                                    f"within 0..{c.amplitude * 1e3:g} mA (the ceiling)")
        chans.append(ChannelPlan(c.name, c.electrode.site, c.electrode.side,
                                 c.electrode.area_m2, c.amplitude, t))
    return PrescriptionPlan(
        patient_id=patient_id, protocol=proto, side=side, program=program,
        schedule=Schedule(spd, spw, wk, start_date), channels=tuple(chans),
        screening=report.screening, findings=tuple(findings), acknowledged=ack,
        reference_date=reference_date, notes=notes)
