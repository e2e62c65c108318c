"""Metrics of one run, on force traces whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.cohort import METRICS, contractions


def _run(force: np.ndarray, sfreq: float = 100.0, **extra: object) -> dict:
    return {"force": force, "sfreq": sfreq, "a_rest": 3009.0, "A": None, "angle": None,
            **extra}


def _train() -> np.ndarray:
    """Three 1-s plateaus (10 N, 9 N, 8 N) with 1 s of rest between, then a fourth
    contraction (20 N) cut by the end."""
    f = np.zeros(800)
    f[100:200], f[300:400], f[500:600], f[750:] = 10.0, 9.0, 8.0, 20.0
    return f


def test_contractions_are_complete_stretches_above_ten_percent() -> None:
    f = _train()
    assert contractions(f) == [(100, 200), (300, 400), (500, 600)]
    assert contractions(np.zeros(10)) == []
    g = np.zeros(50)
    g[10:20] = 10.0
    g[30:40] = 0.5  # below 10 % of the peak: not a contraction
    assert contractions(g) == [(10, 20)]


def test_fatigue_index_compares_the_last_with_the_first_contraction() -> None:
    assert METRICS["fatigue_index"](_run(_train())) == pytest.approx(1 - 8.0 / 10.0)
    assert METRICS["n_contractions"](_run(_train())) == 3.0
    one = np.zeros(100)
    one[10:50] = 5.0
    assert np.isnan(METRICS["fatigue_index"](_run(one)))


def test_peak_and_force_time_integral() -> None:
    f = np.full(201, 2.0)  # 2 N for 2 s at 100 Hz
    assert METRICS["peak_force"](_run(f)) == 2.0
    assert METRICS["force_time_integral"](_run(f)) == pytest.approx(4.0)
    assert METRICS["force_time_integral"](_run(f, sfreq=200.0)) == pytest.approx(2.0)
    ramp = np.linspace(0.0, 10.0, 101)  # 0 to 10 N over 1 s: 5 N s
    assert METRICS["force_time_integral"](_run(ramp)) == pytest.approx(5.0)


def test_a_end_ratio_and_range_of_motion() -> None:
    a = np.linspace(3009.0, 0.75 * 3009.0, 50)
    assert METRICS["a_end_ratio"](_run(np.ones(50), A=a)) == pytest.approx(0.75)
    assert np.isnan(METRICS["a_end_ratio"](_run(np.ones(50))))
    ang = np.array([0.1, 0.4, -0.2, 0.0])
    assert METRICS["range_of_motion"](_run(np.ones(4), angle=ang)) == pytest.approx(0.6)
    assert np.isnan(METRICS["range_of_motion"](_run(np.ones(4))))
