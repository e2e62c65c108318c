"""The streaming stepper gives the same numbers chunk by chunk as one simulate() call."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opennmes.errors import ModelError
from opennmes.physiology import get_preset, simulate
from opennmes.stim import PulseSchedule


def _schedule() -> PulseSchedule:
    on = np.arange(0, 3, 1 / 35)
    t = np.round(np.concatenate([on, 5 + on]), 6)
    amp = np.linspace(0.02, 0.05, t.size)
    return PulseSchedule.from_arrays(t, amp, 300e-6, channel_names=("right quadriceps",))


@pytest.mark.parametrize("chunk", [0.037, 0.25, 1.0])
def test_chunked_equals_whole(chunk: float) -> None:
    pat = get_preset("healthy-adult")
    sched = _schedule()
    whole = simulate(sched, pat, sfreq=1000.0, t_end=9.0, emg=True, seed=3)
    stream = pat.start(sfreq=1000.0, seed=3, emg=True, muscles=("quadriceps",))
    parts = []
    edges = np.append(np.arange(0.0, 9.0, chunk), 9.0005)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        parts.append(stream.advance(sched.window(a, b), b))
    data = np.hstack([p.data for p in parts])
    assert data.shape == whole.signals.data.shape
    assert parts[0].names == whole.names
    np.testing.assert_allclose(data, whole.signals.data, rtol=1e-12, atol=1e-12)
    assert parts[1].t0 == pytest.approx(parts[0].t0 + parts[0].n_samples / 1000.0)


def test_stream_voluntary_drive_and_errors() -> None:
    pat = get_preset("healthy-adult")
    stream = pat.start(sfreq=500.0, seed=0, emg=False, muscles=("quadriceps",))
    empty = PulseSchedule.empty(("quadriceps",))
    stream.set_voluntary_drive(0.5)
    sig = stream.advance(empty, 1.0)
    # Thelen activation reaches the drive within a few tens of ms; force = a * MVC
    assert sig["quadriceps.activation"][-1] == pytest.approx(0.5, abs=1e-3)
    assert sig["quadriceps.force"][-1] == pytest.approx(0.5 * 650.0, rel=1e-3)
    with pytest.raises(ModelError, match="within"):
        stream.set_voluntary_drive(1.5)
    with pytest.raises(ModelError, match="stream time"):
        stream.advance(empty, 0.5)
    late = PulseSchedule.from_arrays([0.2], 0.04, 300e-6, channel_names=("quadriceps",))
    with pytest.raises(ModelError, match="earlier than the stream time"):
        stream.advance(late, 2.0)


def test_stream_sfreq_required_positive() -> None:
    with pytest.raises(ModelError, match="sfreq"):
        get_preset("icu").start(sfreq=0.0)


def test_two_channels_and_voluntary_drive_switch_chunked() -> None:
    """Quadriceps and tibialis anterior channels plus a voluntary drive switched on between
    chunks give the same samples as one simulate() call with the drive as an array."""
    pat = get_preset("stroke")
    t = np.round(np.arange(0, 2, 1 / 30), 6)
    sched = PulseSchedule.concat([
        PulseSchedule.from_arrays(t, 0.045, 300e-6, channel=0,
                                  channel_names=("quadriceps", "peroneal nerve")),
        PulseSchedule.from_arrays(t + 0.01, 0.035, 250e-6, channel=1,
                                  channel_names=("quadriceps", "peroneal nerve")),
    ])
    sfreq = 500.0
    n = 1501
    drive = np.where(np.arange(n) >= 400, 0.6, 0.0)
    muscles = ("quadriceps", "tibialis_anterior")
    whole = simulate(sched, pat, sfreq=sfreq, t_end=3.0,
                     voluntary_drive={m: drive for m in muscles})
    stream = pat.start(sfreq=sfreq, emg=False, muscles=muscles)
    parts = []
    for a, b in ((0.0, 0.5), (0.5, 0.8), (0.8, 2.2), (2.2, 3.001)):
        if a == 0.8:
            stream.set_voluntary_drive(0.6)
        parts.append(stream.advance(sched.window(a, b), b))
    data = np.hstack([p.data for p in parts])
    assert parts[0].names == whole.names
    np.testing.assert_allclose(data, whole.signals.data, rtol=1e-10, atol=1e-10)
    assert whole.angle("ankle").max() > 0.05 and whole.angle("knee").max() > 0.2


def test_pulses_after_until_wait_and_order_is_enforced() -> None:
    """A chunk may hold pulses after ``until``: they act in the next call. A later chunk with a
    pulse before one already received is refused."""
    pat = get_preset("healthy-adult")
    s = PulseSchedule.from_arrays([0.05, 0.30], 0.04, 300e-6, channel_names=("quadriceps",))
    whole = simulate(s, pat, sfreq=1000.0, t_end=0.5)
    stream = pat.start(sfreq=1000.0, emg=False, muscles=("quadriceps",))
    a = stream.advance(s, 0.2)
    b = stream.advance(PulseSchedule.empty(("quadriceps",)), 0.5005)
    np.testing.assert_allclose(np.hstack([a.data, b.data]), whole.signals.data, rtol=1e-12)
    early = PulseSchedule.from_arrays([0.6], 0.04, 300e-6, channel_names=("quadriceps",))
    stream2 = pat.start(sfreq=1000.0, emg=False)
    stream2.advance(PulseSchedule.from_arrays([0.8], 0.04, 300e-6,
                                              channel_names=("quadriceps",)), 0.5)
    with pytest.raises(ModelError, match="already received"):
        stream2.advance(early, 1.0)


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.floats(0.0, 3.0, allow_nan=False), min_size=1, max_size=6))
def test_any_chunking_equals_one_call(cuts: list[float]) -> None:
    """Property: wherever the chunk boundaries fall (between samples, on pulses), the samples
    are those of one simulate() call."""
    pat = get_preset("icu")
    sched = _schedule().window(0.0, 3.0)
    whole = simulate(sched, pat, sfreq=500.0, t_end=3.0, emg=True, seed=5)
    stream = pat.start(sfreq=500.0, seed=5, emg=True, muscles=("quadriceps",))
    edges = sorted(set([0.0, *cuts, 3.001]))
    parts = [stream.advance(sched.window(a, b), b) for a, b in zip(edges[:-1], edges[1:],
                                                                    strict=True)]
    data = np.hstack([p.data for p in parts])
    np.testing.assert_allclose(data, whole.signals.data, rtol=1e-10, atol=1e-12)
