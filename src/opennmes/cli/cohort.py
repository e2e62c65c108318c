"""``nmes cohort``: sweeps of programs x virtual patients on a Dask cluster (``run``), their
figure (``plot``), and the identification recovery study on the same engine (``recover``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from opennmes.cli._paths import make_parent, output_file
from opennmes.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["register"]

T = TypeVar("T")

cohort_app = typer.Typer(
    no_args_is_help=True,
    help="Virtual cohorts: run a sweep of programs x patients on a local Dask cluster or a "
         "scheduler address (nmes cohort run SPEC --out results.parquet), plot it, or run the "
         "identification recovery study (nmes cohort recover --out recovery.parquet).")


def _echo_summary(df: object, metrics: tuple[str, ...]) -> None:
    """Median (5th-95th percentile) of each metric per program, group and muscle, in the
    units a person reads."""
    from opennmes.cohort import METRIC_DISPLAY, summary

    tab = summary(df, metrics)  # type: ignore[arg-type]
    for _, r in tab.iterrows():
        parts = []
        for m in metrics:
            label, factor = METRIC_DISPLAY[m]
            med, lo, hi = (r[f"{m}_{s}"] * factor for s in ("median", "p05", "p95"))
            parts.append(f"{label} {med:.3g} ({lo:.3g}-{hi:.3g})")
        typer.echo(f"{r['program']} / {r['group']} / {r['muscle']} (n={r['n']}): "
                   + "; ".join(parts))


def _with_progress(work: Callable[[Callable[[int, int], None]], T]) -> T:
    """Run ``work(on_progress)`` under a progress bar on stderr (tasks done of total)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=False) as bar:
        job = bar.add_task("tasks", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(job, completed=done, total=total)

        return work(progress)


def _write_table(df: pd.DataFrame, out: Path) -> None:
    """The table as Parquet or CSV, by the suffix of ``out``."""
    make_parent(out)
    if out.suffix == ".parquet":
        df.to_parquet(out, index=False)
    else:
        df.to_csv(out, index=False)


@cohort_app.command("run")
def run(
    spec_file: Annotated[Path, typer.Argument(metavar="SPEC", help="Cohort spec (YAML).")],
    out: Annotated[Path, typer.Option(help="Results table (.parquet or .csv).")],
    workers: Annotated[int | None, typer.Option(
        help="Worker processes of the local cluster (default 2).")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (instead of a "
             "local cluster).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Also write the figure (PNG).")] = None,
) -> None:
    """Simulate every program of SPEC on every patient, on Dask; one row per program x
    patient x stimulated muscle."""
    from opennmes.cohort import check_target, load_spec, run_cohort

    check_target(workers, scheduler)
    output_file(out, "--out", (".parquet", ".csv"))
    if plot is not None:
        output_file(plot, "--plot", (".png",))
    spec = load_spec(spec_file)
    where = scheduler or f"a local cluster of {workers or 2} worker(s)"
    typer.echo(f"{spec.name}: {len(spec.programs)} program(s) x {spec.n_patients} patients "
               f"= {spec.n_runs} runs of {spec.duration:g} s on {where}")
    df = _with_progress(lambda progress: run_cohort(spec, workers=workers,
                                                    scheduler=scheduler, on_progress=progress))
    _write_table(df, out)
    _echo_summary(df, spec.metrics)
    if plot is not None:
        from opennmes.cohort import plot_cohort

        plot_cohort(df, spec.metrics).savefig(make_parent(plot), dpi=120)
    typer.echo(f"{len(df)} rows -> {out}")


@cohort_app.command("recover")
def recover(
    out: Annotated[Path, typer.Option(help="Results table (.parquet or .csv): one row per "
                                           "participant and parameter.")],
    participants: Annotated[int, typer.Option(
        help="Synthetic participants to identify (each a few seconds of one core).")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the participants and their noise.")] = 13,
    noise: Annotated[float, typer.Option(help="Measurement noise, N rms.")] = 1.0,
    batch: Annotated[int, typer.Option(help="Participants per task.")] = 2,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes of the local cluster (default 2).")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (instead of a "
             "local cluster).")] = None,
) -> None:
    """Identification recovery study on Dask: simulate the 200-s recovery protocol on
    synthetic participants with known Ding 2003 fatigue parameters, fit each, and report how
    often the 95 % intervals contain the truth."""
    from opennmes.cohort import check_recovery, check_target, recovery_summary, run_recovery

    check_target(workers, scheduler)
    check_recovery(participants, seed, noise=noise, batch=batch)
    output_file(out, "--out", (".parquet", ".csv"))
    where = scheduler or f"a local cluster of {workers or 2} worker(s)"
    typer.echo(f"recovery study: {participants} synthetic participants (seed {seed}, noise "
               f"{noise:g} N rms) on {where}")
    df = _with_progress(lambda progress: run_recovery(
        participants, seed, noise=noise, batch=batch, workers=workers, scheduler=scheduler,
        on_progress=progress))
    _write_table(df, out)
    for _, r in recovery_summary(df).iterrows():
        head = f"{r['parameter']}: reported for {r['determined']} of {r['n']}"
        if r["parameter"] == "all":
            head = f"all parameters: {r['determined']} of {r['n']} reported"
        if r["determined"]:
            head += (f", 95 % intervals cover the truth in {100 * r['coverage']:.1f} %, "
                     f"median error {100 * r['median_rel_error']:.1f} %")
        if r["failed"]:
            head += f"; {r['failed']} fit(s) failed"
        typer.echo(head)
    typer.echo(f"{len(df)} rows -> {out}")


@cohort_app.command("plot")
def plot_cmd(
    results: Annotated[Path, typer.Argument(metavar="RESULTS",
                                            help="Results table of 'nmes cohort run'.")],
    out: Annotated[Path, typer.Option(help="Figure (PNG).")],
    metric: Annotated[list[str] | None, typer.Option(
        help="Metric to show (repeat for several; default: all in the table).")] = None,
    muscle: Annotated[str | None, typer.Option(help="Only this muscle.")] = None,
) -> None:
    """Draw each metric per program and patient group (box plots)."""
    import pandas as pd

    from opennmes.cohort import plot_cohort

    output_file(out, "--out", (".png",))
    if not results.is_file():
        raise ModelError(f"{results}: no such results table")
    if results.suffix not in (".parquet", ".csv"):
        raise ModelError(f"{results}: unknown table type; use .parquet or .csv")
    try:
        df = pd.read_parquet(results) if results.suffix == ".parquet" else pd.read_csv(results)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{results}: cannot read the results table: {exc}") from exc
    plot_cohort(df, metric, muscle).savefig(make_parent(out), dpi=120)
    typer.echo(f"{len(df)} rows -> {out}")


def register(app: typer.Typer) -> None:
    """Add ``cohort`` to the ``nmes`` command."""
    app.add_typer(cohort_app, name="cohort")
