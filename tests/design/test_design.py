"""Design of pulse trains: a trapezoid on Ding 2003 checked by an independent integrator,
the device grid and guard, files, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opennmes.design import Target, design_train, read_target, time_grid
from opennmes.errors import ModelError, SignalError
from opennmes.physiology import default_parameters
from opennmes.safety import SafetyGuard, device_profile
from opennmes.schedule import PulseSchedule, exact_us

# Ding J, Wexler AS, Binder-Macleod SA (2003) J Electromyogr Kinesiol 13:575-588, quadriceps
# (values as in pyomeca/cocofest, SI): A = 3009 N/s, tau1 = 50.957 ms, tau2 = 60 ms,
# Km = 0.103, tau_c = 20 ms, R0 = Km + 1.04.
PUBLISHED = dict(a_rest=3009.0, tau1_rest=0.050957, tau2=0.060, km_rest=0.103, tau_c=0.020,
                 r0_offset=1.04)
# Ding J, Chou L-W, Kesar TM et al. (2007) Muscle Nerve 36:214-222 (values as in
# pyomeca/cocofest, SI): A_scale = 4920 N/s, PD0 = 131.405 us, PDt = 194.138 us,
# tau1 = 60.601 ms, tau2 = 1 ms, Km = 0.137, tau_c = 11 ms, R0 = Km + 1.04; A is scaled by
# 1 - exp(-(PD - PD0)/PDt) of the most recent pulse.
PUBLISHED_2007 = dict(a_rest=4920.0, tau1_rest=0.060601, tau2=0.001, km_rest=0.137,
                      tau_c=0.011, r0_offset=1.04, pd0=0.000131405, pdt=0.000194138)

TRAPEZOID = Target(np.array([0.0, 0.1, 0.5, 1.5, 2.0, 2.2]),
                   np.array([0.0, 0.0, 270.0, 270.0, 0.0, 0.0]))


def ding2003_force(pulse_times: np.ndarray, t_eval: np.ndarray,
                   widths: np.ndarray | None = None) -> np.ndarray:
    """F(t) of the published Ding 2003 equations, written here (not the project's kernel),
    integrated by scipy's solve_ivp (DOP853) pulse to pulse, CN as an ODE state::

        dCN/dt = (1/tau_c) sum_i R_i exp(-(t - t_i)/tau_c) - CN/tau_c
        R_i = 1 + (R0 - 1) exp(-(t_i - t_{i-1})/tau_c),  R_1 = 1
        dF/dt = A CN/(Km + CN) - F/(tau1 + tau2 CN/(Km + CN))

    With ``widths`` (s), Ding 2007: its values, and A times ``1 - exp(-(PD - PD0)/PDt)`` of
    the most recent pulse.
    """
    from scipy.integrate import solve_ivp

    P = PUBLISHED if widths is None else PUBLISHED_2007
    a, tau1, tau2, km, tau_c = (P[k] for k in ("a_rest", "tau1_rest", "tau2", "km_rest",
                                               "tau_c"))
    r0 = km + P["r0_offset"]
    gw = None if widths is None else \
        1.0 - np.exp(-(np.asarray(widths, dtype=float) - P["pd0"]) / P["pdt"])
    tp = np.asarray(pulse_times, dtype=float)
    r = np.ones_like(tp)
    r[1:] = 1.0 + (r0 - 1.0) * np.exp(-np.diff(tp) / tau_c)

    def rhs(t: float, y: np.ndarray, k: int) -> list[float]:
        cn, f = y
        s = float(np.sum(r[:k] * np.exp(-(t - tp[:k]) / tau_c)))
        x = cn / (km + cn)
        ak = a if gw is None else (a * gw[k - 1] if k else 0.0)
        return [s / tau_c - cn / tau_c, ak * x - f / (tau1 + tau2 * x)]

    out = np.zeros(t_eval.size)
    y = np.zeros(2)
    edges = np.concatenate([[0.0], tp, [t_eval[-1]]])
    for k in range(edges.size - 1):
        t0, t1 = edges[k], edges[k + 1]
        if t1 <= t0:
            continue
        sel = (t_eval >= t0) & (t_eval <= t1)
        sol = solve_ivp(rhs, (t0, t1), y, method="DOP853", rtol=1e-9, atol=1e-9,
                        dense_output=True, args=(k,))
        if sel.any():
            out[sel] = sol.sol(t_eval[sel])[1]
        y = sol.y[:, -1]
    return out


def _rmse(pulse_times: np.ndarray, target: Target) -> float:
    lo, hi = target.active
    t = np.arange(0.0, target.t[-1] + 1e-9, 1e-3)
    act = (t >= lo) & (t <= hi)
    f = ding2003_force(pulse_times, t)
    return float(np.sqrt(np.mean((f[act] - target.at(t[act])) ** 2)))


def test_the_published_ding2003_values() -> None:
    p = default_parameters("ding2003")
    for k, v in PUBLISHED.items():
        assert getattr(p, k) == pytest.approx(v), k


@pytest.fixture(scope="module")
def trapezoid() -> object:
    return design_train(TRAPEZOID, default_parameters("ding2003"))


def test_trapezoid_beats_the_best_constant_frequency_train_by_half(trapezoid: object) -> None:
    """Independent solve_ivp force: the designed train's RMSE over the active interval is at
    most half that of the best constant-frequency train (5-60 Hz, 40 Hz already gives 279 N;
    from the target's onset, stopping at the best of four times in the fall)."""
    from opennmes.physiology import simulate_train

    res = trapezoid
    designed = _rmse(res.schedule.t, TRAPEZOID)  # type: ignore[attr-defined]
    onset = TRAPEZOID.active[0]
    t = np.arange(0.0, TRAPEZOID.t[-1] + 1e-9, 1e-3)
    lo, hi = TRAPEZOID.active
    act = (t >= lo) & (t <= hi)
    trains = [np.round(np.arange(onset, stop, 1.0 / f), 6)
              for f in np.arange(5.0, 60.1, 2.5) for stop in (1.5, 1.65, 1.8, 2.0)]

    def kernel_rmse(pt: np.ndarray) -> float:
        f = simulate_train(res.params, pt, t_end=float(t[-1]), sfreq=1000.0,  # type: ignore[attr-defined]
                           states=False)["force"]
        return float(np.sqrt(np.mean((f[act] - TRAPEZOID.at(t[act])) ** 2)))

    # the 92 constant trains ranked by the project's kernel (the independent integrator is
    # too slow for all of them on a loaded machine); the best three by the integrator
    ranked = sorted(trains, key=kernel_rmse)[:3]
    best = min(_rmse(pt, TRAPEZOID) for pt in ranked)
    assert designed <= 0.5 * best, (designed, best)
    # the project's kernel, which the design used, agrees with the independent integrator
    assert res.rmse == pytest.approx(designed, rel=0.05, abs=0.2)  # type: ignore[attr-defined]


def test_the_train_is_on_the_grid_and_passes_the_guard(trapezoid: object,
                                                       tmp_path: Path) -> None:
    s = trapezoid.schedule  # type: ignore[attr-defined]
    assert len(s) >= 5
    assert all(exact_us(t) is not None and exact_us(t) % 5000 == 0 for t in s.t)
    assert np.diff(s.t).min() >= 5e-3 - 1e-9
    SafetyGuard(device_profile("sim"), {"ch1": 50e-4}).check(s)
    path = tmp_path / "pulses.csv"
    s.write(str(path))
    back = PulseSchedule.read(str(path))
    assert back.equals(s, atol_t=0.0, atol_a=0.0)


P24_TARGET = Target(np.array([0.0, 0.05, 0.25, 0.45, 0.6, 0.7]),
                    np.array([0.0, 0.0, 150.0, 150.0, 0.0, 0.0]))


@pytest.fixture(scope="module")
def p24_design() -> object:
    return design_train(P24_TARGET, default_parameters("ding2007"), device="p24",
                        min_interval=6e-3)


def test_the_published_ding2007_values() -> None:
    p = default_parameters("ding2007")
    for k, v in PUBLISHED_2007.items():
        assert getattr(p, k) == pytest.approx(v), k


def test_ding2007_widths_beat_the_best_constant_train_by_half(p24_design: object) -> None:
    """Independent solve_ivp force (Ding 2007, last pulse's width): the designed times and
    widths have at most half the RMSE of the best constant train (10-100 Hz, one width
    200-600 us, four stop times) over the active interval (measured: 4.4 N against 17.6 N)."""
    from opennmes.physiology import simulate_train

    res = p24_design
    target = P24_TARGET
    t = np.arange(0.0, target.t[-1] + 1e-9, 1e-3)
    lo, hi = target.active
    act = (t >= lo) & (t <= hi)

    def err(f: np.ndarray) -> float:
        return float(np.sqrt(np.mean((f[act] - target.at(t[act])) ** 2)))

    s = res.schedule  # type: ignore[attr-defined]
    designed = err(ding2003_force(s.t, t, s.phase_width))
    trains = [(np.round(np.arange(lo, stop, 1.0 / f), 6), w)
              for f in np.arange(10.0, 100.1, 2.5) for w in np.arange(200e-6, 601e-6, 50e-6)
              for stop in (0.45, 0.5, 0.55, 0.6)]

    def kernel(pw: tuple[np.ndarray, float]) -> float:
        return err(simulate_train(res.params, pw[0], t_end=float(t[-1]), sfreq=1000.0,  # type: ignore[attr-defined]
                                  pulse_widths=pw[1], states=False)["force"])

    ranked = sorted(trains, key=kernel)[:3]  # ranked by the kernel, the best three checked
    best = min(err(ding2003_force(pt, t, np.full(pt.size, w))) for pt, w in ranked)
    assert designed <= 0.5 * best, (designed, best)
    assert res.rmse == pytest.approx(designed, rel=0.05, abs=0.2)  # type: ignore[attr-defined]


def test_the_p24_grid_and_ding2007_widths(p24_design: object) -> None:
    """Ding 2007 on the P24: times on its 0.25 ms grid, widths on whole microseconds above
    the model's threshold and within the bound, and the force tracks the target."""
    target = P24_TARGET
    p = default_parameters("ding2007")
    res = p24_design
    s = res.schedule  # type: ignore[attr-defined]
    assert time_grid("p24") == 0.25e-3
    assert all(exact_us(t) is not None and exact_us(t) % 250 == 0 for t in s.t)
    assert np.diff(s.t).min() >= 6e-3 - 1e-9
    assert all(exact_us(w) is not None for w in s.phase_width)
    assert s.phase_width.min() > p.pd0 and s.phase_width.max() <= 600e-6 + 1e-12
    assert res.rmse < 0.1 * target.peak  # type: ignore[attr-defined]
    assert set(res.pulses_table()) == {"t", "pulse_width"}  # type: ignore[attr-defined]


def test_clear_errors() -> None:
    with pytest.raises(ModelError, match="fatigue model"):
        design_train(TRAPEZOID, default_parameters("ding2003"), objective="fatigue")
    with pytest.raises(ModelError, match="below what RehaStim 2 can play"):
        design_train(TRAPEZOID, default_parameters("ding2003"), device="rehastim2",
                     min_interval=1e-3)
    with pytest.raises(ModelError, match="unknown objective"):
        design_train(TRAPEZOID, default_parameters("ding2003"), objective="speed")


@pytest.mark.parametrize(("text", "match"), [
    ("", "empty"),
    ("t,f\n0,1\n", "missing column"),
    ("t,force\n0,0\n0.1,abc\n", "force row 2"),
    ("t,force\n0,0\n0,5\n", "times must increase"),
    ("t,force\n0,0\n1,-5\n", "negative"),
    ("t,force\n0,0\n1,0\n", "0 N everywhere"),
])
def test_bad_target_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "target.csv"
    path.write_text(text)
    with pytest.raises(SignalError, match=match):
        read_target(path)


def test_design_widths_solves_the_cocofest_pulse_width_problem() -> None:
    """Ten pulses every 20 ms (Ding 2007 with fatigue, R0 from Km at rest as cocofest):
    minimise integral(F^2) + 1e5 (F(0.2 s) - 200 N)^2. The optimum reaches 200 N at the end
    (the project's kernel agrees within 0.05 N) with the early pulses near PD0 and the late
    ones at 600 us; the bench compares it with an RK4 transcription."""
    from opennmes.design import design_widths
    from opennmes.physiology import simulate_train

    p = default_parameters("ding2007", fatigue=True, r0_from="rest")
    times = np.arange(10) * 0.02
    res = design_widths(p, times, t_end=0.2, end_force=200.0, end_weight=1e5,
                        min_width=p.pd0 + 1e-6)
    assert res.converged
    w = res.widths
    assert (w >= p.pd0 + 1e-6 - 1e-12).all() and (w <= 600e-6 + 1e-12).all()
    assert w[0] < 150e-6 and w[-1] == pytest.approx(600e-6)
    f = simulate_train(p, times, t_end=0.2, sfreq=1e5, pulse_widths=w, states=False,
                       hmax=1e-4)["force"]
    assert f[-1] == pytest.approx(200.0, abs=0.05)
    with pytest.raises(ModelError, match="evenly spaced"):
        design_widths(p, np.array([0.0, 0.02, 0.05]), t_end=0.07, end_force=200.0,
                      end_weight=1e5)
    with pytest.raises(ModelError, match="one interval"):
        design_widths(p, times, t_end=0.25, end_force=200.0, end_weight=1e5)


def test_hmed2018_amplitudes_converge() -> None:
    """Hmed 2018 (times and amplitudes): every IPOPT solve converges (the pulses are chosen
    at a fixed amplitude, then the amplitudes are solved; before, the relaxed problem ran to
    its iteration limit), amplitudes on the device's step between the model's threshold and
    the bound, and the force tracks the target."""
    target = Target(np.array([0.0, 0.05, 0.25, 0.45, 0.6, 0.7]),
                    np.array([0.0, 0.0, 150.0, 150.0, 0.0, 0.0]))
    p = default_parameters("hmed2018")
    res = design_train(target, p, device="p24")
    assert res.converged
    amp = res.schedule.amplitude
    assert amp.min() > 0.01703 and amp.max() <= 0.100 + 1e-12  # lam > 0 above 17.03 mA
    np.testing.assert_allclose(amp / 0.5e-3, np.rint(amp / 0.5e-3), atol=1e-6)
    assert res.rmse < 0.1 * target.peak
    assert set(res.pulses_table()) == {"t", "amplitude"}
