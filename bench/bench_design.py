"""Design benchmarks: the time to design a train for the trapezoid target of the tests
(Ding 2003, pulse times only, 2.2 s on the 5 ms slot grid of sim://), and its tracking
against the best constant-frequency train (project kernel, 5-60 Hz, four stop times).

Run with ``.venv/bin/python bench/run.py design``.
"""

from __future__ import annotations

import time

import numpy as np

from opennmes.design import Target, design_train
from opennmes.physiology import default_parameters, simulate_train

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


def run() -> list[dict]:  # type: ignore[type-arg]
    p = default_parameters("ding2003")
    t0 = time.perf_counter()
    res = design_train(TRAPEZOID, p)
    elapsed = time.perf_counter() - t0
    base, f = _best_constant(p)
    return [
        {"name": "design the Ding 2003 trapezoid (440 slots, pulse times)", "value":
         round(elapsed, 2), "unit": "s", "goal": "report", "passed": None,
         "note": f"{len(res.schedule)} pulses, {res.iterations} IPOPT iterations, "
                 f"{'converged' if res.converged else 'NOT converged'}"},
        {"name": "trapezoid tracking RMSE, designed / best constant", "value":
         round(res.rmse / base, 3), "unit": "", "goal": "<= 0.5", "passed": res.rmse <= 0.5 * base,
         "note": f"{res.rmse:.2f} N against {base:.2f} N at {f:g} Hz"},
    ]
