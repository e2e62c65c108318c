"""Bad CSV input: ``check_csv`` names the file, line, column and problem, and the sensing
commands (``nmes emg process``, ``nmes gait events``, ``nmes assess``) turn it into one
``error:`` line with exit status 2 instead of a traceback or a summary full of NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opennmes.errors import SignalError
from opennmes.sensing import check_csv, read_csv, read_signals
from tests.cli_errors import one_error_line
from tests.conftest import run_nmes

HEADER = "t [s],EMG_1 [uV],Gyr_Z [rad/s]"


def _table(rows: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def _good_rows(n: int = 400) -> list[str]:
    rng = np.random.default_rng(0)
    return [f"{k / 1000:.3f},{rng.normal(0, 50):.3f},{np.sin(k / 50):.4f}" for k in range(n)]


def _bad(kind: str) -> tuple[str, str]:
    """(file text, what the error must say) of one kind of bad table."""
    rows = _good_rows()
    if kind == "empty file":
        return "", "the file is empty"
    if kind == "header only":
        return HEADER + "\n", "no data rows under the header"
    if kind == "text in a number column":
        rows[5] = "0.005,abc,0.1"
        return _table(rows), "line 7, column 'EMG_1 [uV]': 'abc' is not a number"
    if kind == "nan":
        rows[9] = "0.009,nan,0.1"
        return _table(rows), "line 11, column 'EMG_1 [uV]': 'nan' is not a finite number"
    if kind == "inf":
        rows[3] = "0.003,1.0,-inf"
        return _table(rows), "line 5, column 'Gyr_Z [rad/s]': '-inf' is not a finite number"
    if kind == "empty cell":
        rows[2] = "0.002,,0.1"
        return _table(rows), "line 4, column 'EMG_1 [uV]': the cell is empty"
    if kind == "duplicate time":
        rows[4] = "0.003,1.0,0.1"
        return _table(rows), "line 6, column 't [s]': time 0.003 repeats the time"
    if kind == "time goes back":
        rows[4] = "0.001,1.0,0.1"
        return _table(rows), "line 6, column 't [s]': time 0.001 goes back from 0.003"
    if kind == "ragged row":
        rows[4] = "0.004,1.0,0.1,7,8"
        return _table(rows), "not a CSV table"
    raise AssertionError(kind)


KINDS = ["empty file", "header only", "text in a number column", "nan", "inf", "empty cell",
         "duplicate time", "time goes back", "ragged row"]


@pytest.mark.parametrize("kind", KINDS)
def test_check_csv_names_file_line_column_and_problem(tmp_path: Path, kind: str) -> None:
    text, says = _bad(kind)
    f = tmp_path / "rec.csv"
    f.write_text(text)
    with pytest.raises(SignalError) as err:
        check_csv(f)
    msg = str(err.value)
    assert msg.startswith(f"{f}: ") and says in msg and "\n" not in msg, msg


def test_check_csv_counts_comment_lines_and_passes_good_tables(tmp_path: Path) -> None:
    rows = _good_rows(50)
    f = tmp_path / "ok.csv"
    f.write_text("# recorded on the bench\n\n" + _table(rows))
    assert check_csv(f) == ["t [s]", "EMG_1 [uV]", "Gyr_Z [rad/s]"]
    assert read_csv(f).n_samples == 50
    rows[10] = "0.010,x,0"
    f.write_text("# recorded on the bench\n\n" + _table(rows))
    with pytest.raises(SignalError, match="line 14, column 'EMG_1 \\[uV\\]': 'x'"):
        check_csv(f)


def test_check_csv_text_columns_and_equal_times(tmp_path: Path) -> None:
    """A pulse table: names in ``channel``; pulses of two channels may share a time."""
    f = tmp_path / "pulses.csv"
    f.write_text("t,channel,amplitude\n0.0,quad_l,0.02\n0.0,quad_r,0.02\n0.025,quad_l,0.02\n")
    check_csv(f, text_columns=("channel",), increasing="non-decreasing")
    with pytest.raises(SignalError, match="repeats the time"):
        check_csv(f, text_columns=("channel",))
    with pytest.raises(SignalError, match="column 'channel': 'quad_l' is not a number"):
        check_csv(f, increasing="non-decreasing")


@pytest.mark.parametrize("kind", KINDS)
def test_emg_process_bad_csv_is_one_line(tmp_path: Path, kind: str) -> None:
    text, says = _bad(kind)
    f = tmp_path / "rec.csv"
    f.write_text(text)
    out = tmp_path / "out"
    r = run_nmes("emg", "process", str(f), "--out", str(out))
    one_error_line(r, f, says)
    assert "nan" not in r.stdout
    assert not (out / "summary.json").exists()


@pytest.mark.parametrize("kind", ["text in a number column", "nan", "duplicate time"])
def test_gait_events_and_assess_bad_csv_is_one_line(tmp_path: Path, kind: str) -> None:
    text, says = _bad(kind)
    f = tmp_path / "walk.csv"
    f.write_text(text)
    one_error_line(run_nmes("gait", "events", str(f)), f, says)
    good = tmp_path / "good.csv"
    good.write_text(_table(_good_rows()))
    one_error_line(run_nmes("assess", str(good), str(f), "--rest", "0 s,0.1 s"), f, says)


def test_emg_process_bad_pulse_file_is_one_line(tmp_path: Path) -> None:
    rec = tmp_path / "rec.csv"
    rec.write_text(_table(_good_rows()))
    pulses = tmp_path / "pulses.csv"
    pulses.write_text("t,channel,amplitude,phase_width,interphase_gap,amplitude2,"
                      "phase_width2,waveform\n0.01,ch1,0.02,0.0003,0.0001,0.02,0.0003,"
                      "symmetric-biphasic\n0.005,ch1,nan,0.0003,0.0001,0.02,0.0003,"
                      "symmetric-biphasic\n")
    r = run_nmes("emg", "process", str(rec), "--pulses", str(pulses))
    one_error_line(r, pulses, "line 3, column 'amplitude': 'nan' is not a finite number")


BITALINO_HEAD = "# OpenSignals Text File Format\n# Sampling Rate (Hz):= 1000.00\n# Labels:= EMG\n"


@pytest.mark.parametrize("body, says", [
    ("1\n2\nabc\n", "could not convert string 'abc'"),
    ("", "input contained no data"),
    ("1\nnan\n3\n", "channel 'EMG', sample 2: nan is not a finite number"),
])
def test_bad_text_recording_is_one_line(tmp_path: Path, body: str, says: str) -> None:
    """The BITalino/Xsens text readers: a bad value is one line too (it was a traceback)."""
    f = tmp_path / "rec.txt"
    f.write_text(BITALINO_HEAD + body)
    with pytest.raises(SignalError, match=f"^{f}: "):
        read_signals(f)
    one_error_line(run_nmes("emg", "process", str(f)), f, says)
