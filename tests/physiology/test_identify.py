"""Identification of force and fatigue parameters from force traces."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, lfilter

from opennmes.errors import ModelError
from opennmes.physiology import default_parameters, identify, simulate_train

TRUE = default_parameters("ding2003", fatigue=True).replace(
    a_rest=2600.0, tau1_rest=0.045, tau2=0.08, km_rest=0.12, alpha_a=-0.5, alpha_km=2.5e-5,
    alpha_tau1=1.6e-5, tau_fat=110.0)


def _protocol() -> np.ndarray:
    """12 contractions (3 s at 30 Hz, 3 s rest), a 10-Hz train, then 5 one-second 50-Hz
    test trains spaced 25 s apart: the rests make recovery (tau_fat) identifiable."""
    parts = [k * 6 + np.arange(0, 3, 1 / 30) for k in range(12)]
    parts += [75 + np.arange(0, 2, 1 / 10)]
    parts += [82 + k * 25 + np.arange(0, 1, 1 / 50) for k in range(5)]
    return np.round(np.concatenate(parts), 6)


def test_recovers_known_parameters_from_noisy_trace() -> None:
    """Force and fatigue parameters within 2 % of the truth from a trace with 1 N rms noise; the
    95 % intervals contain the truth."""
    pt = _protocol()
    res0 = simulate_train(TRUE, pt, t_end=200.0, sfreq=200.0)
    rng = np.random.default_rng(0)
    f = res0["force"] + rng.normal(0.0, 1.0, res0.t.size)
    fit = identify(res0.t, f, pt, model="ding2003-fatigue")
    assert set(fit.estimates) == {"a_rest", "tau1_rest", "tau2", "km_rest", "alpha_a",
                                  "alpha_km", "alpha_tau1", "tau_fat"}
    for name, (value, lo, hi) in fit.estimates.items():
        truth = getattr(TRUE, name)
        assert value == pytest.approx(truth, rel=0.02), name
        assert lo < value < hi
    assert fit.rmse == pytest.approx(1.0, rel=0.05)
    assert fit.r2 > 0.99
    assert "tau_fat" in fit.summary()
    assert list(fit.to_pandas()["parameter"])[:2] == ["a_rest", "tau1_rest"]


def test_force_model_only() -> None:
    """Without fatigue only the four force parameters are fitted (one fresh train). The fit
    integrates with steps up to 4 ms (FIT_HMAX), the truth with 1 ms: agreement to 1e-3."""
    p = default_parameters("ding2003").replace(a_rest=3500.0, km_rest=0.09)
    pt = np.round(np.arange(0, 1, 1 / 40), 6)
    res0 = simulate_train(p, pt, t_end=1.5, sfreq=1000.0)
    fit = identify(res0.t, res0["force"], pt, model="ding2003")
    assert set(fit.estimates) == {"a_rest", "tau1_rest", "tau2", "km_rest"}
    assert fit.estimates["a_rest"][0] == pytest.approx(3500.0, rel=1e-3)
    assert fit.estimates["km_rest"][0] == pytest.approx(0.09, rel=1e-3)


def test_fits_real_shaped_trace() -> None:
    """A dynamometer-like trace the fitted model did not generate: Ding 2007 dynamics
    (tau_c = 11 ms, 350-us pulses) with fatigue, seen through a 15-Hz low-pass transducer,
    coloured sensor noise and 50-Hz hum. The Ding 2003 fatigue model (tau_c = 20 ms fixed)
    still explains > 97 % of it."""
    p07 = default_parameters("ding2007", fatigue=True)
    pt = np.round(np.concatenate([k * 8 + np.arange(0, 4, 1 / 35) for k in range(10)]), 6)
    sim = simulate_train(p07, pt, t_end=85.0, sfreq=200.0, pulse_widths=350e-6)
    b, a = butter(2, 15.0 / 100.0)
    rng = np.random.default_rng(1)
    noise = lfilter([0.2], [1, -0.8], rng.normal(0, 3.0, sim.t.size))
    f = lfilter(b, a, sim["force"]) + noise + 0.8 * np.sin(2 * np.pi * 50 * sim.t + 0.3)
    fit = identify(sim.t, f, pt, model="ding2003-fatigue")
    assert fit.r2 > 0.97
    assert fit.residual_autocorrelation > 0.5  # the intervals would be optimistic: reported


def test_unfittable_trace_gives_clear_error() -> None:
    """Pulses that do not belong to the trace (force only where no pulse was) cannot be fit:
    either the fit is refused for its R^2 or the trace determines no parameter."""
    t = np.arange(0, 20, 0.01)
    f = np.where((t > 10) & (t < 14), 150.0, 0.0)
    with pytest.raises(ModelError, match=r"could not fit ding2003-fatigue to the trace: R\^2|"
                       r"the trace determines none of the parameters of ding2003-fatigue"):
        identify(t, f, np.arange(0, 3, 1 / 30), model="ding2003-fatigue")


def test_bad_traces_name_the_value() -> None:
    t = np.arange(0, 2, 0.01)
    f = np.ones_like(t)
    f[17] = np.nan
    with pytest.raises(ModelError, match=r"force\[17\] = nan"):
        identify(t, f, [0.0, 0.1])
    with pytest.raises(ModelError, match="pulse_times\\[1\\] = 0.05 s is earlier"):
        identify(t, np.ones_like(t), [0.1, 0.05])
    with pytest.raises(ModelError, match="not uniformly sampled"):
        identify(np.r_[t[:50], t[51:]], np.ones(t.size - 1), [0.0])
    with pytest.raises(ModelError, match="unknown force model"):
        identify(t, np.ones_like(t), [0.0], model="ding2020")


def test_hmed2018_force_model_from_amplitude_ramp() -> None:
    """Hmed 2018: a trace recorded with an amplitude ramp is fitted with the per-pulse
    amplitudes; the force parameters come back."""
    p = default_parameters("hmed2018").replace(a_rest=2500.0, tau1_rest=0.055)
    pt = np.round(np.arange(0, 3, 1 / 33), 6)
    amps = np.linspace(0.025, 0.110, pt.size)
    res0 = simulate_train(p, pt, t_end=3.5, sfreq=500.0, amplitudes=amps)
    fit = identify(res0.t, res0["force"], pt, model="hmed2018", amplitudes=amps)
    assert fit.estimates["a_rest"][0] == pytest.approx(2500.0, rel=1e-3)
    assert fit.estimates["tau1_rest"][0] == pytest.approx(0.055, rel=1e-3)
