"""Protocols: evidence-based stimulation templates, one YAML file each.

A protocol file holds a ``program:`` section in the program file format
(``docs/program-format.md``) and the clinical metadata around it: indication, evidence,
electrode placement, dose per session / day / week, programme length, start window,
intensity target, progression rules and, for triggered FES, the trigger settings. See
``docs/protocols.md`` for the file format.

The program's amplitudes are the *ceiling* of the template (what the typical patient reaches
at the stated intensity target with the stated electrodes); a session always starts at zero
and the patient or therapist ramps up to the target (CPS §4.6 item 2). The safety checks run
on this ceiling, so a template that passes is safe at every intensity below it.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    model_validator,
)

from opennmes.stim import Fraction, Program, Seconds
from opennmes.units import format_quantity, parse_quantity

__all__ = [
    "Source",
    "Evidence",
    "ElectrodePlacement",
    "Placement",
    "Dose",
    "StartWindow",
    "Intensity",
    "ProgressionRule",
    "Trigger",
    "Protocol",
    "MODES",
    "EVIDENCE_LEVELS",
    "INTENSITY_TARGETS",
]

MODES = ("cyclic", "triggered", "tens")
EVIDENCE_LEVELS = ("consensus", "systematic-review", "single-trial", "manufacturer",
                   "expert-preset")
INTENSITY_TARGETS = ("maximum-tolerated", "percent-mvic", "visible-contraction",
                     "functional-movement", "strong-comfortable-sensory", "visible-twitch")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Frozen):
    """A cited source.

    Parameters
    ----------
    id : str
        Source id in ``shared/reference/clinical-protocols-and-safety.md`` (e.g. ``S2``).
    citation : str
        Authors, journal, year, table.
    tag : {"V", "R", "D"}
        Verified in the source, recalled / secondary, or derived (the reference's tags).
    """

    id: str = Field(min_length=1)
    citation: str = Field(min_length=5)
    tag: Literal["V", "R", "D"]


class Evidence(_Frozen):
    """Where the protocol comes from and how strong that is.

    ``level``: ``consensus`` (an expert consensus recommendation, e.g. Nussbaum 2017),
    ``systematic-review``, ``single-trial`` (one trial's parameters), ``manufacturer`` (a
    device manual) or ``expert-preset`` (a starting point derived from the sources; edit it).
    """

    level: Literal["consensus", "systematic-review", "single-trial", "manufacturer",
                   "expert-preset"]
    sources: list[Source] = Field(min_length=1)
    summary: str = Field(min_length=5)


class ElectrodePlacement(_Frozen):
    """Where one channel's electrodes go, in plain language (``channel`` names a program
    channel; ``size`` is the recommended pad size as printed on the pack)."""

    channel: str
    landmarks: str = Field(min_length=5)
    size: str | None = None


class Placement(_Frozen):
    """Electrode placement: a diagram id (see :data:`opennmes.therapy.DIAGRAMS`), the body or
    limb position and each channel's landmarks."""

    diagram: str = Field(min_length=1)
    position: str = Field(min_length=3)
    electrodes: list[ElectrodePlacement] = Field(min_length=1)


class Dose(_Frozen):
    """Dose of the programme.

    Parameters
    ----------
    contractions_per_session : int, optional
        Cyclic NMES: contractions per session (equals the program's repetitions).
    minutes_per_session : float, optional
        Session length in minutes (time-based programs; TENS, ICU, stroke).
    sessions_per_day, sessions_per_week : int
    programme_weeks : int
        Default programme length in weeks.
    programme_weeks_range : [int, int], optional
        Range given by the evidence, e.g. ``[4, 6]``.
    """

    contractions_per_session: int | None = None
    minutes_per_session: float | None = None
    sessions_per_day: int = Field(ge=1, le=6)
    sessions_per_week: int = Field(ge=1, le=42)
    programme_weeks: int = Field(ge=1, le=104)
    programme_weeks_range: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _check(self) -> Dose:
        if (self.contractions_per_session is None) == (self.minutes_per_session is None):
            raise ValueError("give exactly one of contractions_per_session or "
                             "minutes_per_session")
        if self.contractions_per_session is not None and self.contractions_per_session < 1:
            raise ValueError("contractions_per_session must be >= 1")
        if self.minutes_per_session is not None and not 0 < self.minutes_per_session <= 240:
            raise ValueError("minutes_per_session must be in (0, 240]")
        if self.sessions_per_week < self.sessions_per_day:
            raise ValueError("sessions_per_week must be >= sessions_per_day")
        if self.programme_weeks_range is not None:
            lo, hi = self.programme_weeks_range
            if not 1 <= lo <= self.programme_weeks <= hi:
                raise ValueError("programme_weeks_range must bracket programme_weeks")
        return self


class StartWindow(_Frozen):
    """When to start, in days after a reference event (``earliest_days`` may be fractional:
    48 h is 2 days; ``latest_days`` None means no upper bound)."""

    reference: Literal["surgery", "stroke", "icu-admission", "diagnosis", "any"]
    earliest_days: float = Field(ge=0)
    latest_days: float | None = None
    note: str = ""

    @model_validator(mode="after")
    def _check(self) -> StartWindow:
        if self.latest_days is not None and self.latest_days < self.earliest_days:
            raise ValueError("latest_days must be >= earliest_days")
        return self


class Intensity(_Frozen):
    """The intensity target of a session.

    ``percent_mvic`` is a fraction (files: ``50 %``), only with ``target: percent-mvic`` or as
    the goal beside ``maximum-tolerated``.
    """

    target: Literal["maximum-tolerated", "percent-mvic", "visible-contraction",
                    "functional-movement", "strong-comfortable-sensory", "visible-twitch"]
    percent_mvic: Fraction | None = None
    note: str = ""

    @model_validator(mode="after")
    def _check(self) -> Intensity:
        if self.target == "percent-mvic" and self.percent_mvic is None:
            raise ValueError("target percent-mvic needs percent_mvic (e.g. '50 %')")
        if self.percent_mvic is not None and not 0 < self.percent_mvic <= 1:
            raise ValueError("percent_mvic must be in (0, 100 %]")
        return self


class ProgressionRule(_Frozen):
    """How a target rises as tolerance grows.

    ``when: tolerated``: after ``sessions`` consecutive sessions, all completed (an aborted one
    holds progression back), in which the
    intensity reached at least ``min_reached`` of the current target and the comfort rating
    (0 = unbearable .. 10 = fully comfortable) was at least ``min_comfort``, the parameter
    moves by ``step`` (never beyond ``limit``).
    ``when: weekly``: every ``every_weeks`` weeks after the start, it moves by ``step``.

    ``parameter``: ``amplitude`` (step and limit in A, files ``5 mA``), ``repetitions`` or
    ``minutes`` (plain numbers), ``off`` (a negative step in s shortens the rest; ``limit`` is
    then the floor).
    """

    parameter: Literal["amplitude", "repetitions", "minutes", "off"]
    when: Literal["tolerated", "weekly"]
    step: float | str
    limit: float | str
    sessions: int = Field(default=3, ge=1, le=20)
    min_reached: Fraction = 0.9
    min_comfort: int = Field(default=5, ge=0, le=10)
    every_weeks: int = Field(default=1, ge=1, le=52)
    note: str = ""

    @field_serializer("step", "limit", when_used="json")
    def _with_unit(self, v: float | str) -> float | str:
        dim = {"amplitude": "current", "off": "time"}.get(self.parameter)
        return format_quantity(float(v), dim, digits=9) if dim else v

    @model_validator(mode="after")
    def _values(self) -> ProgressionRule:
        dim = {"amplitude": "current", "off": "time"}.get(self.parameter)
        for name in ("step", "limit"):
            v = getattr(self, name)
            if dim is not None:
                if not isinstance(v, str):
                    raise ValueError(f"{name} of a {self.parameter} rule needs a unit, "
                                     f"e.g. '5 mA' or '-5 s'")
                val = parse_quantity(v, dim, name=name)
            else:
                if isinstance(v, str):
                    raise ValueError(f"{name} of a {self.parameter} rule is a plain number")
                val = float(v)
            if not math.isfinite(val):
                raise ValueError(f"{name} must be finite")
            object.__setattr__(self, name, val)
        if float(self.step) == 0:
            raise ValueError("step must not be 0")
        if self.parameter != "off" and float(self.step) < 0:
            raise ValueError(f"a {self.parameter} rule raises the target: step must be > 0")
        if not 0 < self.min_reached <= 1:
            raise ValueError("min_reached must be in (0, 100 %]")
        return self


class Trigger(_Frozen):
    """Trigger of a triggered protocol (consumed by the control layer).

    Parameters
    ----------
    source : {"heel-switch", "tilt", "emg", "button", "contralateral"}
    start_on : str
        Event that starts a burst, e.g. ``heel-off`` or ``emg-above-threshold``.
    stop_on : str, optional
        Event that ends the plateau (e.g. ``heel-strike``); None: the burst has the program's
        fixed length.
    threshold : float, optional
        Threshold in ``threshold_unit`` (``x-baseline-rms``: a multiple of the resting EMG
        rms; ``deg``: a shank angle; ``fraction``: of the sensor range).
    delay : float
        From the start event to the start of the ramp up, in s.
    extension : float
        Stimulation kept after the stop event, in s.
    timeout : float
        Longest burst (ramps and plateau) when the stop event never comes, in s.
    refractory : float
        Shortest time from the end of a burst to the next start, in s.
    """

    source: Literal["heel-switch", "tilt", "emg", "button", "contralateral"]
    start_on: str = Field(min_length=2)
    stop_on: str | None = None
    threshold: float | None = None
    threshold_unit: Literal["x-baseline-rms", "deg", "fraction"] | None = None
    delay: Seconds
    extension: Seconds
    timeout: Seconds
    refractory: Seconds
    note: str = ""

    @model_validator(mode="after")
    def _check(self) -> Trigger:
        for name in ("delay", "extension", "refractory"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 s")
        if not self.timeout > 0:
            raise ValueError("timeout must be > 0 s")
        if (self.threshold is None) != (self.threshold_unit is None):
            raise ValueError("give threshold and threshold_unit together")
        if self.source == "emg" and self.threshold is None:
            raise ValueError("an EMG trigger needs a threshold (e.g. 3 x-baseline-rms)")
        return self


class Protocol(_Frozen):
    """A protocol of the library: a program template with its clinical context.

    Load it with :func:`opennmes.therapy.get_protocol` or :func:`load_protocol`; build a
    patient's program with :func:`opennmes.therapy.prescribe`.
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    title: str = Field(min_length=3)
    indication: str = Field(min_length=3)
    mode: Literal["cyclic", "triggered", "tens"]
    tags: list[str] = []
    evidence: Evidence
    placement: Placement
    dose: Dose
    start_window: StartWindow
    intensity: Intensity
    progression: list[ProgressionRule] = []
    trigger: Trigger | None = None
    program: Program
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        from opennmes.safety import SITES

        names = list(self.program.channel_names)
        placed = [e.channel for e in self.placement.electrodes]
        if sorted(placed) != sorted(names):
            raise ValueError(f"placement.electrodes must describe each program channel once: "
                             f"channels {names}, placements {placed}")
        for c in self.program.channels:
            if c.electrode.site not in SITES:
                raise ValueError(f"channel {c.name!r}: site {c.electrode.site!r} is not a known "
                                 f"body site; known: {sorted(SITES)}")
        if (self.mode == "triggered") != (self.trigger is not None):
            raise ValueError("a triggered protocol needs a trigger section, and only it")
        d = self.dose
        if d.contractions_per_session is not None:
            if self.mode == "tens":
                raise ValueError("a TENS protocol is dosed in minutes_per_session")
            if self.mode == "cyclic" and self.program.repetitions != d.contractions_per_session:
                raise ValueError(f"dose.contractions_per_session = {d.contractions_per_session}"
                                 f" but program.repetitions = {self.program.repetitions}")
        if d.minutes_per_session is not None:  # triggered too: the session's length
            planned = self.program.duration_s / 60.0
            if abs(planned - d.minutes_per_session) > 0.05 * d.minutes_per_session + 0.5:
                raise ValueError(f"dose.minutes_per_session = {d.minutes_per_session:g} but the "
                                 f"program lasts {planned:.1f} min")
        if self.mode == "tens" and any(c.on is not None for c in self.program.channels):
            raise ValueError("a TENS protocol stimulates continuously: no on/off envelope")
        for rule in self.progression:
            if rule.parameter == "repetitions" and self.program.repetitions is None:
                raise ValueError("a repetitions rule needs a program with repetitions")
        return self

    @property
    def sites(self) -> list[tuple[str, str, str | None]]:
        """(channel, site, side) of every channel."""
        return [(c.name, c.electrode.site, c.electrode.side) for c in self.program.channels]

    def worst_case_program(self, bursts: int = 10) -> Program:
        """For a triggered protocol, ``bursts`` back-to-back bursts of the longest allowed
        length (``timeout``) separated only by the refractory time: the most current the
        trigger settings allow. The program itself for other modes."""
        if self.trigger is None:
            return self.program
        tr = self.trigger
        data = self.program.model_dump()
        for ch in data["channels"]:
            ramps = ch["ramp_up"] + ch["ramp_down"]
            ch["on"] = max(ch["on"] or 0.0, tr.timeout - ramps)
            ch["off"] = tr.refractory
        data.update(repetitions=bursts, duration=None, phases=None)
        return Program.model_validate(data)

    def summary(self) -> dict[str, Any]:
        """A short plain-JSON description (for lists and the web app)."""
        return {
            "id": self.id, "title": self.title, "indication": self.indication,
            "mode": self.mode, "channels": len(self.program.channels),
            "evidence": self.evidence.level,
            "sources": [s.id for s in self.evidence.sources],
            "dose": self.dose.model_dump(exclude_none=True),
            "intensity": self.intensity.target, "tags": list(self.tags),
        }
