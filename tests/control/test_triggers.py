"""Triggered stimulation: button bursts, EMG-triggered bursts on real EMG, gait-triggered
drop-foot stimulation on a real shank gyroscope, and silence -> zero output."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.control import EmgTrigger, GaitTrigger, TriggeredStimulation
from opennmes.sensing import GaitEventDetector, OnsetDetector, detect_gait_events, read_text
from opennmes.stim import Channel, Electrode, PulseSchedule

from ..conftest import SHARED_DATA


def _hand(**kw: float) -> Channel:
    base = dict(name="wrist extensors",
                electrode=Electrode(area=36e-4, site="wrist extensors"), frequency=35.0,
                pulse_width=300e-6, amplitude=0.025, ramp_up=0.5, on=3.0, ramp_down=0.5)
    base.update(kw)
    return Channel(**base)  # type: ignore[arg-type]


def _run(stim: TriggeredStimulation, t_end: float, dt: float = 0.05) -> PulseSchedule:
    return PulseSchedule.concat([stim.chunk(i * dt, (i + 1) * dt)
                                 for i in range(int(round(t_end / dt)))])


def test_button_burst_envelope_and_refractory() -> None:
    stim = TriggeredStimulation(_hand(), refractory=2.0)
    assert stim.trigger(1.0, "button")
    s = _run(stim, 10.0)
    assert s.t[0] == pytest.approx(1.0, abs=1e-6)  # the first pulse at the trigger itself
    assert s.t[-1] < 1.0 + 4.0
    plateau = s.window(1.6, 4.4)
    assert np.all(plateau.amplitude == pytest.approx(0.025))
    ramp = s.window(1.0, 1.5)  # linear, one period ahead: above zero from the first pulse
    per = 1 / 35
    np.testing.assert_allclose(ramp.amplitude, 0.025 * (ramp.t - 1.0 + per) / (0.5 + per),
                               atol=1e-9)
    assert ramp.amplitude[0] == pytest.approx(0.025 * per / (0.5 + per))
    # the same burst rendered in one call equals the chunked rendering
    again = TriggeredStimulation(_hand(), refractory=2.0)
    again.trigger(1.0)
    assert again.chunk(0.0, 10.0).equals(s)
    stim.trigger(5.5, "button")  # within 2 s of the end (5.0 s): ignored
    assert stim.events[-1].kind == "ignored" and stim.events[-1].detail == "refractory"
    assert stim.trigger(7.1, "button")


def test_end_request_ramps_down_early() -> None:
    stim = TriggeredStimulation(_hand(on=10.0))
    stim.trigger(0.0)
    stim.end(2.0)
    s = _run(stim, 5.0)
    assert s.t[-1] < 2.5
    down = s.window(2.0 + 1e-6, 2.5)
    assert np.all(np.diff(down.amplitude) < 0)


def test_emg_triggered_bursts_on_real_emg() -> None:
    """BITalino forearm EMG (shared/data): strong bursts near 1-2 s and 15-17 s start
    assisting bursts; onsets during a burst or its refractory time are ignored."""
    emg = read_text(SHARED_DATA / "emg" / "bitalino_forearm_1000hz.txt")
    det = OnsetDetector(emg.sfreq, emg.names, "threshold")
    det.calibrate(emg.crop(4.0, 14.0))
    det.reset()
    stim = TriggeredStimulation(_hand(), refractory=2.0, silence_timeout=0.2)
    trig = EmgTrigger(stim, det, emg.names[0])
    parts = []
    for i in range(int(emg.duration / 0.05)):
        trig.feed(emg.crop(i * 0.05, (i + 1) * 0.05))
        parts.append(stim.chunk(i * 0.05, (i + 1) * 0.05))
    bursts = [e.t for e in stim.events if e.kind == "burst"]
    assert any(1.0 <= t <= 2.0 for t in bursts)
    assert any(15.0 <= t <= 17.0 for t in bursts)
    assert any(e.kind == "ignored" for e in stim.events)
    s = PulseSchedule.concat(parts)
    for t in bursts:  # every burst starts at its trigger and lasts ramp + on + ramp
        b = s.window(t, t + 4.0)
        assert b.t[0] - t < 1 / 35 + 1e-6
        assert b.amplitude.max() == pytest.approx(0.025)
    assert not any(e.kind == "silent" for e in stim.events)


def test_silent_sensor_ends_in_zero_output() -> None:
    emg = read_text(SHARED_DATA / "emg" / "bitalino_forearm_1000hz.txt")
    det = OnsetDetector(emg.sfreq, emg.names, "threshold")
    det.calibrate(emg.crop(4.0, 14.0))
    det.reset()
    stim = TriggeredStimulation(_hand(on=5.0), refractory=0.0, silence_timeout=0.2)
    trig = EmgTrigger(stim, det, emg.names[0])
    for i in range(40):  # 0-2 s: the burst near 1.5 s starts
        trig.feed(emg.crop(i * 0.05, (i + 1) * 0.05))
        stim.chunk(i * 0.05, (i + 1) * 0.05)
    assert stim.active
    # the sensor stops sending; the stimulator keeps asking for chunks
    outs = [stim.chunk(2.0 + i * 0.05, 2.05 + i * 0.05) for i in range(10)]
    assert len(outs[0]) > 0  # still within the 0.2 s timeout
    assert all(len(o) == 0 for o in outs[5:])
    assert any(e.kind == "silent" for e in stim.events)
    assert not stim.active
    assert not stim.trigger(3.0, "button")  # no bursts while silent


def test_gait_triggered_drop_foot_on_real_shank_gyroscope() -> None:
    """Xsens shank recording (20 strides): stimulation from foot-off (+ 0 s delay) to
    initial contact + 0.1 s extension in every detected swing."""
    g = read_text(SHARED_DATA / "gait" / "xsens_shank_walking_120hz.txt")
    offline = detect_gait_events(g, "Gyr_Z")
    ch = Channel(name="peroneal", electrode=Electrode(area=25e-4, site="common peroneal nerve"),
                 frequency=40.0, pulse_width=300e-6, amplitude=0.03, ramp_up=0.05, on=0.9,
                 ramp_down=0.05)
    stim = TriggeredStimulation(ch, silence_timeout=0.1)
    det = GaitEventDetector(g.sfreq)
    det.calibrate(g, "Gyr_Z")
    det.reset()
    trig = GaitTrigger(stim, det, "Gyr_Z", delay=0.0, extension=0.1)
    dt = 4 / g.sfreq
    parts = []
    for i in range(int(g.duration / dt)):
        trig.feed(g.crop(i * dt, (i + 1) * dt))
        parts.append(stim.chunk(i * dt, (i + 1) * dt))
    s = PulseSchedule.concat(parts)
    starts = np.array([e.t for e in stim.events if e.kind == "burst"])
    ends = np.array([e.t for e in stim.events if e.kind == "end"])
    assert len(starts) >= 18 and len(ends) >= 18
    fo = offline.to_pandas()["foot_off"].to_numpy()
    ic = offline.to_pandas()["initial_contact"].to_numpy()
    for t in starts:  # each burst starts shortly after a foot-off
        lag = t - fo[fo <= t + 1e-9].max()
        assert 0.0 <= lag < 0.25
    for t in ends:  # and ramps down 0.1 s after an initial contact (detection latency)
        lag = t - 0.1 - ic[ic <= t].max()
        assert 0.0 <= lag < 0.1
    # the stimulation is on in swing, off in stance
    on_time = sum(min(e, b + 0.95) - b for b, e in zip(starts, ends, strict=False))
    assert len(s) == pytest.approx(40 * (on_time + 0.05 * len(starts)), rel=0.15)


def test_grid_alignment_for_devices_with_a_period_clock() -> None:
    stim = TriggeredStimulation(_hand(frequency=50.0), grid_origin=0.0)
    stim.trigger(1.013)
    s = _run(stim, 6.0, dt=0.01)
    assert s.t[0] == pytest.approx(1.02)
    np.testing.assert_allclose(s.t * 50, np.round(s.t * 50), atol=1e-4)
    assert len(s) == pytest.approx(4.0 * 50, abs=2)


@pytest.mark.parametrize(("on", "max_burst", "timeout"), [
    (None, 1.0, True),   # no own length: max_burst always ends it
    (3.0, 4.0, False),   # max_burst = ramp + on + ramp: the burst's own length ends it
    (3.0, 2.0, True),    # max_burst shorter than the burst: it cuts it
])
def test_timeout_is_reported_only_when_max_burst_cuts_the_burst(
        on: float | None, max_burst: float, timeout: bool) -> None:
    ch = _hand() if on is not None else Channel(
        name="wrist extensors", electrode=Electrode(area=36e-4, site="wrist extensors"),
        frequency=35.0, pulse_width=300e-6, amplitude=0.025, ramp_up=0.5, ramp_down=0.5,
        trigger={"source": "button", "max_burst": max_burst})
    stim = TriggeredStimulation(ch.model_copy(update={"on": on}), max_burst=max_burst)
    stim.trigger(0.0, "button")
    s = _run(stim, 6.0)
    assert s.t[-1] < max_burst
    assert any(e.kind == "timeout" for e in stim.events) is timeout
