"""The cohort engine: tasks against direct simulation, and the same table from a local
cluster of 1 and of 2 workers and from a scheduler in another process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opennmes.cohort import (
    COLUMNS,
    PatientDraw,
    Task,
    build_tasks,
    load_spec,
    parse_spec,
    plot_cohort,
    run_cohort,
    run_task,
    summary,
)
from opennmes.errors import ModelError
from opennmes.physiology import simulate
from opennmes.stim import load_program

from .conftest import QUADS, free_port


@pytest.fixture(scope="module")
def reference(spec_file: Path) -> pd.DataFrame:
    """The sweep run here, task by task, without Dask."""
    spec = load_spec(spec_file)
    rows = [r for t in build_tasks(spec) for r in run_task(t)]
    df = pd.DataFrame(rows, columns=[*COLUMNS, *spec.metrics])
    return df.sort_values(["program", "patient", "muscle"]).reset_index(drop=True)


def test_a_task_is_the_direct_simulation_of_each_patient(spec_file: Path,
                                                         reference: pd.DataFrame) -> None:
    spec = load_spec(spec_file)
    draw = spec.patients()[3]
    prog = load_program(QUADS)
    res = simulate(prog, draw.make(isometric=True), sfreq=100.0, t_end=30.0)
    row = reference[(reference.program == "quadriceps") & (reference.patient == draw.patient)]
    assert len(row) == 1 and row.muscle.iloc[0] == "quadriceps"
    f = res["quadriceps.force"]
    assert row.peak_force.iloc[0] == f.max()
    assert row.force_time_integral.iloc[0] == pytest.approx(np.trapezoid(f, dx=0.01))
    a = res["quadriceps.A"]
    assert row.a_end_ratio.iloc[0] == pytest.approx(a[-1] / a[0])
    # 14 runs, one stimulated muscle each; every draw's factors in the table
    assert len(reference) == 14 and reference.kind.eq("simulate").all()
    assert row.strength.iloc[0] == draw.strength and row.rheobase.iloc[0] == draw.rheobase


def test_spreads_move_the_metrics_the_right_way(spec_file: Path) -> None:
    out = {}
    for name, change in (("base", {}), ("strong", {"strength": 2.0}),
                         ("high-threshold", {"rheobase": 1.5})):
        d = PatientDraw(name, "g", "post-surgery", **change)
        t = Task("simulate", "q", load_program(QUADS), (d,), 30.0, 100.0, ("peak_force",))
        out[name] = run_task(t)[0]["peak_force"]
    # twice the force scale: about twice the force (not exactly: the fatigue states follow
    # the absolute force)
    assert out["strong"] == pytest.approx(2 * out["base"], rel=0.05)
    assert out["high-threshold"] < out["base"]


def test_unknown_task_kind_is_refused(spec_file: Path) -> None:
    t = build_tasks(load_spec(spec_file))[0]
    with pytest.raises(ModelError, match="task kind 'identify' is unknown"):
        run_task(Task("identify", t.program_label, t.program, t.patients, 1.0, 100.0,
                      ("peak_force",)))
    with pytest.raises(ModelError, match="kinds: \\['simulate'\\]"):
        build_tasks(load_spec(spec_file), kind="design")


@pytest.mark.parametrize("workers", [1, 2])
def test_local_cluster_gives_the_same_table(spec_file: Path, reference: pd.DataFrame,
                                            workers: int) -> None:
    seen: list[tuple[int, int]] = []
    df = run_cohort(load_spec(spec_file), workers=workers,
                    on_progress=lambda d, n: seen.append((d, n)))
    pd.testing.assert_frame_equal(df, reference, check_exact=True)
    n = len(build_tasks(load_spec(spec_file)))
    assert seen == [(i, n) for i in range(n + 1)]


def test_scheduler_in_another_process_gives_the_same_table(
        spec_file: Path, reference: pd.DataFrame, remote_scheduler: str) -> None:
    from distributed import Client

    with Client(remote_scheduler) as c:
        assert len(c.scheduler_info()["workers"]) == 2
    df = run_cohort(load_spec(spec_file), scheduler=remote_scheduler)
    pd.testing.assert_frame_equal(df, reference, check_exact=True)


def test_bad_engine_arguments(spec_file: Path) -> None:
    spec = load_spec(spec_file)
    with pytest.raises(ModelError, match="not both"):
        run_cohort(spec, workers=1, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ModelError, match="workers = 0"):
        run_cohort(spec, workers=0)
    with pytest.raises(ModelError, match=r"scheduler tcp://127\.0\.0\.1:\d+: cannot connect"):
        run_cohort(spec, scheduler=f"tcp://127.0.0.1:{free_port()}", timeout=2)


def test_summary_and_plot(reference: pd.DataFrame) -> None:
    metrics = ["peak_force", "fatigue_index"]
    tab = summary(reference, metrics)
    assert list(tab.n) == [5, 2, 5, 2]
    q = reference[(reference.program == "quadriceps") & (reference.group == "post-surgery")]
    assert tab.peak_force_median.iloc[0] == pytest.approx(q.peak_force.median())
    fig = plot_cohort(reference, metrics)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_ylabel() == "peak force (N)"
    assert fig.axes[1].get_ylabel() == "fatigue index (%)"
    with pytest.raises(ModelError, match="metric 'torque' is not in the table"):
        plot_cohort(reference, ["torque"])
    with pytest.raises(ModelError, match="muscle 'deltoid' is not in the table"):
        plot_cohort(reference, muscle="deltoid")


def test_one_program_on_many_muscles_gives_a_row_per_muscle(tmp_path: Path) -> None:
    prog = tmp_path / "two.yaml"
    prog.write_text((QUADS.parent / "knee-reciprocal.yaml").read_text())
    spec = parse_spec({"duration": "5 s", "programs": [str(prog)],
                       "patients": [{"preset": "healthy-adult", "n": 2}]})
    rows = [r for t in build_tasks(spec) for r in run_task(t)]
    muscles = {r["muscle"] for r in rows}
    assert len(muscles) >= 2, muscles
    assert len(rows) == 2 * len(muscles)
