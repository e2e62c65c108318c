"""A closed-loop channel driven by receding-horizon control of the muscle's force (MPC).

:class:`MpcDrive` sits beside :class:`~opennmes.session.ClosedLoopDrive` (PID + ILC): the
same slots (one per pulse of the channel), the same repetitions, the same safety behaviour
(the operator's intensity is the ceiling, every window goes through the device's guard in
the runner, a stale or lost measurement opens the loop to zero output with a ``silent``
event), the same ``control.<channel>`` trace and ``repetition`` events. What differs is the
controller: at the first pulse slot of each window the drive solves
:class:`~opennmes.design.RecedingHorizon` (1 s ahead, at most 30 decisions) from the model's
state, estimated from the pulses delivered and corrected by the measured force, and applies
the solution's first slots until the next window. A window the solver does not converge on
(or that raises) delivers nothing: zero output and a ``solver failed`` loop event; the next
window tries again from a cold start and records ``solver recovered`` when it converges.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.design import RecedingHorizon
from opennmes.errors import ModelError, ProgramError
from opennmes.physiology import Muscle
from opennmes.schedule import US_PER_S, PulseSchedule, quantize_amplitude, to_us
from opennmes.session._drives import _MeasuredLoop
from opennmes.session._events import LoopEvent
from opennmes.session._tracking import TrackingPlan
from opennmes.signals import Signals
from opennmes.stim import Channel

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.stim import Program

__all__ = ["MpcDrive", "plan_mpc_tracking"]

log = logging.getLogger(__name__)


class MpcDrive(_MeasuredLoop):
    """A channel whose pulse amplitudes come from model-predictive control of a force.

    Parameters
    ----------
    channel : str
        Program channel this drive takes over (its pulse width, frequency and electrode are
        used; its amplitude is the ceiling with the operator's intensity). Its train must be
        constant: one slot per pulse.
    target : ndarray
        Target force (N) at each pulse of one repetition.
    muscle : Muscle
        The model the controller predicts with: a virtual patient's muscle (Ding 2003 force
        and fatigue, recruitment by the nerve model), or one personalised with an identified
        participant's parameters (``VirtualPatient.personalise(force_params=...)``).
    signal : str
        Measured force, N (``quadriceps.force`` on ``sim://``).
    sensor : str, optional
        Name of the sensor stream carrying ``signal``.
    start, period : float
        Session time of the first repetition and the repetition period (s), as for
        :class:`~opennmes.session.ClosedLoopDrive`.
    horizon : float
        Window of each solve, s.
    max_decisions : int
        Most decisions per window (move blocking beyond).
    fatigue_weight : float
        Weight of the loss of force-generating capacity in the window
        (:class:`~opennmes.design.RecedingHorizon`).
    silence_timeout : float
        With no valid sample of ``signal`` newer than this (s), the loop is open.
    solver : RecedingHorizon, optional
        A controller built beforehand for this channel (its period must be the channel's);
        by default one is built in :meth:`bind`.
    """

    def __init__(self, channel: str, target: np.ndarray, muscle: Muscle, *,
                 signal: str = "quadriceps.force", sensor: str | None = None,
                 start: float = 0.0, period: float | None = None, horizon: float = 1.0,
                 max_decisions: int = 30, fatigue_weight: float = 0.1,
                 silence_timeout: float = 0.5, solver: RecedingHorizon | None = None) -> None:
        tgt = np.asarray(target, dtype=np.float64).reshape(-1)
        if tgt.size == 0 or not np.all(np.isfinite(tgt)) or tgt.min() < 0:
            raise ProgramError("MPC target must be a non-empty array of finite forces >= 0 N")
        if not (math.isfinite(start) and start >= 0):
            raise ProgramError(f"MPC start = {start!r} s must be >= 0")
        if not (math.isfinite(silence_timeout) and silence_timeout > 0):
            raise ProgramError(f"MPC silence_timeout = {silence_timeout!r} s must be > 0")
        if muscle.force_model.model != "ding2003":
            raise ProgramError(f"MPC drive of {channel!r}: the muscle's force model must be "
                               f"ding2003 (recruitment by amplitude), not "
                               f"{muscle.force_model.model!r}")
        self.channel = channel
        self.target = tgt
        self.muscle = muscle
        self.signal = signal
        self.sensor = sensor
        self.start = float(start)
        self.period = period
        self.horizon = float(horizon)
        self.max_decisions = int(max_decisions)
        self.fatigue_weight = float(fatigue_weight)
        self.silence_timeout = float(silence_timeout)
        self.mpc = solver
        self.solves: list[tuple[float, bool, int]] = []  # (solve time s, converged, iterations)
        self._y: float | None = None
        self._y_t: float | None = None
        self._silent = False
        self._events = []
        self._trace = []
        self._trace_t0: float | None = None
        self._unit = ""
        self._f = 0.0
        self._per_n = 0
        self._next = 0
        self._ch: Channel | None = None
        self._index = 0
        self._names: tuple[str, ...] = ()
        self._amps = np.empty(0)
        self._recs = np.empty(0)
        self._step = 0.0
        self._plan: Any = None  # (first slot, MpcStep) of the last converged window
        self._failed = False
        self._pred: dict[int, float] = {}  # predicted force at slot boundaries, N
        self._meas: dict[int, float] = {}  # measured force at slot times, N

    def describe(self) -> str:
        """One line: what the loop tracks and how."""
        rep = f", repeating every {self.period:g} s" if self.period else ""
        return (f"MPC on {self.signal!r} ({self.target.size} pulses from {self.start:g} s{rep};"
                f" {self.horizon:g} s window, at most {self.max_decisions} decisions)")

    def bind(self, channel: Channel, channel_names: tuple[str, ...], stim: Any) -> None:
        """Build (or check) the controller for ``channel`` (the runner calls this once)."""
        if channel.train.kind != "constant":
            raise ProgramError(f"MPC on {channel.name!r}: the channel's train must be constant "
                               f"(one slot per pulse), not {channel.train.kind!r}")
        f = float(channel.frequency)
        self._ch, self._names = channel, channel_names
        self._index = channel_names.index(channel.name)
        self._f = f
        if self.period is None:
            self._per_n = 0
        else:
            per_n = int(round(self.period * f))
            if per_n < self.target.size:
                raise ProgramError(f"MPC period = {self.period:g} s is shorter than the target "
                                   f"({self.target.size / f:g} s at {f:g} Hz)")
            self._per_n = per_n
        self._next = math.ceil(self.start * f - 1e-9)
        caps = getattr(stim, "capabilities", None)
        self._step = float(getattr(caps, "amplitude_step", 0.0) or 0.0)
        area = channel.electrode.area_m2
        pw = channel.pulse_width_s
        # the recruitment curve at this channel's width and electrode, threshold to ceiling
        amps = np.linspace(0.0, float(channel.amplitude), 4001)
        recs = self.muscle.nerve.recruitment(amps, np.full_like(amps, pw), area)
        on = recs > 0
        if not on.any():
            raise ProgramError(f"MPC on {channel.name!r}: {channel.amplitude * 1e3:g} mA at "
                               f"{pw * 1e6:g} us recruits nothing in the model; raise the "
                               "program amplitude")
        first = int(np.argmax(on))
        self._amps, self._recs = amps[first:], recs[first:]
        if self.mpc is None:
            try:
                self.mpc = RecedingHorizon(
                    self.muscle.force_model, 1.0 / f, decide="recruitment",
                    bounds=(0.0, float(self._recs[-1])), f_ref=max(float(self.target.max()), 1.0),
                    horizon=self.horizon, max_decisions=self.max_decisions,
                    fatigue_weight=self.fatigue_weight)
            except ModelError as exc:
                raise ProgramError(f"MPC on {channel.name!r}: {exc}") from exc
        elif abs(self.mpc.period - 1.0 / f) > 1e-9:
            raise ProgramError(f"MPC on {channel.name!r}: the controller's slot "
                               f"{self.mpc.period * 1e3:g} ms is not the channel's period "
                               f"{1e3 / f:g} ms")
        # the first solve builds IPOPT's structures: do it now, not in the control loop
        self.mpc.solve(np.zeros(self.mpc.n + 1))
        self.mpc.reset()

    # ------------------------------------------------------------------ amplitudes
    def _amplitude(self, g: float, level: float) -> float:
        """The amplitude (A) that recruits ``g``, on the device's step, under ``level``."""
        if g <= 1e-4 or level <= 0:
            return 0.0
        a = float(np.interp(g, self._recs, self._amps))
        a = min(a, level)
        return float(quantize_amplitude(a, self._step)) if self._step > 0 else a

    def _recruited(self, amp: float) -> float:
        if amp <= 0 or self._ch is None:
            return 0.0
        return float(self.muscle.nerve.recruitment(amp, self._ch.pulse_width_s,
                                                   self._ch.electrode.area_m2))

    def _window_target(self, n: int) -> np.ndarray:
        """Target (N) at the slot boundaries n .. n + window (0 outside repetitions)."""
        assert self.mpc is not None
        out = np.zeros(self.mpc.n + 1)
        for i in range(out.size):
            _, k = self._slot(n + i)
            if 0 <= k < self.target.size:
                out[i] = self.target[k]
        return out

    # ------------------------------------------------------------------ render
    def render(self, t0: float, t1: float, level: float) -> PulseSchedule:
        """Pulses with onsets in ``[t0, t1)``: one solve at the window's first slot, its
        first slots applied."""
        assert self.mpc is not None and self._ch is not None
        mpc = self.mpc
        f = self._f
        n_end = math.ceil(t1 * f - 1e-6)
        ts: list[float] = []
        us: list[float] = []
        rows = []
        n_target = self.target.size
        plan_at = None
        for n in range(max(self._next, math.ceil(t0 * f - 1e-6)), n_end):
            t_n = int(to_us(n / f)) / US_PER_S
            rep, k = self._slot(n)
            self._pred[n] = float(mpc.state[mpc.states.index("F")])
            amp = 0.0
            if 0 <= k < n_target and self._stale(t_n):
                self._plan = None  # open loop: zero output until the measurement is back
                rows.append((self.target[k], np.nan, 0.0))
            elif 0 <= k < n_target:
                if plan_at is None:
                    plan_at = n
                    self._correct(n)
                    self._solve(n, t_n, level)
                if self._plan is not None:
                    n0, step = self._plan
                    if n - n0 < step.values.size:
                        amp = self._amplitude(mpc.first(step, n - n0), level)
                rows.append((self.target[k], np.nan if self._y is None else self._y, amp))
            else:
                if k == n_target:
                    self._end_repetition(rep, t_n)
                rows.append((np.nan, np.nan if self._y is None else self._y, 0.0))
            if amp > 0:
                ts.append(t_n)
                us.append(amp)
            mpc.advance(self._recruited(amp))
            if self._trace_t0 is None:
                self._trace_t0 = n / f
        keep = n_end - 4 * max(1, int(f))
        for old in [j for j in self._pred if j < keep]:
            del self._pred[old]
        return self._emit(rows, ts, us, n_end)

    def observe(self, signals: Signals, sensor: str) -> None:
        """Keep the latest sample (as every closed loop does) and the measured force at each
        slot time, which scores the repetition."""
        super().observe(signals, sensor)
        if (self.sensor is not None and sensor != self.sensor) or \
                self.signal not in signals.names or self._f <= 0:
            return
        x = signals[self.signal]
        ts = signals.t0 + np.arange(x.size) / signals.sfreq
        j = np.rint(ts * self._f)
        at = (np.abs(j / self._f - ts) < 0.25 / self._f) & np.isfinite(x)
        for jj, v in zip(j[at].astype(int), x[at], strict=True):
            self._meas[int(jj)] = float(v)

    def _correct(self, n: int) -> None:
        """Move the predicted force by the latest measurement's error against the
        prediction at its time (the measured force enters the window's start state)."""
        assert self.mpc is not None
        if self._y is None or self._y_t is None:
            return
        j = round(self._y_t * self._f)
        if abs(j / self._f - self._y_t) > 0.25 / self._f or j not in self._pred:
            return
        err = self._y - self._pred[j]
        i = self.mpc.states.index("F")
        self.mpc.set_force(float(self.mpc.state[i]) + err)
        for jj in self._pred:
            if jj >= j:
                self._pred[jj] += err

    def _solve(self, n: int, t: float, level: float) -> None:
        assert self.mpc is not None
        mpc = self.mpc
        shift = n - self._plan[0] if self._plan is not None else 0
        try:
            step = mpc.solve(self._window_target(n), shift=max(shift, 0),
                             ceiling=self._recruited(min(level, self._amps[-1])))
            ok, why = step.converged, step.status
        except Exception as exc:  # noqa: BLE001 - any solver fault opens the loop, never a crash
            log.warning("MPC of %r: the solver raised at %.3f s", self.channel, t,
                        exc_info=True)
            step, ok, why = None, False, f"{type(exc).__name__}: {exc}"
        if step is not None:
            self.solves.append((step.solve_time, ok, step.iterations))
        if ok:
            self._plan = (n, step)
            if self._failed:
                self._failed = False
                self._events.append(LoopEvent(t, self.channel, "solver recovered",
                                              "the MPC window converged; output resumes", None))
            return
        self._plan = None
        if not self._failed:
            self._failed = True
            self._events.append(LoopEvent(
                t, self.channel, "solver failed",
                f"the MPC window did not converge ({why}): output zero until one does", None))
            log.warning("MPC of %r: window at %.3f s did not converge (%s)", self.channel, t,
                        why)

    def _end_repetition(self, rep: int, t: float) -> None:
        n0 = math.ceil(self.start * self._f - 1e-9) + rep * self._per_n
        y = np.array([self._meas.get(n0 + k, math.nan) for k in range(self.target.size)])
        e = self.target - y
        self._meas = {j: v for j, v in self._meas.items() if j >= n0 + self.target.size}
        self._score(rep, t, e)
        assert self.mpc is not None
        self._events.append(LoopEvent(
            t, self.channel, "capacity",
            f"repetition {rep + 1}: predicted force-generating capacity A/A_rest",
            self.mpc.capacity()))


def plan_mpc_tracking(program: Program, target: np.ndarray, device_url: str, *,
                      channel: str | None = None, signal: str | None = None,
                      repetitions: int = 1, rest: float = 5.0,
                      fatigue_weight: float = 0.1) -> TrackingPlan:
    """Plan a recorded session in which an :class:`MpcDrive` makes a muscle's force track
    ``target`` (N per pulse) on a ``sim://`` preset (the preset's muscle is the model).

    The session is the one :func:`~opennmes.session.plan_tracking` plans for PID + ILC:
    the program's channel only, continuous, the operator's ceiling raised from 0 to the
    program amplitude in 2 mA steps before the first repetition.

    Raises
    ------
    ProgramError
        Not a ``sim://`` preset (no model of the participant), an unknown channel, fewer
        than 1 repetition or a negative rest.
    """
    import urllib.parse

    from opennmes.physiology import get_preset
    from opennmes.session._tracking import closed_loop_program, tracked_channel

    parts = urllib.parse.urlsplit(device_url)
    preset = parts.netloc or parts.path.strip("/")
    if parts.scheme.lower() != "sim" or not preset:
        raise ProgramError(f"MPC needs a model of the participant: {device_url!r} is not a "
                           "sim:// preset (e.g. sim://healthy-adult)")
    ch = tracked_channel(program, channel, repetitions, rest)
    name = ch.name
    patient = get_preset(preset)
    muscle = patient.muscle(patient.muscle_for(name, ch.electrode.site, ch.electrode.muscle))
    f = float(ch.frequency)
    step, interval = 2e-3, 0.02
    start = math.ceil(float(ch.amplitude) / step * interval + 0.5)
    period = target.size / f + rest
    drive = MpcDrive(name, target, muscle, signal=signal or f"{muscle.name}.force",
                     start=start, period=period if repetitions > 1 else None,
                     fatigue_weight=fatigue_weight)
    url = device_url
    if "sfreq=" not in device_url:
        url = device_url + ("&" if "?" in device_url else "?") + f"sfreq={f:g}&emg=0"
    return TrackingPlan(closed_loop_program(program, name, start + repetitions * period + 0.5),
                        name, drive, url, float(ch.amplitude), step, interval)
