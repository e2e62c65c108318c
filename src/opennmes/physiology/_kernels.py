"""Compiled event-driven kernels of the Ding-family models (numba, cached on disk).

Between pulses CN has the exact form ``CN(t) = (C + S s/tau_c) exp(-s/tau_c)`` with ``s`` the
time since the last pulse, ``C`` the CN value and ``S`` the pulse sum just after it. A pulse
updates ``(C, S)`` exactly: ``C <- CN(t_p)``, ``S <- S exp(-s/tau_c) + lam R``. Only the force and
the fatigue states are integrated numerically: classical RK4 for F from event to event (events
are pulses and output samples), with sub-steps no longer than ``hmax``; the slow fatigue states
(time constant ``tau_fat`` ~ 100 s) use a second-order predictor-corrector inside each step,
which keeps the stage chain free of divisions. Once CN has decayed below 1e-13 Km after the last
pulse, F decays exactly exponentially with tau1 and the fatigue states relax in closed form
(an exponential integrator, exact to rounding): rest periods cost a few ns per sample.

The whole event loop lives in one function with the state in local variables, so the
compiler keeps it in registers.

Layouts of the packed arrays (see :meth:`DingParameters.as_array`):

``p``: tau_c, A_rest, tau1_rest, tau2, Km_rest, r0_offset, alpha_A, alpha_Km, alpha_tau1,
tau_fat, fatigue flag, R0-from-state flag.

``st`` (state, modified in place): C, S, t_last_pulse, n_pulses_seen, F, A, Km, tau1,
g (force scale of the last pulse), t (state time), exp(-s/tau_c) at t.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

P_TAU_C, P_A, P_TAU1, P_TAU2, P_KM, P_R0OFF = 0, 1, 2, 3, 4, 5
P_ALPHA_A, P_ALPHA_KM, P_ALPHA_TAU1, P_TAU_FAT, P_FATIGUE, P_R0_STATE = 6, 7, 8, 9, 10, 11
N_PARAMS = 12

S_C, S_S, S_TLAST, S_NP, S_F, S_A, S_KM, S_TAU1, S_G, S_T, S_E = range(11)
N_STATE = 11

#: rows of the kernel output: F, CN, A, Km, tau1
OUT_NAMES = ("F", "CN", "A", "Km", "tau1")


def initial_state(p: np.ndarray) -> np.ndarray:
    """Rest state for packed parameters ``p`` at time 0."""
    st = np.zeros(N_STATE)
    st[S_A] = p[P_A]
    st[S_KM] = p[P_KM]
    st[S_TAU1] = p[P_TAU1]
    st[S_G] = 1.0
    st[S_E] = 1.0
    return st


@njit(cache=True, fastmath=True, error_model="numpy")
def ding_advance(pt: np.ndarray, plam: np.ndarray, pg: np.ndarray, p: np.ndarray,
                 st: np.ndarray, k0: int, n: int, sfreq: float, hmax: float,
                 out: np.ndarray) -> int:
    """Advance one muscle through ``n`` output samples ``t_j = (k0 + j)/sfreq``.

    Pulses with ``pt <= t_j`` are applied before sample ``j`` is recorded; a pulse with
    ``lam == g == 0`` is skipped (it recruited nothing). Returns the number
    of pulses consumed (those after the last sample are left for the next call).
    ``out`` has 1 row (F), 2 rows (F, CN) or 5 rows (F, CN, A, Km, tau1).
    """
    tau_c = p[P_TAU_C]
    itc = 1.0 / tau_c
    ihmax = 1.0 / hmax
    isf = 1.0 / sfreq
    a_r = p[P_A]
    t1_r = p[P_TAU1]
    km_r = p[P_KM]
    tau2 = p[P_TAU2]
    r0off = p[P_R0OFF]
    al_a = p[P_ALPHA_A]
    al_k = p[P_ALPHA_KM]
    al_t = p[P_ALPHA_TAU1]
    itf = 1.0 / p[P_TAU_FAT]
    fat = p[P_FATIGUE] != 0.0
    r0_state = p[P_R0_STATE] != 0.0
    c = st[S_C]
    ssum = st[S_S]
    tl = st[S_TLAST]
    npl = st[S_NP]
    f = st[S_F]
    a = st[S_A]
    km = st[S_KM]
    tau1 = st[S_TAU1]
    g = st[S_G]
    t = st[S_T]
    e = st[S_E]
    h_c = -1.0  # cached RK4 step and exp(-h/(2 tau_c))
    eh_c = 1.0
    q_c = -1.0  # cached quiescent span and its factors
    qc_e = 1.0
    qc_f = 1.0
    q_c1 = -1.0
    qc_1 = 1.0
    nrow = out.shape[0]
    npulse = pt.shape[0]
    ip = 0
    j = 0
    while j < n:
        tj = (k0 + j) * isf
        while True:
            is_pulse = ip < npulse and pt[ip] <= tj
            target = pt[ip] if is_pulse else tj
            span = target - t
            if span > 0.0:
                s0 = t - tl
                if npl == 0.0 or ((c + ssum * s0 * itc) * e < 1e-13 * km
                                  and s0 > 10.0 * tau_c):
                    # CN negligible: exponential integrator (exact to rounding)
                    # spans between samples differ only by rounding: reuse the factors
                    if abs(span - q_c) > 1e-12 * span:
                        q_c = span
                        qc_e = math.exp(-span * itc)
                        qc_f = math.exp(-span * itf)
                    if f > 1e-9:
                        r1 = math.exp(-span / tau1)
                        intf = f * tau1 * (1.0 - r1)
                        f *= r1
                    else:
                        # below 1 nN: decay with tau1 taken once per span (cached); the
                        # fatigue forcing of such a force is below 1e-10 N/s
                        if abs(span - q_c1) > 1e-12 * span:
                            q_c1 = span
                            qc_1 = math.exp(-span / tau1)
                        f *= qc_1
                        intf = 0.0
                    if fat:
                        a = a_r + (a - a_r) * qc_f + al_a * intf
                        km = km_r + (km - km_r) * qc_f + al_k * intf
                        tau1 = t1_r + (tau1 - t1_r) * qc_f + al_t * intf
                    e *= qc_e
                else:
                    m = int(math.ceil(span * ihmax - 1e-9))
                    if m < 1:
                        m = 1
                    h = span / m
                    if abs(h - h_c) > 1e-12 * h:
                        h_c = h
                        eh_c = math.exp(-0.5 * h * itc)
                    eh = eh_c
                    hh = 0.5 * h
                    h6 = h / 6.0
                    for i in range(m):
                        sa = s0 + i * h
                        e_m = e * eh
                        e_b = e_m * eh
                        cn_a = (c + ssum * sa * itc) * e
                        cn_m = (c + ssum * (sa + hh) * itc) * e_m
                        cn_b = (c + ssum * (sa + h) * itc) * e_b
                        if fat:
                            # slow states: linear predictor inside the step, corrected below
                            da0 = -(a - a_r) * itf + al_a * f
                            dk0 = -(km - km_r) * itf + al_k * f
                            dt0 = -(tau1 - t1_r) * itf + al_t * f
                            a_m = a + hh * da0
                            a_b = a + h * da0
                            km_m = km + hh * dk0
                            km_b = km + h * dk0
                            t1_m = tau1 + hh * dt0
                            t1_b = tau1 + h * dt0
                        else:
                            a_m = a
                            a_b = a
                            km_m = km
                            km_b = km
                            t1_m = tau1
                            t1_b = tau1
                        # x = CN/(Km + CN) and 1/(tau1 + tau2 x) with one division each
                        d1 = km + cn_a
                        d2 = tau1 * d1 + tau2 * cn_a
                        q = 1.0 / (d1 * d2)
                        x_a = cn_a * d2 * q
                        i_a = d1 * d1 * q
                        d1 = km_m + cn_m
                        d2 = t1_m * d1 + tau2 * cn_m
                        q = 1.0 / (d1 * d2)
                        x_m = cn_m * d2 * q
                        i_m = d1 * d1 * q
                        d1 = km_b + cn_b
                        d2 = t1_b * d1 + tau2 * cn_b
                        q = 1.0 / (d1 * d2)
                        x_b = cn_b * d2 * q
                        i_b = d1 * d1 * q
                        k1 = a * g * x_a - f * i_a
                        f2 = f + hh * k1
                        k2 = a_m * g * x_m - f2 * i_m
                        f3 = f + hh * k2
                        k3 = a_m * g * x_m - f3 * i_m
                        f4 = f + h * k3
                        k4 = a_b * g * x_b - f4 * i_b
                        if fat:
                            favg = (f + 2.0 * f2 + 2.0 * f3 + f4) / 6.0
                            a = a + h * (-(a_m - a_r) * itf + al_a * favg)
                            km = km + h * (-(km_m - km_r) * itf + al_k * favg)
                            tau1 = tau1 + h * (-(t1_m - t1_r) * itf + al_t * favg)
                        f += h6 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
                        e = e_b
                t = target
            if not is_pulse:
                break
            # a pulse at t: exact update of the CN closed form
            lam = plam[ip]
            if lam == 0.0 and pg[ip] == 0.0:
                ip += 1  # an ineffective pulse (lam = g = 0) is ignored entirely
                continue
            if npl == 0.0:
                c = 0.0
                ssum = lam
            else:
                cn = (c + ssum * (t - tl) * itc) * e
                kr = km if r0_state else km_r
                c = cn
                ssum = ssum * e + lam * (1.0 + (kr + r0off - 1.0) * e)
            tl = t
            e = 1.0
            npl += 1.0
            g = pg[ip]
            ip += 1
        out[0, j] = f
        if nrow > 1:
            out[1, j] = (c + ssum * (t - tl) * itc) * e
        if nrow > 2:
            out[2, j] = a
            out[3, j] = km
            out[4, j] = tau1
        j += 1
        # rest: while CN is negligible and no pulse comes, step sample to sample with the
        # exponential integrator in a tight loop (multiplications only, no denormals)
        if j < n and (npl == 0.0 or ((c + ssum * (t - tl) * itc) * e < 1e-13 * km
                                     and t - tl > 10.0 * tau_c)):
            qe = math.exp(-isf * itc)
            qf = math.exp(-isf * itf)
            q1 = math.exp(-isf / tau1)
            t_next = pt[ip] if ip < npulse else np.inf
            while j < n and (k0 + j) * isf < t_next:
                if f > 1e-9:
                    r1 = math.exp(-isf / tau1)
                    intf = f * tau1 * (1.0 - r1)
                    f *= r1
                else:
                    f *= q1
                    if f < 1e-300:
                        f = 0.0
                    intf = 0.0
                if fat:
                    a = a_r + (a - a_r) * qf + al_a * intf
                    km = km_r + (km - km_r) * qf + al_k * intf
                    tau1 = t1_r + (tau1 - t1_r) * qf + al_t * intf
                e *= qe
                if e < 1e-300:
                    e = 0.0
                t = (k0 + j) * isf
                out[0, j] = f
                if nrow > 1:
                    out[1, j] = (c + ssum * (t - tl) * itc) * e
                if nrow > 2:
                    out[2, j] = a
                    out[3, j] = km
                    out[4, j] = tau1
                j += 1
    st[S_C] = c
    st[S_S] = ssum
    st[S_TLAST] = tl
    st[S_NP] = npl
    st[S_F] = f
    st[S_A] = a
    st[S_KM] = km
    st[S_TAU1] = tau1
    st[S_G] = g
    st[S_T] = t
    st[S_E] = e
    return ip


@njit(cache=True, parallel=True, error_model="numpy")
def ding_batch(pt: np.ndarray, plam: np.ndarray, pg: np.ndarray, p: np.ndarray,
               n: int, sfreq: float, hmax: float, out: np.ndarray) -> None:
    """Many muscles (rows of ``p``, ``plam``, ``pg``) on the same pulse times, in parallel.

    ``out`` has shape (n_muscles, n_rows, n); every muscle starts at rest at t = 0.
    """
    for i in prange(p.shape[0]):
        st = np.zeros(N_STATE)
        st[S_A] = p[i, P_A]
        st[S_KM] = p[i, P_KM]
        st[S_TAU1] = p[i, P_TAU1]
        st[S_G] = 1.0
        st[S_E] = 1.0
        ding_advance(pt, plam[i], pg[i], p[i], st, 0, n, sfreq, hmax, out[i])
