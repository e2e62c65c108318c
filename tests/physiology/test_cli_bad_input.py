"""Bad traces and pulse files given to ``nmes identify`` and ``nmes simulate``: one
``error:`` line naming the file, line, column and problem, exit status 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli_errors import one_error_line
from tests.conftest import EXAMPLES, run_nmes


def _trace(path: Path, bad_row: int | None = None, cell: str = "") -> Path:
    t = np.arange(200) / 100
    rows = [f"{x:.2f},{np.sin(x):.4f}" for x in t]
    if bad_row is not None:
        rows[bad_row] = f"{t[bad_row]:.2f},{cell}"
    path.write_text("t,force\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("cell, says", [("strong", "'strong' is not a number"),
                                        ("inf", "'inf' is not a finite number"),
                                        ("", "the cell is empty")])
def test_identify_bad_trace(tmp_path: Path, cell: str, says: str) -> None:
    trace = _trace(tmp_path / "force.csv", 20, cell)
    pulses = tmp_path / "pulses.txt"
    pulses.write_text("0\n0.05\n0.1\n")
    out = tmp_path / "fit.json"
    r = run_nmes("identify", str(trace), "--pulses", str(pulses), "--out", str(out))
    one_error_line(r, trace, "line 22, column 'force'", says)
    assert not out.exists()


def test_identify_trace_whose_time_repeats(tmp_path: Path) -> None:
    trace = tmp_path / "force.csv"
    trace.write_text("time,force\n0,0\n0.01,1\n0.01,2\n0.03,3\n")
    pulses = tmp_path / "pulses.txt"
    pulses.write_text("0\n")
    r = run_nmes("identify", str(trace), "--pulses", str(pulses))
    one_error_line(r, trace, "line 4, column 'time': time 0.01 repeats")


@pytest.mark.parametrize("text, says", [("0\n0.05\nnan\n", "item 3 = nan is not a finite"),
                                        ("0\n0.05\n0.02\n", "item 3 = 0.02 s is before item 2"),
                                        ("0\nsoon\n", "line 2: 'soon' is not a number")])
def test_identify_bad_pulse_times(tmp_path: Path, text: str, says: str) -> None:
    trace = _trace(tmp_path / "force.csv")
    pulses = tmp_path / "pulses.txt"
    pulses.write_text(text)
    one_error_line(run_nmes("identify", str(trace), "--pulses", str(pulses)), pulses, says)


def test_simulate_train_pulse_times_going_back(tmp_path: Path) -> None:
    times = tmp_path / "times.txt"
    times.write_text("0\n0.1\n0.05\n")
    out = tmp_path / "f.csv"
    r = run_nmes("simulate", "train", "--model", "ding2003", "--pulse-times", str(times),
                 "--t-end", "0.2", "--sfreq", "100", "--out", str(out))
    one_error_line(r, times, "item 3 = 0.05 s is before item 2")
    r = run_nmes("simulate", "train", "--model", "ding2003", "--pulse-times", "0,0.1,0.05",
                 "--t-end", "0.2", "--sfreq", "100", "--out", str(out))
    one_error_line(r, "pulse_times[2] = 0.05 s is earlier than pulse_times[1] = 0.1 s")
    assert not out.exists()


def test_simulate_bad_pulse_schedule(tmp_path: Path) -> None:
    r = run_nmes("program", "expand", str(EXAMPLES / "programs" / "quadriceps.yaml"),
                 "--out", str(tmp_path / "p.csv"))
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "p.csv").read_text().splitlines()
    cols = lines[0].split(",")
    row = lines[3].split(",")
    row[cols.index("amplitude")] = "lots"
    lines[3] = ",".join(row)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:50]) + "\n")
    out = tmp_path / "sim.csv"
    r = run_nmes("simulate", str(bad), "--patient", "healthy-adult", "--out", str(out))
    one_error_line(r, bad, "line 4, column 'amplitude': 'lots' is not a number")
    assert not out.exists()
