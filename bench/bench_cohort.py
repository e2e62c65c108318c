"""Cohort benchmark: 10,000 virtual patients x 60 s through Dask, on 1 and on 2 workers.

The quadriceps example program (35 Hz, 2 s ramp, 10 s on / 30 s off) on post-surgery patients
with spreads of strength (20 %), fatigability (30 %) and rheobase (15 %), isometric, metrics at
100 Hz, 250 patients per task (40 tasks), sent by ``run_cohort`` to the scheduler address of a
local cluster started first and warmed by a one-patient sweep (worker processes importing the
package and loading the compiled kernels; that fixed cost is given beside). The workers' CPU
time tells how busy they were: on a machine shared with other jobs the wall time alone does
not show the scaling. The two tables must be identical. First, in one process without Dask, the
CPU cost of a patient with the package-version lookup of the simulation metadata cached (as
shipped) and done on every simulation (as before the cache).

Run with ``.venv/bin/python bench/run.py cohort``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd

from opennmes.cohort import parse_spec, run_cohort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _load import loadavg  # noqa: E402

PROGRAM = HERE.parent / "examples" / "programs" / "quadriceps.yaml"
N_PATIENTS = int(os.environ.get("NMES_BENCH_COHORT_N", "10000"))
"""Patients of the timed sweep (``NMES_BENCH_COHORT_N`` for a quick check; 10,000 by default)."""


def _spec(n: int) -> object:
    return parse_spec({
        "name": "bench", "seed": 1, "duration": "60 s", "sfreq": "100 Hz", "batch": 250,
        "programs": [str(PROGRAM)],
        "patients": [{"preset": "post-surgery", "n": n,
                      "spread": {"strength": "20 %", "fatigability": "30 %",
                                 "rheobase": "15 %"}}],
        "metrics": ["peak_force", "force_time_integral", "fatigue_index", "a_end_ratio"],
    })


def _version_lookup_cost(n: int = 200, repeat: int = 3) -> tuple[float, float]:
    """CPU ms per patient of one task run here (no Dask), with the package-version lookup of
    the simulation metadata cached (as shipped) and repeated on every simulation (as before);
    best of ``repeat`` each, interleaved."""
    import opennmes.physiology._simulate as sim
    from opennmes.cohort import build_tasks, run_task

    task = build_tasks(_spec(n))[0]  # type: ignore[arg-type]
    run_task(task)  # compiled kernels loaded
    cached = sim._version

    def uncached() -> str:
        cached.cache_clear()
        return cached()

    best = {"cached": float("inf"), "uncached": float("inf")}
    for _ in range(repeat):
        for label in best:
            sim._version = cached if label == "cached" else uncached  # type: ignore[assignment]
            try:
                c0 = time.process_time()
                run_task(task)
                best[label] = min(best[label], 1e3 * (time.process_time() - c0) / n)
            finally:
                sim._version = cached
    return best["cached"], best["uncached"]


def run() -> list[dict]:
    from distributed import Client, LocalCluster

    rows: list[dict] = []
    cached, uncached = _version_lookup_cost()
    rows.append(dict(
        name="one 60-s patient in one process, version lookup of the metadata cached "
             "(functools.cache)", value=cached, unit="ms CPU", goal="(reference)",
        passed=None,
        note=f"{uncached:.2f} ms with the lookup on every simulation, as before: "
             f"{100 * (1 - cached / uncached):.0f} % saved; best of 3 runs of 200 patients"))
    tables: dict[int, pd.DataFrame] = {}
    times: dict[int, float] = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None,
                          scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
                Client(cluster) as client:
            address = cluster.scheduler_address
            run_cohort(_spec(1), scheduler=address)  # type: ignore[arg-type]
            fixed = time.perf_counter() - t0
            before = loadavg()
            cpu0 = sum(client.run(time.process_time).values())
            t0 = time.perf_counter()
            tables[workers] = run_cohort(_spec(N_PATIENTS), scheduler=address)  # type: ignore[arg-type]
            times[workers] = time.perf_counter() - t0
            cpu = sum(client.run(time.process_time).values()) - cpu0
        busy = cpu / (times[workers] * workers)
        rows.append(dict(
            name=f"{N_PATIENTS:,} patients x 60 s simulated through Dask, local cluster of "
                 f"{workers} worker(s)", value=times[workers], unit="s", goal="(reference)",
            passed=None,
            note=f"{N_PATIENTS / times[workers]:.0f} patients/s; worker CPU "
                 f"{1e3 * cpu / N_PATIENTS:.1f} ms per patient, workers busy {100 * busy:.0f} % "
                 f"of the time; starting the cluster and a one-patient sweep {fixed:.1f} s "
                 f"more; load average {before:.1f} before, {loadavg():.1f} after, on "
                 f"{os.cpu_count()} cores shared with other jobs"))
    same = tables[1].equals(tables[2])
    rows.append(dict(name=f"same table from 1 and 2 workers ({len(tables[1]):,} rows, every "
                          "value equal)",
                     value=str(same), unit="", goal="True", passed=same))
    speedup = times[1] / times[2]
    rows.append(dict(name="scaling from 1 to 2 workers (time on 1 / time on 2)",
                     value=speedup, unit="x", goal=">= 1.6x on 2 idle cores",
                     passed=speedup >= 1.6,
                     note="only meaningful when the load average before the runs is low"))
    return rows


if __name__ == "__main__":  # pragma: no cover
    for r in run():
        print(r)
