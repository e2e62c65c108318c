"""Reference solution of the Ding-family equations with SciPy's adaptive solvers.

This integrates all five states ``[CN, F, A, Km, tau1]`` as ordinary differential equations
(CN included, so it does not share the compiled kernels' closed form), restarting the solver at
every pulse because the CN derivative jumps there. It is slow and exists to check the compiled
kernels (tests, benchmarks), never to run sessions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.integrate import solve_ivp

from opennmes.physiology._ding import DingParameters

__all__ = ["reference_solution"]


def reference_solution(
    params: DingParameters,
    pulse_times: npt.ArrayLike,
    t_eval: npt.ArrayLike,
    *,
    lam: npt.ArrayLike | None = None,
    g: npt.ArrayLike | None = None,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-10,
) -> np.ndarray:
    """States at ``t_eval`` from ``solve_ivp`` with pulse breakpoints.

    Parameters
    ----------
    params : DingParameters
        Model.
    pulse_times : array_like
        Sorted pulse times in s.
    t_eval : array_like
        Sorted output times in s (from 0).
    lam, g : array_like, optional
        Per-pulse CN weights and force scales (see :func:`pulse_weights`); 1 by default.
    method, rtol, atol
        Passed to :func:`scipy.integrate.solve_ivp`.

    Returns
    -------
    ndarray, shape (5, n)
        Rows CN, F (N), A (N/s), Km, tau1 (s).
    """
    tp = np.asarray(pulse_times, dtype=np.float64)
    te = np.asarray(t_eval, dtype=np.float64)
    w = np.ones_like(tp) if lam is None else np.asarray(lam, dtype=np.float64)
    gg = np.ones_like(tp) if g is None else np.asarray(g, dtype=np.float64)
    tau_c, tau2 = params.tau_c, params.tau2
    fat = params.fatigue
    out = np.empty((5, te.size))
    y = np.array([0.0, 0.0, params.a_rest, params.km_rest, params.tau1_rest])
    bounds = np.concatenate([[0.0], tp[tp > 0], [max(te[-1], tp[-1] if tp.size else 0.0)]])
    pulse_sum = 0.0
    t_last = 0.0
    g_now = 1.0
    n_seen = 0
    ip = 0

    def rhs(t: float, s: np.ndarray, s0: float, tl: float, gv: float) -> np.ndarray:
        cn, f, a, km, tau1 = s
        dcn = (s0 * np.exp(-(t - tl) / tau_c) - cn) / tau_c
        x = cn / (km + cn)
        df = a * gv * x - f / (tau1 + tau2 * x)
        if not fat:
            return np.array([dcn, df, 0.0, 0.0, 0.0])
        return np.array([
            dcn, df,
            -(a - params.a_rest) / params.tau_fat + params.alpha_a * f,
            -(km - params.km_rest) / params.tau_fat + params.alpha_km * f,
            -(tau1 - params.tau1_rest) / params.tau_fat + params.alpha_tau1 * f,
        ])

    for k in range(bounds.size - 1):
        t0, t1 = bounds[k], bounds[k + 1]
        while ip < tp.size and tp[ip] <= t0:
            # register the pulse: the sum term jumps by lam R
            if n_seen == 0:
                r = 1.0
            else:
                km = y[3] if params.r0_from == "state" else params.km_rest
                r = 1.0 + (km + params.r0_offset - 1.0) * np.exp(-(tp[ip] - t_last) / tau_c)
            pulse_sum = pulse_sum * np.exp(-(tp[ip] - t_last) / tau_c) + w[ip] * r
            t_last = tp[ip]
            g_now = gg[ip]
            n_seen += 1
            ip += 1
        mask = (te >= t0) & ((te < t1) | (k == bounds.size - 2))
        if t1 <= t0:
            if mask.any():
                out[:, mask] = y[:, None]
            continue
        sol = solve_ivp(rhs, (t0, t1), y, method=method, rtol=rtol, atol=atol,
                        dense_output=bool(mask.any()), args=(pulse_sum, t_last, g_now))
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed on [{t0}, {t1}] s: {sol.message}")
        if mask.any():
            out[:, mask] = sol.sol(te[mask])
        y = sol.y[:, -1]
    return out
