"""``nmes cohort run`` and ``nmes cohort plot`` as a user runs them (in-process)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from opennmes.cohort import load_spec

from ..conftest import run_nmes


def test_run_on_a_scheduler_address_then_plot(spec_file: Path, tmp_path: Path,
                                              remote_scheduler: str) -> None:
    out = tmp_path / "res" / "results.parquet"
    r = run_nmes("cohort", "run", str(spec_file), "--out", str(out), "--scheduler",
                 remote_scheduler, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "2 program(s) x 7 patients = 14 runs of 30 s on tcp://127.0.0.1:" in r.stdout
    df = pd.read_parquet(out)
    assert len(df) == 14 and set(df.program) == {"quadriceps", "total-knee-arthroplasty"}
    spec = load_spec(spec_file)
    assert list(df.columns)[-len(spec.metrics):] == list(spec.metrics)
    # the summary line in the units a person reads
    line = next(ln for ln in r.stdout.splitlines()
                if ln.startswith("quadriceps / post-surgery / quadriceps (n=5)"))
    q = df[(df.program == "quadriceps") & (df.group == "post-surgery")]
    assert f"peak force (N) {q.peak_force.median():.3g} (" in line
    assert "fatigue index (%)" in line and "force scale A at the end (% of rest)" in line
    assert "6/6" in r.stderr  # the progress bar: tasks done of total
    fig = tmp_path / "fig.png"
    r = run_nmes("cohort", "plot", str(out), "--out", str(fig), "--metric", "peak_force",
                 "--metric", "a_end_ratio")
    assert r.returncode == 0, r.stderr
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "14 rows" in r.stdout


def test_run_on_a_local_cluster_to_csv_with_a_plot(spec_file: Path, tmp_path: Path) -> None:
    out, fig = tmp_path / "r.csv", tmp_path / "r.png"
    r = run_nmes("cohort", "run", str(spec_file), "--out", str(out), "--workers", "1",
                 "--plot", str(fig), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "on a local cluster of 1 worker(s)" in r.stdout
    assert len(pd.read_csv(out)) == 14 and fig.stat().st_size > 1000


@pytest.mark.parametrize(("args", "words"), [
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
    (["--out", "x.txt"], "--out"),
])
def test_bad_options_are_one_error_line(spec_file: Path, tmp_path: Path, args: list[str],
                                        words: str) -> None:
    base = ["cohort", "run", str(spec_file)]
    if "--out" not in args:
        base += ["--out", str(tmp_path / "r.parquet")]
    r = run_nmes(*base, *args, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_bad_spec_and_bad_table_are_one_error_line(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("duration: 60 s\nprograms: []\npatients: [{preset: icu}]\n")
    r = run_nmes("cohort", "run", str(spec), "--out", str(tmp_path / "r.parquet"))
    assert r.returncode == 2 and "programs is empty" in r.stderr
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    r = run_nmes("cohort", "plot", str(bad), "--out", str(tmp_path / "f.png"))
    assert r.returncode == 2 and "cannot read the results table" in r.stderr
    r = run_nmes("cohort", "plot", str(tmp_path / "none.parquet"), "--out",
                 str(tmp_path / "f.png"))
    assert r.returncode == 2 and "no such results table" in r.stderr
