"""Gait events on the real shank recording; streaming detector; heel switch; bad input."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.errors import SignalError
from opennmes.sensing import (
    GaitEventDetector,
    HeelSwitchDetector,
    PlaybackSource,
    detect_gait_events,
    iter_chunks,
    swing_windows,
)
from opennmes.signals import Signals


def test_twenty_strides_as_listed(shank: Signals) -> None:
    """data/README and reference notes §2.2: 20 strides, mean stride about 1.30 s
    (prototype 1.296 +- 0.085 s), swing 0.531 +- 0.035 s, MS peaks 5.15 rad/s, first MS at
    4.37 s."""
    ev = detect_gait_events(shank, "Gyr_Z")
    assert ev.n_strides == 20
    assert ev.polarity == 1
    assert 1.2 < np.mean(ev.stride_times) < 1.4
    assert np.mean(ev.stride_times) == pytest.approx(1.296, abs=0.02)
    assert np.nanmean(ev.swing_times) == pytest.approx(0.531, abs=0.01)
    assert np.nanstd(ev.swing_times) == pytest.approx(0.035, abs=0.01)
    assert 0.45 < np.nanmean(ev.swing_times) < 0.6
    assert np.all((ev.swing_times > 0.45) & (ev.swing_times < 0.65))
    assert ev.mid_swing[0] == pytest.approx(4.37, abs=0.01)
    assert np.mean(ev.peak) == pytest.approx(5.15, abs=0.05)
    assert np.all(ev.foot_off < ev.mid_swing) and np.all(ev.mid_swing < ev.initial_contact)
    assert len(ev.swing_windows) == 20
    assert ev.swing_windows[0][1] - ev.swing_windows[0][0] == pytest.approx(ev.swing_times[0])
    df = ev.to_pandas()
    assert list(df.columns)[:5] == ["foot_off", "mid_swing", "initial_contact", "swing",
                                    "stride"]


def test_flipped_sensor_polarity(shank: Signals) -> None:
    flipped = Signals(-shank.data, shank.sfreq, shank.names, shank.units)
    ev = detect_gait_events(flipped, "Gyr_Z")
    assert ev.polarity == -1 and ev.n_strides == 20


@pytest.mark.parametrize("chunk", [1 / 120, 0.1, 0.5])
def test_streaming_detector_on_real_walk(shank: Signals, chunk: float) -> None:
    """Causal detector: every IC and MS found; IC within 30 ms and FO within 30 ms of the
    zero-phase reference; median latency IC < 30 ms, FO ~100 ms (a zero crossing after the
    trough), inside the 25-180 ms reported for real-time FES systems (§2.2)."""
    ref = detect_gait_events(shank, "Gyr_Z")
    det = GaitEventDetector(shank.sfreq)
    det.calibrate(shank, "Gyr_Z")
    events = []
    for c in iter_chunks(PlaybackSource(shank.pick(["Gyr_Z"]), chunk)):
        events += det.update(c)
    ic = np.array([e.t for e in events if e.kind == "initial_contact"])
    fo = np.array([e.t for e in events if e.kind == "foot_off"])
    ms = np.array([e.t for e in events if e.kind == "mid_swing"])
    assert ic.size == 20 and ms.size == 20
    assert fo.size == 19  # the first foot-off precedes the first mid-swing the detector sees
    assert np.max(np.abs(ic - ref.initial_contact)) <= 0.03
    assert np.max(np.abs(fo - ref.foot_off[1:])) <= 0.03
    lat = {k: np.median([e.latency for e in events if e.kind == k])
           for k in ("foot_off", "mid_swing", "initial_contact")}
    assert lat["initial_contact"] < 0.03
    assert 0.05 < lat["foot_off"] < 0.15
    assert all(e.latency >= 0 for e in events)
    windows = swing_windows(events)
    assert len(windows) == 19
    assert np.mean([b - a for a, b in windows]) == pytest.approx(0.531, abs=0.02)


def test_streaming_in_swing_flag(shank: Signals) -> None:
    det = GaitEventDetector(shank.sfreq)
    flags = []
    for c in iter_chunks(PlaybackSource(shank.pick(["Gyr_Z"]), 1 / 120)):
        det.update(c)
        flags.append(det.in_swing)
    frac = np.mean(flags[int(6 * 120):])
    # swing is about 0.53 s of a 1.29 s stride (41 %); the flag is raised at FO detection
    # (~100 ms late) and lowered at IC detection (~17 ms late): (0.53 - 0.08) / 1.29 = 0.35
    assert 0.31 < frac < 0.39


def test_wrong_axis(shank: Signals) -> None:
    with pytest.raises(SignalError, match=r"'Gyr_X' looks like the wrong gyroscope axis: its "
                                          r"swing peaks reach 2.4\d rad/s.*'Gyr_Z' reaches "
                                          r"5.2\d rad/s"):
        detect_gait_events(shank, "Gyr_X")
    only_y = shank.pick(["Gyr_Y"])
    with pytest.raises(SignalError, match=r"'Gyr_Y' shows 0 mid-swing peaks above 1.5 rad/s"):
        detect_gait_events(only_y, "Gyr_Y")


def test_gait_bad_input(shank: Signals) -> None:
    with pytest.raises(SignalError, match=r"no channel named 'gyro_ml'; gyroscope channels "
                                          r"\(rad/s\): \['Gyr_X', 'Gyr_Y', 'Gyr_Z'\]"):
        detect_gait_events(shank, "gyro_ml")
    with pytest.raises(SignalError, match=r"'Acc_X' is in 'm/s\^2'"):
        detect_gait_events(shank, "Acc_X")
    with pytest.raises(SignalError, match="sampling rate 16 Hz is too low for the 10 Hz"):
        detect_gait_events(Signals(np.zeros((1, 100)), 16.0, ("g",), ("rad/s",)), "g")


def test_heel_switch() -> None:
    """Synthetic FSR: loaded 0.8 s, unloaded 0.5 s, repeated; with 30 ms debounce the events
    are dated at the crossings and confirmed 30 ms later; a 10 ms dropout is ignored."""
    fs = 500.0
    cycle = np.concatenate([np.ones(400), np.zeros(250)])
    x = np.tile(cycle, 4).astype(float)
    x[200:205] = 0.0  # 10 ms dropout during stance
    sig = Signals(x[None, :], fs, ("heel",), ("1",))
    det = HeelSwitchDetector(fs, on_level=0.6, off_level=0.4, debounce=0.03)
    events = []
    for c in iter_chunks(PlaybackSource(sig, 0.02)):
        events += det.update(c)
    fo = [e.t for e in events if e.kind == "foot_off"]
    ic = [e.t for e in events if e.kind == "initial_contact"]
    assert fo == pytest.approx([0.8, 2.1, 3.4, 4.7])
    assert ic == pytest.approx([1.3, 2.6, 3.9])
    assert all(e.latency == pytest.approx(0.03 - 1 / fs) for e in events)
    with pytest.raises(SignalError, match="off_level = 0.7 must be below on_level = 0.6"):
        HeelSwitchDetector(fs, 0.6, 0.7, 0.03)


def test_streaming_chunking_gives_identical_events(shank: Signals) -> None:
    gyro = shank.pick(["Gyr_Z"])
    whole = GaitEventDetector(shank.sfreq).update(gyro)
    det = GaitEventDetector(shank.sfreq)
    parts = []
    for c in iter_chunks(PlaybackSource(gyro, 0.073)):
        parts += det.update(c)
    assert parts == whole


@pytest.mark.parametrize("cut", [0.06, 0.1, 0.15])
def test_recording_ending_before_initial_contact_gives_no_false_stride(shank: Signals,
                                                                       cut: float) -> None:
    """A recording that stops after a mid-swing peak but before its initial contact: the IC
    window is cut off, and the stride used to end with an IC dated at the last sample."""
    full = detect_gait_events(shank, "Gyr_Z")
    ms, ic = full.mid_swing[10], full.initial_contact[10]
    assert ic - ms > cut + 0.02
    short = shank.crop(0.0, ms + cut)
    ev = detect_gait_events(short, "Gyr_Z")
    assert ev.n_strides == 10
    assert short.t[-1] not in ev.initial_contact
    np.testing.assert_allclose(ev.initial_contact, full.initial_contact[:10])
    # with the trough recorded, the stride is there with its IC
    longer = detect_gait_events(shank.crop(0.0, ic + 0.1), "Gyr_Z")
    assert longer.n_strides == 11 and longer.initial_contact[-1] == pytest.approx(ic)
