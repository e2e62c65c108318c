"""Design a pulse train that makes a Ding-family model track a target force.

Three steps (see ``docs/design.md``):

1. **Relaxed solve.** Candidate pulses on the device's grid, one slot per minimum interval;
   each slot's pulse weight is relaxed to [0, 1] and, where the model has them, its width
   (Ding 2007) or amplitude (Hmed 2018) is free between its bounds; IPOPT solves the NLP
   (``_nlp.SlotProblem``).
2. **Rounding.** Sum-up rounding of the weights (Sager's combinatorial integral
   approximation): the running sum of the chosen pulses never differs from the running sum
   of the relaxed weights by more than one half.
3. **Polish.** With the pulses fixed, the widths or amplitudes are solved again (exact
   dynamics); then single pulses are moved by one slot, added or removed while that lowers
   the objective. Widths go to whole microseconds and amplitudes to the device's step, and
   the schedule passes the device's safety guard before it is returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from opennmes.capabilities import device_capabilities
from opennmes.design._nlp import FULL_STATES, SUBSTEP, SlotProblem
from opennmes.design._target import Target
from opennmes.errors import ModelError
from opennmes.physiology import DingParameters, pulse_weights, simulate_train
from opennmes.safety import SafetyGuard, device_profile
from opennmes.schedule import PulseSchedule, Waveform, quantize_amplitude

if TYPE_CHECKING:
    from opennmes.stim import Program

__all__ = ["OBJECTIVES", "DEFAULT_WEIGHTS", "DesignResult", "WidthsResult", "design_train",
           "design_widths", "device_program", "predict", "time_grid"]

OBJECTIVES: tuple[str, ...] = ("tracking", "fatigue", "charge")
DEFAULT_WEIGHTS = {"tracking": 0.0, "fatigue": 0.1, "charge": 0.01}
"""Weight of the fatigue or charge term against the tracking term (mean squared error over
the target's peak squared): with 0.01, a train that pulses in every slot at full charge must
track 10 % of the peak (rms) better than one with no pulses to be preferred."""

DEFAULT_PULSE_WIDTH = 300e-6
"""Phase width of every pulse when the model does not decide it, s [U: a common NMES value]."""
DEFAULT_AMPLITUDE = 0.050
"""Amplitude of every pulse when the model does not decide it, A [U]."""
MAX_PULSE_WIDTH = 600e-6
"""Longest width Ding 2007 may choose unless told, s (cocofest's pulse-width example)."""
MAX_AMPLITUDE = 0.100
"""Highest amplitude Hmed 2018 may choose unless told, A (lam is within 2 % of its plateau)."""
ELECTRODE_AREA = 50e-4
"""Electrode area the safety guard assumes unless told, m^2 (a quadriceps electrode)."""
FIXED_GAP = {"rehastim2": 100e-6}
"""Interphase gap (s) a device delivers whatever it is told: RehaStim 2 pulses have a fixed
100 us gap (Hasomed ScienceMode2 protocol v1.24, section 1.2); a design for it carries that
gap so that the schedule is what the device plays."""

PENALTY_STEPS = (0.003, 0.03)
"""Weights of the penalty on fractional pulse weights, in the order they are solved (each
solve starts from the one before)."""

Progress = Callable[[str], None]


def time_grid(device: str) -> float:
    """The time step (s) on which a device can place pulses: its period grid's step, or one
    microsecond (the schedule's grid) when it has none."""
    caps = device_capabilities(device)
    return caps.period_grid[1] if caps.period_grid is not None else 1e-6


def slot_us(device: str, min_interval: float) -> int:
    """The slot length (whole microseconds): the minimum interval (s) rounded up to the
    device's time grid.

    Raises
    ------
    ModelError
        The interval is below what the device can play.
    """
    caps = device_capabilities(device)
    grid_us = round(time_grid(device) * 1e6)
    shortest = 1.0 / caps.pulse_rate_max if caps.pulse_rate_max else 1e-6
    if not (math.isfinite(min_interval) and min_interval >= shortest - 1e-12):
        raise ModelError(f"minimum interval {min_interval * 1e3:g} ms is below what "
                         f"{caps.label} can play ({shortest * 1e3:g} ms; {caps.source})")
    return math.ceil(min_interval * 1e6 / grid_us - 1e-9) * grid_us


@dataclass(frozen=True, eq=False)
class DesignResult:
    """A designed pulse train and what the model predicts for it.

    Attributes
    ----------
    schedule : PulseSchedule
        The train, on the device's grid, checked by its safety guard.
    params : DingParameters
        The model it was designed for.
    target : Target
    device : str
    decided : {"none", "width", "amplitude"}
        What the design chose besides the times.
    t, force : ndarray
        The model's force (N) for the schedule, simulated by the project's kernel every
        millisecond from 0 to the target's end (s).
    rmse : float
        Root-mean-square tracking error over the target's active interval, N.
    objective : str
    value : float
        The objective of the final train (normalised tracking + weighted penalty).
    relaxed_value : float
        The relaxed problem's optimum (a lower bound of ``value`` on this grid).
    converged : bool
        Every IPOPT solve converged.
    iterations : int
        IPOPT iterations over all solves.
    min_interval : float
        Smallest interval between pulses, s.
    """

    schedule: PulseSchedule
    params: DingParameters
    target: Target
    device: str
    decided: str
    t: np.ndarray
    force: np.ndarray
    rmse: float
    objective: str
    value: float
    relaxed_value: float
    converged: bool
    iterations: int
    min_interval: float
    notes: tuple[str, ...] = field(default=())

    @property
    def charge(self) -> float:
        """Total charge of the first phases, C."""
        s = self.schedule
        return float(np.sum(s.amplitude * s.phase_width))

    def pulses_table(self) -> dict[str, np.ndarray]:
        """The train as columns ``t`` (s) and, where the model has them, ``pulse_width`` (s)
        (Ding 2007) and ``amplitude`` (A) (Hmed 2018)."""
        cols = {"t": self.schedule.t}
        if self.params.model == "ding2007":
            cols["pulse_width"] = self.schedule.phase_width
        if self.params.model == "hmed2018":
            cols["amplitude"] = self.schedule.amplitude
        return cols

    def summary(self) -> str:
        """Lines for a person: counts, times in ms, widths in us, amplitudes in mA, force in N."""
        s = self.schedule
        lo, hi = self.target.active
        lines = [
            f"{self.params.name} on {self.device}: {len(s)} pulses from {s.t[0] * 1e3:.1f} to "
            f"{s.t[-1] * 1e3:.1f} ms (shortest interval "
            f"{np.diff(s.t).min() * 1e3 if len(s) > 1 else float('nan'):.2f} ms, at least "
            f"{self.min_interval * 1e3:g} ms)",
            f"tracking RMSE {self.rmse:.2f} N over {lo * 1e3:.0f}-{hi * 1e3:.0f} ms "
            f"({100 * self.rmse / self.target.peak:.1f} % of the {self.target.peak:.1f} N peak)",
        ]
        if self.decided == "width":
            lines.append(f"widths {s.phase_width.min() * 1e6:.0f}-{s.phase_width.max() * 1e6:.0f}"
                         f" us at {s.amplitude[0] * 1e3:.1f} mA")
        elif self.decided == "amplitude":
            lines.append(f"amplitudes {s.amplitude.min() * 1e3:.1f}-{s.amplitude.max() * 1e3:.1f}"
                         f" mA at {s.phase_width[0] * 1e6:.0f} us")
        else:
            lines.append(f"every pulse {s.amplitude[0] * 1e3:.1f} mA, "
                         f"{s.phase_width[0] * 1e6:.0f} us")
        lines.append(f"charge {self.charge * 1e6:.1f} uC (first phases); objective "
                     f"{self.objective} {self.value:.4g} (relaxed bound "
                     f"{self.relaxed_value:.4g}); IPOPT "
                     f"{'converged' if self.converged else 'DID NOT CONVERGE'} "
                     f"({self.iterations} iterations)")
        lines.extend(self.notes)
        return "\n".join(lines)


def _sum_up_rounding(u: np.ndarray) -> np.ndarray:
    """Sum-up rounding: ``b_k = 1`` when the relaxed running sum leads the chosen one by at
    least one half (Sager S, Bock HG, Diehl M (2012) Math Program 133:1-23)."""
    b = np.zeros_like(u)
    acc = 0.0
    for k, uk in enumerate(u):
        acc += float(uk)
        if acc >= 0.5:
            b[k] = 1.0
            acc -= 1.0
    return b


def _decided(params: DingParameters) -> str:
    return {"ding2007": "width", "hmed2018": "amplitude"}.get(params.model, "none")


def _bounds(params: DingParameters, device: str, decided: str, max_pulse_width: float,
            max_amplitude: float) -> tuple[float, float]:
    caps = device_capabilities(device)
    if decided == "width":
        lo = params.pd0 + 10e-6
        hi = max_pulse_width
        if caps.phase_width_range is not None:
            lo = max(lo, caps.phase_width_range[0])
            hi = min(hi, caps.phase_width_range[1])
        lo, hi = math.ceil(lo * 1e6) / 1e6, math.floor(hi * 1e6 + 1e-6) / 1e6
        name, unit, scale = "pulse width", "us", 1e6
    elif decided == "amplitude":
        lo = params.is_ + math.atanh(-params.cr) / params.bs + 1e-3
        hi = max_amplitude
        if caps.amplitude_max is not None:
            hi = min(hi, caps.amplitude_max)
        step = caps.amplitude_step or 1e-6
        lo, hi = (math.ceil(lo / step - 1e-9) * step, math.floor(hi / step + 1e-9) * step)
        name, unit, scale = "amplitude", "mA", 1e3
    else:
        return 0.0, 1.0
    if not lo < hi:
        raise ModelError(f"{params.model} on {device}: no {name} between the model's threshold "
                         f"{lo * scale:.4g} {unit} and the limit {hi * scale:.4g} {unit}")
    return lo, hi


def design_train(
    target: Target,
    params: DingParameters,
    *,
    device: str = "sim",
    objective: str = "tracking",
    min_interval: float = 5e-3,
    weight: float | None = None,
    pulse_width: float = DEFAULT_PULSE_WIDTH,
    amplitude: float = DEFAULT_AMPLITUDE,
    max_pulse_width: float = MAX_PULSE_WIDTH,
    max_amplitude: float = MAX_AMPLITUDE,
    electrode_area: float = ELECTRODE_AREA,
    channel: str = "ch1",
    local_search: bool = True,
    progress: Progress | None = None,
) -> DesignResult:
    """Pulse times (and widths or amplitudes) that make a model track a target force.

    Parameters
    ----------
    target : Target
        Force profile to track (N over s).
    params : DingParameters
        Force model: ``ding2003`` (times), ``ding2007`` (times and widths) or ``hmed2018``
        (times and amplitudes), with or without fatigue; a patient's muscle's
        ``force_model`` works the same way.
    device : {"sim", "rehastim2", "p24"}
        Whose time grid, ranges, steps and safety profile the train must respect.
    objective : {"tracking", "fatigue", "charge"}
        Tracking alone, or tracking plus ``weight`` times the loss of A at the end
        (``fatigue``, needs the fatigue model) or the charge (``charge``).
    min_interval : float
        Shortest interval between two pulses, s (default 5 ms); rounded up to the device's
        grid.
    weight : float, optional
        Weight of the fatigue or charge term (:data:`DEFAULT_WEIGHTS`).
    pulse_width, amplitude : float
        The width (s) and amplitude (A) of every pulse where the model does not decide them.
    max_pulse_width, max_amplitude : float
        Upper bounds of the decided width (s) or amplitude (A), further narrowed by the
        device.
    electrode_area : float
        Electrode area (m^2) for the safety guard's density limits.
    channel : str
        Channel name of the schedule.
    local_search : bool
        After rounding, move, add or remove single pulses while that lowers the objective.
    progress : callable, optional
        Called with the name of each step as it starts.

    Raises
    ------
    ModelError
        An unknown objective, a fatigue objective without the fatigue model, a minimum
        interval the device cannot play, no room between thresholds and limits.
    SafetyLimitError
        The designed train breaks a limit of the device's safety profile.
    """
    say = progress or (lambda _s: None)
    caps = device_capabilities(device)
    if objective not in OBJECTIVES:
        raise ModelError(f"unknown objective {objective!r}; objectives: {list(OBJECTIVES)}")
    if objective == "fatigue" and not params.fatigue:
        raise ModelError("objective 'fatigue' needs the fatigue model (--fatigue): without "
                         "it the model has no fatigue to minimise")
    w = DEFAULT_WEIGHTS[objective] if weight is None else float(weight)
    if not (math.isfinite(w) and w >= 0):
        raise ModelError(f"weight = {w!r} must be finite and >= 0")
    grid_us = round(time_grid(device) * 1e6)
    h_us = slot_us(device, min_interval)
    span = float(target.t[-1] - target.t[0])
    if min_interval > span / 2:
        raise ModelError(f"minimum interval {min_interval * 1e3:g} ms leaves fewer than 2 "
                         f"pulses in the {span * 1e3:g} ms target")
    h = h_us * 1e-6
    t0_us = math.ceil(target.t[0] * 1e6 / grid_us - 1e-9) * grid_us
    n = math.ceil((target.t[-1] - t0_us * 1e-6) / h - 1e-9)
    m = max(math.ceil(h / SUBSTEP - 1e-9), 1)
    slots = t0_us + h_us * np.arange(n, dtype=np.int64)
    nodes = slots[:, None] * 1e-6 + (h / m) * np.arange(m + 1)[None, :]
    fstar = target.at(nodes)
    decided = _decided(params)
    lo, hi = _bounds(params, device, decided, max_pulse_width, max_amplitude)
    fixed_amp = amplitude if decided != "amplitude" else None
    fixed_pw = pulse_width if decided != "width" else None
    if decided == "none" or params.model == "ding2003":
        fixed_value = 1.0
    else:
        lam, g = pulse_weights(params, amplitude, pulse_width)
        fixed_value = float(lam[0] if params.model == "hmed2018" else g[0])
    prob = SlotProblem(params, h, fstar, decide=decided, fixed_value=fixed_value,
                       bounds=(lo, hi), objective=objective, weight=w,
                       f_ref=target.peak, t_total=n * h)

    say("relaxed solve")
    v0 = np.full(n, hi if decided != "none" else 0.0)
    # Hmed 2018: a pulse adds u lam(I) to S, so weight and amplitude trade off exactly and
    # the relaxed problem has a valley of optima where IPOPT did not converge (1377
    # iterations on a 0.7 s target); the pulses are chosen at the amplitude that gives half
    # the largest lam (room both ways) and the amplitudes solved once the pulses are fixed
    free_v = decided != "amplitude"
    if not free_v:
        lam_hi = params.ar * (math.tanh(params.bs * (hi - params.is_)) + params.cr)
        half = params.is_ + math.atanh(lam_hi / (2 * params.ar) - params.cr) / params.bs
        v0 = np.full(n, min(max(half, lo), hi))
    relaxed = prob.solve(u0=np.full(n, 0.5), v0=v0, free_u=True, free_v=free_v)
    iterations = relaxed.iterations
    converged = relaxed.converged
    u, v = relaxed.u, relaxed.v
    for beta in PENALTY_STEPS:
        say(f"penalised solve (beta {beta:g})")
        pen = prob.solve(u0=u, v0=v, free_u=True, beta=beta, free_v=free_v)
        iterations += pen.iterations
        u, v = pen.u, pen.v
    say("rounding")
    b = _sum_up_rounding(u)
    v = v if decided != "none" else v0
    value = _objective(prob, b, v)
    if decided != "none":
        say("polish")
        pol = prob.solve(u0=b, v0=v, free_u=False)
        iterations += pol.iterations
        converged = converged and pol.converged
        v, value = pol.v, _objective(prob, b, pol.v)
    if local_search:
        say("local search")
        b, value = _local_search(prob, b, v, value)
    say("safety check")
    keep = b > 0.5
    if not keep.any():
        raise ModelError("the design chose no pulse at all (the target may be below what "
                         "one pulse produces); raise the target or lower the weight")
    t = slots[keep] / 1e6  # the closest float to each whole microsecond
    if decided == "width":
        pw = np.clip(np.rint(v[keep] * 1e6) / 1e6, lo, hi)
    else:
        pw = np.full(t.size, float(fixed_pw if fixed_pw is not None else pulse_width))
    if decided == "amplitude":
        amp = np.clip(quantize_amplitude(v[keep], caps.amplitude_step), lo, hi)
    else:
        amp = np.full(t.size, float(fixed_amp if fixed_amp is not None else amplitude))
        amp = quantize_amplitude(amp, caps.amplitude_step)
    sched = PulseSchedule.from_arrays(t, amp, pw, waveform=Waveform.SYMMETRIC_BIPHASIC,
                                      interphase_gap=FIXED_GAP.get(device, 0.0),
                                      channel_names=(channel,))
    SafetyGuard(device_profile(device), {channel: electrode_area}).check(sched)
    t_out = np.arange(0.0, target.t[-1] + 5e-4, 1e-3)
    force = predict(params, sched, t_out)
    lo_a, hi_a = target.active
    act = (t_out >= lo_a) & (t_out <= hi_a)
    rmse = float(np.sqrt(np.mean((force[act] - target.at(t_out[act])) ** 2)))
    return DesignResult(
        schedule=sched, params=params, target=target, device=device, decided=decided,
        t=t_out, force=force, rmse=rmse, objective=objective, value=value,
        relaxed_value=relaxed.objective, converged=converged, iterations=iterations,
        min_interval=h)


@dataclass(frozen=True, eq=False)
class WidthsResult:
    """Widths (s) for fixed pulse times and what IPOPT reported: the objective (N^2 s and
    N^2 terms, see :func:`design_widths`), whether it converged and in how many
    iterations."""

    widths: np.ndarray
    objective: float
    converged: bool
    iterations: int


def design_widths(params: DingParameters, pulse_times: np.ndarray, *, t_end: float,
                  end_force: float, end_weight: float, force_weight: float = 1.0,
                  min_width: float | None = None, max_width: float = MAX_PULSE_WIDTH,
                  substep: float = SUBSTEP) -> WidthsResult:
    """Pulse widths for fixed, evenly spaced pulse times (Ding 2007), minimising
    ``force_weight * integral(F^2 dt) + end_weight * (F(t_end) - end_force)^2``.

    This is the problem class of cocofest's pulse-width examples (minimise the force state,
    track a force at the last node). The NLP is :class:`~opennmes.design._nlp.SlotProblem`
    with one slot per pulse interval and every slot pulsing: CN in closed form, F and the
    fatigue states by RK4 on sub-steps of at most 2.5 ms, multiple shooting, exact Hessians,
    the mapped slot step differentiated once (an MX graph: quick to build for few slots);
    the widths are continuous (not rounded to the device).

    Parameters
    ----------
    params : DingParameters
        A ``ding2007`` model, with or without fatigue.
    pulse_times : ndarray
        Evenly spaced pulse times, s; ``t_end`` must be one interval after the last.
    min_width, max_width : float
        Bounds of the widths, s (``min_width`` defaults to the model's PD0).
    substep : float
        Longest RK4 sub-step of F inside a pulse interval, s.

    Raises
    ------
    ModelError
        Not Ding 2007, uneven times, ``t_end`` not one interval after the last pulse, or
        empty bounds.
    """
    if params.model != "ding2007":
        raise ModelError(f"design_widths needs the ding2007 model, not {params.model}")
    tp = np.asarray(pulse_times, dtype=np.float64)
    if tp.size < 2 or not np.allclose(np.diff(tp), tp[1] - tp[0], rtol=0, atol=1e-9) \
            or tp[1] <= tp[0]:
        raise ModelError("design_widths: the pulse times must be at least 2, increasing "
                         "and evenly spaced")
    h = float(tp[1] - tp[0])
    if abs(t_end - (tp[-1] + h)) > 1e-9:
        raise ModelError(f"design_widths: t_end = {t_end * 1e3:g} ms must be one interval "
                         f"({h * 1e3:g} ms) after the last pulse ({tp[-1] * 1e3:g} ms)")
    lo = params.pd0 if min_width is None else float(min_width)
    if not lo < max_width:
        raise ModelError(f"design_widths: no width between {lo * 1e6:.4g} us and "
                         f"{max_width * 1e6:.4g} us")
    m = max(math.ceil(h / substep - 1e-9), 1)
    prob = SlotProblem(params, h, np.zeros((tp.size, m + 1)), decide="width", fixed_value=1.0,
                       bounds=(lo, max_width), objective="tracking", weight=0.0,
                       f_ref=force_weight ** -0.5, t_total=1.0,
                       end=(float(end_force), float(end_weight)), graph="mx")
    sol = prob.solve(u0=np.ones(tp.size), v0=np.full(tp.size, max_width), free_u=False)
    return WidthsResult(sol.v, sol.objective, sol.converged, sol.iterations)


def device_program(schedule: PulseSchedule, slot: float, *, name: str = "designed train",
                   electrode_area: float = ELECTRODE_AREA,
                   site: str = "quadriceps") -> Program:
    """The program a device is configured with to play a designed one-channel train.

    Hasomed devices run a channel on a fixed period and play, in each period, the pulses the
    host sends for it: the channel runs at one period per slot (``slot`` s, the design's
    :attr:`DesignResult.min_interval`), at the train's largest amplitude and width (the
    ceilings the guard checks) and its interphase gap; the train itself, delivered chunk by
    chunk (``stim.deliver``), then fills each period with its pulse or none.

    Raises
    ------
    ModelError
        A pulse off the slot grid (the train was designed with another minimum interval),
        or a train with several channels or shapes the program cannot carry.
    """
    from opennmes.stim import Channel, Electrode, Program

    if len(schedule) == 0 or len(schedule.channel_names) != 1:
        raise ModelError("device_program: needs a non-empty one-channel train")
    slot_us_ = round(slot * 1e6)
    t_us = np.rint(schedule.t * 1e6).astype(np.int64)
    off = np.flatnonzero(t_us % slot_us_ != 0)
    if off.size:
        raise ModelError(f"device_program: pulse {off[0] + 1} at {schedule.t[off[0]] * 1e3:g} ms"
                         f" is off the {slot * 1e3:g} ms slot grid the train was designed on")
    gaps = np.unique(schedule.interphase_gap)
    if gaps.size != 1:
        raise ModelError("device_program: the pulses have different interphase gaps")
    ch = Channel(name=schedule.channel_names[0],
                 electrode=Electrode(area=electrode_area, site=site),
                 frequency=1.0 / slot, pulse_width=float(schedule.phase_width.max()),
                 interphase_gap=float(gaps[0]), amplitude=float(schedule.amplitude.max()))
    return Program(name=name, channels=[ch], duration=float(schedule.t[-1]) + slot)


def predict(params: DingParameters, schedule: PulseSchedule, t: np.ndarray) -> np.ndarray:
    """The model's force (N) for a schedule at times ``t`` (s), by the project's kernel."""
    sfreq = 1e4
    res = simulate_train(params, schedule.t, t_end=float(t[-1]), sfreq=sfreq,
                         pulse_widths=schedule.phase_width, amplitudes=schedule.amplitude,
                         states=False)
    return np.interp(t, res.t, res["force"])


def _objective(prob: SlotProblem, b: np.ndarray, v: np.ndarray) -> float:
    """The full objective of a rounded train (tracking + penalty)."""
    xs, value = prob.simulate(b, v)
    if prob.objective == "fatigue":
        p = prob.params
        a_end = xs[FULL_STATES.index("A"), -1]
        value += prob.weight * (p.a_rest - a_end) / p.a_rest
    elif prob.objective == "charge":
        per = v / prob.bounds[1] if prob.decide != "none" else np.ones_like(b)
        value += prob.weight * float(np.dot(b, per)) / prob.n
    return value


def _local_search(prob: SlotProblem, b: np.ndarray, v: np.ndarray, value: float,
                  max_rounds: int = 3) -> tuple[np.ndarray, float]:
    """Move single pulses one slot earlier or later, add or remove one, while the objective
    falls (first improvement; at most ``max_rounds`` passes over the train)."""
    b = b.copy()
    for _ in range(max_rounds):
        improved = False
        for k in range(prob.n):
            cands = []
            if b[k] > 0.5:
                cands.append([(k, 0.0)])
                for j in (k - 1, k + 1):
                    if 0 <= j < prob.n and b[j] < 0.5:
                        cands.append([(k, 0.0), (j, 1.0)])
            else:
                cands.append([(k, 1.0)])
            for moves in cands:
                trial = b.copy()
                for i, x in moves:
                    trial[i] = x
                val = _objective(prob, trial, v)
                if val < value - 1e-12:
                    b, value, improved = trial, val, True
                    break
        if not improved:
            break
    return b, value
