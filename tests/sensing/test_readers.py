"""Readers return the right channels, units and rates; bad input gives clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opennmes.errors import SignalError
from opennmes.sensing import read_c3d, read_csv, read_edf, read_emg, read_signals, read_text
from opennmes.signals import Signals

from .conftest import DELSYS, SHANK, THIGH

GAIT_DIR = SHANK.parent

DELSYS_EMG = ["Delt_ant", "Delt_med", "Delt_post", "Biceps", "Triceps", "Trap_sup", "Trap_inf",
              "Gd_dent", "Supra", "Infra", "Subscap", "Pec", "Gd_dors"]


def test_c3d_all_analog_channels_rate_and_units() -> None:
    """data/README: 38 analog channels at 2000 Hz, 11600 samples (5.8 s), EMG in volts."""
    sig = read_c3d(DELSYS)
    assert len(sig.names) == 38
    assert sig.sfreq == 2000.0
    assert sig.n_samples == 11600
    assert sig.duration == pytest.approx(5.8)
    assert set(sig.units) == {"V"}
    assert "Voltage.1" in sig.names and "Delt_ant" in sig.names


def test_c3d_emg_channels(delsys: Signals) -> None:
    """The 11 surface + 2 intramuscular named muscles; unconnected sensors are left out."""
    assert sorted(delsys.names) == sorted(DELSYS_EMG)
    assert delsys.units == ("V",) * 13
    # data/README: surface EMG RMS between about 26 and 525 uV (band-passed); raw is similar
    rms = np.sqrt(np.mean((delsys["Delt_ant"] - delsys["Delt_ant"].mean()) ** 2))
    assert 50e-6 < rms < 600e-6


def test_bitalino_text(bitalino: Signals) -> None:
    """BITalino: 1000 Hz, one EMG column of 12-bit counts, baseline about 2050, 63.9 s."""
    assert bitalino.names == ("EMG",)
    assert bitalino.units == ("count",)
    assert bitalino.sfreq == 1000.0
    assert bitalino.duration == pytest.approx(63.9, abs=0.1)
    assert 2000 < np.median(bitalino["EMG"]) < 2100


@pytest.mark.parametrize("path", [SHANK, THIGH])
def test_xsens_text(path: Path) -> None:
    """Xsens MTx export: 120 Hz, 3511 samples (29.3 s), Acc m/s^2, Gyr rad/s."""
    sig = read_text(path)
    assert sig.sfreq == 120.0
    assert sig.n_samples == 3511
    assert sig.unit("Gyr_Z") == "rad/s" and sig.unit("Acc_X") == "m/s^2"
    assert "Counter" not in sig.names
    # gravity on the shank sensor: |acc| about 9.8 m/s^2 at rest (first sample)
    acc = np.array([sig[f"Acc_{a}"][0] for a in "XYZ"])
    assert np.linalg.norm(acc) == pytest.approx(9.81, abs=0.5)


def test_edf_and_bdf_roundtrip_units(tmp_path: Path) -> None:
    """EDF/BDF in uV come back in V, with the file's rate and labels."""
    from pyedflib import highlevel

    fs = 512
    x = np.sin(2 * np.pi * 10 * np.arange(2 * fs) / fs) * 100.0  # uV
    for ext, ftype in ((".edf", 1), (".bdf", 3)):
        hdrs = [highlevel.make_signal_header("EMG Biceps", "uV", fs, -200, 200),
                highlevel.make_signal_header("Force", "N", fs, -200, 200)]
        if ext == ".bdf":
            for h in hdrs:
                h["digital_min"], h["digital_max"] = -8388608, 8388607
        p = tmp_path / f"rec{ext}"
        highlevel.write_edf(str(p), [x, x], hdrs, file_type=ftype)
        sig = read_signals(p)
        assert sig.names == ("EMG Biceps", "Force")
        assert sig.units == ("V", "N")
        assert sig.sfreq == fs
        assert np.max(sig["EMG Biceps"]) == pytest.approx(100e-6, rel=1e-3)
        emg = read_emg(p)
        assert emg.names == ("EMG Biceps",)
    assert read_edf(tmp_path / "rec.edf", ["Force"]).names == ("Force",)


def test_csv_units_and_rate(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text("t [s],EMG_bic [mV],gyro [deg/s]\n0,1,180\n0.001,2,90\n0.002,3,0\n")
    sig = read_csv(p)
    assert sig.sfreq == pytest.approx(1000.0)
    assert sig.units == ("V", "rad/s")
    assert sig["EMG_bic"].tolist() == pytest.approx([1e-3, 2e-3, 3e-3])
    assert sig["gyro"][0] == pytest.approx(np.pi)
    p2 = tmp_path / "noT.csv"
    p2.write_text("a,b\n1,2\n3,4\n")
    sig2 = read_csv(p2, sfreq=100.0, units={"a": "V", "b": "N"})
    assert sig2.units == ("V", "N") and sig2.sfreq == 100.0


def test_csv_without_unit_or_rate_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(SignalError, match="channel 'a' has no unit"):
        read_csv(p, sfreq=100.0)
    with pytest.raises(SignalError, match="no sampling rate"):
        read_csv(p, units={"a": "V", "b": "V"})


def test_file_with_no_emg_channels() -> None:
    """The shank IMU file has no EMG: the error lists what was found."""
    with pytest.raises(SignalError, match=r"no EMG channels found.*9 channels at 120 Hz: "
                                          r"Acc_X \[m/s\^2\].*Gyr_Z \[rad/s\]"):
        read_emg(SHANK)


def test_unknown_channel_name() -> None:
    with pytest.raises(SignalError, match=r"no channel named \['Quadriceps'\].*Delt_ant"):
        read_emg(DELSYS, ["Quadriceps"])


def test_unknown_file_type(tmp_path: Path) -> None:
    p = tmp_path / "x.wav"
    p.write_bytes(b"RIFF")
    with pytest.raises(SignalError, match="unknown file type '.wav'"):
        read_signals(p)
    with pytest.raises(SignalError, match="no such file"):
        read_signals(tmp_path / "missing.c3d")


def test_edf_mixed_rates_needs_a_choice(tmp_path: Path) -> None:
    from pyedflib import highlevel

    hdrs = [highlevel.make_signal_header("EMG1", "uV", 512, -200, 200),
            highlevel.make_signal_header("Acc", "mV", 128, -200, 200)]
    p = tmp_path / "mixed.edf"
    highlevel.write_edf(str(p), [np.zeros(1024), np.zeros(256)], hdrs)
    with pytest.raises(SignalError, match=r"different sampling rates \{'EMG1': 512.0, "
                                          r"'Acc': 128.0\}"):
        read_edf(p)
    assert read_edf(p, ["Acc"]).sfreq == 128.0


@pytest.mark.parametrize(("name", "fps", "knee", "ankle"), [
    ("joint_angles_healthy_150hz.json", 150.0, (2.0, 70.0), None),
    ("joint_angles_stroke_100hz.json", 100.0, (14.0, 66.0), (-7.6, 17.0)),
])
def test_joint_angle_files(name: str, fps: float, knee: tuple[float, float],
                           ankle: tuple[float, float] | None) -> None:
    """The gait JSON files of shared/data: rate, channels in rad, and the ranges listed in
    its README (healthy knee about 2-70 deg; stroke knee about 14-66, ankle -7.6 to 17)."""
    from opennmes.sensing import read_joint_angles, read_signals

    sig = read_joint_angles(GAIT_DIR / name)
    assert sig.sfreq == fps and "right_knee_angle" in sig.names
    assert set(sig.units) == {"rad"}
    k = np.degrees(sig["right_knee_angle"])
    assert np.nanmin(k) == pytest.approx(knee[0], abs=1.0)
    assert np.nanmax(k) == pytest.approx(knee[1], abs=1.0)
    if ankle is not None:
        a = np.degrees(sig["right_ankle_angle"])
        assert np.nanmin(a) == pytest.approx(ankle[0], abs=1.0)
        assert np.nanmax(a) == pytest.approx(ankle[1], abs=1.0)
    again = read_signals(GAIT_DIR / name)  # the generic reader dispatches .json here
    assert again.names == sig.names
    np.testing.assert_array_equal(again.data, sig.data)


def test_joint_angle_file_errors(tmp_path: Path) -> None:
    from opennmes.sensing import read_joint_angles

    bad = tmp_path / "x.json"
    bad.write_text('{"frames": []}')
    with pytest.raises(SignalError, match="needs 'fps' and 'angle_frames'; found \\['frames'\\]"):
        read_joint_angles(bad)
    bad.write_text('{"fps": 100, "angle_frames": [{"frame_index": 0}]}')
    with pytest.raises(SignalError, match="no angle channels"):
        read_joint_angles(bad)


def _ten_minutes_at_150_hz(path: Path, header: str = "") -> np.ndarray:
    """The healthy knee angle of shared/data (150 Hz) repeated to 10 min, written as a CSV
    whose time column has 6 decimals, as spreadsheet exports do: steps of 0.006667 and
    0.006666 s, median 0.006667 s (149.9925 Hz)."""
    from opennmes.sensing import read_joint_angles

    knee = read_joint_angles(GAIT_DIR / "joint_angles_healthy_150hz.json")["right_knee_angle"]
    n = 150 * 600
    t = np.arange(n) / 150.0
    x = np.resize(np.nan_to_num(knee), n)
    rows = "".join(f"{a:.6f},{b:.6f}\n" for a, b in zip(t, x, strict=True))
    path.write_text(header + "t [s],knee [rad]\n" + rows)
    return t


def test_csv_rate_from_a_fit_of_the_whole_time_column(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """The median step said 149.9925 Hz: after 10 min the samples were dated 30 ms late."""
    p = tmp_path / "knee.csv"
    t = _ten_minutes_at_150_hz(p)
    with caplog.at_level("INFO", logger="opennmes.sensing._readers"):
        sig = read_csv(p)
    assert sig.sfreq == pytest.approx(150.0, rel=1e-9)
    assert abs(sig.t[-1] - t[-1]) < 1e-6
    assert "sampling rate 150 Hz from a least-squares fit of the 't' column (90000 samples" \
        in caplog.text
    # the caller's rate agrees with the column to well within half a sample: accepted
    assert read_csv(p, sfreq=150.0).sfreq == 150.0
    with pytest.raises(SignalError, match=r"sfreq = 149\.9925 Hz \(the sfreq argument\) but "
                                          r"the time column 't' says 150"):
        read_csv(p, sfreq=149.9925)


def test_csv_rate_stated_by_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                     ) -> None:
    p = tmp_path / "knee.csv"
    _ten_minutes_at_150_hz(p, header="# knee angle, healthy adult\n# sfreq: 150 Hz\n")
    with caplog.at_level("INFO", logger="opennmes.sensing._readers"):
        sig = read_csv(p)
    assert sig.sfreq == 150.0
    assert "sampling rate 150 Hz from the file's '# sfreq: 150 Hz' line" in caplog.text
    no_t = tmp_path / "no_t.csv"
    no_t.write_text("# Sampling Rate (Hz):= 2000.00\nEMG [uV]\n1\n2\n3\n")
    assert read_csv(no_t).sfreq == 2000.0
    khz = tmp_path / "khz.csv"
    khz.write_text("# sampling rate = 2 kHz\nEMG [uV]\n1\n2\n")
    assert read_csv(khz).sfreq == 2000.0
    with pytest.raises(SignalError, match="sfreq = 1000 Hz but the file states '# sampling "
                                          "rate = 2 kHz'"):
        read_csv(khz, sfreq=1000.0)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("# sfreq: 100 Hz\nt [s],EMG [uV]\n0,1\n0.001,2\n0.002,3\n")
    with pytest.raises(SignalError, match=r"sfreq = 100 Hz \(the file's '# sfreq: 100 Hz' "
                                          r"line\) but the time column 't' says 1000 Hz"):
        read_csv(wrong)
