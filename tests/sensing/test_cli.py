"""``nmes emg process``, ``nmes gait events``, ``nmes assess``, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from opennmes.cli._parse import write_signals_csv
from opennmes.sensing import read_emg
from opennmes.signals import Signals
from tests.conftest import NmesResult, run_nmes

from .conftest import DELSYS, SHANK


def nmes(*args: str | Path) -> NmesResult:
    return run_nmes(*map(str, args))


def test_emg_process(tmp_path: Path) -> None:
    r = nmes("emg", "process", DELSYS, "-c", "Delt_ant", "-c", "Biceps", "--rest", "0 s,0.3 s",
             "--out", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["sfreq_Hz"] == 2000.0
    chans = {c["name"]: c for c in summary["channels"]}
    assert 0.55 < chans["Delt_ant"]["onsets"][0] < 0.8
    assert {p.name for p in tmp_path.iterdir()} >= {"envelope.csv", "onsets.csv",
                                                   "summary.json", "envelopes.png"}
    head = (tmp_path / "envelope.csv").read_text().splitlines()[0]
    assert head == "t [s],Delt_ant [V],Biceps [V]"


def test_gait_events(tmp_path: Path) -> None:
    r = nmes("gait", "events", SHANK, "--channel", "Gyr_Z", "--out", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["strides"] == 20
    assert 1.2 < s["stride_mean_s"] < 1.4 and 0.45 < s["swing_mean_s"] < 0.6
    assert s["latency_initial_contact_median_ms"] < 30
    assert (tmp_path / "strides.csv").exists() and (tmp_path / "gait.png").exists()


def test_assess_two_sides(tmp_path: Path) -> None:
    left = read_emg(DELSYS, ["Delt_ant", "Trap_inf"])
    data = np.array(left.data)
    data[1] *= 0.6
    right = Signals(data, left.sfreq, left.names, left.units)
    write_signals_csv(left, tmp_path / "left.csv")
    write_signals_csv(right, tmp_path / "right.csv")
    r = nmes("assess", tmp_path / "left.csv", tmp_path / "right.csv", "--rest", "0 s,0.3 s",
             "--channel", "Delt_ant", "--channel", "Trap_inf", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert "Trap_inf: the right side is 40 % weaker" in r.stdout
    assert "Delt_ant: the" not in r.stdout  # no asymmetry finding for the unchanged muscle
    js = json.loads((tmp_path / "out" / "assessment.json").read_text())
    assert list(js["deficient"]) == ["Trap_inf (right)"]


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    r = nmes("emg", "process", SHANK)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "no EMG channels found" in r.stderr
    assert "Gyr_Z [rad/s]" in r.stderr
    r = nmes("gait", "events", SHANK, "--channel", "Gyr_X")
    assert r.returncode == 2 and "looks like the wrong gyroscope axis" in r.stderr
    r = nmes("emg", "process", DELSYS, "-c", "Quadriceps")
    assert r.returncode == 2 and "no channel named ['Quadriceps']" in r.stderr
    r = nmes("emg", "process", DELSYS, "--band", "20 Hz,1500 Hz")
    assert r.returncode == 2 and "too low for the 20-1500 Hz band-pass" in r.stderr
    r = nmes("emg", "process", DELSYS, "--cutoff", "5")
    assert r.returncode == 2 and r.stderr.startswith("error: ")


def test_emg_process_with_pulses(tmp_path: Path) -> None:
    """Real EMG plus a simulated 25 Hz train; the pulse file drives the suppression and the
    summary reports the locked residual before (near 1) and after (small)."""
    from opennmes.sensing import contaminate
    from opennmes.stim import PulseSchedule

    clean = read_emg(DELSYS, ["Delt_ant"])
    times = np.arange(0.2, 5.7, 0.04)
    write_signals_csv(contaminate(clean, times, mwave_gain=8.0, spike_gain=40.0),
                      tmp_path / "stim.csv")
    PulseSchedule.from_arrays(times, 0.02, 300e-6).write(str(tmp_path / "pulses.csv"))
    r = nmes("emg", "process", tmp_path / "stim.csv", "-c", "Delt_ant", "--pulses",
             tmp_path / "pulses.csv", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["artefact_suppression"]
    assert s["method"] == "nlms" and s["pulses"] == times.size
    assert s["locked_residual_before"][0] > 0.8
    assert s["locked_residual_after"][0] < 0.05


def test_gait_events_from_heel_switch(tmp_path: Path) -> None:
    """A heel-switch CSV (0.8 s loaded, 0.5 s swing, 5 cycles at 200 Hz)."""
    fs = 200.0
    x = np.tile(np.r_[np.ones(160), np.zeros(100)], 5)
    write_signals_csv(Signals(x[None, :], fs, ("heel",), ("1",)), tmp_path / "fsr.csv")
    r = nmes("gait", "events", tmp_path / "fsr.csv", "--heel-switch", "heel", "--on-level",
             "0.6", "--off-level", "0.4", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["initial_contacts"] == 4 and s["foot_offs"] == 5
    assert s["stride_mean_s"] == pytest.approx(1.3) and s["swing_mean_s"] == pytest.approx(0.5)
    r = nmes("gait", "events", tmp_path / "fsr.csv", "--heel-switch", "heel")
    assert r.returncode == 2 and "needs --on-level and --off-level" in r.stderr
