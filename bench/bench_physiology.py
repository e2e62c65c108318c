"""Physiology benchmarks: the compiled virtual patient against SciPy, cohorts, compilation.

The SciPy baseline is a competent one: ``reference_solution`` restarts ``solve_ivp`` at every
pulse (the CN derivative jumps there), finds each interval's output samples by bisection and
evaluates the dense output only there; DOP853 and LSODA are each run at the loosest tolerance
whose error is no larger than the kernel's. Two programs: the 25 %-duty quadriceps program
(35 Hz, 10 s on / 30 s off) and a continuous 30 Hz train.

Run with ``.venv/bin/python bench/run.py physiology``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

from opennmes.physiology import (
    DingParameters,
    default_parameters,
    get_preset,
    reference_solution,
    simulate,
    simulate_cohort,
    simulate_train,
)
from opennmes.stim import PulseSchedule

SFREQ = 1000.0


def _quadriceps_program(duration: float) -> np.ndarray:
    """35 Hz, 10 s on / 30 s off, for ``duration`` s."""
    on = np.arange(0.0, 10.0, 1.0 / 35.0)
    cycles = int(np.ceil(duration / 40.0))
    t = np.concatenate([k * 40.0 + on for k in range(cycles)])
    return np.round(t[t < duration], 6)


def _best(fn: Callable[[], object], repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _continuous(duration: float, freq: float = 30.0) -> np.ndarray:
    """A continuous ``freq`` train for ``duration`` s (100 % duty)."""
    return np.round(np.arange(0.0, duration, 1.0 / freq), 6)


def _matched_rtol(p: DingParameters, pt: np.ndarray, tight: np.ndarray, err_ours: float,
                  method: str) -> tuple[float, float]:
    """Loosest ``method`` rtol whose max |dF|/F_max against ``tight`` (on 0..len/SFREQ s) is
    <= the kernel's."""
    te = np.arange(tight.size) / SFREQ
    ptc = pt[pt <= te[-1]]
    err = float("inf")
    for rtol in (1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10):
        f = reference_solution(p, ptc, te, method=method, rtol=rtol, atol=rtol * 1e-2)[1]
        err = float(np.max(np.abs(f - tight)) / tight.max())
        if err <= err_ours:
            return rtol, err
    return 1e-10, err


def _kernel_error(p: DingParameters, pt: np.ndarray, t_cal: float) -> tuple[float, np.ndarray]:
    """Max |dF|/F_max of the kernel against DOP853 at rtol 1e-11 on the first ``t_cal`` s,
    and that tight force."""
    te = np.arange(int(t_cal * SFREQ) + 1) / SFREQ
    ptc = pt[pt <= t_cal]
    tight = reference_solution(p, ptc, te, method="DOP853", rtol=1e-11, atol=1e-9)[1]
    ours = simulate_train(p, ptc, t_end=t_cal, sfreq=SFREQ)["force"]
    return float(np.max(np.abs(ours - tight)) / tight.max()), tight


def _side_by_side(p: DingParameters, pt: np.ndarray, t_side: float, err_ours: float,
                  tight: np.ndarray, label: str) -> list[dict]:
    """solve_ivp (DOP853, LSODA; pulse to pulse, matched accuracy) and the kernel on the first
    ``t_side`` s of ``pt``: one row each and the speed-ups."""
    pts = pt[pt <= t_side]
    te = np.arange(int(t_side * SFREQ) + 1) / SFREQ
    t_ours = _best(lambda: simulate_train(p, pts, t_end=t_side, sfreq=SFREQ, states=False))
    rows = []
    for method in ("DOP853", "LSODA"):
        rtol, err = _matched_rtol(p, pt, tight, err_ours, method)
        t0 = time.perf_counter()
        reference_solution(p, pts, te, method=method, rtol=rtol, atol=rtol * 1e-2)
        t_ivp = time.perf_counter() - t0
        rows.append(dict(name=f"solve_ivp ({method}, restarted at each pulse), {label}, at "
                              "matched accuracy", value=t_ivp, unit="s", goal="(reference)",
                         passed=None, note=f"rtol {rtol:g}: error {err:.2g} <= kernel's "
                                           f"{err_ours:.2g}; kernel {t_ours * 1e3:.2f} ms; "
                                           f"{_load()}"))
        rows.append(dict(name=f"speed-up of the compiled kernel over solve_ivp {method}, "
                              f"{label}", value=t_ivp / t_ours, unit="x", goal=">= 100x",
                         passed=t_ivp / t_ours >= 100))
    return rows


def _load() -> str:
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:  # pragma: no cover
        return ""


def run() -> list[dict]:
    rows: list[dict] = []
    p = default_parameters("ding2003", fatigue=True)
    # ------------------------------------------------------------ 30-min program, kernel
    pt = _quadriceps_program(1800.0)

    def kernel() -> None:
        simulate_train(p, pt, t_end=1800.0, sfreq=SFREQ, states=False)

    def kernel_states() -> None:
        simulate_train(p, pt, t_end=1800.0, sfreq=SFREQ)

    t_kernel = _best(kernel)
    rows.append(dict(name="30-min quadriceps program (35 Hz, 10 s on/30 s off, fatigue on), "
                          "force at 1 kHz: simulate_train",
                     value=t_kernel * 1e3, unit="ms", goal="< 50 ms after warm-up",
                     passed=t_kernel < 0.050,
                     note=f"{pt.size} pulses, 1800001 samples; best of 5; {_load()}"))
    pc = _continuous(1800.0)
    t_cont = _best(lambda: simulate_train(p, pc, t_end=1800.0, sfreq=SFREQ, states=False))
    rows.append(dict(name="30-min continuous 30 Hz train (100 % duty, fatigue on), force at "
                          "1 kHz: simulate_train", value=t_cont * 1e3, unit="ms",
                     goal="< 100 ms after warm-up", passed=t_cont < 0.100,
                     note=f"{pc.size} pulses; best of 5; {_load()}"))
    t_states = _best(kernel_states)
    rows.append(dict(name="same, with CN, A, Km, tau1 also at 1 kHz (72 MB of output)",
                     value=t_states * 1e3, unit="ms", goal="< 50 ms after warm-up",
                     passed=t_states < 0.050))
    # full virtual patient (recruitment, isometric knee torque, all state channels)
    pat = get_preset("healthy-adult").isometric()
    sched = PulseSchedule.from_arrays(pt, 0.045, 300e-6, channel_names=("quadriceps",))

    def patient() -> None:
        simulate(sched, pat, sfreq=SFREQ, t_end=1800.0)

    def patient_force() -> None:
        simulate(sched, pat, sfreq=SFREQ, t_end=1800.0, states=False)

    t_pf = _best(patient_force, repeat=3)
    rows.append(dict(name="same program on the healthy-adult preset (isometric), simulate("
                          "states=False): force and knee channels at 1 kHz", value=t_pf * 1e3,
                     unit="ms", goal="< 50 ms after warm-up", passed=t_pf < 0.050,
                     note="recruitment from amplitude and pulse width, knee torque"))
    t_pat = _best(patient, repeat=3)
    rows.append(dict(name="same program on the healthy-adult preset (isometric), simulate(), "
                          "10 channels at 1 kHz", value=t_pat * 1e3, unit="ms",
                     goal="< 50 ms after warm-up", passed=t_pat < 0.050,
                     note="10 channels = 144 MB of output; writing that much memory alone "
                          "takes ~25-50 ms on this machine"))
    free = get_preset("healthy-adult")

    def patient_free() -> None:
        simulate(sched, free, sfreq=SFREQ, t_end=1800.0, states=False)

    t_free = _best(patient_free, repeat=2)
    rows.append(dict(name="same program on the healthy-adult preset with the free seated knee "
                          "(pendulum, RK4 at 1 kHz), simulate(states=False)",
                     value=t_free * 1e3, unit="ms", goal="(reference)", passed=None,
                     note="the knee swings for ~10 s after each contraction"))
    # ------------------------------------------------------------ accuracy and solve_ivp
    # kernel error on the first 120 s of each train, then side by side on the first 6 minutes
    # (9 on/off cycles) of the program and on 2 minutes of the continuous train; each solver
    # at its own matched tolerance
    for train, label, t_side, side_label in (
            (pt, "25 %-duty program", 360.0, "first 6 min of the 25 %-duty program"),
            (pc, "continuous 30 Hz", 120.0, "first 2 min of the continuous 30 Hz train")):
        err, tight = _kernel_error(p, train, 120.0)
        rows.append(dict(name=f"kernel error vs DOP853 (rtol 1e-11), {label}, first 120 s, "
                              "max |dF|/F_max", value=err, unit="", goal="< 1e-3",
                         passed=err < 1e-3))
        rows += _side_by_side(p, train, t_side, err, tight, side_label)
    # ------------------------------------------------------------ cohort
    rng = np.random.default_rng(0)
    base = get_preset("healthy-adult")
    cohort = [base.personalise("quadriceps", strength=float(s), fatigability=float(f))
              for s, f in zip(rng.uniform(0.5, 1.5, 1000), rng.uniform(0.5, 2.0, 1000),
                              strict=True)]
    pt60 = _quadriceps_program(60.0)
    s60 = PulseSchedule.from_arrays(pt60, 0.045, 300e-6, channel_names=("quadriceps",))

    def run_cohort() -> None:
        simulate_cohort(s60, cohort, muscle="quadriceps", sfreq=100.0, t_end=60.0)

    t_cohort = _best(run_cohort, repeat=3)
    t0 = time.perf_counter()
    [base.personalise("quadriceps", strength=1.1) for _ in range(1000)]
    t_make = time.perf_counter() - t0
    rows.append(dict(name="1,000 personalised patients, 60-s program, force at 100 Hz "
                          "(simulate_cohort, 2 cores)", value=t_cohort, unit="s",
                     goal="< 3 s", passed=t_cohort < 3.0,
                     note=f"creating the 1,000 patients takes {t_make:.2f} s more; "
                          f"{_load()}"))
    # ------------------------------------------------------------ first call, compile cache
    code = ("import time; t0 = time.perf_counter(); import numpy as np;"
            "from opennmes.physiology import get_preset, simulate;"
            "from opennmes.stim import PulseSchedule;"
            "s = PulseSchedule.from_arrays(np.arange(0, 1, 1/35), 0.045, 300e-6,"
            " channel_names=('quadriceps',));"
            "simulate(s, get_preset('healthy-adult'), sfreq=1000.0, t_end=2.0, emg=True);"
            "print(time.perf_counter() - t0)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = float(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                    capture_output=True, text=True).stdout.split()[-1])
        warm = float(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                    capture_output=True, text=True).stdout.split()[-1])
    rows.append(dict(name="first simulate() (patient, joint, EMG) in a new process, "
                          "compiled-code cache present, import included", value=warm,
                     unit="s", goal="< 5 s", passed=warm < 5.0))
    rows.append(dict(name="same with an empty cache (compiles every kernel)", value=cold,
                     unit="s", goal="< 5 s", passed=cold < 5.0, note=_load()))
    code2 = ("import time; t0 = time.perf_counter(); import numpy as np;"
             "from opennmes.physiology import simulate_train;"
             "simulate_train('ding2003', np.arange(0, 1, 1/35), t_end=2.0, sfreq=1000.0,"
             " fatigue=True); print(time.perf_counter() - t0)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold2 = float(subprocess.run([sys.executable, "-c", code2], env=env, check=True,
                                     capture_output=True, text=True).stdout.split()[-1])
    rows.append(dict(name="first simulate_train() in a new process with an empty cache "
                          "(compiles the force kernel), import included", value=cold2,
                     unit="s", goal="< 5 s", passed=cold2 < 5.0))
    return rows


if __name__ == "__main__":  # pragma: no cover
    for r in run():
        print(r)
