"""The Ding / Binder-Macleod family of force and fatigue models.

Three published force models share one structure (two states, ``CN`` and ``F``) and one
fatigue model (three more states, ``A``, ``Km`` and ``tau1``):

* **Ding 2003** (frequency): Ding J, Wexler AS, Binder-Macleod SA (2003). Mathematical models
  for fatigue minimization during functional electrical stimulation. *J Electromyogr Kinesiol*
  13:575-588. The force model itself comes from Ding et al. (2000, 2002).
* **Ding 2007** (pulse duration): Ding J, Chou LW, Kesar TM, Lee SC, Johnston TE, Wexler AS,
  Binder-Macleod SA (2007). Mathematical model that predicts the force-intensity and
  force-frequency relationships after spinal cord injuries. *Muscle Nerve* 36:214-222.
* **Hmed 2018** (amplitude): Hmed AB, Bakir T, Sakly A, Binczak S (2018). A new mathematical
  force model that predicts the force-pulse amplitude relationship of human skeletal muscle.
  *Comput Biol Med* 101:218-228.
* **Fatigue**: Ding J, Wexler AS, Binder-Macleod SA (2000). A predictive model of fatigue in
  human skeletal muscles. *J Appl Physiol* 89:1322-1332 (coefficients as corrected in
  Doll et al. 2015, IFAC-PapersOnLine 48:338).

Equations (SI units; the state in the order of :data:`DING_STATES`, ``[CN, F, A, tau1, Km]``,
the paper's and :func:`ding_derivative`'s)::

    dCN/dt = (1/tau_c) sum_i lam_i R_i exp(-(t - t_i)/tau_c) - CN/tau_c
    R_i    = 1 + (R0 - 1) exp(-(t_i - t_{i-1})/tau_c),  R_1 = 1,  R0 = Km + r0_offset
    dF/dt  = A g CN/(Km + CN) - F/(tau1 + tau2 CN/(Km + CN))
    dA/dt  = -(A - A_rest)/tau_fat + alpha_A F        (same for Km and tau1)

``lam_i`` is 1 except in Hmed 2018 (``lam(I_i)``); ``g`` is 1 except in Ding 2007, where it is
``1 - exp(-(PD - PD0)/PDt)`` of the most recent pulse. With ``CN(0) = 0`` the CN equation has
the closed form ``CN(t) = sum_i lam_i R_i ((t - t_i)/tau_c) exp(-(t - t_i)/tau_c)``, which the
compiled kernels use: only ``F`` and the fatigue states are integrated numerically.

Uncertain choices are named options (see :func:`default_parameters`): where R0 takes Km from
(``r0_from``), the Ding 2003 ``tau2`` (60 ms in cocofest, 100 ms in a 2023 table) and which
Ding 2007 parameter set. The known defects of other implementations (cocofest's Marion 2013
load term, its Marion fatigue wiring, the ``10e-2`` literal trap) are not reproduced: every
constant below is written out in SI.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from opennmes.errors import ModelError

__all__ = [
    "DING_STATES",
    "DING2003_TAU2",
    "MODELS",
    "DingParameters",
    "default_parameters",
    "pulse_weights",
    "ding2007_a_factor",
    "hmed2018_lambda",
    "cn_closed_form",
    "ding_derivative",
]

MODELS: tuple[str, ...] = ("ding2003", "ding2007", "hmed2018")

R0From = Literal["state", "rest"]
PdEffect = Literal["last_pulse", "per_pulse"]


@dataclass(frozen=True)
class DingParameters:
    """Parameters of one Ding-family model, in SI units.

    Parameters
    ----------
    model : {"ding2003", "ding2007", "hmed2018"}
        Which force model.
    tau_c : float
        Rise and decay time constant of CN, s.
    a_rest : float
        Force scaling factor A at rest (``A_scale`` in Ding 2007), N/s.
    tau1_rest : float
        Force decay time constant without cross-bridges at rest, s.
    tau2 : float
        Extra force decay time constant due to cross-bridge friction, s.
    km_rest : float
        Sensitivity of strongly bound cross-bridges to CN at rest (dimensionless).
    r0_offset : float
        ``R0 = Km + r0_offset`` (1.04 in Ding 2002/2003; dimensionless).
    alpha_a : float
        Fatigue coefficient of A, s^-2.
    alpha_km : float
        Fatigue coefficient of Km, s^-1 N^-1.
    alpha_tau1 : float
        Fatigue coefficient of tau1, N^-1.
    tau_fat : float
        Recovery time constant of A, Km and tau1, s.
    fatigue : bool
        Integrate the fatigue states (otherwise A, Km, tau1 stay at rest).
    r0_from : {"state", "rest"}
        Take Km in ``R0`` from the fatiguing state (the paper) or from ``km_rest`` (cocofest,
        whose fixtures need it).
    pd0, pdt : float
        Ding 2007 pulse-duration offset and time constant, s.
    pd_effect : {"last_pulse", "per_pulse"}
        Ding 2007: scale A by the factor of the most recent pulse, held until the next one
        (cocofest and the paper's usage), or weight each pulse's CN term by its own factor.
    ar, bs, is_, cr : float
        Hmed 2018 ``lam(I) = ar (tanh(bs (I - is_)) + cr)`` with ``bs`` in 1/A and ``is_`` in A.
    """

    model: str
    tau_c: float
    a_rest: float
    tau1_rest: float
    tau2: float
    km_rest: float
    r0_offset: float = 1.04
    alpha_a: float = -0.4
    alpha_km: float = 1.9e-5
    alpha_tau1: float = 2.1e-5
    tau_fat: float = 127.0
    fatigue: bool = False
    r0_from: R0From = "state"
    pd0: float = 0.000131405
    pdt: float = 0.000194138
    pd_effect: PdEffect = "last_pulse"
    ar: float = 0.586
    bs: float = 26.0
    is_: float = 0.0631
    cr: float = 0.833

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ModelError(f"unknown force model {self.model!r}; models: {list(MODELS)}")
        for name in ("tau_c", "a_rest", "tau1_rest", "km_rest", "tau_fat"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ModelError(f"{self.model} parameter {name} = {v!r} must be finite and > 0")
        for name in ("tau2", "r0_offset", "alpha_km", "alpha_tau1", "pdt", "pd0"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ModelError(f"{self.model} parameter {name} = {v!r} must be finite and >= 0")
        if not math.isfinite(self.alpha_a) or self.alpha_a > 0:
            raise ModelError(f"alpha_a = {self.alpha_a!r} s^-2 must be finite and <= 0")
        if self.r0_from not in ("state", "rest"):
            raise ModelError(f"r0_from = {self.r0_from!r}; use 'state' or 'rest'")
        if self.pd_effect not in ("last_pulse", "per_pulse"):
            raise ModelError(f"pd_effect = {self.pd_effect!r}; use 'last_pulse' or 'per_pulse'")

    @property
    def name(self) -> str:
        """Model key with ``-fatigue`` when the fatigue states are on."""
        return self.model + ("-fatigue" if self.fatigue else "")

    def replace(self, **changes: float | str | bool) -> DingParameters:
        """A copy with some parameters changed (validated again)."""
        known = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - known)
        if bad:
            raise ModelError(f"unknown parameter(s) {bad}; parameters: {sorted(known)}")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, float | str | bool]:
        """All parameters by name (SI units)."""
        return dataclasses.asdict(self)

    def as_array(self) -> np.ndarray:
        """Packed parameters for the compiled kernels (see ``_kernels.P_*``)."""
        return np.array(
            [self.tau_c, self.a_rest, self.tau1_rest, self.tau2, self.km_rest, self.r0_offset,
             self.alpha_a, self.alpha_km, self.alpha_tau1, self.tau_fat,
             1.0 if self.fatigue else 0.0, 1.0 if self.r0_from == "state" else 0.0],
            dtype=np.float64,
        )


# Published defaults (SI). Sources and tags: reference file sections 1.3-1.5.
_DING2003 = dict(tau_c=0.020, a_rest=3009.0, tau1_rest=0.050957, tau2=0.060, km_rest=0.103)
_DING2007_SETS: dict[str, dict[str, float]] = {
    # cocofest's "value from Ding's 2007 article" (not checked against the paper)
    "cocofest": dict(tau_c=0.011, a_rest=4920.0, tau1_rest=0.060601, tau2=0.001,
                     km_rest=0.137, pd0=0.000131405, pdt=0.000194138),
    # the other circulating set (bioptim script; R0 = 5 fixed, so r0_offset = 5 - Km) [U]
    "bioptim": dict(tau_c=0.011, a_rest=1500.0, tau1_rest=0.044, tau2=0.018, km_rest=0.18,
                    pd0=0.000086, pdt=0.000138, r0_offset=4.82),
}
DING2003_TAU2 = {"cocofest": 0.060, "pmc9936668": 0.100}


def default_parameters(
    model: str,
    *,
    fatigue: bool = False,
    r0_from: R0From = "state",
    tau2: float | None = None,
    parameter_set: str = "cocofest",
) -> DingParameters:
    """Published default parameters of a model.

    * ``ding2003``: Ding J, Wexler AS, Binder-Macleod SA (2003), *J Electromyogr Kinesiol*
      13:575-588 (quadriceps; values as in pyomeca/cocofest, SI).
    * ``ding2007``: Ding J et al. (2007), *Muscle Nerve* 36:214-222.
    * ``hmed2018``: Hmed AB et al. (2018), *Comput Biol Med* 101:218-228 (Ding 2003 values
      plus the amplitude curve).
    * fatigue: Ding J, Wexler AS, Binder-Macleod SA (2000), *J Appl Physiol* 89:1322-1332,
      coefficients as corrected in Doll BD et al. (2015), *IFAC-PapersOnLine* 48:338.

    Parameters
    ----------
    model : {"ding2003", "ding2007", "hmed2018"}
        Force model. ``"ding2003-fatigue"`` style names are accepted and set ``fatigue``.
    fatigue : bool
        Switch the fatigue states on.
    r0_from : {"state", "rest"}
        Km used in ``R0`` (see :class:`DingParameters`). The paper uses the state.
    tau2 : float, optional
        Override tau2 in s. Ding 2003's tau2 is unresolved: 0.060 s (cocofest, default) or
        0.100 s (PMC9936668 Table 2); ``DING2003_TAU2`` names both.
    parameter_set : {"cocofest", "bioptim"}
        Ding 2007 only: which of the two circulating parameter sets.
    """
    if model.endswith("-fatigue"):
        model, fatigue = model[: -len("-fatigue")], True
    if model not in MODELS:
        names = list(MODELS) + [m + "-fatigue" for m in MODELS]
        raise ModelError(f"unknown force model {model!r}; models: {names}")
    values: dict[str, Any] = dict(_DING2003)
    if model == "ding2007":
        if parameter_set not in _DING2007_SETS:
            raise ModelError(f"unknown Ding 2007 parameter set {parameter_set!r}; "
                             f"sets: {sorted(_DING2007_SETS)}")
        values = dict(_DING2007_SETS[parameter_set])
    if tau2 is not None:
        values["tau2"] = tau2
    return DingParameters(model=model, fatigue=fatigue, r0_from=r0_from, **values)


# ----------------------------------------------------------------------------- pulse weights
def ding2007_a_factor(params: DingParameters, phase_width: npt.ArrayLike) -> np.ndarray:
    """Ding 2007 ``1 - exp(-(PD - PD0)/PDt)`` for pulse durations in s.

    Ding J, Chou LW, Kesar TM, Lee SC, Johnston TE, Wexler AS, Binder-Macleod SA (2007).
    Mathematical model that predicts the force-intensity and force-frequency relationships
    after spinal cord injuries. *Muscle Nerve* 36:214-222.

    Raises
    ------
    ModelError
        If a pulse duration is not above the model's threshold ``pd0``.
    """
    pd = np.asarray(phase_width, dtype=np.float64)
    bad = ~(pd > params.pd0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ModelError(
            f"pulse {i}: phase width {pd.flat[i] * 1e6:.6g} us is not above the ding2007 "
            f"threshold PD0 = {params.pd0 * 1e6:.6g} us (Ding et al. 2007); no force is produced"
        )
    return np.asarray(-np.expm1(-(pd - params.pd0) / params.pdt))


def hmed2018_lambda(params: DingParameters, amplitude: npt.ArrayLike) -> np.ndarray:
    """Hmed 2018 ``lam(I) = ar (tanh(bs (I - Is)) + cr)`` for amplitudes in A.

    Hmed AB, Bakir T, Sakly A, Binczak S (2018). A new mathematical force model that predicts
    the force-pulse amplitude relationship of human skeletal muscle. *Comput Biol Med*
    101:218-228.

    Raises
    ------
    ModelError
        If an amplitude gives ``lam <= 0`` (below about 17.03 mA with the published values).
    """
    amp = np.asarray(amplitude, dtype=np.float64)
    lam = params.ar * (np.tanh(params.bs * (amp - params.is_)) + params.cr)
    bad = ~(lam > 0)
    if bad.any():
        i = int(np.argmax(bad))
        i_min = params.is_ + math.atanh(-params.cr) / params.bs
        raise ModelError(
            f"pulse {i}: amplitude {amp.flat[i] * 1e3:.6g} mA is not above the hmed2018 "
            f"threshold {i_min * 1e3:.4g} mA (Hmed et al. 2018); no force is produced"
        )
    return np.asarray(lam)


def pulse_weights(
    params: DingParameters, amplitude: npt.ArrayLike, phase_width: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pulse CN weight ``lam`` and force-scale ``g`` of a model for given pulses.

    Parameters
    ----------
    params : DingParameters
        The model.
    amplitude : array_like
        Pulse amplitudes in A (used by Hmed 2018).
    phase_width : array_like
        Phase widths in s (used by Ding 2007).

    Returns
    -------
    lam, g : ndarray
        CN weight of each pulse and the A factor it sets (held until the next pulse).
    """
    amp = np.atleast_1d(np.asarray(amplitude, dtype=np.float64))
    pw = np.atleast_1d(np.asarray(phase_width, dtype=np.float64))
    amp, pw = np.broadcast_arrays(amp, pw)
    ones = np.ones(amp.shape)
    if params.model == "ding2003":
        return ones, ones.copy()
    if params.model == "ding2007":
        g = ding2007_a_factor(params, pw)
        if params.pd_effect == "per_pulse":
            return g, ones
        return ones, g
    return hmed2018_lambda(params, amp), ones


# ----------------------------------------------------------------------------- reference maths
def cn_closed_form(
    t: npt.ArrayLike, pulse_times: npt.ArrayLike, params: DingParameters,
    lam: npt.ArrayLike | None = None, km: float | None = None,
) -> np.ndarray:
    """Exact CN(t) for a pulse train with CN(0) = 0 and constant Km.

    ``CN(t) = sum_{t_i <= t} lam_i R_i ((t - t_i)/tau_c) exp(-(t - t_i)/tau_c)``.

    Parameters
    ----------
    t : array_like
        Times in s.
    pulse_times : array_like
        Sorted pulse times in s.
    params : DingParameters
        Model (uses ``tau_c``, ``km_rest`` and ``r0_offset``).
    lam : array_like, optional
        Per-pulse weights (Hmed 2018); 1 by default.
    km : float, optional
        Km used in R0; ``km_rest`` by default.
    """
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    tp = np.asarray(pulse_times, dtype=np.float64)
    w = np.ones_like(tp) if lam is None else np.asarray(lam, dtype=np.float64)
    r0 = (params.km_rest if km is None else km) + params.r0_offset
    r = np.ones_like(tp)
    if tp.size > 1:
        r[1:] = 1.0 + (r0 - 1.0) * np.exp(-np.diff(tp) / params.tau_c)
    s = tt[:, None] - tp[None, :]
    x = np.where(s >= 0, s / params.tau_c, 0.0)
    return np.asarray(((w * r)[None, :] * x * np.exp(-x)).sum(axis=1))


DING_STATES: tuple[str, ...] = ("CN", "F", "A", "tau1", "Km")
"""Names of the model's states in the order :func:`ding_derivative` takes and returns them
(Ding et al. 2000 and cocofest write ``tau1`` before ``Km``)."""


def ding_derivative(
    t: float, state: npt.ArrayLike, pulse_times: npt.ArrayLike, params: DingParameters,
    lam: npt.ArrayLike | None = None, g: float = 1.0,
) -> np.ndarray:
    """Right-hand side ``d[CN, F, A, tau1, Km]/dt`` of the model (plain NumPy).

    The state order is :data:`DING_STATES` (the paper's and cocofest's: ``tau1`` before
    ``Km``).

    The CN derivative uses the pulse sum; R0 takes Km from the state or from rest as
    ``params.r0_from`` says. Without fatigue the last three derivatives are 0.

    Parameters
    ----------
    t : float
        Time in s.
    state : array_like
        ``[CN, F (N), A (N/s), tau1 (s), Km]``.
    pulse_times : array_like
        Pulse times in s; only those ``<= t`` count.
    params : DingParameters
        Model.
    lam : array_like, optional
        Per-pulse CN weights (Hmed 2018).
    g : float
        Force scale of the last pulse (Ding 2007 ``1 - exp(-(PD-PD0)/PDt)``).
    """
    values = dict(zip(DING_STATES, (float(v) for v in np.asarray(state, dtype=np.float64)),
                      strict=True))
    cn, f, a, tau1, km = (values[k] for k in ("CN", "F", "A", "tau1", "Km"))
    tp = np.asarray(pulse_times, dtype=np.float64)
    w = np.ones_like(tp) if lam is None else np.asarray(lam, dtype=np.float64)
    keep = tp <= t
    tp, w = tp[keep], w[keep]
    r0 = (km if params.r0_from == "state" else params.km_rest) + params.r0_offset
    r = np.ones_like(tp)
    if tp.size > 1:
        r[1:] = 1.0 + (r0 - 1.0) * np.exp(-np.diff(tp) / params.tau_c)
    total = float(np.sum(w * r * np.exp(-(t - tp) / params.tau_c)))
    dcn = total / params.tau_c - cn / params.tau_c
    x = cn / (km + cn)
    df = a * g * x - f / (tau1 + params.tau2 * x)
    d = {"CN": dcn, "F": df, "A": 0.0, "tau1": 0.0, "Km": 0.0}
    if params.fatigue:
        d["A"] = -(a - params.a_rest) / params.tau_fat + params.alpha_a * f
        d["Km"] = -(km - params.km_rest) / params.tau_fat + params.alpha_km * f
        d["tau1"] = -(tau1 - params.tau1_rest) / params.tau_fat + params.alpha_tau1 * f
    return np.array([d[k] for k in DING_STATES])
