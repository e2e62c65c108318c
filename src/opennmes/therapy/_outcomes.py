"""Outcome measurements, their history and the flags when a change crosses the MCID."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from opennmes.therapy._errors import OutcomeError
from opennmes.therapy._instruments import Instrument, Threshold, get_instrument

__all__ = ["Measurement", "ChangeAssessment", "OutcomeHistory", "assess_change",
           "outcome_history", "choose_threshold", "populations_for", "CONDITION_POPULATIONS",
           "GENERAL_POPULATIONS", "verdict_text", "threshold_text", "threshold_label"]

Status = Literal["improved", "possibly-improved", "no-meaningful-change", "possibly-worsened",
                 "worsened", "no-threshold"]


@dataclass(frozen=True)
class Measurement:
    """One outcome measurement.

    Attributes
    ----------
    id : int or None
        Database id (None before it is saved).
    patient_id : str
    instrument : str
        Key of :data:`~opennmes.therapy.INSTRUMENTS`.
    value : float
        SI value (rad, N, N m, m, m/s, s) or score.
    measured_on : datetime.date
    side : {"left", "right"} or None
    population : str or None
        Which published threshold applies (e.g. ``chronic-stroke``); None: the default.
    note : str or None
    by : str or None
        Who entered it.
    """

    id: int | None
    patient_id: str
    instrument: str
    value: float
    measured_on: dt.date
    side: str | None = None
    population: str | None = None
    note: str | None = None
    by: str | None = None


@dataclass(frozen=True)
class ChangeAssessment:
    """A change from baseline judged against a published threshold.

    ``change`` is value - baseline (SI); ``improvement`` is the change in the direction of
    improvement (positive = better). ``status`` is ``improved`` (at or beyond the top of the
    threshold), ``possibly-improved`` (inside a published range), ``no-meaningful-change``,
    ``possibly-worsened``, ``worsened``, or ``no-threshold`` (none published).
    ``cutoff`` describes a diagnostic cut-off crossed between baseline and value.
    """

    instrument: str
    baseline: float
    value: float
    change: float
    improvement: float
    status: Status
    threshold: Threshold | None
    message: str
    cutoff: str | None = None

    @property
    def crossed(self) -> bool:
        """True when the change reaches at least the lower end of the threshold."""
        return self.status in ("improved", "possibly-improved", "possibly-worsened", "worsened")


GENERAL_POPULATIONS = ("general", "any")
"""Thresholds published for everyone: they fit any patient."""
CONDITION_POPULATIONS: dict[str, tuple[str, ...]] = {
    "total-knee-arthroplasty": ("tka", "pre-tka", "knee-oa"),
    "knee-osteoarthritis": ("knee-oa", "pre-tka", "chronic-pain"),
    "patellofemoral-pain": ("chronic-pain",),
    "acl-reconstruction": (),
    "stroke-hand-opening-cyclic": ("stroke", "chronic-stroke", "subacute-stroke"),
    "stroke-hand-opening-emg": ("stroke", "chronic-stroke", "subacute-stroke"),
    "stroke-shoulder-subluxation": ("stroke", "chronic-stroke", "subacute-stroke"),
    "drop-foot-fes": ("stroke", "chronic-stroke", "subacute-stroke", "stroke-slow-walkers"),
    "copd": ("copd", "copd-puhan"),
    "icu-critical-illness": ("icu", "inpatient-rehab"),
    "russian-current": (), "tens-acupuncture-like": ("chronic-pain",),
    "tens-brief-intense": ("chronic-pain",), "tens-burst": ("chronic-pain",),
    "tens-conventional": ("chronic-pain",), "tens-modulated": ("chronic-pain",),
}
"""For each protocol (the patient's condition), the threshold populations that fit, in order
of preference, before the general ones. An OpenNMES judgement, not a published table: a
population fits when the patient belongs to it (a primary knee replacement is not a revision
one; knee osteoarthritis is the population before the operation, and its thresholds are shown
as such); stroke thresholds of the early phase by affected-hand dominance, or of the acute
severe phase, need the population recorded with the measurement."""


def populations_for(protocols: Iterable[str]) -> tuple[str, ...]:
    """The threshold populations that fit a patient treated with ``protocols``."""
    out: list[str] = []
    for p in protocols:
        out += [x for x in CONDITION_POPULATIONS.get(p, ()) if x not in out]
    return (*out, *GENERAL_POPULATIONS)


def choose_threshold(inst: Instrument, population: str | None,
                     fits: Sequence[str] | None = None) -> Threshold | None:
    """The change threshold for ``population``; when None, the first threshold published for
    a population in ``fits`` (:func:`populations_for`; None when none fits: no verdict), or
    without ``fits`` the instrument's first."""
    changes = [t for t in inst.thresholds if t.kind != "cutoff"]
    if population is None:
        if fits is not None:
            rank = {p: i for i, p in enumerate(fits)}
            ok = sorted((t for t in changes if t.population in rank),
                        key=lambda t: rank[t.population])
            return ok[0] if ok else None
        return changes[0] if changes else None
    for t in changes:
        if t.population == population:
            return t
    raise OutcomeError(f"{inst.name}: no published threshold for population {population!r}; "
                       f"known: {[t.population for t in changes]}")


def assess_change(instrument: str, baseline: float, value: float,
                  population: str | None = None,
                  fits: Sequence[str] | None = None) -> ChangeAssessment:
    """Judge ``value`` against ``baseline`` (both SI) with the published threshold.

    A change counts when its size reaches the absolute threshold or, where one is published,
    the relative one (e.g. pain: 2 points or 30 %, Farrar 2001). With a published range
    (e.g. FMA-UE 4.25-7.25) a change inside the range is ``possibly-improved`` and one at or
    beyond its top is ``improved``.
    """
    inst = get_instrument(instrument)
    inst.validate(baseline)
    inst.validate(value)
    t = choose_threshold(inst, population, fits)
    change = value - baseline
    imp = change * inst.direction
    size = abs(imp)
    rel = size / abs(baseline) if baseline else None
    word = "improved" if imp > 0 else "worsened"
    sign = "+" if change >= 0 else "-"
    what = f"{inst.name}: {sign}{inst.fmt(abs(change))} from baseline {inst.fmt(baseline)}"
    cutoff = _cutoff(inst, baseline, value)
    if t is None:
        published = sorted({x.population for x in inst.thresholds if x.kind != "cutoff"})
        why = (f"no threshold published for this patient's condition (published for: "
               f"{', '.join(published)}; record the population with the measurement if the "
               "patient belongs to one)") if published else "no published threshold for this " \
            "instrument"
        return ChangeAssessment(instrument, baseline, value, change, imp, "no-threshold", None,
                                f"{what}; no verdict: {why}", cutoff)
    eps = 1e-12

    def reaches(abs_v: float | None, rel_v: float | None) -> bool:
        ok = abs_v is not None and size + eps >= abs_v
        return ok or (rel_v is not None and rel is not None and rel + eps >= rel_v)

    top = reaches(t.high, t.relative_high if t.relative_high is not None else t.relative)
    bottom = reaches(t.low, t.relative)
    label = {"mcid": "MCID", "mdc": "MDC", "effect": "published effect"}.get(t.kind, t.kind)
    ref = f"{label} {inst.band(t)} ({t.population}; {t.source})"
    status: Status
    if size == 0 or not bottom:
        status = "no-meaningful-change"
        msg = f"{what}: below the {ref}"
    elif top:
        status = word  # type: ignore[assignment]
        msg = f"{what}: {word} beyond the {ref}"
    else:
        status = f"possibly-{word}"  # type: ignore[assignment]
        msg = f"{what}: {word} within the range of the {ref}"
    if cutoff:
        msg += f"; {cutoff}"
    return ChangeAssessment(instrument, baseline, value, change, imp, status, t, msg, cutoff)


_KIND = {"mcid": "MCID", "mdc": "MDC", "effect": "published effect"}
_KIND_WORDS = {"mcid": "minimal clinically important difference",
               "mdc": "minimal detectable change: a real change, not necessarily an important "
                      "one", "effect": "a published treatment effect"}


def threshold_label(threshold: Threshold) -> str:
    """``MCID``, ``MDC`` or ``published effect``."""
    return _KIND.get(threshold.kind, threshold.kind)


def verdict_text(status: str, threshold: Threshold | None) -> str:
    """A change verdict naming the threshold it was judged against, its kind (MCID and MDC are
    different claims) and the population it was published for: "improved (beyond the MDC,
    knee-oa)"."""
    if threshold is None or status == "no-threshold":
        return "no verdict: no published threshold"
    ref = f"{_KIND.get(threshold.kind, threshold.kind)}, {threshold.population}"
    return {"improved": f"improved (beyond the {ref})",
            "possibly-improved": f"improved (within the range of the {ref})",
            "no-meaningful-change": f"no change beyond the {ref}",
            "possibly-worsened": f"worse (within the range of the {ref})",
            "worsened": f"worse (beyond the {ref})"}.get(status, status)


def threshold_text(threshold: Threshold | None) -> str:
    """The threshold a history is judged against, with its kind spelled out and its source."""
    if threshold is None:
        return "no published threshold: changes are shown without a verdict"
    kind = threshold.kind
    return (f"{_KIND.get(kind, kind)} ({_KIND_WORDS.get(kind, kind)}) for "
            f"{threshold.population}: {threshold.source}")


def _cutoff(inst: Instrument, baseline: float, value: float) -> str | None:
    for t in inst.thresholds:
        if t.kind != "cutoff" or t.low is None:
            continue
        c = t.low
        if (baseline < c) != (value < c):
            way = "rose to" if value > baseline else "fell to"
            return (f"{way} {inst.fmt(value)}, across the cut-off {inst.fmt(c)} "
                    f"({t.source})")
    return None


@dataclass(frozen=True)
class OutcomeHistory:
    """The measurements of one instrument (and side) over time, each judged against the
    first (baseline) and against the previous one."""

    instrument: Instrument
    side: str | None
    measurements: tuple[Measurement, ...]
    threshold: Threshold | None
    from_baseline: tuple[ChangeAssessment, ...] = field(default=())
    from_previous: tuple[ChangeAssessment, ...] = field(default=())

    @property
    def latest(self) -> ChangeAssessment | None:
        """The newest measurement judged against the baseline (None with < 2 points)."""
        return self.from_baseline[-1] if self.from_baseline else None


def outcome_history(measurements: Sequence[Measurement], instrument: str,
                    side: str | None = None, population: str | None = None,
                    fits: Sequence[str] | None = None) -> OutcomeHistory:
    """The history of ``instrument`` (and ``side``) from ``measurements``, oldest first.

    ``population`` picks the threshold; when None, the population recorded with the
    measurements (the newest that names one), else the first threshold whose population
    ``fits`` the patient (:func:`populations_for`; none: no verdict), else without ``fits``
    the instrument's default.
    """
    inst = get_instrument(instrument)
    pts = sorted((m for m in measurements if m.instrument == instrument and m.side == side),
                 key=lambda m: (m.measured_on, m.id or 0))
    if population is None:
        named = [m.population for m in pts if m.population]
        population = named[-1] if named else None
    t = choose_threshold(inst, population, fits)
    base: list[ChangeAssessment] = []
    prev: list[ChangeAssessment] = []
    for i, m in enumerate(pts[1:], start=1):
        base.append(assess_change(instrument, pts[0].value, m.value, population, fits))
        prev.append(assess_change(instrument, pts[i - 1].value, m.value, population, fits))
    return OutcomeHistory(inst, side, tuple(pts), t, tuple(base), tuple(prev))
