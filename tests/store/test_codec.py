"""Chunk codecs: lossless for float64, single-precision rounding for float32."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from opennmes.errors import StoreError
from opennmes.stim import PulseSchedule, Waveform
from opennmes.store import _codec


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
                  elements=st.floats(allow_nan=True, allow_infinity=True)))
def test_float64_samples_round_trip_bit_exact(data: np.ndarray) -> None:
    blob = _codec.encode_samples(data, "<f8")
    back = _codec.decode_samples(blob, "<f8", *data.shape)
    assert back.dtype == np.float64
    assert np.array_equal(back.view(np.uint64), data.view(np.uint64))


def test_float32_storage_rounds_to_single_precision() -> None:
    data = np.random.default_rng(1).normal(size=(3, 500))
    back = _codec.decode_samples(_codec.encode_samples(data, "<f4"), "<f4", 3, 500)
    assert np.array_equal(back, data.astype(np.float32).astype(np.float64))
    assert np.max(np.abs(back - data) / np.abs(data)) <= 2.0 ** -24


def test_shuffle_compresses_float32_valued_doubles() -> None:
    """Doubles that hold float32 values have four zero bytes each: shuffling exposes them."""
    data = np.random.default_rng(2).normal(size=(4, 4000)).astype(np.float32).astype(np.float64)
    blob = _codec.encode_samples(data, "<f8")
    assert len(blob) < 0.6 * data.nbytes


def test_pulses_round_trip_exactly() -> None:
    sched = PulseSchedule(t=[0.0, 0.0, 0.028571, 1.5], channel=[0, 1, 0, 1],
                          amplitude=[0.02, 0.031, 0.02, 0.0], phase_width=[3e-4] * 4,
                          interphase_gap=[5e-5, 0, 5e-5, 0], amplitude2=[0.02, 0.0062, 0.02, 0],
                          phase_width2=[3e-4, 1.5e-3, 3e-4, 0],
                          waveform=[1, 2, 1, 0], channel_names=("a", "b"))
    back = _codec.decode_pulses(_codec.encode_pulses(sched), 4, ("a", "b"))
    for col in ("t", "channel", "amplitude", "phase_width", "interphase_gap", "amplitude2",
                "phase_width2", "waveform"):
        assert np.array_equal(getattr(back, col), getattr(sched, col)), col
    assert back.waveform[2] == Waveform.SYMMETRIC_BIPHASIC


def test_corrupt_chunks_raise_store_error() -> None:
    blob = _codec.encode_samples(np.zeros((2, 10)), "<f8")
    with pytest.raises(StoreError, match="corrupt"):
        _codec.decode_samples(blob[:-3] + b"xyz", "<f8", 2, 10)
    with pytest.raises(StoreError, match="expected 22 samples"):
        _codec.decode_samples(blob, "<f8", 2, 11)
    with pytest.raises(StoreError, match="pulse chunk holds"):
        _codec.decode_pulses(_codec.encode_pulses(PulseSchedule.empty(["a"])), 1, ("a",))
