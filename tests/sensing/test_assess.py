"""Biofeedback assessment: published formulas and a real recording with a known deficit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from opennmes.errors import SignalError
from opennmes.sensing import (
    assess,
    cocontraction_index,
    envelope,
    fatigue_trend,
    median_frequency,
    symmetry_index,
)
from opennmes.signals import Signals


def test_symmetry_index_robinson() -> None:
    """Robinson et al. 1987: SI = (L - R) / (0.5 (L + R)) x 100; L = 100, R = 50 -> 66.7 %."""
    assert symmetry_index(100.0, 50.0) == pytest.approx(200 / 3)
    assert symmetry_index(50.0, 100.0) == pytest.approx(-200 / 3)
    assert symmetry_index(3.0, 3.0) == 0.0
    with pytest.raises(SignalError, match="not both zero"):
        symmetry_index(0.0, 0.0)


def test_cocontraction_index_falconer_winter() -> None:
    """CCI = 2 sum(min) / sum(e1 + e2) x 100: identical envelopes 100 %, disjoint bursts 0 %,
    a half-size copy 2 * 0.5 / 1.5 = 66.7 %."""
    fs = 100.0
    a = np.r_[np.ones(50), np.zeros(50)]
    b = np.r_[np.zeros(50), np.ones(50)]
    env = Signals(np.vstack([a, b, a, 0.5 * a]), fs, ("ag", "an", "same", "half"),
                  ("V",) * 4)
    assert cocontraction_index(env, "ag", "same") == pytest.approx(100.0)
    assert cocontraction_index(env, "ag", "an") == pytest.approx(0.0)
    assert cocontraction_index(env, "ag", "half") == pytest.approx(200 / 3)


def test_median_frequency_and_fatigue() -> None:
    """Noise shaped to a flat 20-200 Hz band has MDF ~110 Hz; a band sliding down from
    40-200 to 20-120 Hz over 20 s gives a falling MDF (fatigue)."""
    from scipy import signal as sps

    fs = 1000.0
    rng = np.random.default_rng(1)
    n = int(20 * fs)
    flat = sps.sosfilt(sps.butter(8, [20, 200], "bandpass", fs=fs, output="sos"),
                       rng.standard_normal(n))
    mdf = median_frequency(Signals(flat[None, :], fs, ("m",), ("V",)), 1.0, 0.5)
    assert np.median(mdf["m"]) == pytest.approx(110, abs=8)
    parts = []
    for k in range(20):
        lo, hi = 40 - k, 200 - 4 * k
        sos = sps.butter(6, [lo, hi], "bandpass", fs=fs, output="sos")
        parts.append(sps.sosfilt(sos, rng.standard_normal(int(fs))))
    tired = Signals(np.concatenate(parts)[None, :], fs, ("m",), ("V",))
    trend = fatigue_trend(median_frequency(tired, 1.0, 0.5))["m"]
    assert trend["slope"] < -1.0
    assert trend["change"] < -20
    # a sustained isometric contraction of 20 s: the fall is judged as fatigue
    judged = assess({"hold": tired}, rest=(0.0, 0.3), kind="isometric")
    assert any(f.startswith("hold m: median frequency fell") and f.endswith(": fatigue")
               for f in judged.findings), judged.findings
    assert judged.fatigue[0]["judged"] is True


@pytest.mark.parametrize(("kind", "why"), [
    (None, "the recording's kind is not given"),
    ("dynamic", "a dynamic movement: the median frequency changes with force"),
    ("isometric", "5.8 s is shorter than the 20 s of sustained contraction"),
])
def test_a_box_lift_is_not_called_fatigue(delsys: Signals, kind: str | None, why: str) -> None:
    """The real 5.8 s box lift (Delsys, 11 muscles): its median frequencies do fall (by 13-62
    %), but a short dynamic recording cannot tell fatigue from force, length and electrode
    movement; the assessment says so once and claims no fatigue."""
    result = assess({"lift": delsys}, rest=(0.0, 0.3), kind=kind)
    assert not any(f.endswith(": fatigue") for f in result.findings), result.findings
    notes = [f for f in result.findings if "fatigue not judged" in f]
    assert len(notes) == 1 and why in notes[0]
    assert any(r["change"] < -10 for r in result.fatigue)  # the trend is still reported
    assert all(r["judged"] is False for r in result.fatigue)


def test_assess_finds_the_weak_side(delsys: Signals, tmp_path: Path) -> None:
    """Left = the real recording; right = the same with Delt_ant at half amplitude: the report
    names Delt_ant (right) deficient by 50 % (SI +66.7 %), and no other muscle."""
    left = delsys.pick(["Delt_ant", "Biceps", "Triceps", "Trap_inf"])
    data = np.array(left.data)
    data[0] *= 0.5
    right = Signals(data, left.sfreq, left.names, left.units)
    result = assess({"left": left, "right": right}, rest=(0.0, 0.3), sides=("left", "right"),
                    cocontraction=[("Biceps", "Triceps")],
                    reference={"Delt_ant": {"onset": 0.62}, "Biceps": {"onset": 0.0}})
    assert list(result.deficient) == ["Delt_ant (right)", "Biceps (left, timing)",
                                      "Biceps (right, timing)"]
    assert result.deficient["Delt_ant (right)"] == pytest.approx(50.0, abs=0.1)
    row = next(r for r in result.asymmetry if r["muscle"] == "Delt_ant")
    assert row["symmetry_index"] == pytest.approx(200 / 3, abs=0.1)
    assert any("Delt_ant: the right side is 50 % weaker" in f for f in result.findings)
    timing = {(r["recording"], r["muscle"]): r for r in result.timing}
    assert abs(timing[("left", "Delt_ant")]["onset_error"]) < 0.05
    assert timing[("left", "Biceps")]["onset_error"] == pytest.approx(0.34, abs=0.05)
    cci = result.cocontraction[0]["cci"]
    assert 0 < cci < 100
    files = result.write(tmp_path)
    names = {p.name for p in files}
    assert {"assessment.json", "report.md", "asymmetry.csv", "timing.csv", "envelopes.png",
            "asymmetry.png"} <= names
    js = json.loads((tmp_path / "assessment.json").read_text())
    assert js["deficient"]["Delt_ant (right)"] == pytest.approx(50.0, abs=0.1)


def test_assess_errors(delsys: Signals) -> None:
    a = delsys.pick(["Delt_ant"])
    b = delsys.pick(["Biceps"])
    with pytest.raises(SignalError, match="share no channel names"):
        assess({"l": a, "r": b}, rest=(0.0, 0.3), sides=("l", "r"))
    with pytest.raises(SignalError, match="MDF window 0.01 s"):
        median_frequency(a, 0.01, 0.01)


def test_envelope_helper_units(delsys: Signals) -> None:
    env = envelope(delsys.pick(["Biceps"]), envelope="rms", rms_window=0.1)
    assert env.units == ("V",)


def test_markdown_report(delsys: Signals) -> None:
    left = delsys.pick(["Delt_ant", "Biceps"])
    data = np.array(left.data)
    data[1] *= 0.7
    right = Signals(data, left.sfreq, left.names, left.units)
    md = assess({"left": left, "right": right}, rest=(0.0, 0.3),
                sides=("left", "right")).to_markdown()
    assert md.startswith("# EMG assessment\n\n## Deficient muscles\n\n- Biceps (right): 30 %")
    assert "| muscle | left | right | symmetry_index | weaker | deficit |" in md
