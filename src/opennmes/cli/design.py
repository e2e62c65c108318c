"""``nmes design train``: a pulse train that makes a force model track a target force."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from opennmes.cli._paths import make_parent, output_file
from opennmes.errors import ModelError

if TYPE_CHECKING:
    from opennmes.physiology import DingParameters

__all__ = ["register"]

design_app = typer.Typer(no_args_is_help=True,
                         help="Design stimulation: pulse trains that track a target force.")


@design_app.command("train")
def train(
    model: Annotated[str, typer.Option(help="ding2003 (times), ding2007 (times and widths) or "
                                            "hmed2018 (times and amplitudes).")],
    target: Annotated[Path, typer.Option(help="Target CSV: columns t (s) and force (N).")],
    out: Annotated[Path, typer.Option(
        help="Output CSV: t (s), and pulse_width (s) or amplitude (A) where the model has "
             "them.")],
    fatigue: Annotated[bool, typer.Option("--fatigue", help="Switch on the fatigue model.")]
    = False,
    objective: Annotated[str, typer.Option(help="tracking, fatigue (needs --fatigue) or "
                                                "charge.")] = "tracking",
    device: Annotated[str, typer.Option(help="sim, rehastim2 or p24: its time grid, ranges "
                                             "and safety limits.")] = "sim",
    min_interval: Annotated[float, typer.Option(
        help="Shortest interval between pulses, s.")] = 5e-3,
    schedule: Annotated[Path | None, typer.Option(
        help="Also write the whole pulse schedule (.csv or .parquet) for nmes simulate.")]
    = None,
    patient: Annotated[str | None, typer.Option(
        help="Design for a virtual patient preset's muscle (see 'nmes simulate presets'): "
             "its force model replaces the published defaults.")] = None,
    muscle: Annotated[str, typer.Option(
        help="The muscle of --patient whose force is designed.")] = "quadriceps",
) -> None:
    """Design pulse times (and widths or amplitudes) that make a model track a target."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from opennmes.cli.simulate import write_csv
    from opennmes.design import OBJECTIVES, design_train, read_target
    from opennmes.physiology import MODELS, default_parameters

    if model not in MODELS:
        raise ModelError(f"--model {model!r} is unknown; models: {list(MODELS)}")
    if objective not in OBJECTIVES:
        raise ModelError(f"--objective {objective!r} is unknown; objectives: "
                         f"{list(OBJECTIVES)}")
    if not (math.isfinite(min_interval) and min_interval > 0):
        raise ModelError(f"--min-interval {min_interval!r} s must be a time above 0 s")
    output_file(out, "--out", (".csv",))
    if schedule is not None:
        output_file(schedule, "--schedule", (".csv", ".parquet"))
    tgt = read_target(target)
    if patient is None:
        params = default_parameters(model, fatigue=fatigue)
    else:
        params = _patient_model(patient, muscle, model).replace(fatigue=fatigue)
    steps = 7
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  transient=True) as bar:
        task = bar.add_task("designing", total=steps)

        def progress(step: str) -> None:
            bar.update(task, advance=1, description=f"designing: {step}")

        res = design_train(tgt, params, device=device, objective=objective,
                           min_interval=min_interval, progress=progress)
    write_csv(res.pulses_table(), make_parent(out))
    if schedule is not None:
        res.schedule.write(str(make_parent(schedule)))
    if patient is not None:
        typer.echo(f"force model: the {muscle} of patient {patient!r} (A {params.a_rest:.0f} "
                   f"N/s, Km {params.km_rest:.3g}, tau1 {params.tau1_rest * 1e3:.1f} ms)")
    typer.echo(res.summary())
    typer.echo(f"-> {out}" + (f", {schedule}" if schedule is not None else ""))


def _patient_model(patient: str, muscle: str, model: str) -> DingParameters:
    """The force model of a preset's muscle, which must be the model asked for."""
    from opennmes.physiology import get_preset

    params = get_preset(patient).muscle(muscle).force_model
    if params.model != model:
        raise ModelError(f"--model {model}: the {muscle} of patient {patient!r} is a "
                         f"{params.model} model (preset {patient!r}); use --model "
                         f"{params.model} with this patient")
    return params


def register(app: typer.Typer) -> None:
    """Add ``design`` to the ``nmes`` command."""
    app.add_typer(design_app, name="design")
