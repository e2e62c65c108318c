"""The streaming stepper gives the same numbers chunk by chunk as one simulate() call."""

from __future__ import annotations

import numpy as np
import pytest

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
