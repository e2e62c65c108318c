"""PatientStream: the virtual patient advanced chunk by chunk (simulated stimulator, control).

``stream.advance(chunk, until)`` takes the pulses of ``chunk`` (none earlier than the stream's
time) and returns the samples ``t_k = k / sfreq`` with ``previous until <= t_k < until``. Pulses
after the last returned sample are kept and applied in the next call, so splitting a schedule
into chunks gives the same numbers as one call on the whole schedule (every kernel steps from
event to event, with events at pulses and samples only).

A muscle that has never been stimulated or driven stays exactly at rest and a joint none of
whose muscles is active stays at its rest angle, so they cost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

from opennmes.errors import ModelError
from opennmes.physiology._emg import EmgSynth
from opennmes.physiology._kernels import (
    OUT_NAMES,
    P_A,
    P_KM,
    P_TAU1,
    S_NP,
    ding_advance,
    initial_state,
)
from opennmes.physiology._mechanics import (
    _fl,
    activation_advance,
    force_velocity,
    joint_advance,
    rest_transition,
)
from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.physiology._patient import Muscle, VirtualPatient
    from opennmes.schedule import PulseSchedule

__all__ = ["PatientStream"]

_STATE_UNITS = {"F": "N", "CN": "1", "A": "N/s", "Km": "1", "tau1": "s"}
_PULSE_KEYS = ("t", "recruitment", "amplitude", "phase_width", "interphase_gap",
               "amplitude2", "phase_width2")


class _MuscleState:
    def __init__(self, muscle: Muscle, emg: EmgSynth | None) -> None:
        self.muscle = muscle
        self.p = muscle.force_model.as_array()
        self.st = initial_state(self.p)
        self.pending = (np.empty(0), np.empty(0), np.empty(0))
        self.act = np.zeros(3)
        self.drive = 0.0
        self.active_vol = False
        self.emg = emg
        self.hist = {k: np.empty(0) for k in _PULSE_KEYS}
        self.last_fired = -np.inf


@njit(cache=True)
def _refractory(t: np.ndarray, eff: np.ndarray, last: float, refractory: float) -> float:
    """Clear ``eff`` for pulses within ``refractory`` s of the previous firing pulse."""
    for i in range(t.shape[0]):
        if eff[i]:
            if t[i] - last < refractory:
                eff[i] = False
            else:
                last = t[i]
    return last


class PatientStream:
    """Streaming simulation of a :class:`VirtualPatient` (create with ``patient.start``).

    Output channels, per simulated muscle ``m``: ``m.force`` (N, stimulated plus voluntary
    isometric force), ``m.CN``, ``m.A`` (N/s), ``m.Km``, ``m.tau1`` (s), ``m.activation``
    (voluntary, 0-1), ``m.emg`` (V, when EMG is on); per joint ``j`` moved by them:
    ``j.angle`` (rad), ``j.velocity`` (rad/s), ``j.torque`` (N m, muscle torque).
    """

    def __init__(self, patient: VirtualPatient, *, sfreq: float, seed: int | None,
                 emg: bool, electrode_areas: Mapping[str, float] | None,
                 muscles: tuple[str, ...] | None, hmax: float, states: bool = True) -> None:
        if not (isinstance(sfreq, int | float) and math.isfinite(sfreq) and sfreq > 0):
            raise ModelError(f"sfreq = {sfreq!r} Hz must be a positive number")
        if not (math.isfinite(hmax) and hmax > 0):
            raise ModelError(f"hmax = {hmax!r} s must be > 0")
        self.patient = patient
        self._states = bool(states)
        self.sfreq = float(sfreq)
        self.hmax = float(hmax)
        self._areas = dict(electrode_areas or {})
        names = patient.muscle_names if muscles is None else tuple(muscles)
        sel = [patient.muscle(n) for n in names]
        seeds = np.random.SeedSequence(seed).spawn(2 * len(sel))
        self._ms: list[_MuscleState] = []
        for i, m in enumerate(sel):
            synth = None
            if emg:
                synth = EmgSynth(m.emg, self.sfreq, np.random.default_rng(seeds[2 * i]),
                                 np.random.default_rng(seeds[2 * i + 1]))
            self._ms.append(_MuscleState(m, synth))
        self._emg = emg
        jnames = [j.name for j in patient.joints if any(m.joint == j.name for m in sel)]
        self._joints: list[dict[str, Any]] = []
        for jn in jnames:
            j = patient.joint(jn)
            idx = [i for i, m in enumerate(sel) if m.joint == jn]
            mp = np.array([[sel[i].moment_arm, sel[i].theta_opt, sel[i].length_gain]
                           for i in idx])
            jp = j.as_array() if j.fixed else \
                np.concatenate([j.as_array(), rest_transition(j, self.sfreq)])
            self._joints.append({"joint": j, "idx": idx, "mp": mp, "jp": jp,
                                 "js": np.array([j.start_angle(), 0.0, 0.0]),
                                 "fd_prev": np.zeros(len(idx)), "active": False})
        self._k = 0
        self._time = 0.0
        self._last_pulse = -math.inf
        self._chmap: dict[tuple[tuple[str, ...], int], int] = {}
        self.names: tuple[str, ...]
        self.units: tuple[str, ...]
        names_l: list[str] = []
        units_l: list[str] = []
        for ms in self._ms:
            for key in OUT_NAMES if states else OUT_NAMES[:1]:
                names_l.append(f"{ms.muscle.name}.{'force' if key == 'F' else key}")
                units_l.append(_STATE_UNITS[key])
            if states:
                names_l.append(f"{ms.muscle.name}.activation")
                units_l.append("1")
            if emg:
                names_l.append(f"{ms.muscle.name}.emg")
                units_l.append("V")
        for jd in self._joints:
            jn = jd["joint"].name
            names_l += [f"{jn}.angle", f"{jn}.velocity", f"{jn}.torque"]
            units_l += ["rad", "rad/s", "N m"]
        self.names, self.units = tuple(names_l), tuple(units_l)

    # ------------------------------------------------------------------ properties
    @property
    def time(self) -> float:
        """Stream time: the ``until`` of the last advance, s."""
        return self._time

    @property
    def muscles(self) -> tuple[str, ...]:
        """Simulated muscles."""
        return tuple(ms.muscle.name for ms in self._ms)

    def state(self) -> dict[str, dict[str, float]]:
        """Current force-model state of each muscle (``F``, ``A``, ``Km``, ``tau1``)."""
        from opennmes.physiology._kernels import S_A, S_F, S_KM, S_TAU1

        return {ms.muscle.name: {"F": float(ms.st[S_F]), "A": float(ms.st[S_A]),
                                 "Km": float(ms.st[S_KM]), "tau1": float(ms.st[S_TAU1])}
                for ms in self._ms}

    # ------------------------------------------------------------------ inputs
    def set_voluntary_drive(self, drive: float | Mapping[str, float]) -> None:
        """Voluntary drive (0-1) from the next sample on, for all muscles or by name."""
        items = drive.items() if isinstance(drive, Mapping) else \
            [(ms.muscle.name, drive) for ms in self._ms]
        lookup = {ms.muscle.name: ms for ms in self._ms}
        for name, value in items:
            v = float(value)
            if not (0.0 <= v <= 1.0):
                raise ModelError(f"voluntary drive of {name} = {value!r} must be within [0, 1]")
            if name not in lookup:
                raise ModelError(f"no simulated muscle {name!r}; muscles: {list(lookup)}")
            lookup[name].drive = v

    def _muscle_index(self, names: tuple[str, ...], ch: int) -> int:
        key = (names, ch)
        if key not in self._chmap:
            target = self.patient.muscle_for(names[ch])
            sim = [ms.muscle.name for ms in self._ms]
            self._chmap[key] = sim.index(target) if target in sim else -1
        return self._chmap[key]

    # ------------------------------------------------------------------ advance
    def advance(self, chunk: PulseSchedule, until: float) -> Signals:
        """Apply ``chunk`` and return the samples from the stream time up to ``until`` s.

        Raises
        ------
        ModelError
            If ``until`` is before the stream time or a pulse is earlier than the stream time.
        """
        return self._advance(chunk, until, None)

    def _advance(self, chunk: PulseSchedule, until: float,
                 drives: Mapping[str, np.ndarray] | None) -> Signals:
        if not math.isfinite(until) or until < self._time:
            raise ModelError(f"until = {until!r} s must be finite and not before the stream "
                             f"time {self._time!r} s")
        if len(chunk) and chunk.t[0] < self._time - 1e-12:
            raise ModelError(f"pulse at t = {float(chunk.t[0])!r} s is earlier than the stream "
                             f"time {self._time!r} s; send pulses in order")
        if len(chunk) and chunk.t[0] < self._last_pulse:
            raise ModelError(f"pulse at t = {float(chunk.t[0])!r} s is earlier than a pulse "
                             f"already received ({self._last_pulse!r} s); send pulses in order")
        k0 = self._k
        k1 = max(k0, int(math.ceil(until * self.sfreq - 1e-9)))
        n = k1 - k0
        data = np.zeros((len(self.names), n))
        self._distribute(chunk)
        if len(chunk):
            self._last_pulse = float(chunk.t[-1])
        row = 0
        nst = 5 if self._states else 1
        force_rows: list[np.ndarray] = []  # (1, n) views of each muscle's force row
        for ms in self._ms:
            out = data[row:row + nst]
            pt, lam, g = ms.pending
            if ms.st[S_NP] == 0.0 and pt.size == 0:
                # never stimulated: exactly at rest (what the kernel would give), no call
                if nst > 1:
                    out[2] = ms.p[P_A]
                    out[3] = ms.p[P_KM]
                    out[4] = ms.p[P_TAU1]
            else:
                used = ding_advance(pt, lam, g, ms.p, ms.st, k0, n, self.sfreq, self.hmax,
                                    out)
                ms.pending = (pt[used:], lam[used:], g[used:])
            act = data[row + 5] if self._states else np.zeros(n)
            u = None if drives is None else drives.get(ms.muscle.name)
            if u is not None:
                u = np.asarray(u[k0:k1] if u.size > n else u, dtype=np.float64)
            if u is not None or ms.drive > 0 or ms.active_vol:
                ms.active_vol = True
                uu = np.full(n, ms.drive) if u is None else u
                activation_advance(uu, ms.act, n, self.sfreq, act)
            if ms.active_vol:
                out[0] += act * (ms.muscle.voluntary_capacity * ms.muscle.max_voluntary_force)
            force_rows.append(data[row:row + 1])
            row += nst + (1 if self._states else 0)
            if self._emg:
                assert ms.emg is not None
                data[row] = self._render_emg(ms, k0, n, act)
                row += 1
        for jd in self._joints:
            out = data[row:row + 3]
            idx = jd["idx"]
            fdj = force_rows[idx[0]] if len(idx) == 1 else \
                np.vstack([force_rows[i] for i in idx])
            self._advance_joint(jd, fdj, n, out)
            row += 3
        self._k = k1
        self._time = float(until)
        return Signals(data, self.sfreq, self.names, self.units, k0 / self.sfreq)

    def _distribute(self, chunk: PulseSchedule) -> None:
        if not len(chunk):
            return
        names = chunk.channel_names
        target = np.array([self._muscle_index(names, c) for c in range(len(names))])
        mus = target[chunk.channel]
        for i, ms in enumerate(self._ms):
            sel = np.flatnonzero(mus == i)
            if sel.size == 0:
                continue
            amp = chunk.amplitude[sel]
            pw = chunk.phase_width[sel]
            areas = {c: self._areas.get(names[c]) for c in np.unique(chunk.channel[sel])}
            rec = np.empty(sel.size)
            lam = np.empty(sel.size)
            g = np.empty(sel.size)
            chs = chunk.channel[sel]
            for c, area in areas.items():
                m = chs == c
                r_, l_, g_ = ms.muscle.pulse_response(amp[m], pw[m], area)
                rec[m], lam[m], g[m] = r_, l_, g_
            t = chunk.t[sel]
            eff = (lam > 0) & (g > 0)
            order = np.argsort(t, kind="stable")
            if np.any(np.diff(t[order]) < ms.muscle.refractory) or \
                    (t.size and t[order[0]] - ms.last_fired < ms.muscle.refractory):
                e_sorted = eff[order].copy()
                ms.last_fired = _refractory(t[order], e_sorted, ms.last_fired,
                                            ms.muscle.refractory)
                eff[order] = e_sorted
            elif eff.any():
                ms.last_fired = float(t[eff].max())
            rec = np.where(eff, rec, 0.0)  # no M-wave from a refractory axon
            pt0, lam0, g0 = ms.pending
            ms.pending = (np.concatenate([pt0, t[eff]]), np.concatenate([lam0, lam[eff]]),
                          np.concatenate([g0, g[eff]]))
            if ms.emg is not None:
                new = {"t": t, "recruitment": rec, "amplitude": amp, "phase_width": pw,
                       "interphase_gap": chunk.interphase_gap[sel],
                       "amplitude2": chunk.amplitude2[sel],
                       "phase_width2": chunk.phase_width2[sel]}
                ms.hist = {k: np.concatenate([ms.hist[k], new[k]]) for k in _PULSE_KEYS}

    def _render_emg(self, ms: _MuscleState, k0: int, n: int, act: np.ndarray) -> np.ndarray:
        assert ms.emg is not None
        out = ms.emg.render(k0, n, ms.hist, act)
        keep = ms.hist["t"] >= (k0 + n) / self.sfreq - ms.muscle.emg.reach
        ms.hist = {k: v[keep] for k, v in ms.hist.items()}
        return out

    def _advance_joint(self, jd: dict[str, Any], fd: np.ndarray, n: int, out: np.ndarray) -> None:
        joint = jd["joint"]
        mp = jd["mp"]
        if joint.fixed:
            th = jd["js"][0]
            gain = np.array([mp[m, 0] * _fl(1.0 + mp[m, 2] * (th - mp[m, 1]))
                             for m in range(mp.shape[0])]) * float(force_velocity(0.0))
            out[0] = th
            if fd.shape[0] == 1:
                np.multiply(fd[0], gain[0], out=out[2])
            else:
                np.dot(gain, fd, out=out[2])
            return
        if not jd["active"]:
            if not np.any(fd):
                out[0] = jd["js"][0]
                out[1] = 0.0
                out[2] = 0.0
                return
            jd["active"] = True
            if self._k > 0:
                jd["js"][2] = 1.0  # the previous sample was at rest: integrate from it
        joint_advance(fd, jd["fd_prev"], mp, jd["jp"], jd["js"], n, self.sfreq, self.hmax,
                      out)
