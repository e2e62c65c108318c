"""The fatiguing task "hold 150 N for 20 contractions" on Ding 2003 with fatigue: the designed
train meets it with less fatigue than the best constant program that meets it, both checked
by an independent integrator (scipy solve_ivp of the published equations, written here)."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.design import HoldTask, constant_hold, design_hold
from opennmes.errors import ModelError
from opennmes.physiology import default_parameters
from opennmes.safety import SafetyGuard, device_profile
from opennmes.schedule import exact_us

# Ding J, Wexler AS, Binder-Macleod SA (2000) J Appl Physiol 89:1322-1332, fatigue
# coefficients (as corrected in Doll BD et al. (2015) IFAC-PapersOnLine 48:338 and used by
# pyomeca/cocofest), SI: alpha_A = -4.0e-1 s^-2, alpha_Km = 1.9e-5 s^-1 N^-1,
# alpha_tau1 = 2.1e-5 N^-1, tau_fat = 127 s; force parameters of Ding 2003 (quadriceps).
PUBLISHED = dict(a_rest=3009.0, tau1_rest=0.050957, tau2=0.060, km_rest=0.103, tau_c=0.020,
                 r0_offset=1.04, alpha_a=-0.4, alpha_km=1.9e-5, alpha_tau1=2.1e-5,
                 tau_fat=127.0)

TASK = HoldTask(force=150.0, contractions=20, on=0.5, off=1.5, rise=0.2)


def ding2003_fatigue(pulse_times: np.ndarray, t_eval: np.ndarray) -> tuple[np.ndarray, float]:
    """Force at ``t_eval`` and A at the last time, of the published equations integrated by
    scipy's solve_ivp (LSODA) from pulse to pulse, CN as an ODE state::

        dCN/dt = (1/tau_c) sum_i R_i exp(-(t - t_i)/tau_c) - CN/tau_c
        R_i = 1 + (R0 - 1) exp(-(t_i - t_{i-1})/tau_c),  R0 = Km(t_i) + 1.04,  R_1 = 1
        dF/dt = A CN/(Km + CN) - F/(tau1 + tau2 CN/(Km + CN))
        dA/dt = -(A - A_rest)/tau_fat + alpha_A F   (Km, tau1 alike)
    """
    from scipy.integrate import solve_ivp

    P = PUBLISHED
    tau_c = P["tau_c"]
    tp = np.asarray(pulse_times, dtype=float)
    r = np.ones_like(tp)

    def rhs(t: float, y: np.ndarray, k: int) -> list[float]:
        cn, f, a, km, tau1 = y
        lo = max(k - 40, 0)  # older pulses add < exp(-40 * 5 ms / 20 ms) of their term
        s = float(np.sum(r[lo:k] * np.exp(-(t - tp[lo:k]) / tau_c))) if k else 0.0
        x = cn / (km + cn)
        return [s / tau_c - cn / tau_c, a * x - f / (tau1 + P["tau2"] * x),
                -(a - P["a_rest"]) / P["tau_fat"] + P["alpha_a"] * f,
                -(km - P["km_rest"]) / P["tau_fat"] + P["alpha_km"] * f,
                -(tau1 - P["tau1_rest"]) / P["tau_fat"] + P["alpha_tau1"] * f]

    out = np.zeros(t_eval.size)
    y = np.array([0.0, 0.0, P["a_rest"], P["km_rest"], P["tau1_rest"]])
    edges = np.concatenate([[0.0], tp, [t_eval[-1]]])
    for k in range(edges.size - 1):
        if 2 <= k <= tp.size:
            r[k - 1] = 1.0 + (y[3] + P["r0_offset"] - 1.0) * np.exp(-(tp[k - 1] - tp[k - 2])
                                                                     / tau_c)
        t0, t1 = edges[k], edges[k + 1]
        if t1 <= t0:
            continue
        sel = (t_eval >= t0) & (t_eval <= t1)
        sol = solve_ivp(rhs, (t0, t1), y, method="LSODA", rtol=1e-8, atol=1e-8,
                        dense_output=True, args=(k,))
        if sel.any():
            out[sel] = sol.sol(t_eval[sel])[1]
        y = sol.y[:, -1]
    return out, float(y[2])


def _check(pulse_times: np.ndarray) -> tuple[float, float]:
    """Lowest force over the hold windows (N) and the capacity A(T)/A_rest at the end."""
    t = np.arange(0.0, TASK.duration + 1e-9, 0.5e-3)
    f, a_end = ding2003_fatigue(pulse_times, t)
    lo = min(float(f[(t >= a - 1e-9) & (t <= b + 1e-9)].min()) for a, b in TASK.hold_windows())
    return lo, a_end / PUBLISHED["a_rest"]


def test_the_published_fatigue_values() -> None:
    p = default_parameters("ding2003", fatigue=True)
    for k, v in PUBLISHED.items():
        assert getattr(p, k) == pytest.approx(v), k


@pytest.fixture(scope="module")
def both() -> tuple[object, object]:
    p = default_parameters("ding2003", fatigue=True)
    return design_hold(TASK, p), constant_hold(TASK, p)


def test_the_designed_train_meets_the_task_with_less_fatigue(both: tuple) -> None:  # type: ignore[type-arg]
    designed, constant = both
    d_min, d_cap = _check(designed.schedule.t)
    c_min, c_cap = _check(constant.schedule.t)
    # both meet the task (independent integrator) ...
    assert d_min >= TASK.force, d_min
    assert c_min >= TASK.force, c_min
    # ... and the designed one leaves more force-generating capacity (less fatigue)
    assert d_cap > c_cap + 0.02, (d_cap, c_cap)
    # the project's kernel, which the design used, agrees with the independent integrator
    assert designed.capacity == pytest.approx(d_cap, abs=1e-4)
    assert constant.capacity == pytest.approx(c_cap, abs=1e-4)


def test_the_constant_baseline_is_the_slowest_that_meets(both: tuple) -> None:  # type: ignore[type-arg]
    """The next slower constant frequency on the 5 ms grid misses the floor (independent
    integrator); a faster one only tires the muscle more."""
    _, constant = both
    iv = round(1e3 / constant.frequency) * 1e-3
    for step, meets in ((iv + 5e-3, False), (iv - 5e-3, True)):
        one = np.round(np.arange(0.0, TASK.on - 1e-9, step), 6)
        times = (np.arange(TASK.contractions)[:, None] * TASK.period + one[None, :]).ravel()
        lo, cap = _check(times)
        assert (lo >= TASK.force) is meets, (step, lo)
        if meets:
            assert cap < constant.capacity


def test_the_designed_train_is_on_the_grid_and_safe(both: tuple) -> None:  # type: ignore[type-arg]
    designed, _ = both
    s = designed.schedule
    assert all(exact_us(t) is not None and exact_us(t) % 5000 == 0 for t in s.t)
    assert np.diff(s.t).min() >= 5e-3 - 1e-9
    on = (s.t % TASK.period) < TASK.on
    assert on.all()  # no pulse in the rests
    SafetyGuard(device_profile("sim"), {"ch1": 50e-4}).check(s)
    assert designed.meets and (designed.hold_min >= TASK.force).all()


def test_hold_task_errors() -> None:
    with pytest.raises(ModelError, match="fatigue model"):
        design_hold(TASK, default_parameters("ding2003"))
    with pytest.raises(ModelError, match="rise"):
        HoldTask(rise=0.6, on=0.5)
    with pytest.raises(ModelError, match="cannot hold"):
        design_hold(HoldTask(force=400.0, contractions=2), default_parameters("ding2003",
                                                                               fatigue=True))
