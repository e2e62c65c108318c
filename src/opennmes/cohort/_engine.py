"""Tasks and their distribution on Dask.

A :class:`Task` is a batch of patients under one program, with a ``kind`` that names the work
(``"simulate"`` today; design of the same patients would be a further kind in
:data:`TASK_KINDS`; the identification recovery study has its own tasks and table,
``_recovery.py``). :func:`run_task` is the whole of what a worker does: it needs only the
installed package (programs travel inside the task; nothing is read from disk). The client
cuts the sweep into tasks (:func:`build_tasks`), submits them (:func:`distribute`) to a local
cluster or to a scheduler address, collects the rows as they complete and sorts them, so the
table is the same whatever the number of workers or the order in which tasks finish.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from opennmes.cohort._metrics import METRICS
from opennmes.cohort._spec import CohortSpec, PatientDraw
from opennmes.errors import ModelError

__all__ = ["Task", "TASK_KINDS", "build_tasks", "run_task", "run_cohort", "summary", "check_target",
           "COLUMNS", "distribute"]

COLUMNS = ("kind", "program", "patient", "group", "preset", "strength", "fatigability",
           "rheobase", "muscle")
"""Leading columns of the results table (the metrics follow, in the spec's order)."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One unit of work for a worker: ``kind`` of work on ``patients`` under one program."""

    kind: str
    program_label: str
    program: Any
    patients: tuple[PatientDraw, ...]
    duration: float
    sfreq: float
    metrics: tuple[str, ...]
    isometric: bool = True
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _simulate_rows(task: Task) -> list[dict[str, Any]]:
    """Each patient of the task under the program: one row per stimulated muscle."""
    from opennmes.physiology import simulate

    rows: list[dict[str, Any]] = []
    for draw in task.patients:
        pat = draw.make(isometric=task.isometric)
        res = simulate(task.program, pat, sfreq=task.sfreq, t_end=task.duration, states=True)
        names = set(res.names)
        for name in res.names:
            if not name.endswith(".force"):
                continue
            muscle = name[:-len(".force")]
            m = pat.muscle(muscle)
            run = {"force": res[name], "sfreq": task.sfreq, "a_rest": m.force_model.a_rest,
                   "A": res[f"{muscle}.A"] if f"{muscle}.A" in names else None,
                   "angle": res[f"{m.joint}.angle"] if f"{m.joint}.angle" in names else None}
            row: dict[str, Any] = {"kind": task.kind, "program": task.program_label,
                                   "patient": draw.patient, "group": draw.group,
                                   "preset": draw.preset, "strength": draw.strength,
                                   "fatigability": draw.fatigability,
                                   "rheobase": draw.rheobase, "muscle": muscle}
            row.update({k: METRICS[k](run) for k in task.metrics})
            rows.append(row)
    return rows


TASK_KINDS: dict[str, Callable[[Task], list[dict[str, Any]]]] = {
    "simulate": _simulate_rows,
}
"""What a worker can do, by the task's ``kind``."""


def run_task(task: Task) -> list[dict[str, Any]]:
    """Run one task (on a worker, or here): its rows of the results table."""
    try:
        fn = TASK_KINDS[task.kind]
    except KeyError:
        raise ModelError(f"task kind {task.kind!r} is unknown; kinds: {sorted(TASK_KINDS)}") \
            from None
    return fn(task)


def build_tasks(spec: CohortSpec, kind: str = "simulate") -> list[Task]:
    """The sweep cut into tasks of at most ``spec.batch`` patients, program by program."""
    if kind not in TASK_KINDS:
        raise ModelError(f"task kind {kind!r} is unknown; kinds: {sorted(TASK_KINDS)}")
    patients = spec.patients()
    tasks = []
    for entry in spec.programs:
        for i in range(0, len(patients), spec.batch):
            tasks.append(Task(kind, entry.label, entry.program,
                              tuple(patients[i:i + spec.batch]), spec.duration, spec.sfreq,
                              spec.metrics, spec.isometric))
    return tasks


def _table(rows: Sequence[dict[str, Any]], metrics: Sequence[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[*COLUMNS, *metrics])
    for c in ("strength", "fatigability", "rheobase", *metrics):
        df[c] = df[c].astype(np.float64)
    return df.sort_values(["program", "patient", "muscle"], kind="stable").reset_index(drop=True)


def check_target(workers: int | None, scheduler: str | None) -> None:
    """Where the sweep runs is stated once: a count of local workers (1-1024) or a scheduler
    address, not both."""
    if scheduler is not None and workers is not None:
        raise ModelError("give either the number of local workers or a scheduler address, "
                         "not both")
    if workers is not None and not (isinstance(workers, int) and 1 <= workers <= 1024):
        raise ModelError(f"workers = {workers!r} must be a whole number from 1 to 1024")


def run_cohort(
    spec: CohortSpec,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    kind: str = "simulate",
    on_progress: Callable[[int, int], None] | None = None,
    timeout: float = 60.0,
) -> pd.DataFrame:
    """Run the sweep on Dask and return the results table (one row per program x patient x
    stimulated muscle, sorted by program, patient and muscle).

    Parameters
    ----------
    spec : CohortSpec
        The sweep.
    workers : int, optional
        Worker processes of the local cluster (one thread each); default 2, or 1 on a
        one-core machine. Not allowed with ``scheduler``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``): the tasks run on its
        workers, which must have the same version of opennmes installed.
    kind : str
        The task kind (:data:`TASK_KINDS`).
    on_progress : callable, optional
        Called as ``on_progress(done, total)`` with the count of finished tasks.
    timeout : float
        Seconds to wait for the scheduler to answer and for a first worker.
    """
    check_target(workers, scheduler)
    tasks = build_tasks(spec, kind)
    rows = distribute(run_task, tasks, workers=workers, scheduler=scheduler,
                      on_progress=on_progress, timeout=timeout)
    return _table(rows, spec.metrics)


def distribute(
    fn: Callable[[Any], list[dict[str, Any]]],
    tasks: Sequence[Any],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    timeout: float = 60.0,
) -> list[dict[str, Any]]:
    """Run ``fn(task)`` for every task on a local cluster of ``workers`` processes (default 2,
    or 1 on a one-core machine) or at a ``scheduler`` address, and return all their rows in
    the order the tasks complete (the caller sorts them). ``on_progress(done, total)`` is
    called as tasks finish; on any failure the remaining tasks are cancelled."""
    import os

    from distributed import Client, LocalCluster, as_completed

    check_target(workers, scheduler)
    cluster = None
    if scheduler is None:
        n = workers if workers is not None else min(2, os.cpu_count() or 1)
        # no dashboard; the scheduler's HTTP endpoint on any free loopback port
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ModelError(f"scheduler {scheduler}: cannot connect: {exc}") from exc
    try:
        client.wait_for_workers(1, timeout=timeout)
        futures = [client.submit(fn, t, pure=False) for t in tasks]
        rows: list[dict[str, Any]] = []
        done = 0
        if on_progress is not None:
            on_progress(0, len(tasks))
        try:
            for fut in as_completed(futures):
                rows.extend(fut.result())
                done += 1
                if on_progress is not None:
                    on_progress(done, len(tasks))
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return rows


def summary(df: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Median and 5th-95th percentile of each metric per program, group and muscle."""
    keys = ["program", "group", "muscle"]
    parts = []
    for m in metrics:
        g = df.groupby(keys, sort=True)[m]
        parts.append(pd.DataFrame({f"{m}_median": g.median(), f"{m}_p05": g.quantile(0.05),
                                   f"{m}_p95": g.quantile(0.95)}))
    out = pd.concat(parts, axis=1).reset_index()
    out.insert(3, "n", df.groupby(keys, sort=True).size().to_numpy())
    return out
