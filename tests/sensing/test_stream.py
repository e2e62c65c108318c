"""Live stream sources."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from opennmes.errors import SignalError
from opennmes.sensing import (
    EmgPipeline,
    PlaybackSource,
    PullSource,
    PushSource,
    SignalSource,
    iter_chunks,
)
from opennmes.signals import Signals


def test_playback_reassembles(delsys: Signals) -> None:
    sig = delsys.pick(["Delt_ant", "Biceps"])
    src = PlaybackSource(sig, 0.0123)
    assert isinstance(src, SignalSource)
    chunks = list(iter_chunks(src))
    assert np.array_equal(np.concatenate([c.data for c in chunks], axis=1), sig.data)
    assert chunks[1].t0 == pytest.approx(chunks[0].t0 + chunks[0].duration)
    assert src.read() is None


def test_push_source_from_a_driver_thread() -> None:
    """A driver thread pushes 2 kHz blocks of 20 samples; the consumer gets them in order and
    the pipeline's streamed output equals the offline one."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2000))
    src = PushSource(2000.0, ["EMG1", "EMG2"], ["V", "V"], t0=10.0)

    def driver() -> None:
        for i in range(0, 2000, 20):
            src.push(x[:, i:i + 20])
        src.end()

    th = threading.Thread(target=driver)
    th.start()
    pipe = EmgPipeline(2000.0, 2)
    out, t0s = [], []
    for chunk in iter_chunks(src):
        t0s.append(chunk.t0)
        out.append(pipe.process(chunk).data)
    th.join()
    assert t0s[0] == 10.0
    np.testing.assert_allclose(np.concatenate(out, axis=1),
                               EmgPipeline(2000.0, 2).process_array(x), atol=1e-12)


def test_pull_source_and_shape_check() -> None:
    blocks = [np.zeros((1, 5)), np.ones((1, 3)), None]
    src = PullSource(lambda: blocks.pop(0), 100.0, ["gyro"], ["rad/s"])
    a, b = src.read(), src.read()
    assert a is not None and b is not None
    assert b.t0 == pytest.approx(0.05)
    assert src.read() is None
    bad = PullSource(lambda: np.zeros((2, 4)), 100.0, ["gyro"], ["rad/s"])
    with pytest.raises(SignalError, match=r"sensor gave samples of shape \(2, 4\); expected "
                                          r"\(1, n\) for channels \['gyro'\]"):
        bad.read()
    with pytest.raises(SignalError, match="no samples from the sensor within 0.01 s"):
        PushSource(100.0, ["a"], ["V"]).read(timeout=0.01)


def test_patient_source_with_simulated_stimulation() -> None:
    """The simulated patient's EMG during 30 Hz stimulation carries M-waves locked to the
    pulses (locked residual 0.62 measured); the streaming NLMS filter fed with the same schedule
    removes them (0.004 measured)."""
    from opennmes.physiology import get_preset
    from opennmes.sensing import ArtefactSuppressor, PatientSource, locked_residual
    from opennmes.stim import PulseSchedule

    stream = get_preset("healthy-adult").start(sfreq=2000.0, seed=1, muscles=("quadriceps",))
    t = np.arange(0.1, 3.0, 1 / 30)
    sched = PulseSchedule.from_arrays(t, 0.03, 300e-6, channel_names=("quadriceps",))
    src = PatientSource(stream, sched, 0.05, 3.0, channels=["quadriceps.emg",
                                                            "quadriceps.force"])
    assert src.names == ("quadriceps.emg", "quadriceps.force") and src.units == ("V", "N")
    f = ArtefactSuppressor(2000.0, 1, "nlms")
    raw, clean = [], []
    for chunk in iter_chunks(src):
        emg = chunk.pick(["quadriceps.emg"])
        raw.append(emg.data)
        clean.append(f.process(emg, sched).data)
    r = Signals(np.hstack(raw), 2000.0, ("emg",), ("V",))
    y = Signals(np.hstack(clean), 2000.0, ("emg",), ("V",))
    assert r.duration == pytest.approx(3.0)
    assert locked_residual(r, t, 0.03)[0] > 0.5
    assert locked_residual(y, t[5:], 0.03)[0] < 0.02


def test_streaming_objects_refuse_gaps(bitalino: Signals, shank: Signals) -> None:
    """A chunk that does not follow the previous one is refused, naming both times."""
    from opennmes.sensing import ArtefactSuppressor, GaitEventDetector, OnsetDetector

    det = OnsetDetector(bitalino.sfreq, bitalino.names)
    det.calibrate(bitalino.crop(3.0, 10.0))
    with pytest.raises(SignalError, match=r"OnsetDetector: chunk starts at t = 12 s but the "
                                          r"stream is at 10 s"):
        det.update(bitalino.crop(12.0, 13.0))
    det.reset()
    det.update(bitalino.crop(12.0, 13.0))  # a new stream after reset()
    g = GaitEventDetector(shank.sfreq)
    g.update(shank.crop(0.0, 1.0), "Gyr_Z")
    with pytest.raises(SignalError, match="GaitEventDetector: chunk starts at t = 0 s"):
        g.update(shank.crop(0.0, 1.0), "Gyr_Z")
    a = ArtefactSuppressor(bitalino.sfreq, 1, "comb")
    a.process(bitalino.crop(0.0, 1.0), [0.1, 0.2])
    with pytest.raises(SignalError, match="ArtefactSuppressor: chunk starts at t = 2 s"):
        a.process(bitalino.crop(2.0, 3.0))
