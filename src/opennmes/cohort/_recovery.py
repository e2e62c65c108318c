"""The identification recovery study on Dask.

Synthetic participants with known Ding 2003 fatigue parameters
(:func:`opennmes.physiology.recovery_draws`, drawn here on the client from the seed alone)
are cut into tasks of a few participants; a worker simulates each one's 200-s recovery protocol
with measurement noise and identifies it (:func:`opennmes.physiology.recovery_participant`).
The table has one row per participant and parameter: the truth, the estimate, its 95 %
interval, whether the data determined it (or it was fixed at its published value) and whether
the interval covers the truth. It equals :func:`opennmes.physiology.recovery_study` for the
same ``n`` and ``seed``, whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from opennmes.cohort._engine import check_target, distribute
from opennmes.errors import ModelError

__all__ = ["RecoveryTask", "RECOVERY_COLUMNS", "check_recovery", "run_recovery",
           "run_recovery_task", "recovery_summary"]

RECOVERY_COLUMNS = ("participant", "seed", "parameter", "truth", "value", "ci_low", "ci_high",
                    "determined", "covered", "error")
"""Columns of the recovery table: ``value`` is the estimate (the published value where the
parameter was fixed), ``ci_low``/``ci_high`` its 95 % interval (NaN where fixed),
``determined`` False where the data could not determine it, ``covered`` 1/0 whether the
interval holds the truth (NaN where fixed), ``error`` the fit's error message where it failed.
Values in SI units, as :class:`~opennmes.physiology.DingParameters`."""

MAX_PARTICIPANTS = 100_000
"""Most participants of one study."""


@dataclasses.dataclass(frozen=True)
class RecoveryTask:
    """A batch of participants for one worker: ``(index, truth, noise seed)`` each."""

    participants: tuple[tuple[int, Any, int], ...]
    noise: float


def run_recovery_task(task: RecoveryTask) -> list[dict[str, Any]]:
    """Fit each participant of the task (on a worker, or here): its rows of the table."""
    from opennmes.physiology import recovery_participant

    rows: list[dict[str, Any]] = []
    for i, truth, seed in task.participants:
        rows += [{"participant": i, **r} for r in recovery_participant(truth, seed, task.noise)]
    return rows


def check_recovery(n: int, seed: int, *, noise: float = 1.0, batch: int = 2) -> None:
    """Refuse a study :func:`run_recovery` cannot run, with one clear error."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PARTICIPANTS:
        raise ModelError(f"participants = {n!r} must be a whole number from 1 to "
                         f"{MAX_PARTICIPANTS}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ModelError(f"seed = {seed!r}: needs a whole number >= 0")
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 1000:
        raise ModelError(f"batch = {batch!r} participants per task must be a whole number from "
                         "1 to 1000")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and 0 <= noise <= 100):
        raise ModelError(f"noise = {noise!r} N must be from 0 to 100 N rms")


def run_recovery(
    n: int,
    seed: int,
    *,
    noise: float = 1.0,
    batch: int = 2,
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    timeout: float = 60.0,
) -> pd.DataFrame:
    """Run the recovery study of ``n`` synthetic participants on Dask.

    Parameters
    ----------
    n : int
        Number of participants (1-100000).
    seed : int
        Seed of the participants' parameters and of their noise (as ``recovery_study``).
    noise : float
        Measurement noise, N rms (0-100 N).
    batch : int
        Participants per task (each costs a few seconds of one core).
    workers, scheduler, on_progress, timeout
        Where and how the tasks run, as in :func:`~opennmes.cohort.run_cohort`.

    Returns
    -------
    pandas.DataFrame
        One row per participant and parameter (:data:`RECOVERY_COLUMNS`), sorted by
        participant in the order of ``RECOVERY_PARAMETERS``.
    """
    from opennmes.physiology import RECOVERY_PARAMETERS, recovery_draws

    check_target(workers, scheduler)
    check_recovery(n, seed, noise=noise, batch=batch)
    draws = recovery_draws(n, seed)
    tasks = [RecoveryTask(tuple(draws[i:i + batch]), float(noise))
             for i in range(0, n, batch)]
    rows = distribute(run_recovery_task, tasks, workers=workers, scheduler=scheduler,
                      on_progress=on_progress, timeout=timeout)
    df = pd.DataFrame(rows, columns=list(RECOVERY_COLUMNS))
    order = {k: j for j, k in enumerate(RECOVERY_PARAMETERS)}
    df = df.assign(_o=df["parameter"].map(order)).sort_values(["participant", "_o"],
                                                              kind="stable")
    return df.drop(columns="_o").reset_index(drop=True)


def recovery_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per parameter (and ``all``): participants, the share determined, the coverage of the
    95 % intervals over the determined ones, and the median relative error of the estimate
    (fractions; NaN where none was determined); ``failed`` counts participants whose fit
    ended in an error."""
    from opennmes.physiology import RECOVERY_PARAMETERS

    def one(g: pd.DataFrame) -> dict[str, Any]:
        det = g[g["determined"].astype(bool)]
        rel = (det["value"] / det["truth"] - 1).abs()
        return {"n": len(g), "determined": len(det),
                "determined_share": len(det) / len(g) if len(g) else math.nan,
                "coverage": float(det["covered"].mean()) if len(det) else math.nan,
                "median_rel_error": float(rel.median()) if len(det) else math.nan,
                "failed": int(g.loc[g["error"].fillna("") != "", "participant"].nunique())}

    keys = [k for k in RECOVERY_PARAMETERS if k in set(df["parameter"])]
    out = [{"parameter": k, **one(df[df["parameter"] == k])} for k in keys]
    out.append({"parameter": "all", **one(df)})
    return pd.DataFrame(out)
