"""Receding-horizon control (model-predictive control over fatigue) of one muscle's force.

At each step :class:`RecedingHorizon` solves a short window (default 1 s, at most 30
decisions) of the design NLP's exact pulse-to-pulse model (``_nlp.SlotProblem``'s compiled
slot step): the pulses sit on a fixed grid of slots (the channel's pulse period), each slot's
pulse carries a decided value, and the objective is the window's normalised tracking error
plus ``fatigue_weight`` times the loss of force-generating capacity ``A`` over the window
(relative to ``A_rest``) plus a small penalty on changes of the decision. The window starts
from the state the caller estimates (:meth:`RecedingHorizon.advance` keeps the model's state
from the pulses actually delivered and takes the measured force when there is one), IPOPT
starts from the previous window's solution shifted by the slots applied, and the caller
applies the first decision(s) before solving again.

What each slot decides (``decide``):

* ``"recruitment"``: a Ding 2003 muscle whose pulses scale the force by the recruited
  fraction ``g`` (the virtual patient's muscle: nerve recruitment by amplitude, see
  ``physiology.Muscle.pulse_response``); the decision is ``g`` in ``[0, g_max]``, which the
  caller maps to an amplitude. The step is the design NLP's Ding 2007 last-pulse factor with
  ``pd0 = 0`` and ``pdt = 1``, i.e. ``g = 1 - exp(-v)``: the same equations.
* ``"width"`` (Ding 2007) and ``"amplitude"`` (Hmed 2018): the value itself, in ``bounds``.
* ``"pulses"``: a model with only times (Ding 2003 alone): a pulse weight in [0, 1] per slot,
  applied by sum-up rounding carried across steps (a pulse when the running sum of relaxed
  weights leads the pulses given by one half).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opennmes.design._nlp import SlotProblem
from opennmes.errors import ModelError
from opennmes.physiology import DingParameters

__all__ = ["DECISIONS", "MpcStep", "RecedingHorizon"]

log = logging.getLogger(__name__)

DECISIONS = ("recruitment", "width", "amplitude", "pulses")
"""What a slot's decision is (see the module docstring)."""

MPC_SUBSTEP = 10e-3
"""Longest RK4 sub-step of F in a window's prediction, s: four sub-steps per 33-ms slot
(30 Hz). Against the project's kernel (``hmax`` 1 ms) the predicted force differs by less
than 1 % of its peak (tests/design/test_mpc.py); the design's 2.5 ms (``_nlp.SUBSTEP``) made a
window four times as costly."""

G_MAX = 0.999
"""Largest recruited fraction the recruitment decision may take (``v = -ln(1 - g)`` stays
finite)."""


@dataclass(frozen=True)
class MpcStep:
    """One solved window.

    Attributes
    ----------
    values : ndarray
        The decision of every slot of the window (recruited fraction, width in s, amplitude
        in A, or relaxed pulse weight).
    force : ndarray
        Predicted force at the slot boundaries, N (``n_slots + 1`` values).
    capacity : float
        Predicted ``A`` at the window's end over ``A_rest``.
    converged : bool
        IPOPT reported success.
    status : str
        IPOPT's return status.
    iterations : int
    solve_time : float
        Wall time of the solve, s.
    cpu_time : float
        CPU time of this process during the solve, s (IPOPT runs on one thread: on a loaded
        machine the wall time exceeds it by the time the solver waited for a core).
    """

    values: np.ndarray
    force: np.ndarray
    capacity: float
    converged: bool
    status: str
    iterations: int
    solve_time: float
    cpu_time: float


def _compiled(solver: Any, folder: Path) -> Path:
    """The shared library of ``solver``'s functions in ``folder`` (compiled when missing)."""
    import hashlib
    import shutil
    import subprocess
    import tempfile

    cc = shutil.which("gcc")
    if cc is None:
        raise ModelError("compile_dir needs gcc on the PATH to compile the MPC's NLP")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        try:  # CasADi writes the file into the working directory
            os.chdir(tmp)
            solver.generate_dependencies("mpc_nlp.c")
        finally:
            os.chdir(cwd)
        src = Path(tmp) / "mpc_nlp.c"
        digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
        lib = folder / f"mpc_{digest}.so"
        if not lib.exists():
            part = folder / f"mpc_{digest}.so.part"
            log.info("compiling the MPC's NLP to %s (minutes)", lib)
            done = subprocess.run([cc, "-O1", "-fPIC", "-shared", str(src), "-o", str(part)],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise ModelError(f"gcc could not compile the MPC's NLP: {done.stderr[-500:]}")
            part.replace(lib)
    return lib


class RecedingHorizon:
    """Model-predictive control of one muscle's force over a short window.

    Parameters
    ----------
    params : DingParameters
        The force model (the virtual patient's muscle's ``force_model``, or an identified
        participant's); with ``fatigue`` the fatigue states are predicted and penalised.
    period : float
        Slot length, s: the channel's pulse period (one candidate pulse per slot).
    decide : {"recruitment", "width", "amplitude", "pulses"}
        What a slot decides (module docstring). ``recruitment`` and ``pulses`` need
        ``ding2003``, ``width`` ``ding2007``, ``amplitude`` ``hmed2018``.
    bounds : (float, float)
        Range of the decided value (recruited fraction, width in s or amplitude in A);
        ignored for ``pulses``.
    f_ref : float
        Force that normalises the tracking error (the target's peak), N.
    horizon : float
        Window length, s.
    max_decisions : int
        Most decisions per window; with more slots, a decision holds for a block of
        consecutive slots (move blocking).
    fatigue_weight : float
        Weight of the window's relative loss of ``A`` against the tracking term (the
        design's :data:`~opennmes.design.DEFAULT_WEIGHTS` ``fatigue`` value by default).
    smooth_weight : float
        Weight of the mean squared change between consecutive decisions (relative to the
        bound), including the first one against the last applied.
    substep : float
        Longest RK4 sub-step of the force inside a slot, s (the design uses
        ``_nlp.SUBSTEP``; the window's prediction is coarser for speed, see
        :data:`MPC_SUBSTEP`).
    max_iter : int
        IPOPT iterations per window.
    compile_dir : str or Path, optional
        Compile the NLP's functions to C (CasADi code generation, ``gcc -O1``) and keep the
        shared library in this folder, named by the hash of the generated source: the first
        controller of a problem compiles (about 5 min for the 1-s, 30-slot window on this
        machine), later ones load it. The solves then evaluate compiled code instead of
        CasADi's expression interpreter (``bench/bench_mpc.py``). Needs ``gcc``.
    """

    def __init__(self, params: DingParameters, period: float, *, decide: str,
                 bounds: tuple[float, float] = (0.0, 1.0), f_ref: float,
                 horizon: float = 1.0, max_decisions: int = 30, fatigue_weight: float = 0.1,
                 smooth_weight: float = 0.01, substep: float = MPC_SUBSTEP,
                 max_iter: int = 100, compile_dir: str | Path | None = None) -> None:
        import casadi as ca

        if decide not in DECISIONS:
            raise ModelError(f"unknown decision {decide!r}; one of {list(DECISIONS)}")
        need = {"recruitment": "ding2003", "pulses": "ding2003", "width": "ding2007",
                "amplitude": "hmed2018"}[decide]
        if params.model != need:
            raise ModelError(f"decision {decide!r} needs the {need} model, not "
                             f"{params.model!r}")
        for name, v in (("period", period), ("horizon", horizon), ("f_ref", f_ref)):
            if not (math.isfinite(v) and v > 0):
                raise ModelError(f"receding horizon {name} = {v!r} must be finite and > 0")
        if not 1 <= max_decisions <= 200:
            raise ModelError(f"max_decisions = {max_decisions!r} must be within 1 to 200")
        for name, v in (("fatigue_weight", fatigue_weight), ("smooth_weight", smooth_weight)):
            if not (math.isfinite(v) and v >= 0):
                raise ModelError(f"{name} = {v!r} must be finite and >= 0")
        lo, hi = (0.0, 1.0) if decide == "pulses" else (float(bounds[0]), float(bounds[1]))
        if decide == "recruitment":
            if not 0.0 <= lo < hi <= 1.0:
                raise ModelError(f"recruitment bounds {bounds!r} must satisfy "
                                 "0 <= low < high <= 1")
            lo, hi = -math.log1p(-lo), -math.log1p(-min(hi, G_MAX))
        elif not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ModelError(f"bounds {bounds!r} of the {decide} must be finite, low < high")
        self.params = params
        self.decide = decide
        self.period = float(period)
        self.n = max(1, round(horizon / period))
        self.block = math.ceil(self.n / max_decisions)
        self.n_dec = math.ceil(self.n / self.block)
        self.m = max(math.ceil(period / substep - 1e-9), 1)
        self.bounds = (lo, hi)
        self.f_ref = float(f_ref)
        self.fatigue_weight = float(fatigue_weight)
        self.smooth_weight = float(smooth_weight)
        # the model pieces: the design NLP's exact slot step, built once
        model = params
        nlp_decide = {"recruitment": "width", "pulses": "none"}.get(decide, decide)
        if decide == "recruitment":  # g = 1 - exp(-(v - pd0)/pdt) with pd0 = 0, pdt = 1
            model = params.replace(model="ding2007", pd0=0.0, pdt=1.0, pd_effect="last_pulse")
        self._slot = SlotProblem(model, self.period, np.zeros((self.n, self.m + 1)),
                                 decide=nlp_decide, fixed_value=1.0, bounds=(lo, hi),
                                 objective="tracking", weight=0.0, f_ref=self.f_ref,
                                 t_total=self.n * self.period)
        step = self._slot._step
        self.states = self._slot.states
        nx = self.nx = len(self.states)
        rest = {"C": 0.0, "S": 0.0, "Q": 0.0, "G": 0.0, "F": 0.0, "A": params.a_rest,
                "Km": params.km_rest, "tau1": params.tau1_rest}
        self._rest = np.array([rest[k] for k in self.states])
        n, nd = self.n, self.n_dec
        nominal = {"C": 1.0, "S": 1.0, "Q": 1.0, "G": 1.0, "F": self.f_ref, "A": params.a_rest,
                   "Km": params.km_rest, "tau1": params.tau1_rest}
        self._scale = np.array([nominal[k] for k in self.states])
        sc = ca.DM(self._scale)
        Xs = ca.SX.sym("X", nx, n + 1)  # states over their nominal values (IPOPT sees O(1))
        X = ca.repmat(sc, 1, n + 1) * Xs
        D = ca.SX.sym("D", nd)
        x0 = ca.SX.sym("x0", nx)
        fs = ca.SX.sym("fs", self.m + 1, n)
        prev = ca.SX.sym("prev")
        per_slot = ca.vertcat(*[D[k // self.block] for k in range(n)])
        u_s: Any
        v_s: Any
        if decide == "pulses":
            u_s, v_s = per_slot, ca.DM.zeros(n)
        else:
            u_s, v_s = ca.DM.ones(n), per_slot
        out = step.map(n)(X[:, :n], u_s.T, v_s.T, fs)
        xn, cost = out[0], out[1]  # (next states, tracking cost) of each slot
        J = ca.sum2(cost) / (n * self.period * self.f_ref ** 2)
        if params.fatigue and self.fatigue_weight > 0:
            ia = self.states.index("A")
            J = J + self.fatigue_weight * (X[ia, 0] - X[ia, n]) / params.a_rest
        if self.smooth_weight > 0:
            dd = ca.diff(ca.vertcat(prev, D)) / hi
            J = J + self.smooth_weight * ca.dot(dd, dd) / nd
        g = ca.vertcat((X[:, 0] - x0) / sc, ca.vec((X[:, 1:] - xn) / ca.repmat(sc, 1, n)))
        nlp = {"x": ca.vertcat(ca.vec(Xs), D), "f": J, "g": g,
               "p": ca.vertcat(x0, ca.vec(fs), prev)}
        opts: dict[str, Any] = {
            "ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes",
            "ipopt.max_iter": int(max_iter), "ipopt.tol": 1e-6,
            "ipopt.warm_start_init_point": "yes", "ipopt.warm_start_bound_push": 1e-6,
            "ipopt.warm_start_mult_bound_push": 1e-6, "ipopt.mu_init": 1e-3}
        self._solver = ca.nlpsol("mpc", "ipopt", nlp, opts)
        self.compiled: Path | None = None
        if compile_dir is not None:
            self.compiled = _compiled(self._solver, Path(compile_dir))
            self._solver = ca.nlpsol("mpc", "ipopt", str(self.compiled), opts)
        self._nw = nx * (n + 1) + nd
        self._lbx = np.concatenate([np.full(nx * (n + 1), -np.inf), np.full(nd, lo)])
        self._ubx = np.concatenate([np.full(nx * (n + 1), np.inf), np.full(nd, hi)])
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Back to rest: the state estimate, the warm start and the rounding residue."""
        self.state = self._rest.copy()
        self._w: np.ndarray | None = None
        self._lam_x: np.ndarray | None = None
        self._lam_g: np.ndarray | None = None
        self._prev = self.bounds[0] if self.decide != "pulses" else 0.0
        self._residue = 0.0

    def full_state(self) -> dict[str, float]:
        """The state estimate by name (the states the model uses)."""
        return {k: float(v) for k, v in zip(self.states, self.state, strict=True)}

    def capacity(self) -> float:
        """Estimated force-generating capacity ``A / A_rest``."""
        if "A" not in self.states:
            return 1.0
        return float(self.state[self.states.index("A")]) / self.params.a_rest

    def advance(self, value: float, *, force: float | None = None) -> None:
        """Move the estimate one slot on with the pulse actually delivered at its start:
        ``value`` is its decided value (recruited fraction, width, amplitude; 0: no pulse;
        for ``pulses``, 1 or 0). ``force`` (N), when measured, replaces the predicted force
        at the slot's end (the fatigue and calcium states stay the model's)."""
        u, v = self._pulse(value)
        xn = self._slot._step(self.state, u, v, np.zeros(self.m + 1))[0]
        self.state = np.asarray(xn, dtype=np.float64).ravel()
        if force is not None and math.isfinite(force):
            self.state[self.states.index("F")] = max(0.0, float(force))
        if value > 0:
            self._prev = self._to_v(value)

    def _to_v(self, value: float) -> float:
        """A decided value in the NLP's variable (recruitment: ``-ln(1 - g)``)."""
        if self.decide == "recruitment":
            return -math.log1p(-min(max(value, 0.0), G_MAX))
        return float(value)

    def _pulse(self, value: float) -> tuple[float, float]:
        """(u, v) of the slot step for a delivered value."""
        if self.decide == "pulses":
            return (1.0 if value > 0.5 else 0.0), 0.0
        if value <= 0:
            return 0.0, self.bounds[0]
        return 1.0, self._to_v(value)

    def set_force(self, force: float) -> None:
        """Replace the estimated force with a measured one, N."""
        if math.isfinite(force):
            self.state[self.states.index("F")] = max(0.0, float(force))

    # ------------------------------------------------------------------ solve
    def target_nodes(self, target: np.ndarray) -> np.ndarray:
        """The window's target (N) at each slot's sub-step nodes, from one value per slot
        boundary (``n + 1`` values; linear between them)."""
        tgt = np.asarray(target, dtype=np.float64).reshape(-1)
        if tgt.size != self.n + 1:
            raise ModelError(f"receding horizon target has {tgt.size} values; the window "
                             f"needs {self.n + 1} (one per slot boundary)")
        frac = np.arange(self.m + 1) / self.m
        return tgt[:-1, None] * (1 - frac[None, :]) + tgt[1:, None] * frac[None, :]

    def solve(self, target: np.ndarray, *, shift: int = 1,
              ceiling: float | None = None) -> MpcStep:
        """Solve the window from the current estimate for ``target`` (``n + 1`` values, N,
        one per slot boundary from now), warm-started from the last solution moved on by
        ``shift`` slots (those applied since). ``ceiling`` lowers the upper bound of the
        decision for this window (same unit as ``bounds``: the operator's intensity)."""
        fs = self.target_nodes(target)
        p = np.concatenate([self.state, fs.ravel(), [self._prev]])  # vec of (m + 1, n)
        w0, lx, lg = self._warm(shift)
        kw: dict[str, Any] = {}
        if lx is not None and lg is not None:
            kw = {"lam_x0": lx, "lam_g0": lg}
        ubx = self._ubx
        if ceiling is not None:
            lo, hi = self.bounds
            c = self._to_v(ceiling)
            ubx = ubx.copy()
            ubx[-self.n_dec:] = min(hi, max(lo, c))
            w0[-self.n_dec:] = np.minimum(w0[-self.n_dec:], ubx[-self.n_dec:])
        t0, c0 = time.perf_counter(), time.process_time()
        sol = self._solver(x0=w0, lbx=self._lbx, ubx=ubx, lbg=0.0, ubg=0.0, p=p, **kw)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        stats = self._solver.stats()
        w = np.asarray(sol["x"]).ravel()
        ok = bool(stats["success"]) and bool(np.all(np.isfinite(w)))
        if ok:
            self._w = w
            self._lam_x = np.asarray(sol["lam_x"]).ravel()
            self._lam_g = np.asarray(sol["lam_g"]).ravel()
        else:
            self._w = self._lam_x = self._lam_g = None
        nx, n = self.nx, self.n
        X = w[:nx * (n + 1)].reshape(n + 1, nx).T * self._scale[:, None]
        d = np.clip(w[nx * (n + 1):], *self.bounds)
        vals = np.repeat(d, self.block)[:n]
        if self.decide == "recruitment":
            vals = -np.expm1(-vals)
        cap = 1.0
        if "A" in self.states:
            cap = float(X[self.states.index("A"), -1]) / self.params.a_rest
        return MpcStep(values=vals, force=X[self.states.index("F")].copy(), capacity=cap,
                       converged=ok, status=str(stats["return_status"]),
                       iterations=int(stats.get("iter_count", 0)), solve_time=dt,
                      cpu_time=dc)

    def first(self, step: MpcStep, k: int = 0) -> float:
        """The value to deliver at slot ``k`` of a solved window (``pulses``: 1 or 0 by sum-up
        rounding carried across windows; call once per slot, in order)."""
        v = float(step.values[k])
        if self.decide != "pulses":
            return v
        self._residue += v
        if self._residue >= 0.5:
            self._residue -= 1.0
            return 1.0
        return 0.0

    def _warm(self, shift: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        nx, n, nd = self.nx, self.n, self.n_dec
        if self._w is None:
            d0 = np.full(nd, 0.5 * (self.bounds[0] + self.bounds[1]))
            X0 = np.repeat((self.state / self._scale)[:, None], n + 1, axis=1)
            return np.concatenate([X0.T.ravel(), d0]), None, None
        s = max(0, min(int(shift), n))
        sd = min(round(s / self.block), nd)
        X = self._w[:nx * (n + 1)].reshape(n + 1, nx)
        X = np.vstack([X[s:], np.repeat(X[-1:], s, axis=0)])
        X[0] = self.state / self._scale
        d = self._w[nx * (n + 1):]
        d = np.concatenate([d[sd:], np.repeat(d[-1:], sd)])
        w0 = np.concatenate([X.ravel(), d])
        assert self._lam_x is not None and self._lam_g is not None
        lx = self._lam_x.reshape(-1)
        lxX = lx[:nx * (n + 1)].reshape(n + 1, nx)
        lxX = np.vstack([lxX[s:], np.zeros((s, nx))])
        lxd = lx[nx * (n + 1):]
        lxd = np.concatenate([lxd[sd:], np.zeros(sd)])
        lg = self._lam_g.reshape(n + 1, nx)
        lg = np.vstack([lg[s:], np.zeros((s, nx))])
        return w0, np.concatenate([lxX.ravel(), lxd]), lg.ravel()

