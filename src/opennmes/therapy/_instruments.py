"""Outcome instruments: validated ranges and published MCIDs, by name.

Values are SI inside (rad, N, N m, m, m/s, s); scores are plain numbers. Each instrument knows
its display unit, its range (a value outside is refused with the range and its source) and
its thresholds of meaningful change with the population and the source they come from. The
figures come from ``shared/reference/clinical-protocols-and-safety.md`` §6 (CPS) and carry
its tags: ``V`` seen in the cited source, ``R`` recalled / secondary (do not treat as hard).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from opennmes.therapy._errors import OutcomeError

__all__ = ["Threshold", "Instrument", "INSTRUMENTS", "get_instrument"]

_KGF = 9.80665  # N per kilogram-force (grip dynamometers read kg)


@dataclass(frozen=True)
class Threshold:
    """A threshold of meaningful change (SI, in the instrument's direction of improvement).

    Attributes
    ----------
    kind : {"mcid", "mdc", "effect", "cutoff"}
        ``mcid``: minimal clinically important difference; ``mdc``: minimal detectable
        change (where no MCID is published); ``effect``: a published treatment effect used as
        a yardstick; ``cutoff``: a diagnostic cut-off value (not a change).
    low, high : float or None
        The published value or range (equal when a single value), SI; None when only a
        relative change is published.
    population : str
        Key of the population it was published for (e.g. ``chronic-stroke``, ``copd``).
    source : str
        Citation with the CPS source id and tag.
    relative, relative_high : float, optional
        A relative change (of the baseline) that also counts, e.g. 0.30 for 30 % on pain
        scales; ``relative_high`` the top of a published relative range.
    """

    kind: Literal["mcid", "mdc", "effect", "cutoff"]
    low: float | None
    high: float | None
    population: str
    source: str
    relative: float | None = None
    relative_high: float | None = None


@dataclass(frozen=True)
class Instrument:
    """An outcome instrument.

    Attributes
    ----------
    key : str
    name : str
    domain : str
    unit : str
        Display unit (``deg``, ``N m``, ``m/s``, ``points`` ...).
    scale : float
        Display value = SI value * scale.
    minimum, maximum : float
        Valid range, SI (inclusive).
    range_source : str
    integer : bool
        Scores that only take whole values.
    higher_is_better : bool
    thresholds : tuple of Threshold
        The first is the default.
    note : str
    """

    key: str
    name: str
    domain: str
    unit: str
    scale: float
    minimum: float
    maximum: float
    range_source: str
    integer: bool
    higher_is_better: bool
    thresholds: tuple[Threshold, ...]
    note: str = ""

    @property
    def direction(self) -> int:
        """+1 when a rise is an improvement, -1 when a fall is."""
        return 1 if self.higher_is_better else -1

    def fmt(self, value: float, digits: int = 4) -> str:
        """A SI value in the display unit, e.g. ``'95 deg'``."""
        v = value * self.scale
        return f"{v:.{digits}g} {self.unit}" if self.unit != "points" else f"{v:g} points"

    def band(self, t: Threshold) -> str:
        """A threshold in display units, e.g. ``'4.25-7.25 points'`` or ``'2 points or 30%'``."""
        parts = []
        if t.low is not None and t.high is not None:
            lo, hi = t.low * self.scale, t.high * self.scale
            parts.append((f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}") + f" {self.unit}")
        if t.relative is not None:
            rel = f"{t.relative:.0%}"
            if t.relative_high is not None:
                rel = f"{t.relative * 100:.0f}-{t.relative_high:.0%}"
            parts.append(rel)
        return " or ".join(parts)

    def validate(self, value: float) -> float:
        """``value`` (SI) if it is finite and in range, else OutcomeError saying what and why."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OutcomeError(f"{self.name}: value {value!r} must be a number")
        v = float(value)
        lo, hi = self.fmt(self.minimum), self.fmt(self.maximum)
        if not math.isfinite(v):
            raise OutcomeError(f"{self.name}: value {value!r} is not a finite number")
        tol = 1e-9 * max(1.0, abs(self.maximum), abs(self.minimum))
        if not self.minimum - tol <= v <= self.maximum + tol:
            raise OutcomeError(
                f"{self.name} = {self.fmt(v)} is outside the valid range {lo} .. {hi} "
                f"({self.range_source}); check the value and its unit")
        if self.integer and abs(v * self.scale - round(v * self.scale)) > 1e-9:
            raise OutcomeError(f"{self.name} = {v * self.scale:g} must be a whole number of "
                               f"points ({self.range_source})")
        return v

    def parse(self, text: str | float) -> float:
        """Parse an entry with its unit (``'95 deg'``, ``'1.2 m/s'``, ``'34 points'``, or a
        bare number in the display unit) into a validated SI value."""
        if isinstance(text, int | float) and not isinstance(text, bool):
            return self.validate(float(text) / self.scale)
        m = re.fullmatch(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*", str(text))
        if not m:
            raise OutcomeError(f"{self.name}: cannot read {text!r}; write a number with its "
                               f"unit, e.g. '12 {self.unit}'")
        number, unit = float(m.group(1)), m.group(2).replace("·", " ").replace("*", " ")
        unit = " ".join(unit.split())
        factors = _UNIT_FACTORS.get(self.unit, {})
        if unit in ("", self.unit):
            return self.validate(number / self.scale)
        if unit in factors:
            return self.validate(number * factors[unit])
        known = [self.unit, *factors]
        raise OutcomeError(f"{self.name}: unit {unit!r} does not fit; use one of {known}")


# display unit -> accepted alternative units and their factor to SI
_UNIT_FACTORS: dict[str, dict[str, float]] = {
    "deg": {"°": math.pi / 180, "rad": 1.0},
    "N m": {"Nm": 1.0, "N.m": 1.0},
    "N m/kg": {"Nm/kg": 1.0},
    "N": {"kg": _KGF, "kgf": _KGF},
    "kg": {"kgf": _KGF, "N": 1.0},
    "cm": {"mm": 1e-3, "m": 1.0},
    "mm": {"cm": 1e-2, "m": 1.0},
    "m/s": {"cm/s": 1e-2},
    "m": {},
    "s": {},
    "points": {"pts": 1.0, "point": 1.0},
}

_DEG = math.pi / 180
_T = Threshold


def _pts(key: str, name: str, domain: str, lo: float, hi: float, src: str, better: bool,
         th: tuple[Threshold, ...], note: str = "", integer: bool = True) -> Instrument:
    return Instrument(key, name, domain, "points", 1.0, lo, hi, src, integer, better, th, note)


INSTRUMENTS: dict[str, Instrument] = {i.key: i for i in [
    Instrument(
        "rom", "Goniometric range of motion", "joint ROM", "deg", 1 / _DEG,
        -30 * _DEG, 180 * _DEG, "anatomical limits of goniometry [D]", False, True,
        (_T("mdc", 5 * _DEG, 10 * _DEG, "any",
            "no universal MCID; measurement error about 3-5 deg, MDC about 5-10 deg "
            "(CPS §6 [R])"),),
        "knee flexion or extension arc, wrist / finger active ROM; record the side"),
    Instrument(
        "mvic_torque", "MVIC torque (isometric or isokinetic dynamometer)", "strength", "N m",
        1.0, 0.0, 600.0, "dynamometer range for knee extensors [D]", False, True,
        (_T("mdc", 29.0, 33.0, "revision-tka",
            "MDC95 about 29-33 N m, revision TKA (CPS §6, S35 Kittelson [V])"),),
        "quadriceps index (% of the other side) is computed from two sides"),
    Instrument(
        "mvic_torque_per_kg", "MVIC torque per body mass", "strength", "N m/kg", 1.0, 0.0,
        10.0, "dynamometer range for knee extensors [D]", False, True,
        (_T("mdc", 0.23, 0.23, "knee-oa", "MDC95 0.23 N m/kg, knee OA (CPS §6, S35 [V])"),)),
    Instrument(
        "hhd_force", "Hand-held dynamometry force", "strength", "N", 1.0, 0.0, 1500.0,
        "hand-held dynamometer range [D]", False, True,
        (_T("mdc", None, None, "pre-tka",
            "smallest detectable difference 19-57 % in pre-TKA patients (CPS §6, S35 [V])",
            relative=0.19, relative_high=0.57),),
        "handheld underestimates torque but is responsive (SRM 1.57 after TKA)"),
    Instrument(
        "grip", "Grip strength", "strength (upper limb)", "kg", 1 / _KGF, 0.0, 100 * _KGF,
        "grip dynamometer 0-100 kg [D]", False, True,
        (_T("mcid", 5.0 * _KGF, 5.0 * _KGF, "early-stroke-affected-dominant",
            "Lang CE et al. Arch Phys Med Rehabil 2008: 5.0 kg (CPS §6, S35 [V])"),
         _T("mcid", 6.2 * _KGF, 6.2 * _KGF, "early-stroke-affected-non-dominant",
            "Lang CE et al. Arch Phys Med Rehabil 2008: 6.2 kg (CPS §6, S35 [V])"))),
    Instrument(
        "muscle_thickness", "Ultrasound muscle thickness", "muscle size", "cm", 100.0, 0.001,
        0.10, "ultrasound thickness 0.1-10 cm [D]", False, True, (),
        "no published MCID: changes are shown without a flag. ICU reference: rectus femoris "
        "thickness falls about 1.75 %/day in week 1 (CPS §6, S35 [V])"),
    _pts("fma_ue", "Fugl-Meyer Assessment, upper extremity", "stroke UE impairment", 0, 66,
         "FMA-UE 0-66 (CPS §6, S35 [V])", True,
         (_T("mcid", 4.25, 7.25, "chronic-stroke",
             "Page SJ et al. Phys Ther 2012: 4.25-7.25, chronic mild-moderate (S35 [V])"),
          _T("mcid", 9.0, 10.0, "subacute-stroke",
             "Arya KN et al. Top Stroke Rehabil 2011: 9-10, subacute (S35 [V])"),
          _T("mcid", 12.0, 13.0, "acute-moderate-severe-stroke",
             "Neurorehabil Neural Repair 2023;37:545-553: 12-13 (MDC 6.8), moderate-severe "
             "1-6 weeks after stroke (S35 [V])"))),
    _pts("arat", "Action Research Arm Test", "stroke UE activity", 0, 57,
         "ARAT 0-57 (CPS §6, S35 [V])", True,
         (_T("mcid", 12.0, 12.0, "early-stroke-affected-dominant",
             "Lang CE et al. Arch Phys Med Rehabil 2008: 12 (S35 [V])"),
          _T("mcid", 17.0, 17.0, "early-stroke-affected-non-dominant",
             "Lang CE et al. Arch Phys Med Rehabil 2008: 17 (S35 [V])"),
          _T("mcid", 5.7, 5.7, "chronic-stroke", "van der Lee 2001: 5.7 (CPS §6 [R])"))),
    Instrument(
        "ten_metre_walk", "10-metre walk test (speed)", "gait", "m/s", 1.0, 0.0, 3.0,
        "walking speeds 0-3 m/s [D]", False, True,
        (_T("mcid", 0.16, 0.16, "subacute-stroke",
            "Tilson JK et al. Phys Ther 2010: 0.16 m/s (CPS §6, S35 [V])"),
         _T("mcid", 0.13, 0.13, "inpatient-rehab",
            "J Phys Ther Sci 2013 (PubMed 24259762): 0.13 m/s (S35 [V])"),
         _T("mcid", 0.05, 0.10, "general",
            "Perera 2006: small 0.05, substantial 0.10 m/s (CPS §6, S27 [V])"))),
    Instrument(
        "six_minute_walk", "6-minute walk distance", "endurance", "m", 1.0, 0.0, 1000.0,
        "6MWD 0-1000 m [D]", False, True,
        (_T("mcid", 25.0, 25.0, "copd",
            "Holland AE et al. Arch Phys Med Rehabil 2010;91:221-5: 25 m, COPD (S35 [V])"),
         _T("mcid", 35.0, 35.0, "copd-puhan",
            "Puhan MA et al. Eur Respir J 2008;32:637: about 35 m, COPD (S35 [V])"),
         _T("mcid", 34.0, 44.0, "stroke-slow-walkers",
            "Fulk GD et al. J Neurol Phys Ther 2018;42:235-240: 34-44 m when initial speed "
            "< 0.4 m/s (S35 [V])"),
         _T("mcid", 17.8, 17.8, "frail-older-adults",
            "BMC Geriatr 2013;13:23: 17.8 m, frail Asian older adults (S35 [V])"))),
    Instrument(
        "tug", "Timed Up and Go", "mobility", "s", 1.0, 1.0, 300.0, "TUG 1-300 s [D]", False,
        False,
        (_T("mdc", 1.10, 1.14, "knee-oa",
            "BMC Musculoskelet Disord 2015 (s12891-015-0637-8): MDC 1.10-1.14 s, knee OA "
            "(S35 [V])"),
         _T("mdc", 2.9, 2.9, "stroke", "stroke MDC about 2.9 s (CPS §6 [R])"),
         _T("cutoff", 13.5, 13.5, "community-elders",
            ">= 13.5 s suggests fall risk in community elders (CPS §6 [R])")),
        "after TKA, NMES improved TUG by 2.2 s in month 1 (S20)"),
    _pts("mrc_sum", "MRC sum score", "strength (ICU)", 0, 60,
         "6 muscle groups x 2 sides x 0-5 = 0-60 (NINDS CDE, S35 [V])", True,
         (_T("cutoff", 48.0, 48.0, "icu",
             "< 48 = ICU-acquired weakness (NINDS CDE; Connolly 2013, S35 [V]); MCID not "
             "established"),)),
    Instrument(
        "subluxation", "Shoulder subluxation distance (AP radiograph)", "shoulder", "mm",
        1000.0, 0.0, 0.05, "0-50 mm acromion-humeral gap [D]", False, False,
        (_T("effect", 6.5e-3, 6.5e-3, "stroke",
            "early ES prevented about 6.5 mm (Ada & Foongchomcheay meta-analysis, CPS §6, "
            "S25 [V]); a treatment effect, not an MCID"),)),
    _pts("pain_nrs", "Pain numeric rating scale", "pain", 0, 10, "NRS 0-10 (CPS §6 [V])",
         False,
         (_T("mcid", 2.0, 2.0, "chronic-pain",
             "Farrar JT et al. Pain 2001;94:149-158: about 2 points or 30 % (S35 [V])",
             relative=0.30),)),
    _pts("eq5d_index", "EQ-5D index", "quality of life", -0.594, 1.0,
         "UK EQ-5D-3L tariff, about -0.59 to 1.0 (CPS §6 [V])", True,
         (_T("mcid", 0.074, 0.074, "general",
             "Walters SJ, Brazier JE. Qual Life Res 2005;14:1523-32: mean MID 0.074 (S35 [V])"),
          _T("mcid", 0.08, 0.12, "stroke",
             "Kim SK et al. HQLO 2015: 0.08-0.12, stroke (S35 [V])")), integer=False),
    _pts("eq_vas", "EQ-5D visual analogue scale", "quality of life", 0, 100,
         "EQ-VAS 0-100 (CPS §6)", True,
         (_T("mcid", 7.0, 10.0, "general", "about 7-10 (CPS §6 [R])"),)),
]}
"""Outcome instruments by key."""


def get_instrument(key: str) -> Instrument:
    """The instrument with this key; OutcomeError listing the keys when unknown."""
    if key not in INSTRUMENTS:
        raise OutcomeError(f"unknown outcome instrument {key!r}; known: {sorted(INSTRUMENTS)}")
    return INSTRUMENTS[key]
