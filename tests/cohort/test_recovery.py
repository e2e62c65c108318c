"""The identification recovery study through the cohort engine: the same table from 1 and 2
local workers and from a scheduler in another process, equal to the serial study, and
``nmes cohort recover``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opennmes.cohort import (
    RECOVERY_COLUMNS,
    RecoveryTask,
    recovery_summary,
    run_recovery,
    run_recovery_task,
)
from opennmes.errors import ModelError
from opennmes.physiology import RECOVERY_PARAMETERS, recovery_draws, recovery_study

from ..conftest import run_nmes

N, SEED = 3, 5


@pytest.fixture(scope="module")
def one_worker() -> pd.DataFrame:
    seen: list[tuple[int, int]] = []
    df = run_recovery(N, SEED, workers=1, batch=1, on_progress=lambda d, n: seen.append((d, n)))
    assert seen == [(i, N) for i in range(N + 1)]
    return df


def test_the_table_has_a_row_per_participant_and_parameter(one_worker: pd.DataFrame) -> None:
    df = one_worker
    assert list(df.columns) == list(RECOVERY_COLUMNS)
    assert list(df.participant) == [i for i in range(N) for _ in RECOVERY_PARAMETERS]
    assert list(df.parameter) == list(RECOVERY_PARAMETERS) * N
    # the truth is each participant's drawn parameters
    for i, truth, noise_seed in recovery_draws(N, SEED):
        rows = df[df.participant == i]
        assert (rows.seed == noise_seed).all()
        assert list(rows.truth) == [getattr(truth, k) for k in RECOVERY_PARAMETERS]
    det = df[df.determined]
    assert len(det) >= 4 * N and (df.error == "").all()
    assert ((det.ci_low <= det.value) & (det.value <= det.ci_high)).all()
    assert set(det.covered.unique()) <= {0.0, 1.0}
    fixed = df[~df.determined]
    assert fixed.ci_low.isna().all() and fixed.covered.isna().all()


def test_two_workers_give_the_same_table(one_worker: pd.DataFrame) -> None:
    df = run_recovery(N, SEED, workers=2, batch=2)
    pd.testing.assert_frame_equal(df, one_worker, check_exact=True)


def test_a_scheduler_in_another_process_gives_the_same_table(one_worker: pd.DataFrame,
                                                             remote_scheduler: str) -> None:
    df = run_recovery(N, SEED, scheduler=remote_scheduler, batch=3)
    pd.testing.assert_frame_equal(df, one_worker, check_exact=True)


def test_it_is_the_serial_study(one_worker: pd.DataFrame) -> None:
    """The workers run one BLAS thread each; here the fit's linear algebra may use more, which
    changes the last digits only."""
    serial = recovery_study(N, SEED)
    pd.testing.assert_frame_equal(serial, one_worker, check_exact=False, rtol=1e-6)
    # one task run here, without Dask, is that participant's rows
    i, truth, noise_seed = recovery_draws(N, SEED)[1]
    rows = pd.DataFrame(run_recovery_task(RecoveryTask(((i, truth, noise_seed),), 1.0)))
    pd.testing.assert_frame_equal(rows, serial[serial.participant == 1].reset_index(drop=True),
                                  check_exact=False, rtol=1e-6)


def test_summary_counts_and_coverage(one_worker: pd.DataFrame) -> None:
    tab = recovery_summary(one_worker).set_index("parameter")
    assert list(tab.index) == [*RECOVERY_PARAMETERS, "all"]
    det = one_worker[one_worker.determined]
    assert tab.loc["all", "n"] == N * len(RECOVERY_PARAMETERS)
    assert tab.loc["all", "determined"] == len(det)
    assert tab.loc["all", "coverage"] == pytest.approx(det.covered.mean())
    k = det.parameter.iloc[0]
    one = det[det.parameter == k]
    assert tab.loc[k, "median_rel_error"] == pytest.approx(
        float(np.median(np.abs(one.value / one.truth - 1))))
    assert (tab.failed == 0).all()
    # a failed fit is counted once per participant
    bad = one_worker.copy()
    bad.loc[bad.participant == 0, "error"] = "flat trace"
    assert recovery_summary(bad).set_index("parameter").loc["all", "failed"] == 1


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ModelError, match="participants = 0 must be a whole number"):
        run_recovery(0, 1)
    with pytest.raises(ModelError, match="seed = -1"):
        run_recovery(2, -1)
    with pytest.raises(ModelError, match="batch = 0"):
        run_recovery(2, 1, batch=0)
    with pytest.raises(ModelError, match="noise = -1.0 N"):
        run_recovery(2, 1, noise=-1.0)
    with pytest.raises(ModelError, match="not both"):
        run_recovery(2, 1, workers=1, scheduler="tcp://127.0.0.1:1")


def test_nmes_cohort_recover_on_a_scheduler_address(tmp_path: Path, one_worker: pd.DataFrame,
                                                    remote_scheduler: str) -> None:
    out = tmp_path / "rec" / "recovery.parquet"
    r = run_nmes("cohort", "recover", "--participants", str(N), "--seed", str(SEED),
                 "--batch", "1", "--scheduler", remote_scheduler, "--out", str(out),
                 timeout=600)
    assert r.returncode == 0, r.stderr
    assert f"recovery study: {N} synthetic participants (seed {SEED}, noise 1 N rms) on " \
           f"{remote_scheduler}" in r.stdout
    df = pd.read_parquet(out)
    pd.testing.assert_frame_equal(df, one_worker, check_exact=True)
    det = df[df.determined]
    cov = 100 * det.covered.mean()
    assert (f"all parameters: {len(det)} of {len(df)} reported, 95 % intervals cover the "
            f"truth in {cov:.1f} %") in r.stdout
    assert f"{N}/{N}" in r.stderr  # the progress bar
    assert f"{len(df)} rows -> {out}" in r.stdout


def test_nmes_cohort_recover_bad_input_is_one_error_line(tmp_path: Path) -> None:
    r = run_nmes("cohort", "recover", "--participants", "0", "--out",
                 str(tmp_path / "r.parquet"))
    assert r.returncode == 2 and r.stderr.startswith("error: ")
    assert "participants = 0" in r.stderr and "Traceback" not in r.stderr
    r = run_nmes("cohort", "recover", "--out", str(tmp_path / "r.txt"))
    assert r.returncode == 2 and "--out" in r.stderr
