"""The cohort spec: parsing, limits and the seeded draws of the patients."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from opennmes.cohort import CohortSpec, build_tasks, load_spec, parse_spec
from opennmes.errors import ModelError, NmesError

from .conftest import QUADS


def _doc(**over: object) -> dict:
    doc: dict = {"duration": "60 s", "programs": [str(QUADS)],
                 "patients": [{"preset": "stroke", "n": 10, "spread": {"strength": "20 %"}}]}
    doc.update(over)
    return doc


def test_spec_file_reads_units_and_relative_paths(spec_file: Path, tmp_path: Path) -> None:
    spec = load_spec(spec_file)
    assert spec.duration == 30.0 and spec.sfreq == 100.0 and spec.seed == 11
    assert [p.label for p in spec.programs] == ["quadriceps", "total-knee-arthroplasty"]
    assert spec.n_patients == 7 and spec.n_runs == 14
    assert spec.groups[0].spread == pytest.approx(
        {"strength": 0.2, "fatigability": 0.3, "rheobase": 0.1})
    # a relative program path is read next to the spec
    (tmp_path / "progs").mkdir()
    (tmp_path / "progs" / "q.yaml").write_text(QUADS.read_text())
    (tmp_path / "s.yaml").write_text("duration: 10 s\nprograms: [progs/q.yaml]\n"
                                     "patients: [{preset: icu}]\n")
    s = load_spec(tmp_path / "s.yaml")
    assert s.programs[0].label == "q" and s.n_patients == 1
    assert s.metrics == CohortSpec.metrics and s.isometric and s.batch == 200


def test_draws_are_seeded_lognormal_with_the_given_spread() -> None:
    doc = _doc(patients=[{"preset": "stroke", "n": 4000,
                          "spread": {"strength": "20 %", "rheobase": 0.5}}], seed=5)
    a = parse_spec(doc).patients()
    b = parse_spec(doc).patients()
    assert a == b
    c = parse_spec({**doc, "seed": 6}).patients()
    assert [p.strength for p in a] != [p.strength for p in c]
    s = np.array([p.strength for p in a])
    r = np.array([p.rheobase for p in a])
    assert np.median(s) == pytest.approx(1.0, abs=0.02)
    assert np.std(s) / np.mean(s) == pytest.approx(0.2, rel=0.06)
    assert np.std(r) / np.mean(r) == pytest.approx(0.5, rel=0.08)
    assert {p.fatigability for p in a} == {1.0}  # not spread
    assert a[0].patient == "stroke-0000" and a[-1].patient == "stroke-3999"


def test_draws_do_not_depend_on_the_batch() -> None:
    rows = {}
    for batch in (1, 3, 200):
        tasks = build_tasks(parse_spec(_doc(batch=batch)))
        rows[batch] = [p for t in tasks for p in t.patients]
        assert max(len(t.patients) for t in tasks) == min(batch, 10)
    assert rows[1] == rows[3] == rows[200]


def test_patients_are_made_from_the_draw() -> None:
    spec = parse_spec(_doc(patients=[{"preset": "post-surgery", "n": 3, "spread": {
        "strength": 0.3, "fatigability": 0.3, "rheobase": 0.3}}]))
    d = spec.patients()[1]
    from opennmes.physiology import get_preset

    base = get_preset("post-surgery")
    pat = d.make(isometric=True)
    for m0, m1 in zip(base.muscles, pat.muscles, strict=True):
        assert m1.force_model.a_rest == pytest.approx(m0.force_model.a_rest * d.strength)
        assert m1.force_model.alpha_a == pytest.approx(m0.force_model.alpha_a * d.fatigability)
        assert m1.nerve.rheobase == pytest.approx(m0.nerve.rheobase * d.rheobase)
    assert all(j.fixed for j in pat.joints)
    assert not any(j.fixed for j in d.make(isometric=False).joints)


@pytest.mark.parametrize(("over", "words"), [
    ({"duration": "0 s"}, "duration = 0 s"),
    ({"duration": "2 mA"}, "duration"),
    ({"sfreq": "20 kHz"}, "sfreq = 20000 Hz"),
    ({"metrics": ["peak_force", "bogus"]}, "'bogus'"),
    ({"batch": 0}, "batch = 0"),
    ({"seed": -1}, "seed = -1"),
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"programs": []}, "programs is empty"),
    ({"programs": ["/no/such/program.yaml"]}, "does not exist"),
    ({"programs": [{"protocol": "no-such-protocol"}]}, "no-such-protocol"),
    ({"programs": [str(QUADS), str(QUADS)]}, "label 'quadriceps' is used twice"),
    ({"patients": [{"preset": "giant"}]}, "preset = 'giant' is unknown"),
    ({"patients": [{"preset": "icu", "n": 0}]}, "patients[0].n = 0"),
    ({"patients": [{"preset": "icu", "spread": {"height": 0.1}}]}, "unknown factor"),
    ({"patients": [{"preset": "icu", "spread": {"strength": "150 %"}}]}, "150 %"),
    ({"patients": [{"preset": "icu", "n": 10_000_001}]}, "above the limit"),
    ({"isometric": "yes"}, "isometric"),
])
def test_bad_specs_name_the_value(over: dict, words: str) -> None:
    with pytest.raises(NmesError) as exc:
        parse_spec(_doc(**over))
    assert words in str(exc.value), str(exc.value)


def test_missing_key_and_bad_file(tmp_path: Path) -> None:
    doc = _doc()
    del doc["duration"]
    with pytest.raises(ModelError, match="'duration' is missing"):
        parse_spec(doc)
    bad = tmp_path / "bad.yaml"
    bad.write_text("programs: [a\n")
    with pytest.raises(ModelError, match="cannot read the cohort spec"):
        load_spec(bad)
    with pytest.raises(ModelError, match="no such cohort spec"):
        load_spec(tmp_path / "none.yaml")
    assert math.isfinite(parse_spec(_doc()).duration)


def test_the_documented_spec_reads() -> None:
    """The spec in docs/cohort.md is valid (paths relative to docs/)."""
    import re

    import yaml

    from ..conftest import REPO

    text = (REPO / "docs" / "cohort.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block is not None
    spec = parse_spec(yaml.safe_load(block.group(1)), REPO / "docs")
    assert [p.label for p in spec.programs] == ["quadriceps", "total-knee-arthroplasty",
                                                "russian-current"]
    assert [g.label for g in spec.groups] == ["post-surgery", "stroke-weak"]
    assert spec.n_runs == 3 * 700 and len(build_tasks(spec)) == 3 * 4
