"""Strength-duration, recruitment, electrode effects and NMES versus voluntary recruitment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opennmes.errors import ModelError
from opennmes.physiology import MotorUnitPool, NerveModel, threshold_charge, threshold_current


def test_strength_duration_textbook_example() -> None:
    """Reference section 2.1 [V-pub]: rheobase 3.5 mA, chronaxie 0.22 ms: the threshold at
    the chronaxie is twice the rheobase in both forms (definition of chronaxie)."""
    for form in ("weiss", "lapicque"):
        assert threshold_current(0.22e-3, 3.5e-3, 0.22e-3, form) == pytest.approx(7.0e-3)
    # long pulses approach the rheobase
    assert threshold_current(1.0, 3.5e-3, 0.22e-3, "lapicque") == pytest.approx(3.5e-3)


def test_weiss_charge_is_linear_and_lapicque_minimum_charge() -> None:
    """Reference section 2.1: Weiss Q_th = I_rh (d + c); Lapicque Q_min = I_rh tau_m with
    c = tau_m ln 2 as d -> 0."""
    d = np.array([50e-6, 100e-6, 300e-6, 1e-3])
    np.testing.assert_allclose(threshold_charge(d, 0.01, 0.3e-3, "weiss"),
                               0.01 * (d + 0.3e-3), rtol=1e-12)
    tau_m = 0.3e-3 / math.log(2)
    assert threshold_charge(1e-9, 0.01, 0.3e-3, "lapicque") == pytest.approx(0.01 * tau_m,
                                                                           rel=1e-5)
    with pytest.raises(ModelError, match="phase width"):
        threshold_current(0.0, 0.01, 0.3e-3)


def test_recruitment_curve_shape_and_electrode_effects() -> None:
    nerve = NerveModel(rheobase=0.010, chronaxie=0.0003, q50=2.0, slope=0.35)
    thr = nerve.threshold(300e-6)
    assert float(thr) == pytest.approx(0.020)
    amps = np.linspace(0, 0.2, 401)
    r = nerve.recruitment(amps, 300e-6)
    assert r[amps <= thr].max() == 0.0
    assert np.all(np.diff(r) >= 0)
    assert r[-1] == pytest.approx(1.0, abs=1e-4)
    # half the pool at q50 times threshold (up to the shift that makes r(1) = 0)
    assert float(nerve.recruitment(2.0 * thr, 300e-6)) == pytest.approx(0.5, abs=0.03)
    # longer pulses recruit more at the same current (strength-duration)
    assert nerve.recruitment(0.03, 500e-6) > nerve.recruitment(0.03, 200e-6)
    # larger pads and a pad away from the motor point need more current
    assert nerve.recruitment(0.03, 300e-6, area=100e-4) < nerve.recruitment(0.03, 300e-6,
                                                                             area=25e-4)
    off = NerveModel(rheobase=0.010, chronaxie=0.0003, motor_point_distance=0.02)
    assert off.recruitment(0.03, 300e-6) < nerve.recruitment(0.03, 300e-6)
    with pytest.raises(ModelError, match="q50"):
        NerveModel(rheobase=0.01, chronaxie=3e-4, q50=0.9)


def test_nmes_recruits_non_selectively_and_synchronously() -> None:
    """Reference section 2.4: NMES recruitment is non-selective (no size order) and
    synchronous; voluntary recruitment follows size (Henneman) and is asynchronous."""
    pool = MotorUnitPool(NerveModel(rheobase=0.01, chronaxie=3e-4), n_units=300, seed=4)
    size = pool.twitch_force
    q_thr = np.array([next(q for q in np.linspace(1, 10, 2000) if pool.nmes_recruited(q)[i])
                      for i in range(0, 300, 15)])
    rho = np.corrcoef(np.log(size[::15]), q_thr)[0, 1]
    assert abs(rho) < 0.5
    # NMES at ~30 % of units recruits ~30 % of force (size-blind) ...
    q = 1.6
    mask = pool.nmes_recruited(q)
    frac_units = mask.mean()
    assert 0.15 < frac_units < 0.5
    assert pool.force_fraction(mask) == pytest.approx(frac_units, abs=0.12)
    # ... while voluntary drive at the same fraction of units recruits the small ones first
    vmask = pool.voluntary_recruited(frac_units)
    assert pool.force_fraction(vmask) < 0.5 * frac_units
    # synchronous: every recruited unit fires at every pulse; voluntary firing is spread
    pulses = np.arange(0, 1, 1 / 30)
    nm = pool.firing_times(mask, 1.0, pulse_times=pulses)
    assert all(np.array_equal(x, nm[0]) for x in nm)
    vol = pool.firing_times(vmask, 1.0, seed=1)
    firsts = np.array([x[0] for x in vol if x.size])
    assert firsts.std() > 0.01
