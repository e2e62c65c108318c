"""PID and iterative learning on simple plants with known behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.control import PID, IterativeLearning
from opennmes.errors import NmesError


def _first_order(pid: PID, target: np.ndarray, gain: float = 2.0, tau: float = 0.2
                 ) -> tuple[np.ndarray, np.ndarray]:
    y, ys, us = 0.0, [], []
    for r in target:
        u = pid.update(float(r), y)
        y += pid.dt / tau * (gain * u - y)
        ys.append(y)
        us.append(u)
    return np.array(ys), np.array(us)


def test_pid_tracks_a_step_within_bounds_and_rate_limit() -> None:
    pid = PID(kp=0.5, ki=2.0, kd=0.0, dt=0.01, u_min=0.0, u_max=1.0, rate_limit=5.0)
    y, u = _first_order(pid, np.full(500, 1.0))
    assert abs(y[-1] - 1.0) < 1e-3
    assert u.min() >= 0.0 and u.max() <= 1.0
    assert np.max(np.abs(np.diff(u))) <= 5.0 * 0.01 + 1e-12


def test_anti_windup_leaves_saturation_quickly() -> None:
    """After 5 s at an unreachable target the output must come off its bound within 0.3 s
    of the target becoming reachable (a plain integrator would need seconds)."""
    target = np.concatenate([np.full(500, 5.0), np.full(300, 0.5)])
    pid = PID(kp=0.5, ki=2.0, kd=0.0, dt=0.01, u_min=0.0, u_max=1.0)
    _, u = _first_order(pid, target)
    assert np.all(u[400:500] == 1.0)
    off = np.argmax(u[500:] < 1.0)
    assert off <= 30
    naive = PID(kp=0.5, ki=2.0, kd=0.0, dt=0.01, u_min=0.0, u_max=1.0, t_track=1e12)
    _, u2 = _first_order(naive, target)
    assert not (u2[500:600] < 1.0).any()  # still wound up a second later


def test_pid_refuses_bad_settings_and_inputs() -> None:
    with pytest.raises(NmesError, match="dt"):
        PID(kp=1, ki=0, kd=0, dt=0, u_min=0, u_max=1)
    with pytest.raises(NmesError, match="u_max"):
        PID(kp=1, ki=0, kd=0, dt=0.1, u_min=1, u_max=0)
    pid = PID(kp=1, ki=0, kd=0, dt=0.1, u_min=0, u_max=1)
    with pytest.raises(NmesError, match="not finite"):
        pid.update(float("nan"), 0.0)


def test_ilc_converges_on_a_delayed_plant() -> None:
    """y[t] = 0.8 * u[t - 3]: with the delay compensated the error shrinks every trial."""
    n, delay = 200, 3
    ref = np.sin(np.linspace(0, np.pi, n)) ** 2
    ilc = IterativeLearning(gain=0.8, sfreq=50.0, u_min=-5, u_max=5, delay=delay / 50.0,
                            q_cutoff=10.0)
    u = np.zeros(n)
    errs = []
    for _ in range(12):
        y = np.zeros(n)
        y[delay:] = 0.8 * u[:-delay]
        e = ref - y
        errs.append(float(np.sqrt(np.mean(e[: n - delay] ** 2))))
        u = ilc.next_input(u, e)
    assert all(b < a for a, b in zip(errs, errs[1:], strict=False))
    assert errs[-1] < 0.05 * errs[0]


def test_ilc_checks_its_inputs() -> None:
    with pytest.raises(NmesError, match="Nyquist"):
        IterativeLearning(gain=1, sfreq=10.0, u_min=0, u_max=1, q_cutoff=6.0)
    ilc = IterativeLearning(gain=1, sfreq=50.0, u_min=0, u_max=1)
    with pytest.raises(NmesError, match="NaN"):
        ilc.next_input(np.zeros(10), np.full(10, np.nan))
