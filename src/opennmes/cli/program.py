"""``nmes program check | show | expand | schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from opennmes.cli._paths import make_parent, output_file
from opennmes.safety import check_program
from opennmes.stim import load_program, program_schema

__all__ = ["register"]

group = typer.Typer(help="Check, summarise and expand stimulation program files.",
                    no_args_is_help=True)

DeviceOpt = Annotated[str, typer.Option("--device", help="Limit profile: sim, rehastim2, p24.")]


def _device_problem(program: object, device: str) -> str | None:
    """Why the device cannot play the program exactly (period grid, pulse shape), or None."""
    from opennmes.devices import check_representable
    from opennmes.errors import ProgramError

    try:
        check_representable(device, program)
    except ProgramError as exc:
        return f"{device} cannot play this program exactly: {exc}"
    return None


@group.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Program file (.yaml or .json).")],
    device: DeviceOpt = "sim",
) -> None:
    """Check a program against the safety limits and the device: exit 0 when safe and
    playable, 2 with one line per problem when not; acknowledged advisories and range
    warnings are printed."""
    program = load_program(file)
    report = check_program(program, device)
    problem = _device_problem(program, device)
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    for a in report.acknowledged:
        typer.echo(f"acknowledged: {a}", err=True)
    if not report.ok or problem:
        for line in report.errors() + ([problem] if problem else []):
            typer.echo(f"{file}: {line}", err=True)
        raise typer.Exit(2)
    typer.echo(f"{file}: OK for {report.profile.name} ({len(report.schedule)} pulses, "
               f"{program.duration_s:.1f} s)")


@group.command("show")
def show(
    file: Annotated[Path, typer.Argument(help="Program file (.yaml or .json).")],
    device: DeviceOpt = "sim",
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG of the envelope "
                                              "and single pulses.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Summarise a program: duration, pulses, charge per phase, current densities, energy."""
    if plot is not None:
        output_file(plot, "--plot")
    program = load_program(file)
    report = check_program(program, device)
    rows = []
    for d in report.dose:
        rows.append({
            "channel": d.channel,
            "pulses": d.pulses,
            "electrode_cm2": round(d.area * 1e4, 3),
            "charge_per_phase_uC": round(d.max_charge_per_phase * 1e6, 4),
            "total_charge_mC": round(d.total_charge * 1e3, 4),
            "peak_current_density_mA_cm2": round(d.peak_current_density * 0.1, 4),
            "rms_current_mA": round(d.max_rms_current * 1e3, 4),
            "rms_current_density_mA_cm2": round(d.max_rms_current_density * 0.1, 4),
            "power_density_W_cm2": round(d.max_power_density * 1e-4, 6),
            "energy_per_pulse_500ohm_mJ": round(d.max_energy_500 * 1e3, 5),
            "energy_per_pulse_1kohm_mJ": round(d.max_energy_1k * 1e3, 5),
            "net_charge_per_pulse_uC": round(d.max_net_charge * 1e6, 5),
            "shannon_k": round(d.shannon_k, 3),
        })
    summary = {
        "name": program.name,
        "duration_s": program.duration_s,
        "pulses": len(report.schedule),
        "phases": [p.name for p in program.phase_list()],
        "timing": program.timing.mode,
        "safe": report.ok,
        "violations": report.errors(),
        "warnings": report.warnings,
        "channels": rows,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        con = Console()
        typer.echo(program.describe())
        typer.echo(f"{len(report.schedule)} pulses")
        table = Table(title="dose per channel (worst pulse)")
        labels = [("pulses", "pulses"), ("electrode_cm2", "electrode (cm2)"),
                  ("charge_per_phase_uC", "charge per phase (uC)"),
                  ("total_charge_mC", "total charge (mC)"),
                  ("peak_current_density_mA_cm2", "peak current density (mA/cm2)"),
                  ("rms_current_mA", "rms current, 1 s (mA)"),
                  ("rms_current_density_mA_cm2", "rms current density (mA/cm2)"),
                  ("power_density_W_cm2", "power density, 500 ohm (W/cm2)"),
                  ("energy_per_pulse_500ohm_mJ", "energy per pulse, 500 ohm (mJ)"),
                  ("energy_per_pulse_1kohm_mJ", "energy per pulse, 1 kohm (mJ)"),
                  ("net_charge_per_pulse_uC", "net charge per pulse (uC)"),
                  ("shannon_k", "Shannon k (info)")]
        table.add_column("")
        for r in rows:
            table.add_column(str(r["channel"]), justify="right")
        for key, lab in labels:
            table.add_row(lab, *[str(r[key]) for r in rows])
        con.print(table)
        for w in report.warnings:
            con.print(f"[yellow]warning:[/yellow] {w}")
        for e in report.errors():
            con.print(f"[red]violation:[/red] {e}")
        con.print("[green]safe[/green]" if report.ok else "[red]NOT safe[/red]")
    if plot is not None:
        from opennmes.report.program_plot import plot_program

        plot_program(program, report.schedule, make_parent(plot))
        typer.echo(f"wrote {plot}")


@group.command("expand")
def expand(
    file: Annotated[Path, typer.Argument(help="Program file (.yaml or .json).")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="pulses.csv or pulses.parquet (without it: the first pulses are "
                      "printed)")] = None,
    device: DeviceOpt = "sim",
    rows: Annotated[int, typer.Option(help="Pulses printed without --out.")] = 10,
) -> None:
    """Write every pulse of the program (one row per pulse, SI units) to CSV or Parquet, or
    print the first pulses in mA and us. The schedule is checked first; an unsafe program
    writes nothing."""
    if out is not None:
        output_file(out, "--out", (".csv", ".parquet"))
    program = load_program(file)
    report = check_program(program, device)
    problem = _device_problem(program, device)
    if not report.ok or problem:
        for line in report.errors() + ([problem] if problem else []):
            typer.echo(f"{file}: {line}", err=True)
        raise typer.Exit(2)
    sched = report.schedule
    if out is None:
        typer.echo(f"{len(sched)} pulses over {sched.duration:.1f} s; the first "
                   f"{min(rows, len(sched))} (--out FILE writes them all, in SI units):")
        typer.echo(f"{'time (s)':>10}  {'channel':<20} {'amplitude':>10}  {'width':>8}")
        for i in range(min(rows, len(sched))):
            typer.echo(f"{sched.t[i]:10.4f}  {sched.channel_names[sched.channel[i]]:<20} "
                       f"{sched.amplitude[i] * 1e3:7.1f} mA  {sched.phase_width[i] * 1e6:5.0f} us")
        return
    sched.write(str(make_parent(out)))
    typer.echo(f"wrote {len(sched)} pulses to {out}")


@group.command("schema")
def schema() -> None:
    """Print the JSON Schema of program files."""
    typer.echo(json.dumps(program_schema(), indent=2))


def register(app: typer.Typer) -> None:
    """Add the ``program`` group to the ``nmes`` command."""
    app.add_typer(group, name="program")
