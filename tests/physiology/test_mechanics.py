"""Hill-type curves (reference section 3 spot values), activation dynamics and joints."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.errors import ModelError
from opennmes.physiology import (
    Joint,
    activation_derivative,
    force_length,
    force_velocity,
    get_preset,
    passive_force_length,
    simulate,
)
from opennmes.stim import PulseSchedule


def test_thelen_2003_spot_values() -> None:
    """Section 3.1 [D]: Thelen 2003 f_L and f_PE spot values."""
    np.testing.assert_allclose(force_length([0.5, 0.8, 1.2, 1.6]),
                               [0.573753, 0.914947, 0.914947, 0.449329], atol=1e-6)
    np.testing.assert_allclose(passive_force_length([0.9, 1.2, 1.6]),
                               [0.0, 0.029132, 1.0], atol=1e-6)


def test_de_groote_2016_force_velocity_opensim_constants() -> None:
    """Section 3.2 [D]: f_V(-1) = 0, f_V(0) = 1, f_V(1) = 1.794343 (OpenSim refit)."""
    np.testing.assert_allclose(force_velocity([-1.0, 0.0, 1.0]), [0.0, 1.0, 1.794343],
                               atol=1e-6)


def test_thelen_activation_time_constants() -> None:
    """Thelen 2003 form: tau_act (0.5 + 1.5 a) rising, tau_deact / (0.5 + 1.5 a) falling."""
    assert activation_derivative(0.0, 1.0) == pytest.approx(1.0 / (0.015 * 0.5))
    assert activation_derivative(1.0, 0.0) == pytest.approx(-1.0 * 2.0 / 0.050)


def test_knee_pendulum_rest_and_free_oscillation() -> None:
    """The seated knee rests hanging (0 rad); released from 0.1 rad it swings at the small-
    angle frequency sqrt((K + m g l)/J) of the published pendulum parameters."""
    knee = get_preset("healthy-adult").joint("knee")
    assert knee.equilibrium() == pytest.approx(0.0, abs=1e-12)
    import dataclasses

    from opennmes.physiology._mechanics import joint_advance

    j = dataclasses.replace(knee, initial_angle=0.1)
    n = 5000
    out = np.zeros((3, n))
    joint_advance(np.zeros((1, n)), np.zeros(1), np.array([[0.33, 0.0, -0.25]]),
                  j.as_array(), np.array([0.1, 0.0, 0.0]), n, 1000.0, 1e-3, out)
    th = out[0]
    crossings = np.flatnonzero((th[:-1] > 0) & (th[1:] <= 0))
    period = np.mean(np.diff(crossings)) / 1000.0
    omega_n = np.sqrt((knee.stiffness + knee.gravity_moment) / knee.inertia)
    zeta = knee.damping / (2 * np.sqrt((knee.stiffness + knee.gravity_moment) * knee.inertia))
    assert period == pytest.approx(2 * np.pi / (omega_n * np.sqrt(1 - zeta**2)), rel=0.01)


def test_stimulation_extends_the_knee_and_lifts_the_foot() -> None:
    pat = get_preset("healthy-adult")
    t = np.round(np.arange(0, 2, 1 / 35), 6)
    q = PulseSchedule.from_arrays(t, 0.045, 300e-6, channel_names=("quadriceps",))
    res = simulate(q, pat, sfreq=500.0, t_end=3.0)
    assert np.degrees(res.angle("knee").max()) > 20.0
    ta = PulseSchedule.from_arrays(t, 0.035, 300e-6, channel_names=("peroneal nerve",))
    res = simulate(ta, pat, sfreq=500.0, t_end=3.0)
    ankle = res.angle("ankle")
    assert ankle[0] < 0  # plantarflexed at rest (gravity)
    assert ankle.max() > 0.1  # dorsiflexion by the stimulated tibialis anterior


def test_spasticity_slows_wrist_extension() -> None:
    """Velocity-dependent resistance (stroke preset) lowers the peak extension velocity."""
    t = np.round(np.arange(0, 1.5, 1 / 35), 6)
    s = PulseSchedule.from_arrays(t, 0.030, 300e-6, channel_names=("wrist extensors",))
    healthy = get_preset("healthy-adult").personalise(strength=0.7)
    stroke = get_preset("stroke")
    v_h = simulate(s, healthy, sfreq=1000.0, t_end=2.0)["wrist.velocity"].max()
    v_s = simulate(s, stroke, sfreq=1000.0, t_end=2.0)["wrist.velocity"].max()
    assert v_s < 0.8 * v_h


def test_joint_validation() -> None:
    with pytest.raises(ModelError, match="inertia"):
        Joint("x", inertia=0.0, gravity_moment=1, gravity_offset=0, stiffness=1,
              rest_angle=0, damping=0.1, angle_min=-1, angle_max=1)


def test_exact_rest_step_matches_rk4_near_rest() -> None:
    """Near rest without muscle force the joint steps with the exact transition of its
    linearised dynamics; it agrees with RK4 on the nonlinear joint to < 1e-3 of the swing."""
    from opennmes.physiology._mechanics import joint_advance, rest_transition

    for name in ("knee", "ankle", "wrist"):
        joint = get_preset("healthy-adult").joint(name)
        eq = joint.equilibrium()
        n = 3000
        outs = []
        for jp in (joint.as_array(), np.concatenate([joint.as_array(),
                                                     rest_transition(joint, 1000.0)])):
            out = np.zeros((3, n))
            joint_advance(np.zeros((1, n)), np.zeros(1), np.array([[0.05, 0.0, -0.3]]), jp,
                          np.array([eq + 0.008, 0.0, 1.0]), n, 1000.0, 1e-3, out)
            outs.append(out[0] - eq)
        assert np.max(np.abs(outs[1] - outs[0])) < 1e-3 * 0.008, name
