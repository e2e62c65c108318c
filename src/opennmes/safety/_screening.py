"""Contraindication and precaution screening: patient factors against electrode sites.

Rules follow ``shared/reference/clinical-protocols-and-safety.md`` §5 (CPS), which cites IEC
60601-2-10 IFU requirements (S28), FDA powered-muscle-stimulator guidance and labelling (S29),
Houghton et al. 2010 and Watson & Nussbaum 2020 (S33) and manufacturer IFUs (S34). A finding
is ``block`` (stimulation must not start), ``warn`` (a precaution to record and respect) or
``info``. Some blocks can be lifted by a recorded acknowledgement (e.g. a cardiologist's
opinion for a pacemaker with electrodes far from the chest); site contraindications such as
the anterior neck or the head cannot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from opennmes.errors import ContraindicationError

__all__ = ["SITES", "FACTORS", "PatientFactor", "Finding", "ScreeningResult", "screen",
           "ElectrodeSite"]

# body site -> region
SITES: dict[str, str] = {
    "quadriceps": "thigh", "vastus medialis": "thigh", "vastus lateralis": "thigh",
    "rectus femoris": "thigh", "hamstrings": "thigh", "femoral nerve": "thigh",
    "gluteus": "hip", "hip": "hip",
    "tibialis anterior": "lower leg", "peroneal nerve": "lower leg",
    "common peroneal nerve": "lower leg", "gastrocnemius": "lower leg", "soleus": "lower leg",
    "calf": "lower leg", "peroneus longus": "lower leg", "lower leg": "lower leg",
    "foot": "foot",
    "deltoid": "shoulder", "posterior deltoid": "shoulder", "supraspinatus": "shoulder",
    "shoulder": "shoulder",
    "biceps": "upper arm", "triceps": "upper arm", "upper arm": "upper arm",
    "wrist extensors": "forearm", "finger extensors": "forearm", "wrist flexors": "forearm",
    "finger flexors": "forearm", "forearm": "forearm", "hand": "hand",
    "abdomen": "abdomen", "low back": "low back", "lumbar": "low back", "pelvis": "pelvis",
    "pelvic floor": "pelvis", "chest": "thorax", "upper back": "upper back",
    "trapezius": "upper back", "posterior neck": "posterior neck",
    "anterior neck": "anterior neck", "carotid sinus": "anterior neck", "head": "head",
    "face": "head", "eyes": "head", "mouth": "head",
}

_ADJACENT = {
    frozenset(p) for p in [
        ("thigh", "lower leg"), ("thigh", "hip"), ("lower leg", "foot"), ("hip", "pelvis"),
        ("hip", "low back"), ("upper arm", "forearm"), ("upper arm", "shoulder"),
        ("forearm", "hand"), ("shoulder", "upper back"), ("shoulder", "thorax"),
        ("abdomen", "pelvis"), ("abdomen", "thorax"), ("low back", "pelvis"),
        ("upper back", "posterior neck"), ("thorax", "anterior neck"),
        ("anterior neck", "head"), ("posterior neck", "head"), ("low back", "upper back"),
    ]
}

_LOWER_LIMB = {"thigh", "hip", "lower leg", "foot"}
_NEAR_HEART = {"thorax", "upper back", "shoulder", "anterior neck"}

_S_IEC = "IEC 60601-2-10 IFU warnings (CPS §4.1, §5, S28)"
_S_FDA = "FDA PMS guidance and labelling (CPS §4.3, §5, S29)"
_S_IFU = "manufacturer IFUs: Enraf-Nonius, Compex, PowerDot (CPS §5, S34)"

FACTORS: dict[str, str] = {
    "pacemaker": "demand pacemaker, ICD or other active implant (DBS, neurostimulator, "
                 "cochlear implant)",
    "pregnancy": "pregnancy",
    "active_cancer": "active or suspected malignancy (give the lesion sites)",
    "dvt": "active deep vein thrombosis or thrombophlebitis (give the sites)",
    "broken_skin": "broken, infected, inflamed or irradiated skin (give the sites)",
    "epilepsy": "epilepsy",
    "impaired_sensation": "impaired sensation (give the sites, or none for everywhere)",
    "impaired_cognition": "impaired cognition or communication",
    "heart_disease": "heart disease, arrhythmia or heart failure",
    "bleeding_tendency": "bleeding tendency, recent trauma or fracture",
    "recent_surgery": "recent surgery near the site",
    "arterial_disease": "serious arterial disease of the lower limbs",
    "metal_implant": "metal implant or osteosynthesis",
}

Severity = Literal["block", "warn", "info"]


@dataclass(frozen=True)
class PatientFactor:
    """A patient factor, optionally located (``sites`` such as ``"left calf"``)."""

    key: str
    sites: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.key not in FACTORS:
            raise ContraindicationError(
                f"unknown patient factor {self.key!r}; known: {sorted(FACTORS)}")
        for s in self.sites:
            _parse_site(s)


@dataclass(frozen=True)
class ElectrodeSite:
    """Where a channel's electrodes sit."""

    channel: str
    site: str
    side: str | None = None


@dataclass(frozen=True)
class Finding:
    """One screening result: what, where, why and from which source."""

    severity: Severity
    factor: str | None
    channel: str | None
    site: str | None
    reason: str
    source: str
    liftable: bool = False
    acknowledged: str | None = None

    def __str__(self) -> str:
        where = f"channel {self.channel!r} ({self.site})" if self.channel else "patient"
        who = f"{self.factor}: " if self.factor else ""
        ack = f" [acknowledged: {self.acknowledged}]" if self.acknowledged else ""
        return f"{self.severity}: {where}: {who}{self.reason} ({self.source}){ack}"


@dataclass(frozen=True)
class ScreeningResult:
    """All findings of a screening."""

    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def blocked(self) -> bool:
        """True when any finding blocks stimulation."""
        return any(f.severity == "block" for f in self.findings)

    @property
    def blocks(self) -> list[Finding]:
        """The blocking findings."""
        return [f for f in self.findings if f.severity == "block"]

    @property
    def warnings(self) -> list[Finding]:
        """The precautions."""
        return [f for f in self.findings if f.severity == "warn"]

    def raise_if_blocked(self) -> None:
        """Raise ContraindicationError listing every block."""
        if self.blocked:
            lines = "\n  ".join(str(f) for f in self.blocks)
            raise ContraindicationError(f"stimulation is contraindicated:\n  {lines}")


def _parse_site(text: str) -> tuple[str | None, str]:
    words = text.strip().lower()
    side = None
    for s in ("left", "right"):
        if words.startswith(s + " "):
            side, words = s, words[len(s) + 1:]
    if words not in SITES:
        raise ContraindicationError(f"unknown body site {text!r}; known: {sorted(SITES)}")
    return side, words


def _region(site: str) -> str:
    return SITES[_parse_site(site)[1]]


def _near(factor_sites: Sequence[str], e: ElectrodeSite, *, adjacent: bool) -> bool:
    region = _region(e.site)
    for fs in factor_sites:
        side, name = _parse_site(fs)
        if side and e.side in ("left", "right") and side != e.side:
            continue
        r = SITES[name]
        if r == region or (adjacent and frozenset((r, region)) in _ADJACENT):
            return True
    return False


def screen(
    factors: Iterable[PatientFactor],
    electrodes: Sequence[ElectrodeSite],
    acknowledged: Mapping[str, str] | None = None,
) -> ScreeningResult:
    """Screen patient factors against electrode sites.

    Parameters
    ----------
    factors : iterable of PatientFactor
    electrodes : sequence of ElectrodeSite
    acknowledged : mapping factor key -> reason, optional
        Recorded decisions (e.g. ``{"pacemaker": "cardiology cleared lower-limb NMES"}``)
        that turn a liftable block into a warning.

    Returns
    -------
    ScreeningResult
    """
    acknowledged = dict(acknowledged or {})
    out: list[Finding] = []

    def add(sev: Severity, factor: str | None, e: ElectrodeSite | None, reason: str,
            source: str, liftable: bool = False) -> None:
        ack = acknowledged.get(factor) if (factor and liftable and sev == "block") else None
        if ack:
            sev = "warn"
        out.append(Finding(sev, factor, e.channel if e else None, e.site if e else None,
                           reason, source, liftable, ack))

    regions = {e.channel: _region(e.site) for e in electrodes}
    # site rules, whatever the patient
    for e in electrodes:
        r = regions[e.channel]
        if r == "anterior neck":
            add("block", None, e, "anterior neck / carotid sinus: reflex bradycardia and "
                "hypotension, laryngeal spasm", f"{_S_IEC}; {_S_FDA}")
        elif r == "head":
            add("block", None, e, "transcerebral or over the eyes or mouth: unknown risks, "
                "seizure", f"{_S_IEC}; {_S_FDA}")
        elif r == "thorax":
            add("warn", None, e, "electrodes near the thorax may increase the risk of cardiac "
                "fibrillation; never place them across the chest", _S_IEC)
    all_regions = set(regions.values())
    if "thorax" in all_regions and "upper back" in all_regions:
        e = next(x for x in electrodes if regions[x.channel] == "thorax")
        add("block", None, e, "electrodes on chest and upper back: current crosses the heart "
            "(transthoracic)", f"{_S_IEC}; {_S_FDA}")

    for f in factors:
        k = f.key
        for e in electrodes:
            r = regions[e.channel]
            if k == "pacemaker":
                if r in _NEAR_HEART:
                    add("block", k, e, "active implant and electrodes near the heart or neck",
                        f"{_S_FDA}; {_S_IEC}")
                else:
                    add("block", k, e, "active implant: no stimulation without a specialist's "
                        "opinion (FDA: contraindication for demand pacemakers)",
                        f"{_S_FDA}; {_S_IEC}", liftable=True)
            elif k == "pregnancy":
                if r in ("abdomen", "low back", "pelvis"):
                    add("block", k, e, "pregnancy: not over the abdomen, low back or pelvis",
                        _S_IFU)
                else:
                    add("warn", k, e, "pregnancy: some IFUs advise against any use; keep away "
                        "from the trunk", _S_IFU)
            elif k in ("active_cancer", "dvt"):
                what = "malignancy" if k == "active_cancer" else "thrombosis"
                if not f.sites and k == "dvt" and r in _LOWER_LIMB:
                    add("block", k, e, "DVT of unknown site: muscle pumping may dislodge an "
                        "embolus; give the site", _S_IFU)
                elif f.sites and _near(f.sites, e, adjacent=True):
                    add("block", k, e, f"over or near the {what} ({', '.join(f.sites)})",
                        f"{_S_FDA}; {_S_IFU}")
                else:
                    add("warn", k, e, f"{what} elsewhere: keep electrodes away from it",
                        _S_IFU)
            elif k == "broken_skin":
                if not f.sites or _near(f.sites, e, adjacent=False):
                    add("block", k, e, "broken, infected or irradiated skin under the "
                        "electrode: current concentrates, burns", f"{_S_FDA}; {_S_IFU}")
            elif k == "epilepsy":
                add("warn", k, e, "epilepsy: precaution; never near the head or neck", _S_IFU)
            elif k == "impaired_sensation":
                if not f.sites or _near(f.sites, e, adjacent=False):
                    add("warn", k, e, "impaired sensation: the patient cannot report "
                        "over-stimulation; check the skin and the intensity visually",
                        f"{_S_FDA}; {_S_IFU}")
            elif k == "impaired_cognition":
                add("warn", k, e, "impaired cognition or communication: the patient may not "
                    "report discomfort; supervise", _S_IFU)
            elif k == "heart_disease":
                if r in _NEAR_HEART:
                    add("block", k, e, "heart disease: avoid the thorax", _S_IFU)
                else:
                    add("warn", k, e, "heart disease: precaution (lower-limb NMES appears "
                        "safe in heart failure)", _S_IFU)
            elif k in ("bleeding_tendency", "recent_surgery"):
                if not f.sites or _near(f.sites, e, adjacent=True):
                    add("warn", k, e, "contraction may worsen bleeding or stress a repair; "
                        "agree with the surgeon", _S_FDA)
            elif k == "arterial_disease":
                if r in _LOWER_LIMB:
                    add("block", k, e, "serious arterial disease of the lower limbs: "
                        "ischaemia (consumer IFUs)", _S_IFU, liftable=True)
            elif k == "metal_implant":
                add("info", k, e, "metal implants are not a contraindication for biphasic "
                    "charge-balanced NMES", _S_IFU)
    return ScreeningResult(tuple(out))
