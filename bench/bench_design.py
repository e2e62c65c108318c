"""Design benchmarks: the time to design a train for the trapezoid target of the tests
(Ding 2003, pulse times only, 2.2 s on the 5 ms slot grid of sim://), and its tracking
against the best constant-frequency train (project kernel, 5-60 Hz, four stop times); the
fatiguing task of the tests (hold 150 N for 20 contractions); and, side by side in one run,
cocofest's pulse-width example solved by this project and by a straightforward CasADi/IPOPT
direct transcription with RK4, the way cocofest (bioptim) builds it.

cocofest's example (``examples/getting_started/pulse_width_optimization.py``, read, not
copied): Ding 2007 with fatigue (R0 from Km at rest, A scaled by the last pulse's width), 10
pulses every 20 ms in 0.2 s, widths between PD0 and 600 us (here PD0 + 1 us: the project's
kernel, the common reference, refuses widths at PD0, which make no force), objective
``integral(F^2 dt) + 1e5 (F(0.2 s) - 200 N)^2``. Here both start from rest (the example also
carries three earlier 500-us pulses) and both start IPOPT from all widths at 600 us. The
transcription below is written from the equations: states CN, F, A, tau1, Km; 10 shooting
intervals per pulse interval (2 ms), RK4 with 10 steps each (cocofest's
``OdeSolver.RK4(n_integration_steps=10)``), the pulse sum as an explicit forcing term,
multiple shooting, SX and exact Hessians, the integral by the left rectangle rule at the
nodes. Both width vectors are then scored on one common reference (the project's kernel,
0.1 ms steps, 100 kHz output).

Run with ``.venv/bin/python bench/run.py design``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from opennmes.design import (
    HoldTask,
    Target,
    constant_hold,
    design_hold,
    design_train,
    design_widths,
)
from opennmes.physiology import DingParameters, default_parameters, simulate_train

TRAPEZOID = Target(np.array([0.0, 0.1, 0.5, 1.5, 2.0, 2.2]),
                   np.array([0.0, 0.0, 270.0, 270.0, 0.0, 0.0]))


def _best_constant(params: object) -> tuple[float, float]:
    t = np.arange(0.0, 2.2 + 5e-4, 1e-3)
    lo, hi = TRAPEZOID.active
    act = (t >= lo) & (t <= hi)
    best = (np.inf, 0.0)
    for f in np.arange(5.0, 60.1, 2.5):
        for stop in (1.5, 1.65, 1.8, 2.0):
            pt = np.round(np.arange(lo, stop, 1.0 / f), 6)
            force = simulate_train(params, pt, t_end=2.2, sfreq=1000.0,  # type: ignore[arg-type]
                                   states=False)["force"]
            e = float(np.sqrt(np.mean((force[act] - TRAPEZOID.at(t[act])) ** 2)))
            best = min(best, (e, float(f)))
    return best


COCO_TIMES = np.arange(10) * 0.02
COCO_END, COCO_TARGET, COCO_WEIGHT = 0.2, 200.0, 1e5
COCO_MIN_WIDTH = 1e-6  # above PD0, s


def rk4_transcription(p: DingParameters, n_per: int = 10,
                      substeps: int = 10) -> tuple[np.ndarray, float, bool, int]:
    """cocofest-style direct multiple shooting with RK4 (see the module text): the widths,
    IPOPT's objective, success and iterations."""
    import casadi as ca

    tp = COCO_TIMES
    h = float(tp[1] - tp[0])
    dt = h / n_per
    r0 = p.km_rest + p.r0_offset
    rr = np.ones(tp.size)
    rr[1:] = 1.0 + (r0 - 1.0) * np.exp(-np.diff(tp) / p.tau_c)
    x = ca.SX.sym("x", 5)
    w = ca.SX.sym("w")
    t0 = ca.SX.sym("t0")
    gw = 1.0 - ca.exp(-(w - p.pd0) / p.pdt)

    def rhs(t: Any, y: Any, n_pulses: int) -> Any:
        cn, f, a, tau1, km = y[0], y[1], y[2], y[3], y[4]
        total = sum(rr[j] * ca.exp(-(t - tp[j]) / p.tau_c) for j in range(n_pulses))
        xx = cn / (km + cn)
        return ca.vertcat(total / p.tau_c - cn / p.tau_c,
                          a * gw * xx - f / (tau1 + p.tau2 * xx),
                          -(a - p.a_rest) / p.tau_fat + p.alpha_a * f,
                          -(tau1 - p.tau1_rest) / p.tau_fat + p.alpha_tau1 * f,
                          -(km - p.km_rest) / p.tau_fat + p.alpha_km * f)

    steps = []
    for i in range(tp.size):  # one integrator per number of pulses seen
        y: Any = x
        hs = dt / substeps
        for k in range(substeps):
            t = t0 + k * hs
            k1 = rhs(t, y, i + 1)
            k2 = rhs(t + hs / 2, y + hs / 2 * k1, i + 1)
            k3 = rhs(t + hs / 2, y + hs / 2 * k2, i + 1)
            k4 = rhs(t + hs, y + hs * k3, i + 1)
            y = y + hs / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        steps.append(ca.Function(f"rk4_{i}", [x, w, t0], [y]))
    n = tp.size * n_per
    X = ca.SX.sym("X", 5, n + 1)
    W = ca.SX.sym("W", tp.size)
    rest = np.array([0.0, 0.0, p.a_rest, p.tau1_rest, p.km_rest])
    g = [X[:, 0] - rest]
    J: Any = 0.0
    for k in range(n):
        i = k // n_per
        g.append(X[:, k + 1] - steps[i](X[:, k], W[i], k * dt))
        J = J + dt * X[1, k] ** 2
    J = J + COCO_WEIGHT * (X[1, n] - COCO_TARGET) ** 2
    solver = ca.nlpsol("rk4", "ipopt", {"x": ca.vertcat(ca.vec(X), W), "f": J,
                                         "g": ca.vertcat(*g)},
                       {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes",
                        "ipopt.max_iter": 500, "ipopt.tol": 1e-8})
    w0 = np.full(tp.size, 600e-6)
    xs = [rest]
    for k in range(n):  # initial guess: the rollout of the initial widths
        xs.append(np.asarray(steps[k // n_per](xs[-1], w0[k // n_per], k * dt)).ravel())
    lbx = np.concatenate([np.full(5 * (n + 1), -np.inf), np.full(tp.size, p.pd0 + COCO_MIN_WIDTH)])
    ubx = np.concatenate([np.full(5 * (n + 1), np.inf), np.full(tp.size, 600e-6)])
    sol = solver(x0=np.concatenate([np.asarray(xs).ravel(), w0]), lbx=lbx, ubx=ubx,
                 lbg=0.0, ubg=0.0)
    st = solver.stats()
    wopt = np.asarray(sol["x"]).ravel()[5 * (n + 1):]
    return wopt, float(sol["f"]), bool(st["success"]), int(st["iter_count"])


def coco_objective(p: DingParameters, widths: np.ndarray) -> tuple[float, float]:
    """The example's objective of a width vector on the common reference, and F(0.2 s)."""
    res = simulate_train(p, COCO_TIMES, t_end=COCO_END, sfreq=1e5, pulse_widths=widths,
                         states=False, hmax=1e-4)
    f = res["force"]
    integral = float(np.sum((f[1:] ** 2 + f[:-1] ** 2) / 2) * 1e-5)
    return integral + COCO_WEIGHT * (f[-1] - COCO_TARGET) ** 2, float(f[-1])


def _timed(fn: Any, repeat: int = 3) -> tuple[Any, float]:
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def cocofest_rows() -> list[dict]:  # type: ignore[type-arg]
    p = default_parameters("ding2007", fatigue=True, r0_from="rest")
    ours, t_ours = _timed(lambda: design_widths(
        p, COCO_TIMES, t_end=COCO_END, end_force=COCO_TARGET, end_weight=COCO_WEIGHT,
        min_width=p.pd0 + COCO_MIN_WIDTH, max_width=600e-6))
    (w_rk4, j_rk4, ok_rk4, it_rk4), t_rk4 = _timed(lambda: rk4_transcription(p))
    j_o, f_o = coco_objective(p, ours.widths)
    j_r, f_r = coco_objective(p, w_rk4)
    rel = abs(j_o - j_r) / j_r
    us = " ".join(f"{v * 1e6:.0f}" for v in ours.widths)
    ur = " ".join(f"{v * 1e6:.0f}" for v in w_rk4)
    return [
        {"name": "cocofest pulse-width example: objective, this project vs RK4 transcription",
         "value": round(100 * (j_o - j_r) / j_r, 3), "unit": "%", "goal": "within 1 %",
         "passed": rel <= 0.01,
         "note": f"reference objective {j_o:.1f} vs {j_r:.1f} N^2 s (F(0.2 s) {f_o:.2f} vs "
                 f"{f_r:.2f} N); own objectives {ours.objective:.1f} vs {j_rk4:.1f}; widths "
                 f"(us) [{us}] vs [{ur}]"},
        {"name": "cocofest pulse-width example: time to solve (build + IPOPT), median of 3",
         "value": round(t_ours, 3), "unit": "s", "goal": "report", "passed": None,
         "note": f"this project: {ours.iterations} IPOPT iterations, "
                 f"{'converged' if ours.converged else 'NOT converged'}; RK4 transcription: "
                 f"{t_rk4:.3f} s, {it_rk4} iterations, "
                 f"{'converged' if ok_rk4 else 'NOT converged'}"},
        {"name": "cocofest pulse-width example: speed-up over the RK4 transcription",
         "value": round(t_rk4 / t_ours, 1), "unit": "x", "goal": ">= 10x",
         "passed": t_rk4 / t_ours >= 10.0, "note": "same machine, same run, same IPOPT"},
    ]


def hold_rows() -> list[dict]:  # type: ignore[type-arg]
    p = default_parameters("ding2003", fatigue=True)
    task = HoldTask(force=150.0, contractions=20, on=0.5, off=1.5, rise=0.2)
    t0 = time.perf_counter()
    d = design_hold(task, p)
    elapsed = time.perf_counter() - t0
    c = constant_hold(task, p)
    return [
        {"name": "hold 150 N for 20 contractions: capacity A(T)/A_rest, designed",
         "value": round(d.capacity, 4), "unit": "", "goal": "> best constant",
         "passed": d.capacity > c.capacity and d.meets and c.meets,
         "note": f"best constant {c.frequency:.2f} Hz: {c.capacity:.4f} ({len(c.schedule)} "
                 f"pulses); designed {len(d.schedule)} pulses, lowest hold force "
                 f"{d.hold_min.min():.1f} N (constant {c.hold_min.min():.1f} N), "
                 f"designed in {elapsed:.1f} s"},
    ]


def run() -> list[dict]:  # type: ignore[type-arg]
    rows = cocofest_rows() + hold_rows()
    p = default_parameters("ding2003")
    t0 = time.perf_counter()
    res = design_train(TRAPEZOID, p)
    elapsed = time.perf_counter() - t0
    base, f = _best_constant(p)
    return rows + [
        {"name": "design the Ding 2003 trapezoid (440 slots, pulse times)", "value":
         round(elapsed, 2), "unit": "s", "goal": "report", "passed": None,
         "note": f"{len(res.schedule)} pulses, {res.iterations} IPOPT iterations, "
                 f"{'converged' if res.converged else 'NOT converged'}"},
        {"name": "trapezoid tracking RMSE, designed / best constant", "value":
         round(res.rmse / base, 3), "unit": "", "goal": "<= 0.5", "passed": res.rmse <= 0.5 * base,
         "note": f"{res.rmse:.2f} N against {base:.2f} N at {f:g} Hz"},
    ]
