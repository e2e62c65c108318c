"""Property tests: however the samples and pulses are cut into writes and chunks, the record
loads back as the same arrays; empty sessions survive export and import."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opennmes.signals import Signals
from opennmes.stim import PulseSchedule
from opennmes.store import Store, export_session, import_session, open_store


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(0, 700), min_size=1, max_size=8),
       pulse_sizes=st.lists(st.integers(0, 40), max_size=6),
       chunk_duration=st.sampled_from([0.01, 0.05, 0.3, 1.0]),
       sfreq=st.sampled_from([100.0, 1000.0, 2048.0]),
       t0=st.floats(0.0, 5.0))
def test_any_cutting_loads_back_identically(sizes: list[int], pulse_sizes: list[int],
                                            chunk_duration: float, sfreq: float,
                                            t0: float) -> None:
    rng = np.random.default_rng(len(sizes) * 1000 + sum(sizes))
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 's.db'}")
        store.add_patient("H1")
        pv = store.save_program({"p": 1}, "p")
        w = store.begin_session("H1", pv.id, "sim://", chunk_duration=chunk_duration)
        blocks, n = [], 0
        for size in sizes:
            data = rng.normal(size=(2, size))
            w.write_signals(Signals(data, sfreq, ("a", "b"), ("N", "rad"), t0 + n / sfreq), "s")
            blocks.append(data)
            n += size
        scheds, t = [], 0.0
        for size in pulse_sizes:
            times = t + np.cumsum(rng.integers(0, 3, size)) * 1e-3  # ties allowed
            s = PulseSchedule.from_arrays(times, rng.uniform(0, 0.05, size), 2e-4,
                                          channel=rng.integers(0, 3, size),
                                          channel_names=("x", "y", "z"))
            w.write_pulses(s)
            scheds.append(s)
            t = float(times[-1]) if size else t
        w.finish()
        rec = store.load_session(w.id)
        assert np.array_equal(rec.streams["s"].data, np.hstack(blocks))
        assert rec.streams["s"].t0 == t0
        expected = [s for s in scheds if len(s)]
        if expected:
            for col in ("t", "channel", "amplitude"):
                assert np.array_equal(getattr(rec.pulses, col),
                                      np.concatenate([getattr(s, col) for s in expected]))
        else:
            assert len(rec.pulses) == 0
        assert store.verify_session(w.id, decode=True) == []
        store.close()


def test_an_empty_session_round_trips(store: Store, other_url: str, tmp_path: Path) -> None:
    store.add_patient("E1")
    pv = store.save_program({"empty": True}, "e")
    w = store.begin_session("E1", pv.id, "sim://")
    w.write_signals(Signals(np.empty((1, 0)), 10.0, ("f",), ("N",), 0.5), "nothing")
    w.finish("operator cancelled", status="aborted")
    folder = export_session(store, w.id, tmp_path / "e")
    with open_store(other_url) as target:
        new = target.load_session(import_session(target, folder))
    old = store.load_session(w.id)
    assert new.info.status == "aborted" and new.info.end_reason == "operator cancelled"
    assert new.events == [] and len(new.pulses) == 0 and new.dose is None
    assert new.info.pulse_channels is None and old.info.pulse_channels is None
    assert new.streams["nothing"].data.shape == (1, 0) and new.streams["nothing"].t0 == 0.5
