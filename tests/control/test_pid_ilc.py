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


def test_ilc_safeguard_plays_the_best_input_again_and_learns_more_gently() -> None:
    """A plant whose gain flips sign after the first trial (learning can only hurt): the
    worse repetition is not learnt from, the best repetition's input comes back, the gain
    halves each time; without the safeguard the error grows every trial."""
    n = 100
    ref = np.ones(n)

    def trial(u: np.ndarray, k: int) -> np.ndarray:
        return ref - (0.5 * u if k == 0 else -0.5 * u)

    ilc = IterativeLearning(gain=1.0, sfreq=50.0, u_min=-5, u_max=5, delay=0.0)
    u0 = np.full(n, 0.5)
    e0 = trial(u0, 0)
    u1 = ilc.next_input(u0, e0)
    assert ilc.last == "learnt" and u1 is not None and u1.mean() > u0.mean()
    e1 = trial(u1, 1)  # worse than e0
    assert np.sqrt(np.mean(e1**2)) > 1.2 * np.sqrt(np.mean(e0**2))
    back = ilc.next_input(u1, e1)
    assert ilc.last == "fell back" and back is None  # the first repetition's own input
    assert ilc.gain == pytest.approx(0.5) and ilc.best_rmse == pytest.approx(0.75)

    free = IterativeLearning(gain=1.0, sfreq=50.0, u_min=-5, u_max=5, delay=0.0,
                             tolerance=None)
    u, errs = u0, []
    for k in range(4):
        e = trial(u, min(k, 1))
        errs.append(float(np.sqrt(np.mean(e**2))))
        nxt = free.next_input(u, e)
        assert nxt is not None and free.last == "learnt"
        u = nxt
    assert errs[-1] > errs[1] > errs[0]


def test_ilc_does_not_learn_upward_where_the_output_was_held() -> None:
    """Where the input sat at the ceiling (``hold``) a positive error adds nothing; a
    negative one still lowers the input."""
    ilc = IterativeLearning(gain=1.0, sfreq=50.0, u_min=0, u_max=1, delay=0.0, q_cutoff=10.0,
                            tolerance=None)
    u = np.full(50, 0.5)
    hold = np.zeros(50, dtype=bool)
    hold[:25] = True
    up = ilc.next_input(u, np.full(50, 0.2), hold=hold)
    assert up is not None
    # (the Q filter smooths the step between the two halves)
    np.testing.assert_allclose(up[3:15], 0.5, atol=0.01)
    np.testing.assert_allclose(up[35:47], 0.7, atol=0.01)
    down = ilc.next_input(u, np.full(50, -0.2), hold=hold)
    assert down is not None
    np.testing.assert_allclose(down[3:47], 0.3, atol=1e-6)
    with pytest.raises(NmesError, match="hold mask"):
        ilc.next_input(u, np.zeros(50), hold=np.zeros(3, dtype=bool))
