"""The cohort spec: programs x patients, duration, output rate and metrics, read from YAML.

A spec names the programs (program files, relative to the spec, or protocols of the library),
groups of patients (a preset, a count and multiplicative spreads of strength, fatigability and
rheobase, drawn from a seeded generator), the simulated time, the output rate used for the
metrics, and the metrics of each run. Every patient's factors are drawn here, on the client,
from ``(seed, group)`` alone, so the table does not depend on how the runs are batched or on
how many workers run them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from opennmes.errors import ModelError
from opennmes.units import parse_quantity

__all__ = ["SPREADS", "CohortSpec", "PatientDraw", "PatientGroup", "ProgramEntry",
           "load_spec", "parse_spec"]

SPREADS = ("strength", "fatigability", "rheobase")
"""Factors a group may spread: ``strength`` and ``fatigability`` as in
``VirtualPatient.personalise``; ``rheobase`` multiplies every muscle's nerve rheobase (the
current a long pulse needs to excite the first axons)."""

MAX_DURATION = 24 * 3600.0
"""Longest simulated time of one run, s."""
MAX_SFREQ = 10_000.0
"""Highest output rate of a cohort run, Hz (the metrics need no more)."""
MAX_RUNS = 10_000_000
"""Most runs (programs x patients) of one spec."""
MAX_SPREAD = 1.0
"""Largest coefficient of variation of a spread (100 %)."""


@dataclasses.dataclass(frozen=True)
class ProgramEntry:
    """One program of the sweep: its label in the table and where it came from."""

    label: str
    source: str
    program: Any  # opennmes.stim.Program (kept Any: pickled to the workers as it is)


@dataclasses.dataclass(frozen=True)
class PatientGroup:
    """``n`` patients from ``preset``, each factor of ``spread`` lognormal with median 1 and
    the given coefficient of variation."""

    label: str
    preset: str
    n: int
    spread: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class PatientDraw:
    """One virtual patient of the cohort: a preset and its drawn factors."""

    patient: str
    group: str
    preset: str
    strength: float = 1.0
    fatigability: float = 1.0
    rheobase: float = 1.0

    def make(self, *, isometric: bool) -> Any:
        """The :class:`~opennmes.physiology.VirtualPatient` (every joint held when
        ``isometric``)."""
        from opennmes.physiology import get_preset

        pat = get_preset(self.preset).personalise(
            strength=self.strength, fatigability=self.fatigability, name=self.patient)
        if self.rheobase != 1.0:
            muscles = tuple(dataclasses.replace(
                m, nerve=dataclasses.replace(m.nerve, rheobase=m.nerve.rheobase * self.rheobase))
                for m in pat.muscles)
            pat = dataclasses.replace(pat, muscles=muscles)
        return pat.isometric() if isometric else pat


@dataclasses.dataclass(frozen=True)
class CohortSpec:
    """A sweep of programs x patients (see ``docs/cohort.md``)."""

    name: str
    programs: tuple[ProgramEntry, ...]
    groups: tuple[PatientGroup, ...]
    duration: float
    sfreq: float = 100.0
    seed: int = 0
    metrics: tuple[str, ...] = ("peak_force", "force_time_integral", "fatigue_index",
                                "a_end_ratio")
    isometric: bool = True
    batch: int = 200

    def __post_init__(self) -> None:
        from opennmes.cohort._metrics import METRICS

        if not self.programs:
            raise ModelError("cohort spec: programs is empty; name at least one program")
        if not self.groups:
            raise ModelError("cohort spec: patients is empty; name at least one group")
        if not (math.isfinite(self.duration) and 0 < self.duration <= MAX_DURATION):
            raise ModelError(f"cohort spec: duration = {self.duration:g} s must be above 0 and "
                             f"at most {MAX_DURATION / 3600:g} h")
        if not (math.isfinite(self.sfreq) and 0 < self.sfreq <= MAX_SFREQ):
            raise ModelError(f"cohort spec: sfreq = {self.sfreq:g} Hz must be above 0 and at "
                             f"most {MAX_SFREQ:g} Hz")
        if not (isinstance(self.batch, int) and 1 <= self.batch <= 100_000):
            raise ModelError(f"cohort spec: batch = {self.batch!r} patients per task must be a "
                             "whole number from 1 to 100000")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ModelError(f"cohort spec: seed = {self.seed!r} must be a whole number >= 0")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise ModelError(f"cohort spec: metrics {unknown or '[]'}: unknown or none; "
                             f"metrics: {sorted(METRICS)}")
        for kind, labels in (("program", [p.label for p in self.programs]),
                             ("patient group", [g.label for g in self.groups])):
            dup = sorted({x for x in labels if labels.count(x) > 1})
            if dup:
                raise ModelError(f"cohort spec: {kind} label {dup[0]!r} is used twice; give "
                                 "each a distinct 'name'")
        if self.n_runs > MAX_RUNS:
            raise ModelError(f"cohort spec: {self.n_runs} runs (programs x patients) is above "
                             f"the limit of {MAX_RUNS}")

    @property
    def n_patients(self) -> int:
        return sum(g.n for g in self.groups)

    @property
    def n_runs(self) -> int:
        return self.n_patients * len(self.programs)

    def patients(self) -> list[PatientDraw]:
        """Every patient with its factors, in a fixed order (group by group). Group ``g``
        draws from ``numpy.random.default_rng([seed, g])``, one row of factors per patient in
        the order of :data:`SPREADS`, whatever the group spreads."""
        out: list[PatientDraw] = []
        width = max(4, len(str(max(g.n for g in self.groups) - 1)))
        for gi, g in enumerate(self.groups):
            rng = np.random.default_rng([self.seed, gi])
            z = rng.standard_normal((g.n, len(SPREADS)))
            factors = np.ones((g.n, len(SPREADS)))
            for j, name in enumerate(SPREADS):
                cv = float(g.spread.get(name, 0.0))
                if cv > 0:
                    sigma = math.sqrt(math.log1p(cv * cv))
                    factors[:, j] = np.exp(sigma * z[:, j])
            for i in range(g.n):
                out.append(PatientDraw(f"{g.label}-{i:0{width}d}", g.label, g.preset,
                                       *(float(v) for v in factors[i])))
        return out


# ------------------------------------------------------------------------------------ parsing
def _number(value: Any, where: str, dimension: str | None = None) -> float:
    if isinstance(value, bool):
        raise ModelError(f"cohort spec: {where} = {value!r} is not a number")
    if dimension is not None and isinstance(value, str):
        return parse_quantity(value, dimension, name=f"cohort spec: {where}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ModelError(f"cohort spec: {where} = {value!r} is not a number") from None


def _whole(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ModelError(f"cohort spec: {where} = {value!r} must be a whole number >= {low}")
    return value


def _program(item: Any, i: int, base: Path) -> ProgramEntry:
    from opennmes.stim import load_program

    where = f"programs[{i}]"
    if isinstance(item, str):
        item = {"file": item}
    if not isinstance(item, Mapping) or len({"file", "protocol"} & set(item)) != 1:
        raise ModelError(f"cohort spec: {where} = {item!r}: give a program file path, "
                         "{file: PATH} or {protocol: ID}")
    extra = set(item) - {"file", "protocol", "name"}
    if extra:
        raise ModelError(f"cohort spec: {where}: unknown key {sorted(extra)[0]!r}; keys: "
                         "file or protocol, name")
    if "protocol" in item:
        from opennmes.therapy import get_protocol

        pid = str(item["protocol"])
        return ProgramEntry(str(item.get("name", pid)), f"protocol:{pid}",
                            get_protocol(pid).program)
    path = Path(str(item["file"]))
    if not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise ModelError(f"cohort spec: {where}: program file {path} does not exist")
    return ProgramEntry(str(item.get("name", path.stem)), str(path), load_program(path))


def _group(item: Any, i: int) -> PatientGroup:
    from opennmes.physiology import PRESETS

    where = f"patients[{i}]"
    if not isinstance(item, Mapping) or "preset" not in item:
        raise ModelError(f"cohort spec: {where} = {item!r}: give {{preset: NAME, n: COUNT, "
                         "spread: {...}}")
    extra = set(item) - {"preset", "n", "spread", "name"}
    if extra:
        raise ModelError(f"cohort spec: {where}: unknown key {sorted(extra)[0]!r}; keys: "
                         "preset, n, spread, name")
    preset = str(item["preset"])
    if preset not in PRESETS:
        raise ModelError(f"cohort spec: {where}.preset = {preset!r} is unknown; presets: "
                         f"{sorted(PRESETS)}")
    n = _whole(item.get("n", 1), f"{where}.n", 1)
    spread_in = item.get("spread") or {}
    if not isinstance(spread_in, Mapping):
        raise ModelError(f"cohort spec: {where}.spread must map factor names to coefficients "
                         f"of variation, e.g. {{strength: 20 %}}; factors: {list(SPREADS)}")
    spread: dict[str, float] = {}
    for k, v in spread_in.items():
        if k not in SPREADS:
            raise ModelError(f"cohort spec: {where}.spread.{k}: unknown factor; factors: "
                             f"{list(SPREADS)}")
        cv = _number(v, f"{where}.spread.{k}", "ratio")
        if not (math.isfinite(cv) and 0 <= cv <= MAX_SPREAD):
            raise ModelError(f"cohort spec: {where}.spread.{k} = {100 * cv:g} % must be from "
                             f"0 to {100 * MAX_SPREAD:g} % (coefficient of variation)")
        spread[k] = cv
    return PatientGroup(str(item.get("name", preset)), preset, n, spread)


_KEYS = {"name", "programs", "patients", "duration", "sfreq", "seed", "metrics", "isometric",
         "batch"}


def parse_spec(data: Mapping[str, Any], base: str | Path = ".") -> CohortSpec:
    """A :class:`CohortSpec` from a mapping (the YAML document); program paths are relative to
    ``base``. Durations and rates may carry units (``"60 s"``, ``"100 Hz"``); spreads are
    fractions or percentages (``0.2``, ``"20 %"``)."""
    if not isinstance(data, Mapping):
        raise ModelError("cohort spec: the document must be a mapping of name: value")
    extra = set(data) - _KEYS
    if extra:
        raise ModelError(f"cohort spec: unknown key {sorted(extra)[0]!r}; keys: {sorted(_KEYS)}")
    for key in ("programs", "patients", "duration"):
        if key not in data:
            raise ModelError(f"cohort spec: {key!r} is missing")
    programs, groups = data["programs"], data["patients"]
    for key, val in (("programs", programs), ("patients", groups)):
        if not isinstance(val, Sequence) or isinstance(val, str):
            raise ModelError(f"cohort spec: {key} must be a list")
    metrics = data.get("metrics", CohortSpec.metrics)
    if isinstance(metrics, str) or not isinstance(metrics, Sequence):
        raise ModelError("cohort spec: metrics must be a list of metric names")
    isometric = data.get("isometric", True)
    if not isinstance(isometric, bool):
        raise ModelError(f"cohort spec: isometric = {isometric!r} must be true or false")
    base = Path(base)
    return CohortSpec(
        name=str(data.get("name", "cohort")),
        programs=tuple(_program(p, i, base) for i, p in enumerate(programs)),
        groups=tuple(_group(g, i) for i, g in enumerate(groups)),
        duration=_number(data["duration"], "duration", "time"),
        sfreq=_number(data.get("sfreq", 100.0), "sfreq", "frequency"),
        seed=_whole(data.get("seed", 0), "seed", 0),
        metrics=tuple(str(m) for m in metrics),
        isometric=isometric,
        batch=_whole(data.get("batch", 200), "batch", 1),
    )


def load_spec(path: str | Path) -> CohortSpec:
    """Read a cohort spec (YAML or JSON); program files are found relative to it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such cohort spec")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelError(f"{path}: cannot read the cohort spec: {exc}") from exc
    return parse_spec(data, path.parent)
