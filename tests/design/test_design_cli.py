"""``nmes design train``: the contract's files, people's units, one error line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..cli_errors import one_error_line
from ..conftest import run_nmes


def test_design_train_writes_the_pulses(tmp_path: Path) -> None:
    target = tmp_path / "target.csv"
    target.write_text("t,force\n0,0\n0.1,0\n0.3,150\n0.6,150\n0.8,0\n0.9,0\n")
    out = tmp_path / "pulses.csv"
    sched = tmp_path / "schedule.csv"
    r = run_nmes("design", "train", "--model", "ding2003", "--target", str(target),
                 "--out", str(out), "--schedule", str(sched))
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out)
    assert list(df.columns) == ["t"] and len(df) >= 3
    assert "ms" in r.stdout and "mA" in r.stdout and " N " in r.stdout
    full = pd.read_csv(sched)
    assert (full["t"].to_numpy() == df["t"].to_numpy()).all()
    sim = tmp_path / "sim.csv"
    r2 = run_nmes("simulate", str(sched), "--patient", "healthy-adult", "--out", str(sim))
    assert r2.returncode == 0, r2.stderr


def test_bad_target_is_one_error_line(tmp_path: Path) -> None:
    target = tmp_path / "target.csv"
    target.write_text("t,force\n0,0\n0.1,abc\n")
    r = run_nmes("design", "train", "--model", "ding2003", "--target", str(target),
                 "--out", str(tmp_path / "p.csv"))
    one_error_line(r, "force row 2", "abc")
    r = run_nmes("design", "train", "--model", "ding1999", "--target", str(target),
                 "--out", str(tmp_path / "p.csv"))
    one_error_line(r, "ding1999", "ding2003")


def test_design_for_a_patient_preset(tmp_path: Path) -> None:
    """--patient designs for the preset muscle's force model (post-surgery quadriceps: A is
    60 % of the published value), so the train differs from the published model's."""
    target = tmp_path / "target.csv"
    target.write_text("t,force\n0,0\n0.05,0\n0.2,100\n0.35,100\n0.45,0\n0.5,0\n")
    outs = []
    for extra in ((), ("--patient", "post-surgery")):
        out = tmp_path / f"pulses{len(extra)}.csv"
        r = run_nmes("design", "train", "--model", "ding2003", "--target", str(target),
                     "--out", str(out), *extra)
        assert r.returncode == 0, r.stderr
        outs.append(pd.read_csv(out)["t"].to_numpy())
    assert "the quadriceps of patient 'post-surgery' (A 1805 N/s" in r.stdout
    assert len(outs[1]) > len(outs[0])  # a weaker muscle needs more pulses for 100 N


def test_patient_errors_are_one_line(tmp_path: Path) -> None:
    target = tmp_path / "target.csv"
    target.write_text("t,force\n0,0\n0.3,100\n0.6,0\n")
    base = ("design", "train", "--target", str(target), "--out", str(tmp_path / "p.csv"))
    one_error_line(run_nmes(*base, "--model", "ding2007", "--patient", "stroke"),
                   "ding2003 model", "--model ding2003")
    one_error_line(run_nmes(*base, "--model", "ding2003", "--patient", "nobody"),
                   "nobody", "presets")
    one_error_line(run_nmes(*base, "--model", "ding2003", "--patient", "icu", "--muscle",
                            "heart"), "heart", "muscles")
