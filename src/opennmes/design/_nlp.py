"""The design problem as a CasADi NLP on the device's slot grid, solved by IPOPT.

Candidate pulses sit on a grid of slots ``t_k = t_0 + k h`` (``h`` the minimum interval,
on the device's time grid). Each slot carries a pulse weight ``u_k`` in [0, 1] (1: a pulse,
0: none; relaxed to the interval for the first solve) and, where the model has it, the
pulse's width (Ding 2007) or amplitude (Hmed 2018).

The model is stepped slot to slot with the exact pulse-to-pulse solution the project's
kernels use (``physiology/_kernels.py``): between pulses ``CN(s) = (C + S s/tau_c)
exp(-s/tau_c)``, so ``C`` and ``S`` advance exactly; a pulse adds ``lam R`` to ``S`` with
``R = 1 + (R0 - 1) Q``, where ``Q = exp(-(t - t_last)/tau_c)`` is a state that a pulse resets
to 1. With a relaxed weight the resets are blended, ``S += u lam R`` and
``Q <- (1 - u) Q + u`` (and the Ding 2007 force factor ``G <- (1 - u) G + u g(w)``); for
``u`` in {0, 1} this is the model exactly. Only F and the slow fatigue states are integrated
numerically (classical RK4, ``m`` sub-steps per slot, CN known in closed form at every
stage). Multiple shooting: every slot's state is a variable, joined by equality constraints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from opennmes.physiology import DingParameters

__all__ = ["SlotProblem", "NlpSolution", "SUBSTEP", "FULL_STATES"]

SUBSTEP = 2.5e-3
"""Longest RK4 sub-step of F inside a slot, s (tau1 ~ 50 ms, tau_c >= 11 ms)."""

FULL_STATES = ("C", "S", "Q", "G", "F", "A", "Km", "tau1")
"""The states :meth:`SlotProblem.simulate` returns, in order: CN's closed-form coefficients
``C`` and ``S``, the decay ``Q`` since the last pulse, the Ding 2007 factor ``G``, the force
and the fatigue states."""


@dataclass(frozen=True)
class NlpSolution:
    """What one IPOPT solve returned."""

    u: np.ndarray
    v: np.ndarray
    objective: float
    converged: bool
    iterations: int
    status: str


class SlotProblem:
    """The design NLP of one muscle on ``n`` slots of ``h`` s.

    Parameters
    ----------
    params : DingParameters
        The force model (its ``fatigue`` flag switches the fatigue states on).
    h : float
        Slot length, s (the minimum interval between pulses).
    fstar : ndarray, shape (n, m + 1)
        Target force (N) at each slot's sub-step nodes.
    decide : {"none", "width", "amplitude"}
        What each pulse carries besides its time.
    fixed_value : float
        The model's per-pulse weight when nothing is decided: g(width) for Ding 2007,
        lam(amplitude) for Hmed 2018, 1 for Ding 2003.
    bounds : tuple of float
        Bounds of the decided value (s for a width, A for an amplitude).
    objective : {"tracking", "fatigue", "charge"}
    weight : float
        Weight of the fatigue or charge term against the normalised tracking error.
    f_ref : float
        Force that normalises the tracking error (the target's peak), N.
    t_total : float
        Length of the tracked interval, s: the tracking term is the mean squared error over
        it divided by ``f_ref**2``.

    The fatigue term is the loss of A at the end, ``(A_rest - A(T)) / A_rest``; the charge
    term is ``sum_k u_k q_k / n`` with ``q_k`` the decided value over its upper bound (the
    pulse's charge relative to the largest, amplitude and width being proportional to it),
    or 1 when nothing is decided (then charge is the share of slots that pulse).

    end : (force, weight), optional
        Adds ``weight (F(T) - force)**2`` (N^-2 weight, force in N): the force at the end of
        the last slot, as in cocofest's "end node tracking".
    graph : {"sx", "mx"}
        How the NLP is built around the mapped slot step: ``sx`` expands every slot (fast
        iterations, slow to build: 72 s for the 440-slot trapezoid under load); ``mx`` keeps
        one call of the mapped step, which CasADi differentiates once (quick to build, slower
        iterations: 1.3 s instead of 3.1 s for 10 slots, 177 s instead of 72 s for 440).
    """

    def __init__(self, params: DingParameters, h: float, fstar: np.ndarray, *,
                 decide: str, fixed_value: float, bounds: tuple[float, float],
                 objective: str, weight: float, f_ref: float, t_total: float,
                 end: tuple[float, float] | None = None, graph: str = "sx") -> None:
        import casadi as ca

        self.params = params
        self.n, m1 = fstar.shape
        self.m = m1 - 1
        self.h = h
        self.decide = decide
        self.bounds = bounds
        self.objective = objective
        self.weight = weight
        p = params
        # only the states that change are NLP variables
        names = ["C", "S", "Q"]
        if p.model == "ding2007" and p.pd_effect == "last_pulse":
            names.append("G")
        names.append("F")
        if p.fatigue:
            names += ["A", "Km", "tau1"]
        self.states = tuple(names)
        self.nx = len(names)
        rest = {"C": 0.0, "S": 0.0, "Q": 0.0, "G": 0.0, "F": 0.0, "A": p.a_rest,
                "Km": p.km_rest, "tau1": p.tau1_rest}
        self._rest = rest
        self._x0 = np.array([rest[k] for k in names])
        self._full = [FULL_STATES.index(k) for k in names]
        tau_c = p.tau_c
        x = ca.SX.sym("x", self.nx)
        xs: dict[str, Any] = dict(rest)
        xs.update({k: x[i] for i, k in enumerate(names)})
        u = ca.SX.sym("u")
        v = ca.SX.sym("v")
        fs = ca.SX.sym("fs", self.m + 1)
        km_r0 = xs["Km"] if p.r0_from == "state" else p.km_rest
        r = 1.0 + (km_r0 + p.r0_offset - 1.0) * xs["Q"]
        lam: Any = 1.0
        gv: Any = 1.0
        if p.model == "ding2007":
            gv = 1.0 - ca.exp(-(v - p.pd0) / p.pdt) if decide == "width" else fixed_value
            if p.pd_effect == "per_pulse":  # each pulse's CN term carries its own factor
                lam, gv = gv, 1.0
        elif p.model == "hmed2018":
            lam = (p.ar * (ca.tanh(p.bs * (v - p.is_)) + p.cr) if decide == "amplitude"
                   else fixed_value)
        c0 = xs["C"]
        s0 = xs["S"] + u * lam * r
        g = (1.0 - u) * xs["G"] + u * gv if "G" in names else gv
        q0 = (1.0 - u) * xs["Q"] + u
        hs = h / self.m

        def rhs(s: float, y: list[Any]) -> list[Any]:
            fy, ay, ky, ty = y
            c = (c0 + s0 * s / tau_c) * math.exp(-s / tau_c)
            xx = c / (ky + c)
            d = [ay * g * xx - fy / (ty + p.tau2 * xx), 0.0, 0.0, 0.0]
            if p.fatigue:
                d[1] = -(ay - p.a_rest) / p.tau_fat + p.alpha_a * fy
                d[2] = -(ky - p.km_rest) / p.tau_fat + p.alpha_km * fy
                d[3] = -(ty - p.tau1_rest) / p.tau_fat + p.alpha_tau1 * fy
            return d

        y = [xs["F"], xs["A"], xs["Km"], xs["tau1"]]
        cost: Any = 0.0
        err0 = (y[0] - fs[0]) ** 2
        fnodes = [y[0]]
        for i in range(self.m):
            s = i * hs
            k1 = rhs(s, y)
            k2 = rhs(s + hs / 2, [yy + hs / 2 * kk for yy, kk in zip(y, k1, strict=True)])
            k3 = rhs(s + hs / 2, [yy + hs / 2 * kk for yy, kk in zip(y, k2, strict=True)])
            k4 = rhs(s + hs, [yy + hs * kk for yy, kk in zip(y, k3, strict=True)])
            y = [yy + hs / 6 * (a1 + 2 * a2 + 2 * a3 + a4)
                 for yy, a1, a2, a3, a4 in zip(y, k1, k2, k3, k4, strict=True)]
            fnodes.append(y[0])
            err1 = (y[0] - fs[i + 1]) ** 2
            cost = cost + hs / 2 * (err0 + err1)
            err0 = err1
        e = math.exp(-h / tau_c)
        nxt = {"C": (c0 + s0 * h / tau_c) * e, "S": s0 * e, "Q": q0 * e, "G": g, "F": y[0],
               "A": y[1], "Km": y[2], "tau1": y[3]}
        self._step = ca.Function("step", [x, u, v, fs], [ca.vertcat(*[nxt[k] for k in names]),
                                                          cost, ca.vertcat(*fnodes)])
        self._fstar = fstar
        self._scale = 1.0 / (t_total * f_ref ** 2)
        self._solver: Any = None
        self._roll: Any = None
        self._paths: dict[int, Any] = {}
        self._end = end
        if graph not in ("sx", "mx"):
            raise ValueError(f"graph = {graph!r}: 'sx' or 'mx'")
        self._graph = graph

    # ------------------------------------------------------------------ build and solve
    def _build(self) -> None:
        import casadi as ca

        n, nx = self.n, self.nx
        sym: Any = ca.MX.sym if self._graph == "mx" else ca.SX.sym
        X = sym("X", nx, n + 1)
        U = sym("U", n)
        V = sym("V", n)
        xn, cost, _ = self._step.map(n)(X[:, :n], U.T, V.T, ca.DM(self._fstar.T))
        J = ca.sum2(cost) * self._scale
        if self.objective == "fatigue":
            p = self.params
            J = J + self.weight * (p.a_rest - X[self.states.index("A"), n]) / p.a_rest
        elif self.objective == "charge":
            per = V / self.bounds[1] if self.decide != "none" else ca.DM.ones(n)
            J = J + self.weight * ca.dot(U, per) / n
        if self._end is not None:
            J = J + self._end[1] * (X[self.states.index("F"), n] - self._end[0]) ** 2
        # a concave penalty on fractional weights, raised step by step, drives them to 0 or 1
        beta = sym("beta")
        J = J + beta * ca.dot(U, 1.0 - U) / n
        g = ca.vertcat(ca.vec(X[:, 0] - self._x0), ca.vec(X[:, 1:] - xn))
        nlp = {"x": ca.vertcat(ca.vec(X), U, V), "f": J, "g": g, "p": beta}
        opts: dict[str, Any] = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes",
                "ipopt.max_iter": 500, "ipopt.tol": 1e-8, "ipopt.mu_strategy": "adaptive"}
        self._solver = ca.nlpsol("design", "ipopt", nlp, opts)

    def solve(self, *, u0: np.ndarray, v0: np.ndarray, free_u: bool,
              beta: float = 0.0, free_v: bool = True) -> NlpSolution:
        """Solve with the pulse weights free in [0, 1] (``free_u``) or fixed at ``u0``; the
        decided values (if any) are free between their bounds, otherwise fixed at ``v0``.
        ``beta`` weighs the penalty ``sum u (1 - u) / n`` on fractional weights;
        ``free_v=False`` holds the values at ``v0`` too."""
        n, nx = self.n, self.nx
        if self._solver is None:
            self._build()
        lo, hi = self.bounds
        v0 = np.asarray(v0, dtype=np.float64)
        if self.decide != "none":
            v0 = np.clip(v0, lo, hi)
        x_init, _ = self.simulate(u0, v0)
        free_v = free_v and self.decide != "none"
        lbx = np.concatenate([np.full(nx * (n + 1), -np.inf),
                              np.zeros(n) if free_u else u0, np.full(n, lo) if free_v else v0])
        ubx = np.concatenate([np.full(nx * (n + 1), np.inf),
                              np.ones(n) if free_u else u0, np.full(n, hi) if free_v else v0])
        w0 = np.concatenate([x_init[self._full].T.ravel(), u0, v0])
        sol = self._solver(x0=w0, lbx=lbx, ubx=ubx, lbg=0.0, ubg=0.0, p=beta)
        stats = self._solver.stats()
        wopt = np.asarray(sol["x"]).ravel()
        off = nx * (n + 1)
        v = wopt[off + n:]
        return NlpSolution(
            u=np.clip(wopt[off:off + n], 0.0, 1.0), v=np.clip(v, lo, hi) if free_v else v0,
            objective=float(sol["f"]), converged=bool(stats["success"]),
            iterations=int(stats.get("iter_count", 0)), status=str(stats["return_status"]))

    def _rollout(self) -> Any:
        if self._roll is None:
            import casadi as ca

            x = ca.SX.sym("x", self.nx)
            u = ca.SX.sym("u")
            v = ca.SX.sym("v")
            fs = ca.SX.sym("fs", self.m + 1)
            c = ca.SX.sym("c")
            xn, cost, _ = self._step(x, u, v, fs)
            acc = ca.Function("acc", [ca.vertcat(x, c), u, v, fs], [ca.vertcat(xn, c + cost)])
            self._roll = acc.mapaccum("roll", self.n)
        return self._roll

    def simulate(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, float]:
        """The states of :data:`FULL_STATES` at the slot boundaries, shape (8, n + 1), and the
        normalised tracking term, for given weights and values (one compiled pass)."""
        out = np.asarray(self._rollout()(np.append(self._x0, 0.0),
                                         np.asarray(u, np.float64)[None, :],
                                         np.asarray(v, np.float64)[None, :], self._fstar.T))
        full = np.empty((len(FULL_STATES), self.n + 1))
        for i, k in enumerate(FULL_STATES):
            full[i] = self._rest[k]
        full[self._full, 0] = self._x0
        full[self._full, 1:] = out[:self.nx]
        return full, float(out[self.nx, -1]) * self._scale

    @property
    def rest_state(self) -> np.ndarray:
        """The NLP states (:attr:`states`) at rest."""
        return self._x0.copy()

    def trajectory(self, x0: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray,
                                                                                np.ndarray]:
        """Step ``len(u)`` slots from the NLP state ``x0`` (order :attr:`states`) with pulse
        weights ``u`` and values ``v``: the states at the slot ends, shape (nx, L), and the
        force (N) at every sub-step node of every slot, shape (m + 1, L)."""
        k = len(u)
        f = self._paths.get(k)
        if f is None:
            f = self._paths[k] = self._step.mapaccum("path", k)
        xs, _, fn = f(x0, np.asarray(u, np.float64)[None, :], np.asarray(v, np.float64)[None, :],
                      np.zeros((self.m + 1, k)))
        return np.asarray(xs), np.asarray(fn)
