"""Hill-type muscle mechanics, activation dynamics and joint models.

Curves (normalised fibre length ``l = l_M / l_opt``, velocity ``v = v_M / v_max`` with
``v_max = 10 l_opt/s``, shortening negative):

* active force-length: Thelen DG (2003). Adjustment of muscle mechanics model parameters to
  simulate dynamic contractions in older adults. *J Biomech Eng* 125:70-77:
  ``f_L(l) = exp(-(l - 1)^2 / 0.45)``; passive ``f_PE`` with ``k_PE = 5``, ``eps0 = 0.6``.
* force-velocity: De Groote F, Kinney AL, Rao AV, Fregly BJ (2016). Evaluation of direct
  collocation optimal control problem formulations for solving the muscle redundancy
  problem. *Ann Biomed Eng* 44:2922-2936, with OpenSim's refit constants (``f_V(-1) = 0``,
  ``f_V(0) = 1``).
* voluntary activation dynamics: Thelen 2003 form ``da/dt = (u - a)/tau`` with
  ``tau = tau_act (0.5 + 1.5 a)`` when ``u > a`` else ``tau_deact / (0.5 + 1.5 a)``,
  ``tau_act = 15 ms``, ``tau_deact = 50 ms`` (the paper's form, not OpenSim's).

The stimulated force of the Ding models needs no separate activation state: CN plays that role
(reference section 3.4). A joint is a rigid segment driven by muscle torques::

    J dw/dt = sum_m r_m F_m f_L(l_m) f_V(v_m) - G sin(theta + theta_g) - K (theta - theta_rest)
              - B w + limits(theta) - spasticity(w)

with ``theta`` the joint angle in rad (knee: extension from the hanging position; ankle:
dorsiflexion from neutral; wrist: extension from neutral), rigid tendons, the fibre length
linear in the joint angle (``l = 1 + length_gain (theta - theta_opt)``), and spasticity as a
velocity-dependent resistance to stretch of the antagonist (Lance 1980 definition) above a
velocity threshold. Values of the joint presets are in ``_presets.py`` with their sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from opennmes.errors import ModelError

__all__ = [
    "Joint",
    "force_length",
    "passive_force_length",
    "force_velocity",
    "activation_derivative",
]

# Thelen 2003
_GAMMA = 0.45
_K_PE = 5.0
_EPS0 = 0.6
# De Groote 2016, OpenSim refit
_D1 = -0.3211346127989808
_D2 = -8.149
_D3 = -0.374
_D4 = 0.8825327733249912
TAU_ACT = 0.015
TAU_DEACT = 0.050


@njit(cache=True, inline="always")
def _fl(ln: float) -> float:
    return math.exp(-(ln - 1.0) * (ln - 1.0) / _GAMMA)


@njit(cache=True, inline="always")
def _fv(v: float) -> float:
    if v < -1.0:
        v = -1.0
    elif v > 1.0:
        v = 1.0
    z = _D2 * v + _D3
    return _D1 * math.log(z + math.sqrt(z * z + 1.0)) + _D4


def force_length(l_norm: npt.ArrayLike) -> np.ndarray:
    """Thelen 2003 active force-length curve ``exp(-(l - 1)^2/0.45)`` (dimensionless)."""
    x = np.asarray(l_norm, dtype=np.float64)
    return np.asarray(np.exp(-((x - 1.0) ** 2) / _GAMMA))


def passive_force_length(l_norm: npt.ArrayLike) -> np.ndarray:
    """Thelen 2003 passive curve ``(exp(5 (l - 1)/0.6) - 1)/(exp(5) - 1)`` for ``l > 1``."""
    x = np.asarray(l_norm, dtype=np.float64)
    f = (np.exp(_K_PE * (x - 1.0) / _EPS0) - 1.0) / (np.exp(_K_PE) - 1.0)
    return np.asarray(np.where(x > 1.0, f, 0.0))


def force_velocity(v_norm: npt.ArrayLike) -> np.ndarray:
    """De Groote 2016 force-velocity curve (OpenSim constants), ``v`` in units of v_max."""
    v = np.clip(np.asarray(v_norm, dtype=np.float64), -1.0, 1.0)
    z = _D2 * v + _D3
    return np.asarray(_D1 * np.log(z + np.sqrt(z * z + 1.0)) + _D4)


def activation_derivative(a: npt.ArrayLike, u: npt.ArrayLike) -> np.ndarray:
    """Thelen 2003 activation dynamics ``da/dt`` in 1/s for activation ``a`` and drive ``u``."""
    aa = np.asarray(a, dtype=np.float64)
    uu = np.asarray(u, dtype=np.float64)
    tau = np.where(uu > aa, TAU_ACT * (0.5 + 1.5 * aa), TAU_DEACT / (0.5 + 1.5 * aa))
    return np.asarray((uu - aa) / tau)


@dataclass(frozen=True)
class Joint:
    """A joint driven by stimulated and voluntary muscle forces.

    Parameters
    ----------
    name : str
        E.g. ``"knee"``.
    inertia : float
        Moment of inertia of the distal segment about the joint, kg m^2.
    gravity_moment : float
        ``m g l`` of the distal segment, N m.
    gravity_offset : float
        Gravity torque is ``-gravity_moment sin(theta + gravity_offset)``, rad.
    stiffness : float
        Passive elastic moment about ``rest_angle``, N m/rad.
    rest_angle : float
        Angle of zero passive elastic moment, rad.
    damping : float
        Passive viscous moment, N m s/rad.
    angle_min, angle_max : float
        Range of motion, rad; beyond it a stiff limit (``limit_stiffness``) acts.
    limit_stiffness : float
        Stiffness of the range-of-motion limits, N m/rad.
    initial_angle : float, optional
        Angle at t = 0, rad; by default the rest equilibrium of gravity and passive moments.
    fixed : bool
        Isometric: the joint is held at ``initial_angle`` (dynamometer) and only the torque
        is computed.
    spasticity_gain : float
        Velocity-dependent resistance to movement in the + direction, N m s/rad (0: none).
    spasticity_threshold : float
        Velocity above which the spastic resistance acts, rad/s.
    """

    name: str
    inertia: float
    gravity_moment: float
    gravity_offset: float
    stiffness: float
    rest_angle: float
    damping: float
    angle_min: float
    angle_max: float
    limit_stiffness: float = 200.0
    initial_angle: float | None = None
    fixed: bool = False
    spasticity_gain: float = 0.0
    spasticity_threshold: float = 0.5

    def __post_init__(self) -> None:
        for name in ("inertia",):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ModelError(f"joint {self.name}: {name} = {v!r} must be > 0")
        for name in ("gravity_moment", "stiffness", "damping", "limit_stiffness",
                     "spasticity_gain", "spasticity_threshold"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ModelError(f"joint {self.name}: {name} = {v!r} must be finite and >= 0")
        if not self.angle_min < self.angle_max:
            raise ModelError(f"joint {self.name}: angle_min {self.angle_min} must be below "
                             f"angle_max {self.angle_max} rad")

    def passive_torque(self, theta: float, omega: float = 0.0) -> float:
        """Gravity, elastic, viscous and range-limit moment at ``theta`` rad, N m."""
        tq = (-self.gravity_moment * math.sin(theta + self.gravity_offset)
              - self.stiffness * (theta - self.rest_angle) - self.damping * omega)
        if theta > self.angle_max:
            tq -= self.limit_stiffness * (theta - self.angle_max)
        elif theta < self.angle_min:
            tq -= self.limit_stiffness * (theta - self.angle_min)
        return tq

    def equilibrium(self) -> float:
        """Angle (rad) where the passive and gravity moments balance, within the range."""
        lo, hi = self.angle_min - 0.5, self.angle_max + 0.5
        f_lo = self.passive_torque(lo)
        if f_lo * self.passive_torque(hi) > 0:
            raise ModelError(f"joint {self.name}: no rest equilibrium in its range")
        for _ in range(200):  # bisection to machine precision
            mid = 0.5 * (lo + hi)
            f_mid = self.passive_torque(mid)
            if f_mid == 0.0 or hi - lo < 1e-15:
                return mid
            if (f_mid > 0) == (f_lo > 0):
                lo, f_lo = mid, f_mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def start_angle(self) -> float:
        """``initial_angle`` or the rest equilibrium, rad."""
        return self.equilibrium() if self.initial_angle is None else self.initial_angle

    def as_array(self) -> np.ndarray:
        """Packed parameters for :func:`joint_advance`."""
        return np.array([self.inertia, self.gravity_moment, self.gravity_offset,
                         self.stiffness, self.rest_angle, self.damping, self.angle_min,
                         self.angle_max, self.limit_stiffness, 1.0 if self.fixed else 0.0,
                         self.spasticity_gain, self.spasticity_threshold])


@njit(cache=True, inline="always")
def _joint_accel(th: float, w: float, fd: np.ndarray, mp: np.ndarray, jp: np.ndarray
                 ) -> tuple[float, float]:
    tq = 0.0
    for m in range(fd.shape[0]):
        if fd[m] < 1e-9:
            continue  # below a nanonewton the muscle adds nothing (skips exp/log)
        ln = 1.0 + mp[m, 2] * (th - mp[m, 1])
        vn = mp[m, 2] * w / 10.0
        tq += mp[m, 0] * fd[m] * _fl(ln) * _fv(vn)
    total = tq - jp[1] * math.sin(th + jp[2]) - jp[3] * (th - jp[4]) - jp[5] * w
    if th > jp[7]:
        total -= jp[8] * (th - jp[7])
    elif th < jp[6]:
        total -= jp[8] * (th - jp[6])
    if jp[10] > 0.0 and w > jp[11]:
        total -= jp[10] * (w - jp[11])
    return total / jp[0], tq


@njit(cache=True)
def joint_advance(fd: np.ndarray, fd_prev: np.ndarray, mp: np.ndarray, jp: np.ndarray,
                  js: np.ndarray, n: int, sfreq: float, hmax: float, out: np.ndarray) -> None:
    """Advance a joint through ``n`` samples.

    ``fd`` (n_muscles, n) are the muscles' drive forces (N) at the samples, ``fd_prev`` their
    values at the previous sample (linear interpolation in between). ``mp`` rows are
    (moment arm m, theta_opt rad, length_gain 1/rad). ``js`` = (theta, omega, started flag) is
    updated in place. ``out`` rows: angle (rad), velocity (rad/s), muscle torque (N m).
    """
    nm = fd.shape[0]
    h_s = 1.0 / sfreq
    msub = int(math.ceil(h_s / hmax - 1e-9))
    if msub < 1:
        msub = 1
    h = h_s / msub
    th = js[0]
    w = js[1]
    f0 = np.empty(nm)
    fm = np.empty(nm)
    f1 = np.empty(nm)
    fast = jp.shape[0] > 12
    for j in range(n):
        if js[2] == 0.0 or jp[9] != 0.0:
            js[2] = 1.0
        elif fast and _at_rest(th, w, fd, fd_prev, j, jp):
            # no muscle force, small deviation: exact step of the linearised oscillator
            d = th - jp[12]
            th = jp[12] + jp[13] * d + jp[14] * w
            w = jp[15] * d + jp[16] * w
            if abs(w) < 1e-300:
                w = 0.0
        else:
            for i in range(msub):
                for m in range(nm):
                    fa = fd_prev[m] if j == 0 else fd[m, j - 1]
                    fb = fd[m, j]
                    f0[m] = fa + (fb - fa) * i / msub
                    fm[m] = fa + (fb - fa) * (i + 0.5) / msub
                    f1[m] = fa + (fb - fa) * (i + 1.0) / msub
                # classical RK4 stages in one loop (one inlined copy of the dynamics keeps
                # the compile time down)
                a1 = a2 = a3 = a4 = 0.0
                for k in range(4):
                    if k == 0:
                        tk, wk, fk = th, w, f0
                    elif k == 1:
                        tk, wk, fk = th + 0.5 * h * w, w + 0.5 * h * a1, fm
                    elif k == 2:
                        tk, wk, fk = th + 0.5 * h * (w + 0.5 * h * a1), w + 0.5 * h * a2, fm
                    else:
                        tk, wk, fk = th + h * (w + 0.5 * h * a2), w + h * a3, f1
                    acc, _ = _joint_accel(tk, wk, fk, mp, jp)
                    if k == 0:
                        a1 = acc
                    elif k == 1:
                        a2 = acc
                    elif k == 2:
                        a3 = acc
                    else:
                        a4 = acc
                th_new = th + h * w + h * h / 6.0 * (a1 + a2 + a3)
                w = w + h / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
                th = th_new
        tq = 0.0
        for m in range(nm):
            if fd[m, j] >= 1e-9:
                tq += mp[m, 0] * fd[m, j] * _fl(1.0 + mp[m, 2] * (th - mp[m, 1])) * \
                    _fv(mp[m, 2] * w / 10.0)
        out[0, j] = th
        out[1, j] = w
        out[2, j] = tq
    if n > 0:
        for m in range(nm):
            fd_prev[m] = fd[m, n - 1]
    js[0] = th
    js[1] = w


@njit(cache=True, inline="always")
def _at_rest(th: float, w: float, fd: np.ndarray, fd_prev: np.ndarray, j: int,
             jp: np.ndarray) -> bool:
    if abs(th - jp[12]) > 0.01 or abs(w) > 0.1:
        return False
    for m in range(fd.shape[0]):
        fa = fd_prev[m] if j == 0 else fd[m, j - 1]
        if fa >= 1e-9 or fd[m, j] >= 1e-9:
            return False
    return True


def rest_transition(joint: Joint, sfreq: float) -> np.ndarray:
    """``[theta_eq, P00, P01, P10, P11]``: the exact one-sample transition of the joint
    linearised about its rest equilibrium (no muscle force), for :func:`joint_advance`.

    Within 0.01 rad of rest and below 0.1 rad/s the neglected gravity terms are below
    ~1e-3 of the restoring moment; the joint then costs a few multiplications per sample.
    """
    import cmath

    eq = joint.equilibrium()
    k = joint.gravity_moment * math.cos(eq + joint.gravity_offset) + joint.stiffness
    if not (joint.angle_min < eq < joint.angle_max) or k <= 0:
        return np.array([eq, 0.0, 0.0, 0.0, 0.0])[:0]
    # exp(A h) of A = [[0, 1], [-k/J, -B/J]] in closed form:
    # exp(A h) = exp(tr h/2) (cosh(s h) I + sinh(s h)/s (A - tr/2 I)), s^2 = tr^2/4 - det
    a = np.array([[0.0, 1.0], [-k / joint.inertia, -joint.damping / joint.inertia]])
    h = 1.0 / sfreq
    tr = a[0, 0] + a[1, 1]
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    sq = cmath.sqrt(tr * tr / 4.0 - det)
    ch = cmath.cosh(sq * h)
    sh = h if sq == 0 else cmath.sinh(sq * h) / sq
    m = a - tr / 2.0 * np.eye(2)
    phi = (math.exp(tr * h / 2.0) * (ch.real * np.eye(2) + sh.real * m))
    return np.array([eq, phi[0, 0], phi[0, 1], phi[1, 0], phi[1, 1]])


@njit(cache=True)
def activation_advance(u: np.ndarray, st: np.ndarray, n: int, sfreq: float, out: np.ndarray
                       ) -> None:
    """Voluntary activation (Thelen 2003) through ``n`` samples, drive ``u`` held per sample.

    ``st[0]`` is the activation (updated in place); ``out[j]`` the activation at sample ``j``;
    the drive of sample ``j`` acts from sample ``j`` to ``j + 1``.
    """
    a = st[0]
    msub = int(math.ceil((1.0 / sfreq) / 0.001 - 1e-9))
    if msub < 1:
        msub = 1
    h = 1.0 / sfreq / msub
    for j in range(n):
        if j > 0 or st[1] != 0.0:
            uj = u[j - 1] if j > 0 else st[2]
            for _ in range(msub):
                k1 = _adot(a, uj)
                k2 = _adot(a + 0.5 * h * k1, uj)
                k3 = _adot(a + 0.5 * h * k2, uj)
                k4 = _adot(a + h * k3, uj)
                a += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        st[1] = 1.0
        out[j] = a
    if n > 0:
        st[2] = u[n - 1]
    st[0] = a


@njit(cache=True, inline="always")
def _adot(a: float, u: float) -> float:
    if u > a:
        return (u - a) / (TAU_ACT * (0.5 + 1.5 * a))
    return (u - a) * (0.5 + 1.5 * a) / TAU_DEACT
