"""Receding-horizon control (MPC over fatigue) against PID + ILC on the virtual patient.

The healthy-adult quadriceps at 30 Hz, 300 us (the nerve model's reference electrode), one
pulse per slot; the target is a force trapezoid (0 -> 150 N in 1 s, hold 4 s, back to 0 in
1 s, then 1 s at rest). MPC: ``design.RecedingHorizon`` with a 1-s window of 30 decisions
(recruited fraction per pulse, mapped to the amplitude by the muscle's recruitment curve),
one solve per pulse, warm-started, the measured force correcting the predicted one. Goal of
issue 13: p95 solve time <= 100 ms with every window converged. The same MPC with its NLP
compiled to C (``compile_dir``; compiled once, kept in ``~/.cache/opennmes/mpc``). PID + ILC:
``session.track`` with a static force-amplitude feed-forward and the project's ILC over 5
repetitions (5 s rests). Reported: solve time p50/p95/max, iterations, share converged,
tracking RMSE over the target, and A/A_rest (the force-generating capacity) at the end of the
first repetition.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from opennmes.control import PID, IterativeLearning
from opennmes.design import RecedingHorizon
from opennmes.physiology import get_preset
from opennmes.schedule import PulseSchedule
from opennmes.session import track_repetitions

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import loadavg  # noqa: E402

F = 30.0
PW = 300e-6
U_MAX = 0.09
AREA = 50e-4  # the nerve model's reference area: recruitment as the bare patient sees it
PEAK = 150.0


def _target() -> np.ndarray:
    t = np.arange(int(7.0 * F)) / F
    return np.interp(t, [0.0, 1.0, 5.0, 6.0, 7.0], [0.0, PEAK, PEAK, 0.0, 0.0])


def _curve(muscle: Any) -> tuple[np.ndarray, np.ndarray]:
    amps = np.linspace(0.0, U_MAX, 4001)
    recs = muscle.nerve.recruitment(amps, np.full_like(amps, PW), None)
    on = recs > 0
    return amps[on], recs[on]


CACHE = Path.home() / ".cache" / "opennmes" / "mpc"
"""Where the compiled NLP is kept between runs (compile_dir)."""


def _mpc(target: np.ndarray, compile_dir: Path | None = None) -> dict[str, Any]:
    patient = get_preset("healthy-adult")
    muscle = patient.muscle("quadriceps")
    amps, recs = _curve(muscle)
    t0 = time.perf_counter()
    mpc = RecedingHorizon(muscle.force_model, 1 / F, decide="recruitment",
                          bounds=(0.0, float(recs[-1])), f_ref=PEAK, horizon=1.0,
                          max_decisions=30, compile_dir=compile_dir)
    build = time.perf_counter() - t0
    stream = patient.start(sfreq=F, emg=False, muscles=("quadriceps",))
    pad = np.concatenate([target, np.zeros(mpc.n + 1)])
    y = np.zeros(target.size)
    times, cpu, conv, iters = [], [], [], []
    for k in range(target.size):
        predicted = mpc.full_state()["F"]
        step = mpc.solve(pad[k:k + mpc.n + 1])
        times.append(step.solve_time)
        cpu.append(step.cpu_time)
        conv.append(step.converged)
        iters.append(step.iterations)
        g = mpc.first(step) if step.converged else 0.0
        a = float(np.interp(g, recs, amps)) if g > 1e-4 else 0.0
        sched = PulseSchedule.from_arrays([k / F], a, PW, channel_names=("quadriceps",)) \
            if a > 0 else PulseSchedule.empty(("quadriceps",))
        y[k] = float(stream.advance(sched, (k + 1) / F)["quadriceps.force"][-1])
        mpc.advance(float(muscle.nerve.recruitment(a, PW, None)) if a > 0 else 0.0)
        mpc.set_force(mpc.full_state()["F"] + y[k] - predicted)
    ms = np.asarray(times) * 1e3
    cms = np.asarray(cpu) * 1e3
    return {"cpu50": float(np.percentile(cms, 50)), "cpu95": float(np.percentile(cms, 95)),
            "build": build, "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "max": float(ms.max()),
            "converged": float(np.mean(conv)), "iter50": float(np.median(iters)),
            "n": len(ms), "rmse": float(np.sqrt(np.mean((y - target) ** 2))),
            "capacity": stream.state()["quadriceps"]["A"] / muscle.force_model.a_rest}


def _pid_ilc(target: np.ndarray, repetitions: int = 5) -> dict[str, Any]:
    patient = get_preset("healthy-adult")
    muscle = patient.muscle("quadriceps")
    # static feed-forward: the steady force of each amplitude at 30 Hz (2 s trains)
    grid = np.linspace(0.0, U_MAX, 19)
    steady = []
    for a in grid:
        s = patient.start(sfreq=F, emg=False, muscles=("quadriceps",))
        n = int(2 * F)
        sig = s.advance(PulseSchedule.from_arrays(np.arange(n) / F, np.full(n, max(a, 1e-4)),
                                                  PW, channel_names=("quadriceps",)), 2.0)
        steady.append(float(np.mean(sig["quadriceps.force"][-int(F / 3):])))
    force = np.maximum.accumulate(np.asarray(steady))

    def ff(tgt: float) -> float:
        return float(np.interp(tgt, force, grid))

    def make() -> PID:
        return PID(kp=2e-4, ki=2e-3, kd=0.0, dt=1 / F, u_min=0.0, u_max=U_MAX,
                   rate_limit=0.5, feedforward=ff)

    ilc = IterativeLearning(gain=2e-4, sfreq=F, u_min=-U_MAX, u_max=U_MAX, delay=0.1,
                            q_cutoff=2.0)
    first = track_repetitions(patient, target, make, repetitions=1, frequency=F,
                              pulse_width=PW, channel="quadriceps", electrode_area=AREA,
                              signal="quadriceps.force")[0]
    # capacity after one repetition on a fresh patient: replay its amplitudes open loop
    s = patient.start(sfreq=F, emg=False, muscles=("quadriceps",))
    on = first.amplitude > 0
    s.advance(PulseSchedule.from_arrays(np.flatnonzero(on) / F, first.amplitude[on], PW,
                                        channel_names=("quadriceps",)), target.size / F)
    runs = track_repetitions(patient, target, make, repetitions=repetitions, frequency=F,
                             pulse_width=PW, channel="quadriceps", electrode_area=AREA,
                             ilc=ilc, rest=5.0, signal="quadriceps.force")
    return {"rmse1": first.rmse(), "rmse_last": runs[-1].rmse(),
            "rmse_all": [r.rmse() for r in runs], "repetitions": repetitions,
            "capacity": s.state()["quadriceps"]["A"] / muscle.force_model.a_rest}


def run() -> list[dict[str, Any]]:
    target = _target()
    load0 = loadavg()
    m = _mpc(target)
    c = _mpc(target, CACHE)
    p = _pid_ilc(target)
    load = f"load average {load0:.1f} before, {loadavg():.1f} after, {os.cpu_count()} cores"
    reps = ", ".join(f"{v:.2f}" for v in p["rmse_all"])
    return [
        {"name": "MPC window solve time p50 (1 s, 30 decisions, healthy-adult quadriceps)",
         "value": round(m["p50"], 1), "unit": "ms", "goal": "-", "passed": None,
         "note": f"{m['n']} windows, one per pulse at 30 Hz; IPOPT iterations p50 "
                 f"{m['iter50']:.0f}; {load}"},
        {"name": "MPC window solve time p95", "value": round(m["p95"], 1), "unit": "ms",
         "goal": "<= 100 ms", "passed": m["p95"] <= 100.0,
         "note": f"max {m['max']:.0f} ms; building the solver took {m['build']:.1f} s once"},
        {"name": "MPC window CPU time p50 / p95 (this process, one thread)",
         "value": f"{m['cpu50']:.0f} / {m['cpu95']:.0f}", "unit": "ms", "goal": "-",
         "passed": None, "note": "the wall time above includes waiting for a core"},
        {"name": "MPC windows converged", "value": round(100 * m["converged"], 1), "unit": "%",
         "goal": "100 %", "passed": m["converged"] == 1.0},
        {"name": "MPC window solve time p50 / p95, NLP compiled to C (compile_dir, gcc -O1)",
         "value": f"{c['p50']:.0f} / {c['p95']:.0f}", "unit": "ms", "goal": "p95 <= 100 ms",
         "passed": c["p95"] <= 100.0,
         "note": f"max {c['max']:.0f} ms, CPU {c['cpu50']:.0f} / {c['cpu95']:.0f} ms, "
                 f"IPOPT iterations p50 {c['iter50']:.0f}; the library is compiled once "
                 f"(3-5 min here) and kept in {CACHE}; building the controller took "
                 f"{c['build']:.1f} s in this run (compiling too when the library was not "
                 "kept); same run and load as above"},
        {"name": "MPC windows converged, compiled", "value": round(100 * c["converged"], 1),
         "unit": "%", "goal": "100 %", "passed": c["converged"] == 1.0,
         "note": f"tracking RMSE {c['rmse']:.2f} N"},
        {"name": "MPC tracking RMSE, 150 N trapezoid (one repetition)",
         "value": round(m["rmse"], 2), "unit": "N", "goal": "-", "passed": None},
        {"name": "PID + feed-forward tracking RMSE, same target (first repetition)",
         "value": round(p["rmse1"], 2), "unit": "N", "goal": "-", "passed": None},
        {"name": f"PID + ILC tracking RMSE after {p['repetitions']} repetitions",
         "value": round(p["rmse_last"], 2), "unit": "N", "goal": "-", "passed": None,
         "note": f"per repetition: {reps} N"},
        {"name": "A/A_rest after one repetition: MPC", "value": round(m["capacity"], 4),
         "unit": "1", "goal": "-", "passed": None},
        {"name": "A/A_rest after one repetition: PID + feed-forward",
         "value": round(p["capacity"], 4), "unit": "1", "goal": "-", "passed": None},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
