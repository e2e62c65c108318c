"""Reference solution of the Ding-family equations with SciPy's adaptive solvers.

This integrates all five states ``[CN, F, A, Km, tau1]`` as ordinary differential equations
(CN included, so it does not share the compiled kernels' closed form), restarting the solver at
every pulse because the CN derivative jumps there. It is slow and exists to check the compiled
kernels (tests, benchmarks), never to run sessions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from opennmes.physiology._ding import DingParameters

__all__ = ["reference_solution", "cocofest_rk4"]


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
    from scipy.integrate import solve_ivp

    tp = np.asarray(pulse_times, dtype=np.float64)
    te = np.asarray(t_eval, dtype=np.float64)
    w = np.ones_like(tp) if lam is None else np.asarray(lam, dtype=np.float64)
    gg = np.ones_like(tp) if g is None else np.asarray(g, dtype=np.float64)
    tau_c, tau2 = params.tau_c, params.tau2
    fat = params.fatigue
    out = np.empty((5, te.size))
    y = np.array([0.0, 0.0, params.a_rest, params.km_rest, params.tau1_rest])
    bounds = np.concatenate([[0.0], tp[tp > 0], [max(te[-1], tp[-1] if tp.size else 0.0)]])
    # output samples of each interval [t0, t1) (the last one closed) by bisection, not by
    # scanning the whole output per pulse interval
    first = np.searchsorted(te, bounds, side="left")
    first[-1] = te.size
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
        i0, i1 = first[k], first[k + 1]
        if t1 <= t0:
            out[:, i0:i1] = y[:, None]
            continue
        sol = solve_ivp(rhs, (t0, t1), y, method=method, rtol=rtol, atol=atol,
                        dense_output=bool(i1 > i0), args=(pulse_sum, t_last, g_now))
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed on [{t0}, {t1}] s: {sol.message}")
        if i1 > i0:
            out[:, i0:i1] = sol.sol(te[i0:i1])
        y = sol.y[:, -1]
    return out


def cocofest_rk4(
    params: DingParameters,
    pulse_times: npt.ArrayLike,
    *,
    t_end: float,
    n_shooting: int,
    truncation: int = 10,
    substeps: int = 10,
    lam: npt.ArrayLike | None = None,
    g: npt.ArrayLike | None = None,
) -> np.ndarray:
    """The discretisation of cocofest's ``test_ivp`` fixtures (reference section 6.3).

    Fixed-step RK4 of all five states on ``n_shooting`` equal intervals of ``[0, t_end]``,
    ``substeps`` steps each. On interval ``k`` the pulse list is frozen to the pulses at or
    before its start, truncated to the last ``truncation``; the first retained pulse has
    ``R = 1``; Ding 2007's force scale is the last retained pulse's. This reproduces that
    project's published numbers to ~1e-9 and exists only to check them: it is not an accurate
    solver (its error is ~0.5 % on 10-ms intervals).

    Returns
    -------
    ndarray, shape (5, n_shooting + 1)
        Rows CN, F, A, tau1, Km (the paper's order) at the node times.
    """
    tp = np.asarray(pulse_times, dtype=np.float64)
    w = np.ones_like(tp) if lam is None else np.asarray(lam, dtype=np.float64)
    gg = np.ones_like(tp) if g is None else np.asarray(g, dtype=np.float64)
    tau_c, tau2 = params.tau_c, params.tau2
    r0 = params.km_rest + params.r0_offset
    y = np.array([0.0, 0.0, params.a_rest, params.tau1_rest, params.km_rest])
    out = np.empty((5, n_shooting + 1))
    out[:, 0] = y
    dt = t_end / n_shooting

    def rhs(t: float, s: np.ndarray, ts: np.ndarray, ws: np.ndarray, rs: np.ndarray,
            gv: float) -> np.ndarray:
        cn, f, a, tau1, km = s
        total = float(np.sum(ws * rs * np.exp(-(t - ts) / tau_c))) if ts.size else 0.0
        x = cn / (km + cn)
        d = [total / tau_c - cn / tau_c, a * gv * x - f / (tau1 + tau2 * x), 0.0, 0.0, 0.0]
        if params.fatigue:
            d[2] = -(a - params.a_rest) / params.tau_fat + params.alpha_a * f
            d[3] = -(tau1 - params.tau1_rest) / params.tau_fat + params.alpha_tau1 * f
            d[4] = -(km - params.km_rest) / params.tau_fat + params.alpha_km * f
        return np.array(d)

    for k in range(n_shooting):
        t0 = k * dt
        idx = np.flatnonzero(tp <= t0 + 1e-12)[-truncation:]
        ts, ws = tp[idx], w[idx]
        rs = np.ones(idx.size)
        if idx.size > 1:
            rs[1:] = 1.0 + (r0 - 1.0) * np.exp(-np.diff(ts) / tau_c)
        gv = float(gg[idx[-1]]) if idx.size else 1.0
        h = dt / substeps
        for i in range(substeps):
            t = t0 + i * h
            k1 = rhs(t, y, ts, ws, rs, gv)
            k2 = rhs(t + h / 2, y + h / 2 * k1, ts, ws, rs, gv)
            k3 = rhs(t + h / 2, y + h / 2 * k2, ts, ws, rs, gv)
            k4 = rhs(t + h, y + h * k3, ts, ws, rs, gv)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out[:, k + 1] = y
    return out
