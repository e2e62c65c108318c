"""The nmes simulate / simulate train / identify commands, run as subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opennmes.physiology import default_parameters, simulate_train
from tests.conftest import EXAMPLES, run_nmes


def test_simulate_train_contract(tmp_path: Path) -> None:
    """Header t,force then the states; one row per sample from 0 to t-end inclusive; the
    analytic CN fixture (section 6.1) in the CN column."""
    out = tmp_path / "f.csv"
    r = run_nmes("simulate", "train", "--model", "ding2003", "--pulse-times", "0,0.05",
                 "--t-end", "0.1", "--sfreq", "100", "--out", str(out))
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out)
    assert list(df.columns) == ["t", "force", "CN"]
    assert len(df) == 11
    np.testing.assert_allclose(df["t"], np.arange(11) / 100)
    np.testing.assert_allclose(df["CN"].to_numpy()[[2, 6, 10]],
                               [0.36787944117, 0.456186310, 0.241311048], atol=1e-9)


def test_simulate_train_fatigue_files_and_params(tmp_path: Path) -> None:
    times = tmp_path / "times.txt"
    times.write_text("\n".join(str(x) for x in np.round(np.linspace(0, 1, 34), 9)))
    widths = tmp_path / "w.txt"
    widths.write_text("\n".join(str(x) for x in np.append(np.linspace(200, 600, 33), 600)))
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"r0_from": "rest"}))
    out = tmp_path / "f.csv"
    r = run_nmes("simulate", "train", "--model", "ding2007", "--fatigue", "--pulse-times",
                 str(times), "--pulse-widths", str(widths), "--t-end", "1", "--sfreq", "33",
                 "--params", str(params), "--out", str(out))
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out)
    assert list(df.columns) == ["t", "force", "CN", "A", "Km", "tau1"]
    # cocofest ding2007_with_fatigue final value (section 6.3), FIX-B tolerance
    assert df["force"].iloc[-1] == pytest.approx(199.1778543, rel=2e-3)
    out2 = tmp_path / "h.csv"
    r = run_nmes("simulate", "train", "--model", "hmed2018", "--pulse-times", "0,0.1",
                 "--amplitudes", "50", "--t-end", "0.2", "--sfreq", "1000", "--out", str(out2))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "ding2003", "--pulse-times", "0,0.2,0.1"], "pulse_times[2] = 0.1 s"),
        (["--model", "ding2007", "--pulse-times", "0", "--pulse-widths", "100"],
         "100 us is not above the ding2007 threshold"),
    ],
)
def test_simulate_train_errors(tmp_path: Path, args: list[str], message: str) -> None:
    r = run_nmes("simulate", "train", *args, "--t-end", "1", "--sfreq", "100", "--out",
                 str(tmp_path / "o.csv"))
    assert r.returncode == 2
    assert message in r.stderr


def test_simulate_program_on_preset(tmp_path: Path) -> None:
    out = tmp_path / "sim.parquet"
    png = tmp_path / "sim.png"
    r = run_nmes("simulate", str(EXAMPLES / "programs" / "quadriceps.yaml"), "--patient",
                 "post-surgery", "--out", str(out), "--plot", str(png), "--sfreq", "100",
                 "--t-end", "60")
    assert r.returncode == 0, r.stderr
    df = pd.read_parquet(out)
    assert {"t", "quadriceps.force", "quadriceps.A", "knee.angle"} <= set(df.columns)
    assert len(df) == 6001
    assert df["quadriceps.force"].max() > 5.0
    assert png.stat().st_size > 10_000
    r = run_nmes("simulate", str(EXAMPLES / "programs" / "quadriceps.yaml"), "--patient",
                 "elderly", "--out", str(out))
    assert r.returncode == 2
    assert "unknown patient preset 'elderly'" in r.stderr and "healthy-adult" in r.stderr


def test_identify_cli(tmp_path: Path) -> None:
    p = default_parameters("ding2003").replace(a_rest=2800.0)
    pt = np.round(np.concatenate([k * 2 + np.arange(0, 1, 1 / 30) for k in range(2)]), 6)
    res = simulate_train(p, pt, t_end=4.0, sfreq=200.0)
    trace = tmp_path / "force.csv"
    pd.DataFrame({"t": res.t, "force": res["force"]}).to_csv(trace, index=False)
    pulses = tmp_path / "pulses.csv"
    pulses.write_text("t\n" + "\n".join(str(x) for x in pt))
    out = tmp_path / "fit.json"
    r = run_nmes("identify", str(trace), "--pulses", str(pulses), "--model", "ding2003",
                 "--out", str(out), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "a_rest" in r.stdout and "CI95" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["estimates"]["a_rest"]["value"] == pytest.approx(2800.0, rel=1e-4)
    # the fit file is accepted by simulate train --params
    r = run_nmes("simulate", "train", "--model", "ding2003", "--pulse-times",
                 "0,0.05", "--t-end", "0.1", "--sfreq", "100", "--params", str(out),
                 "--out", str(tmp_path / "o.csv"))
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"t": res.t, "force": np.where(np.arange(res.t.size) == 100, np.nan, 1.0)}
                 ).to_csv(bad, index=False)
    r = run_nmes("identify", str(bad), "--pulses", str(pulses))
    assert r.returncode == 2 and f"{bad}: line 102, column 'force': the cell is empty" in r.stderr
