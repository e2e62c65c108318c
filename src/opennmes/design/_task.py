"""Design for a fatiguing task: hold a force for a number of contractions with least fatigue.

A task (:class:`HoldTask`) is ``contractions`` on-off cycles: stimulation may run during the
``on`` time of each cycle and must keep the force at or above ``force`` from ``rise`` after
its onset to its end; the ``off`` time is rest. The fatigue measure is the **force-generating
capacity at the end of the task**, ``A(T) / A_rest`` (Ding J, Wexler AS, Binder-Macleod SA
(2000) J Appl Physiol 89:1322-1332: ``A`` falls with the force produced, ``dA/dt =
-(A - A_rest)/tau_fat + alpha_A F``), at the end of the last rest; higher is less fatigue.

In the Ding fatigue model every newton-second of force costs capacity, so the least-fatigue
train that meets the task keeps the force just above the floor. :func:`design_hold` builds
it pulse by pulse on the device's slot grid with the model's exact pulse-to-pulse solution
(the steps of the design NLP, :class:`~opennmes.design._nlp.SlotProblem`): each next pulse
goes to the **latest** slot from which the floor is still kept for a look-ahead window even
if every later slot of the window pulsed (so the train never paints itself into a corner),
contraction after contraction, the fatigue of the earlier ones carried on. As the muscle
tires the pulses come closer together by themselves. :func:`constant_hold` is the baseline:
the lowest constant frequency on the same grid whose train meets the task in every
contraction (a faster one only fatigues more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from opennmes.capabilities import device_capabilities
from opennmes.design._nlp import SUBSTEP, SlotProblem
from opennmes.design._train import slot_us
from opennmes.errors import ModelError
from opennmes.physiology import DingParameters, simulate_train
from opennmes.safety import SafetyGuard, device_profile
from opennmes.schedule import PulseSchedule, Waveform, quantize_amplitude

__all__ = ["HoldTask", "HoldResult", "design_hold", "constant_hold", "hold_report"]

LOOKAHEAD = 0.15
"""Window (s) over which a candidate pulse must keep the floor reachable: long enough for
pulses at the highest rate to lift a resting muscle to the floor (about 60-100 ms for the
Ding quadriceps models)."""


@dataclass(frozen=True)
class HoldTask:
    """Hold ``force`` (N) for ``contractions`` on-off cycles.

    Parameters
    ----------
    force : float
        The floor, N, kept from ``rise`` after each onset to the end of ``on``.
    contractions : int
        Number of on-off cycles.
    on, off : float
        Stimulation (on) and rest (off) time of each cycle, s.
    rise : float
        Time allowed after each onset to reach the floor, s.
    """

    force: float = 150.0
    contractions: int = 20
    on: float = 0.5
    off: float = 1.5
    rise: float = 0.2

    def __post_init__(self) -> None:
        for name in ("force", "on", "off", "rise"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ModelError(f"hold task: {name} = {v!r} must be finite and >= 0")
        if self.force <= 0:
            raise ModelError(f"hold task: force = {self.force!r} N must be above 0 N")
        if not 0 < self.rise < self.on:
            raise ModelError(f"hold task: rise = {self.rise * 1e3:g} ms must lie inside the "
                             f"on time ({self.on * 1e3:g} ms)")
        if not 1 <= self.contractions <= 10_000:
            raise ModelError(f"hold task: contractions = {self.contractions!r} must be 1 to "
                             "10000")

    @property
    def period(self) -> float:
        """Length of one cycle, s."""
        return self.on + self.off

    @property
    def duration(self) -> float:
        """Length of the task, s (the last rest included)."""
        return self.contractions * self.period

    def hold_windows(self) -> np.ndarray:
        """The ``(start, end)`` (s) of every hold window, shape (contractions, 2)."""
        t0 = np.arange(self.contractions) * self.period
        return np.stack([t0 + self.rise, t0 + self.on], axis=1)


@dataclass(frozen=True, eq=False)
class HoldResult:
    """A train for a :class:`HoldTask` and what the project's kernel predicts for it.

    Attributes
    ----------
    schedule : PulseSchedule
        The train on the device's grid, checked by its safety guard.
    task : HoldTask
    params : DingParameters
    device : str
    capacity : float
        ``A(T) / A_rest`` at the end of the task (1: no fatigue).
    hold_min : ndarray
        Lowest force (N) in each contraction's hold window.
    frequency : float
        The constant frequency (Hz) of a :func:`constant_hold` train, NaN for a designed one.
    """

    schedule: PulseSchedule
    task: HoldTask
    params: DingParameters
    device: str
    capacity: float
    hold_min: np.ndarray
    frequency: float = float("nan")

    @property
    def meets(self) -> bool:
        """The floor holds in every contraction (by the project's kernel)."""
        return bool((self.hold_min >= self.task.force).all())


def _slot_grid(task: HoldTask, device: str, min_interval: float) -> tuple[int, float]:
    h_us = slot_us(device, min_interval)
    period_us = task.period * 1e6
    if abs(period_us / h_us - round(period_us / h_us)) > 1e-9:
        raise ModelError(f"hold task: the cycle ({task.period * 1e3:g} ms) is not a whole "
                         f"number of {h_us / 1e3:g} ms slots")
    return h_us, h_us * 1e-6


def _schedule(params: DingParameters, device: str, t_us: np.ndarray, amplitude: float,
              pulse_width: float, electrode_area: float, channel: str) -> PulseSchedule:
    caps = device_capabilities(device)
    amp = quantize_amplitude(np.full(t_us.size, amplitude), caps.amplitude_step)
    sched = PulseSchedule.from_arrays(t_us / 1e6, amp, np.full(t_us.size, pulse_width),
                                      waveform=Waveform.SYMMETRIC_BIPHASIC,
                                      channel_names=(channel,))
    SafetyGuard(device_profile(device), {channel: electrode_area}).check(sched)
    return sched


def hold_report(task: HoldTask, params: DingParameters, schedule: PulseSchedule,
                sfreq: float = 2000.0) -> tuple[float, np.ndarray]:
    """The capacity ``A(T) / A_rest`` at the end of the task and the lowest force (N) in
    each hold window, by the project's kernel sampled at ``sfreq``."""
    res = simulate_train(params, schedule.t, t_end=task.duration, sfreq=sfreq,
                         pulse_widths=schedule.phase_width, amplitudes=schedule.amplitude)
    t, f = res.t, res["force"]
    mins = np.array([f[(t >= lo - 1e-9) & (t <= hi + 1e-9)].min()
                     for lo, hi in task.hold_windows()])
    return float(res["A"][-1] / params.a_rest), mins


def _check_model(params: DingParameters) -> None:
    if not params.fatigue:
        raise ModelError("a fatiguing task needs the fatigue model (fatigue=True): without "
                         "it nothing tires")
    if params.model != "ding2003":
        raise ModelError(f"hold tasks are designed for ding2003 (pulse times) only, not "
                         f"{params.model}")


def design_hold(task: HoldTask, params: DingParameters, *, device: str = "sim",
                min_interval: float = 5e-3, margin: float = 0.01,
                amplitude: float = 50e-3, pulse_width: float = 300e-6,
                electrode_area: float = 50e-4, channel: str = "ch1") -> HoldResult:
    """The least-fatigue train (pulse times) that holds ``task.force`` in every contraction.

    Pulses go to the latest slot that keeps the force at or above ``(1 + margin)`` times the
    floor (see the module text); the model is Ding 2003 with fatigue, pulses of
    ``amplitude`` (A) and ``pulse_width`` (s).

    Raises
    ------
    ModelError
        No fatigue model, a model other than Ding 2003, a grid the cycle does not fit, or a
        floor the muscle cannot hold (the train would miss it even pulsing every slot).
    """
    _check_model(params)
    h_us, h = _slot_grid(task, device, min_interval)
    m = max(math.ceil(h / SUBSTEP - 1e-9), 1)
    prob = SlotProblem(params, h, np.zeros((1, m + 1)), decide="none", fixed_value=1.0,
                       bounds=(0.0, 1.0), objective="tracking", weight=0.0, f_ref=1.0,
                       t_total=h)
    floor = task.force * (1.0 + margin)
    per = round(task.period * 1e6) // h_us
    n_on = math.ceil(task.on * 1e6 / h_us - 1e-9)
    hold0 = task.rise / h  # in slots from the onset
    look = max(math.ceil(LOOKAHEAD / h - 1e-9), 1)
    node = np.arange(m + 1) / m  # sub-step nodes within a slot, in slots

    def floor_at(k: np.ndarray) -> np.ndarray:
        """The floor at slot positions ``k`` (slots from the cycle's onset, may be
        fractional)."""
        return np.where((k >= hold0 - 1e-9) & (k <= n_on + 1e-9), floor, 0.0)

    x = prob.rest_state
    pulses: list[int] = []
    for c in range(task.contractions):
        base = c * per
        k = 0
        while k < n_on:
            span = n_on + look - k
            xs, fq = prob.trajectory(x, np.zeros(span), np.zeros(span))
            quiet = np.concatenate([x[:, None], xs], axis=1)  # state at slots k .. k+span
            pos_q = k + np.arange(span)[None, :] + node[:, None]
            ok_q = np.minimum.accumulate((fq >= floor_at(pos_q)).all(axis=0))
            if ok_q[n_on - k - 1]:
                break  # the floor holds to the end of this contraction without a pulse
            chosen = k  # if no slot keeps the floor, pulse now to catch up
            for j in range(k, n_on):
                if j > k and not ok_q[j - k - 1]:
                    break  # the force already falls below the floor before slot j
                _, fj = prob.trajectory(quiet[:, j - k], np.ones(look), np.zeros(look))
                pos = j + np.arange(look)[None, :] + node[:, None]
                if not (fj >= floor_at(pos)).all():
                    break
                chosen = j
            pulses.append(base + chosen)
            u = np.zeros(chosen - k + 1)
            u[-1] = 1.0
            xs, _ = prob.trajectory(x, u, np.zeros(u.size))
            x = xs[:, -1]
            k = chosen + 1
        rest = per - k
        if rest > 0:
            xs, _ = prob.trajectory(x, np.zeros(rest), np.zeros(rest))
            x = xs[:, -1]
    t_us = np.asarray(pulses, dtype=np.int64) * h_us
    sched = _schedule(params, device, t_us, amplitude, pulse_width, electrode_area, channel)
    cap, mins = hold_report(task, params, sched)
    if not (mins >= task.force).all():
        c = int(np.argmin(mins >= task.force))
        raise ModelError(f"hold task: the muscle cannot hold {task.force:g} N in contraction "
                         f"{c + 1} (at most {mins[c]:.1f} N with a pulse every "
                         f"{h * 1e3:g} ms); lower the force or lengthen the rest")
    return HoldResult(sched, task, params, device, cap, mins)


def constant_hold(task: HoldTask, params: DingParameters, *, device: str = "sim",
                  min_interval: float = 5e-3, amplitude: float = 50e-3,
                  pulse_width: float = 300e-6, electrode_area: float = 50e-4,
                  channel: str = "ch1") -> HoldResult:
    """The best constant program: pulses every ``i`` slots from each onset to the end of the
    on time, with the largest ``i`` (lowest frequency) that meets the task in every
    contraction by the project's kernel.

    Raises
    ------
    ModelError
        No constant frequency on the grid meets the task.
    """
    _check_model(params)
    h_us, h = _slot_grid(task, device, min_interval)
    per = round(task.period * 1e6) // h_us
    n_on = math.ceil(task.on * 1e6 / h_us - 1e-9)
    for i in range(n_on, 0, -1):
        one = np.arange(0, n_on, i)
        slots = (np.arange(task.contractions)[:, None] * per + one[None, :]).ravel()
        sched = _schedule(params, device, slots * h_us, amplitude, pulse_width,
                          electrode_area, channel)
        cap, mins = hold_report(task, params, sched)
        if (mins >= task.force).all():
            return HoldResult(sched, task, params, device, cap, mins,
                              frequency=1.0 / (i * h))
    raise ModelError(f"hold task: no constant frequency up to {1 / h:g} Hz holds "
                     f"{task.force:g} N in all {task.contractions} contractions")
