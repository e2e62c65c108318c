"""simulate(): a program or pulse schedule on a virtual patient; simulate_train(): one model."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from opennmes.errors import ModelError
from opennmes.physiology._ding import DingParameters, default_parameters, pulse_weights
from opennmes.physiology._kernels import ding_advance, initial_state
from opennmes.physiology._patient import VirtualPatient
from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from opennmes.schedule import PulseSchedule

__all__ = ["SimulationResult", "simulate", "simulate_train", "simulate_cohort"]

DriveInput = float | np.ndarray | Mapping[str, "float | np.ndarray"]


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """What a simulation produced.

    Attributes
    ----------
    signals : Signals
        All simulated channels (``<muscle>.force`` in N, ``<muscle>.A`` ..., ``<joint>.angle``
        in rad, ``<muscle>.emg`` in V).
    schedule : PulseSchedule or None
        The pulses that were simulated.
    patient : str
        Patient or model name.
    metadata : dict
        How the result was made (sampling rate, seed, parameters, package version); copied
        into ``to_pandas().attrs`` so exports stay reproducible.
    """

    signals: Signals
    schedule: PulseSchedule | None
    patient: str
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def t(self) -> np.ndarray:
        """Sample times, s."""
        return self.signals.t

    @property
    def names(self) -> tuple[str, ...]:
        """Channel names."""
        return self.signals.names

    def __getitem__(self, name: str) -> np.ndarray:
        """Samples of one channel, e.g. ``result["quadriceps.force"]``."""
        return self.signals[name]

    def _pick(self, suffix: str, owner: str | None) -> np.ndarray:
        if owner is not None:
            return self.signals[f"{owner}.{suffix}"]
        names = [n for n in self.names if n.endswith("." + suffix) or n == suffix]
        if not names:
            raise ModelError(f"no '{suffix}' channel; channels: {list(self.names)}")
        return self.signals[names[0]]

    def force(self, muscle: str | None = None) -> np.ndarray:
        """Force of a muscle (the first simulated one by default), N."""
        return self._pick("force", muscle)

    def angle(self, joint: str | None = None) -> np.ndarray:
        """Angle of a joint (the first by default), rad."""
        return self._pick("angle", joint)

    def fatigue(self, muscle: str | None = None) -> dict[str, np.ndarray]:
        """Fatigue states ``A`` (N/s), ``Km``, ``tau1`` (s) of a muscle."""
        return {k: self._pick(k, muscle) for k in ("A", "Km", "tau1")}

    def to_pandas(self) -> pd.DataFrame:
        """A table with ``t`` then one column per channel; ``attrs`` hold ``metadata``."""
        df = self.signals.to_pandas()
        df.attrs.update(self.metadata)
        return df

    def plot(self, channels: list[str] | None = None) -> Figure:
        """Figure with one panel per unit (force, angle, fatigue state, EMG).

        Parameters
        ----------
        channels : list of str, optional
            Channels to draw; by default forces, joint angles, ``A`` and EMG.
        """
        import matplotlib

        if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
            import os

            if not os.environ.get("DISPLAY"):
                matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if channels is None:
            channels = [n for n in self.names
                        if n.endswith((".force", ".angle", ".A", ".emg")) or n == "force"]
        units: dict[str, list[str]] = {}
        for c in channels:
            units.setdefault(self.signals.unit(c), []).append(c)
        fig, axes = plt.subplots(len(units), 1, sharex=True, squeeze=False,
                                 figsize=(8, 2.2 * len(units) + 0.5))
        t = self.t
        for ax, (unit, names) in zip(axes[:, 0], units.items(), strict=True):
            for n in names:
                y = self.signals[n]
                if unit == "rad":
                    ax.plot(t, np.degrees(y), label=n, lw=1)
                    ax.set_ylabel("deg")
                else:
                    ax.plot(t, y, label=n, lw=1)
                    ax.set_ylabel(unit)
            ax.legend(loc="upper right", fontsize=7, frameon=False)
        axes[-1, 0].set_xlabel("time (s)")
        fig.suptitle(f"Simulation: {self.patient}", fontsize=10)
        fig.tight_layout()
        return fig


def _n_samples(t_end: float, sfreq: float) -> int:
    if not (math.isfinite(sfreq) and sfreq > 0):
        raise ModelError(f"sfreq = {sfreq!r} Hz must be a positive number")
    if not (math.isfinite(t_end) and t_end >= 0):
        raise ModelError(f"t_end = {t_end!r} s must be finite and >= 0")
    return int(math.floor(t_end * sfreq + 1e-9)) + 1


def simulate(
    schedule_or_program: Any,
    patient: VirtualPatient,
    *,
    sfreq: float,
    t_end: float | None = None,
    emg: bool = False,
    voluntary_drive: DriveInput | None = None,
    seed: int | None = None,
    states: bool = True,
    hmax: float = 1e-3,
) -> SimulationResult:
    """Simulate the response of a virtual patient to a program or pulse schedule.

    Parameters
    ----------
    schedule_or_program : PulseSchedule or Program
        A Program is expanded with ``program.expand()``; its electrode areas, sites and
        muscles are used to map channels to muscles and to scale recruitment.
    patient : VirtualPatient
        The patient (see :func:`get_preset`).
    sfreq : float
        Output sampling rate, Hz.
    t_end : float, optional
        Last sample time, s (samples run from 0 to ``t_end`` inclusive). By default the
        program's planned duration (rests included), or the end of a schedule's last pulse.
    emg : bool
        Synthesise ``<muscle>.emg`` channels.
    voluntary_drive : float, ndarray or mapping, optional
        Voluntary drive (0-1): a constant, one value per output sample, or either per muscle
        name. Applies to every simulated muscle unless given per muscle.
    seed : int, optional
        Seed of the EMG noise.
    states : bool
        Also output CN, A, Km, tau1 and the voluntary activation of each muscle (otherwise
        force, EMG and joint channels only).
    hmax : float
        Longest internal integration step, s.

    Returns
    -------
    SimulationResult
        Channels of the muscles the schedule (or the voluntary drive) reaches and of the
        joints they move.
    """
    from opennmes.schedule import PulseSchedule

    areas: dict[str, float] = {}
    if hasattr(schedule_or_program, "expand"):
        program = schedule_or_program
        schedule = program.expand()
        cmap = dict(patient.channel_map)
        for ch in program.channels:
            el = ch.electrode
            areas[ch.name] = float(el.area_m2) if hasattr(el, "area_m2") else float(el.area)
            cmap[ch.name] = patient.muscle_for(ch.name, site=el.site,
                                               muscle=getattr(el, "muscle", None))
        patient = dataclasses.replace(patient, channel_map=cmap)
    elif isinstance(schedule_or_program, PulseSchedule):
        schedule = schedule_or_program
    else:
        raise ModelError(f"simulate needs a PulseSchedule or a Program, got "
                         f"{type(schedule_or_program).__name__}")
    if t_end is None:
        t_end = schedule.duration
        if hasattr(schedule_or_program, "duration_s"):
            t_end = max(t_end, float(schedule_or_program.duration_s))
    n = _n_samples(t_end, sfreq)
    drives = _drives(voluntary_drive, patient, n)
    used = [patient.muscle_for(c) for c in np.unique(
        np.asarray(schedule.channel_names)[schedule.channel]).tolist()] if len(schedule) else []
    muscles = tuple(m for m in patient.muscle_names if m in used or m in drives) \
        or patient.muscle_names[:1]
    stream = patient.start(sfreq=sfreq, seed=seed, emg=emg, electrode_areas=areas,
                           muscles=muscles, hmax=hmax, states=states)
    for name, d in drives.items():
        if np.ndim(d) == 0:
            stream.set_voluntary_drive({name: float(d)})
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in drives.items() if np.ndim(v) == 1}
    sig = stream._advance(schedule, (n - 0.5) / sfreq, arrays or None)
    meta = {"patient": patient.name, "sfreq": float(sfreq), "t_end": float(t_end),
            "seed": seed, "emg": emg, "muscles": list(muscles),
            "force_models": {m: patient.muscle(m).force_model.to_dict() for m in muscles},
            "opennmes_version": _version()}
    return SimulationResult(sig, schedule, patient.name, meta)


def _drives(voluntary_drive: DriveInput | None, patient: VirtualPatient, n: int
            ) -> dict[str, float | np.ndarray]:
    if voluntary_drive is None:
        return {}
    if isinstance(voluntary_drive, Mapping):
        items = dict(voluntary_drive)
        for k in items:
            patient.muscle(k)
    else:
        items = {m: voluntary_drive for m in patient.muscle_names}
    out: dict[str, float | np.ndarray] = {}
    for k, v in items.items():
        arr = np.asarray(v, dtype=np.float64)
        if arr.ndim == 1 and arr.size != n:
            raise ModelError(f"voluntary drive of {k} has {arr.size} samples; the simulation "
                             f"has {n}")
        if arr.ndim > 1:
            raise ModelError(f"voluntary drive of {k} must be a number or a 1-D array")
        if np.any(~np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
            raise ModelError(f"voluntary drive of {k} must be within [0, 1]")
        out[k] = float(arr) if arr.ndim == 0 else arr
    return out


def _check_times(name: str, values: np.ndarray) -> None:
    if values.ndim != 1:
        raise ModelError(f"{name} must be one-dimensional")
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise ModelError(f"{name}[{i}] = {float(values[i])!r} is not a finite number")


def simulate_train(
    model: str | DingParameters,
    pulse_times: npt.ArrayLike,
    *,
    t_end: float,
    sfreq: float,
    pulse_widths: npt.ArrayLike | None = None,
    amplitudes: npt.ArrayLike | None = None,
    fatigue: bool = False,
    params: Mapping[str, Any] | None = None,
    states: bool = True,
    hmax: float = 1e-3,
) -> SimulationResult:
    """Simulate one Ding-family model on a pulse train (no patient, no recruitment).

    Parameters
    ----------
    model : str or DingParameters
        ``"ding2003"``, ``"ding2007"``, ``"hmed2018"`` (published defaults), or parameters.
    pulse_times : array_like
        Pulse times in s, sorted, >= 0.
    t_end : float
        Last sample time, s (samples from 0 to ``t_end`` inclusive).
    sfreq : float
        Sampling rate, Hz.
    pulse_widths : array_like, optional
        Phase width of each pulse (or one for all), s. Required by ``ding2007``.
    amplitudes : array_like, optional
        Amplitude of each pulse (or one for all), A. Required by ``hmed2018``.
    fatigue : bool
        Switch on the fatigue states (when ``model`` is a name).
    params : mapping, optional
        Parameter overrides by name (SI), e.g. ``{"tau2": 0.1}``.
    states : bool
        Also return the other states (otherwise only ``force``).
    hmax : float
        Longest internal integration step, s.

    Returns
    -------
    SimulationResult
        Channels ``force`` (N), ``CN``, and with fatigue ``A`` (N/s), ``Km``, ``tau1`` (s).
    """
    p = default_parameters(model, fatigue=fatigue) if isinstance(model, str) else model
    if params:
        p = p.replace(**dict(params))
    tp = np.asarray(pulse_times, dtype=np.float64)
    _check_times("pulse_times", tp)
    if tp.size and tp[0] < 0:
        raise ModelError(f"pulse_times[0] = {float(tp[0])!r} s is negative")
    d = np.diff(tp)
    if (d < 0).any():
        i = int(np.argmax(d < 0)) + 1
        raise ModelError(f"pulse_times[{i}] = {float(tp[i])!r} s is earlier than "
                         f"pulse_times[{i - 1}] = {float(tp[i - 1])!r} s; pulse times must be "
                         "sorted")
    n = _n_samples(t_end, sfreq)

    def per_pulse(name: str, v: npt.ArrayLike | None) -> np.ndarray:
        if v is None:
            return np.full(tp.size, np.nan)
        arr = np.atleast_1d(np.asarray(v, dtype=np.float64))
        _check_times(name, arr)
        if arr.size == 1:
            return np.full(tp.size, arr[0])
        if arr.size != tp.size:
            raise ModelError(f"{name} has {arr.size} values for {tp.size} pulses")
        return arr

    pw = per_pulse("pulse_widths", pulse_widths)
    amp = per_pulse("amplitudes", amplitudes)
    if p.model == "ding2007" and pulse_widths is None:
        raise ModelError("ding2007 needs the pulse widths (pulse_widths)")
    if p.model == "hmed2018" and amplitudes is None:
        raise ModelError("hmed2018 needs the pulse amplitudes (amplitudes)")
    lam, g = pulse_weights(p, amp, pw) if tp.size else (np.empty(0), np.empty(0))
    rows = (5 if p.fatigue else 2) if states else 1
    out = np.empty((rows, n))
    st = initial_state(p.as_array())
    ding_advance(tp, lam, g, p.as_array(), st, 0, n, float(sfreq), hmax, out)
    names = ("force", "CN", "A", "Km", "tau1")[:rows]
    units = ("N", "1", "N/s", "1", "s")[:rows]
    meta = {"model": p.name, "sfreq": float(sfreq), "t_end": float(t_end),
            "params": p.to_dict(), "opennmes_version": _version()}
    return SimulationResult(Signals(out, float(sfreq), names, units), None, p.name, meta)


@functools.cache
def _version() -> str:
    """The installed package's version, looked up once per process (the metadata lookup
    reads the installed files: 13 % of the CPU of a 60-s cohort run when done per run,
    bench/bench_cohort.py)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("opennmes")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def simulate_cohort(
    schedule: PulseSchedule,
    patients: Sequence[VirtualPatient],
    *,
    muscle: str,
    sfreq: float,
    t_end: float,
    electrode_area: float | None = None,
    hmax: float = 1e-3,
) -> np.ndarray:
    """Isometric force of one muscle in many patients, in parallel (compiled, all cores).

    Every pulse of ``schedule`` goes to ``muscle`` of each patient (its own force model and
    recruitment). For sweeps over thousands of personalised patients; for joints, EMG or
    voluntary drive use :func:`simulate` per patient.

    Parameters
    ----------
    schedule : PulseSchedule
        Pulses (all channels are applied to ``muscle``).
    patients : sequence of VirtualPatient
        The cohort, e.g. ``[preset.personalise(strength=s) for s in strengths]``.
    muscle : str
        Muscle name.
    sfreq : float
        Sampling rate, Hz.
    t_end : float
        Last sample time, s (inclusive).
    electrode_area : float, optional
        Electrode area, m^2 (the nerve model's reference area otherwise).

    Returns
    -------
    ndarray, shape (n_patients, n_samples)
        Force in N.
    """
    from opennmes.physiology._kernels import ding_batch
    from opennmes.physiology._stream import _refractory

    n = _n_samples(t_end, sfreq)
    if not patients:
        raise ModelError("simulate_cohort needs at least one patient")
    rows_p, rows_l, rows_g = [], [], []
    for pat in patients:
        m = pat.muscle(muscle)
        _, lam, g = m.pulse_response(schedule.amplitude, schedule.phase_width, electrode_area)
        eff = (lam > 0) & (g > 0)
        _refractory(schedule.t, eff, -np.inf, m.refractory)
        rows_p.append(m.force_model.as_array())
        rows_l.append(np.where(eff, lam, 0.0))
        rows_g.append(np.where(eff, g, 0.0))
    out = np.zeros((len(patients), 1, n))
    # zero-weight pulses are kept (same times for everyone) but add nothing: lam = 0
    ding_batch(np.ascontiguousarray(schedule.t), np.vstack(rows_l), np.vstack(rows_g),
               np.vstack(rows_p), n, float(sfreq), hmax, out)
    return out[:, 0, :]
