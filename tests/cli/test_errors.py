"""The ``nmes`` attack list: every bad path or value is one ``error:`` line and exit status 2,
never a traceback, and nothing is computed or written first.

Outputs follow one rule (docs/cli.md): a missing folder on the way to an output is created;
a path that cannot be written (a file where a folder should be, a folder where the file should
be) is refused before the command does its work.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opennmes.stim import load_program
from opennmes.store import Store, open_store

from ..cli_errors import one_error_line
from ..conftest import EXAMPLES, SHARED_DATA, run_nmes

QUAD = EXAMPLES / "programs" / "quadriceps.yaml"
EMG = SHARED_DATA / "emg" / "bitalino_forearm_1000hz.txt"
SHANK = SHARED_DATA / "gait" / "xsens_shank_walking_120hz.txt"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    """A database with patient P1 and one short finished session (id 1)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store: Store = open_store(url)
    store.add_patient("P1")
    prog = load_program(QUAD)
    version = store.save_program(prog.to_file_dict(), prog.name)
    with store.begin_session("P1", version.id, "sim://") as w:
        w.log_event("start", 0.0)
        w.log_event("stop", 1.0)
    store.close()
    yield url


# ---------------------------------------------------------------- outputs: missing folders
def test_simulate_out_into_a_new_folder_creates_it(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "sim.csv"
    r = run_nmes("simulate", str(QUAD), "--patient", "healthy-adult", "--t-end", "0.2",
                 "--sfreq", "100", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.is_file()


def test_simulate_train_out_into_a_new_folder_creates_it(tmp_path: Path) -> None:
    out = tmp_path / "new" / "f.csv"
    r = run_nmes("simulate", "train", "--model", "ding2003", "--pulse-times", "0,0.05",
                 "--t-end", "0.1", "--sfreq", "100", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.is_file()


def test_program_expand_and_plot_into_new_folders(tmp_path: Path) -> None:
    out = tmp_path / "a" / "pulses.csv"
    r = run_nmes("program", "expand", str(QUAD), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.is_file()
    png = tmp_path / "b" / "plot.png"
    r = run_nmes("program", "show", str(QUAD), "--plot", str(png), "--json")
    assert r.returncode == 0, r.stderr
    assert png.is_file()


def test_session_outputs_into_new_folders(tmp_path: Path, db: str) -> None:
    html = tmp_path / "r" / "s" / "report.html"
    r = run_nmes("sessions", "report", "1", "--db", db, "--out", str(html))
    assert r.returncode == 0, r.stderr
    assert html.is_file()
    for k, group in enumerate(("sessions", "db")):
        folder = tmp_path / f"exports{k}" / "one"
        r = run_nmes(group, "export", "1", str(folder), "--db", db)
        assert r.returncode == 0, r.stderr
        assert (folder / "session.json").is_file()


def test_emg_and_gait_out_folders_are_created(tmp_path: Path) -> None:
    out = tmp_path / "x" / "emg"
    r = run_nmes("emg", "process", str(EMG), "--channel", "EMG", "--no-plot", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "summary.json").is_file()


# ---------------------------------------------------------------- outputs: refused at once
def _blocker(tmp_path: Path) -> Path:
    """A plain file where a command would need a folder."""
    f = tmp_path / "blocker"
    f.write_text("not a folder")
    return f


@pytest.mark.parametrize("args", [
    ("simulate", str(QUAD), "--patient", "healthy-adult", "--t-end", "0.2", "--out", "{x}.csv"),
    ("simulate", str(QUAD), "--patient", "healthy-adult", "--t-end", "0.2", "--out",
     "{ok}.csv", "--plot", "{x}.png"),
    ("simulate", "train", "--model", "ding2003", "--pulse-times", "0,0.05", "--t-end", "0.1",
     "--sfreq", "100", "--out", "{x}.csv"),
    ("program", "expand", str(QUAD), "--out", "{x}.csv"),
    ("program", "show", str(QUAD), "--plot", "{x}.png"),
    ("protocols", "new-program", "acl-reconstruction", "--out", "{x}.yaml"),
    ("emg", "process", str(EMG), "--channel", "EMG", "--out", "{x}"),
    ("gait", "events", str(SHANK), "--out", "{x}"),
    ("assess", str(EMG), "--channel", "EMG", "--rest", "0 s,1 s", "--out", "{x}"),
    ("emulate", "p24", "--duration", "0.1", "--record", "{x}.csv"),
], ids=["simulate-out", "simulate-plot", "train", "expand", "show-plot", "new-program", "emg",
        "gait", "assess", "emulate-record"])
def test_an_output_under_a_file_is_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    bad = _blocker(tmp_path) / "sub" / "out"
    full = [a.replace("{x}", str(bad)).replace("{ok}", str(tmp_path / "ok")) for a in args]
    r = run_nmes(*full)
    one_error_line(r, tmp_path / "blocker")
    assert not (tmp_path / "ok.csv").exists()  # refused before the simulation ran


def test_session_outputs_under_a_file_are_one_line(tmp_path: Path, db: str) -> None:
    bad = _blocker(tmp_path) / "sub"
    for args in (("sessions", "report", "1", "--db", db, "--out", str(bad / "r.html")),
                 ("sessions", "export", "1", str(bad), "--db", db),
                 ("db", "export", "1", str(bad), "--db", db),
                 ("outcomes", "report", "P1", "--db", db, "--html", str(bad / "p.html")),
                 ("run", str(QUAD), "--device", "sim://", "--patient", "P1", "--db", db,
                  "--virtual", "--plain", "--report", str(bad / "r.html"))):
        one_error_line(run_nmes(*args), tmp_path / "blocker")
    with open_store(db) as store:
        assert store.info()["sessions"] == 1  # `run` refused before recording anything


def test_output_file_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    r = run_nmes("program", "expand", str(QUAD), "--out", str(tmp_path))
    one_error_line(r, tmp_path, "is a folder")


def test_unknown_output_type_is_refused_before_simulating(tmp_path: Path) -> None:
    out = tmp_path / "sim.xlsx"
    r = run_nmes("simulate", str(QUAD), "--patient", "healthy-adult", "--out", str(out))
    one_error_line(r, out, ".csv or .parquet")


def test_export_of_an_unknown_session_makes_no_folder(tmp_path: Path, db: str) -> None:
    folder = tmp_path / "never"
    one_error_line(run_nmes("sessions", "export", "99", str(folder), "--db", db),
                   "unknown session")
    assert not folder.exists()


# ---------------------------------------------------------------- device URL parameters
@pytest.mark.parametrize("query, says", [
    ("sfreq=-5", "sfreq = '-5' Hz is outside the allowed range 1 to 20000 Hz"),
    ("sfreq=1e9", "sfreq = '1e9' Hz is outside the allowed range 1 to 20000 Hz"),
    ("sfreq=fast", "sfreq = 'fast' is not a number"),
    ("sfreq=100&seed=-1", "seed = '-1' is outside the allowed range"),
    ("sfreq=100&emg=maybe", "emg = 'maybe' must be one of"),
    ("sfreq=100&speed=2", "unknown sim:// options ['speed']"),
])
def test_bad_sim_url_writes_nothing(db: str, query: str, says: str) -> None:
    url = f"sim://healthy-adult?{query}"
    r = run_nmes("run", str(QUAD), "--device", url, "--patient", "P1", "--db", db,
                 "--virtual", "--plain", "--titrate-to", "5")
    one_error_line(r, url, says)
    with open_store(db) as store:
        info = store.info()
        assert info["sessions"] == 1 and info["events"] == 2  # only the fixture's session


# ---------------------------------------------------------------- plain values
@pytest.mark.parametrize("args, says", [
    (("outcomes", "add", "P1", "tug", "12.4 s", "--date", "2026-13-01"),
     "--date '2026-13-01' is not a date: month must be in 1..12; write it as YYYY-MM-DD"),
    (("protocols", "prescribe", "P1", "acl-reconstruction", "--start", "yesterday"),
     "--start 'yesterday' is not a date"),
    (("protocols", "prescribe", "P1", "acl-reconstruction", "--reference", "3/4/2026"),
     "--reference '3/4/2026' is not a date"),
    (("run", str(QUAD), "--device", "sim://", "--patient", "P1", "--virtual", "--plain",
      "--titrate-to", "-3"), "--titrate-to -3.0 mA must be above 0"),
    (("run", str(QUAD), "--device", "sim://", "--patient", "P1", "--virtual", "--plain",
      "--titrate-to", "5", "--titrate-interval", "0"), "--titrate-interval 0.0 s must be"),
], ids=["date", "start", "reference", "titrate-to", "titrate-interval"])
def test_bad_values_are_one_line_and_write_nothing(db: str, args: tuple[str, ...],
                                                   says: str) -> None:
    one_error_line(run_nmes(*args, "--db", db), says)
    with open_store(db) as store:
        assert store.info()["sessions"] == 1


@pytest.mark.parametrize("args, says", [
    (("--sfreq", "1e9", "--t-end", "1"), "--sfreq 1e+09 Hz must be above 0 and at most"),
    (("--sfreq", "1000", "--t-end", "1e9"), "is 1e+12 samples per signal, above the limit"),
    (("--sfreq", "1000", "--t-end", "-1"), "--t-end -1 s must be a time of 0 s or more"),
], ids=["sfreq", "samples", "t-end"])
def test_simulation_grids_that_cannot_fit_are_refused(tmp_path: Path, args: tuple[str, ...],
                                                      says: str) -> None:
    """A grid too large for memory was a MemoryError traceback after a long wait."""
    out = tmp_path / "s.csv"
    one_error_line(run_nmes("simulate", str(QUAD), "--patient", "healthy-adult",
                            "--out", str(out), *args), says)
    one_error_line(run_nmes("simulate", "train", "--model", "ding2003", "--pulse-times",
                            "0,0.05", "--out", str(out), *args), says)
    assert not out.exists()
