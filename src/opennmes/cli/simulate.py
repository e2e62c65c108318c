"""``nmes simulate``: programs on virtual patients, single force models on pulse trains;
``nmes identify``: fit a force-fatigue model to a recorded trace."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from typer.core import TyperGroup

from opennmes.cli._paths import input_pulses, input_table, make_parent, output_file
from opennmes.errors import ModelError

__all__ = ["register"]


class _DefaultToProgram(TyperGroup):
    """``nmes simulate FILE ...`` means ``nmes simulate program FILE ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["program", *args]
        return super().parse_args(ctx, args)


simulate_app = typer.Typer(
    cls=_DefaultToProgram, no_args_is_help=True,
    help="Simulate a program on a virtual patient (nmes simulate PROGRAM --patient PRESET "
         "--out FILE), or one force model on a pulse train (nmes simulate train ...).")


def _values(text: str, option: str, scale: float, *, times: bool = False) -> list[float]:
    """A comma-separated LIST or a FILE with one value a line, times ``scale``; ``times``:
    the values are pulse times, which must not go back (checked here for a FILE, to name it;
    the model checks a LIST)."""
    from opennmes.physiology import read_values

    if os.path.exists(text):
        vals = read_values(text).tolist()
    else:
        vals = []
        for i, cell in enumerate(text.split(",")):
            cell = cell.strip()
            if not cell:
                continue
            try:
                vals.append(float(cell))
            except ValueError:
                raise ModelError(f"{option}: item {i + 1} {cell!r} is not a number (give a "
                                 "comma-separated list or an existing file)") from None
    from_file = os.path.exists(text)
    where = f"{option} {text}" if from_file else option
    for i, v in enumerate(vals):
        if not math.isfinite(v):
            raise ModelError(f"{where}: item {i + 1} = {v!r} is not a finite number")
        if times and from_file and i and v < vals[i - 1]:  # (a list: the model says so)
            raise ModelError(f"{where}: item {i + 1} = {v!r} s is before item {i} = "
                             f"{vals[i - 1]!r} s; pulse times must not go back")
    return [v * scale for v in vals]


MAX_SFREQ = 100_000.0
"""Highest output rate of ``nmes simulate``, Hz."""
MAX_SAMPLES = 50_000_000
"""Most samples per output signal (about 400 MB per signal as float64)."""


def _check_grid(sfreq: float, t_end: float | None) -> None:
    """The output grid fits in memory: --sfreq in (0, MAX_SFREQ] Hz, --t-end >= 0 s, at most
    MAX_SAMPLES samples per signal (checked before anything is simulated)."""
    if not (math.isfinite(sfreq) and 0 < sfreq <= MAX_SFREQ):
        raise ModelError(f"--sfreq {sfreq:g} Hz must be above 0 and at most {MAX_SFREQ:g} Hz")
    if t_end is None:
        return
    if not (math.isfinite(t_end) and t_end >= 0):
        raise ModelError(f"--t-end {t_end:g} s must be a time of 0 s or more")
    n = t_end * sfreq + 1
    if n > MAX_SAMPLES:
        raise ModelError(f"--t-end {t_end:g} s at --sfreq {sfreq:g} Hz is {n:.3g} samples per "
                         f"signal, above the limit of {MAX_SAMPLES:.3g}; lower the rate or "
                         "simulate a shorter time")


def _load_params(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read parameters: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("params"), dict):
        data = data["params"]
    if not isinstance(data, dict):
        raise ModelError(f"{path}: parameters must be a JSON object of name: value (SI)")
    data.pop("model", None)
    return data


def write_csv(columns: Mapping[str, Any], out: Path) -> None:
    """Numeric columns as CSV by pyarrow's vectorised writer, straight from the arrays: about
    ten times faster than pandas (a 30-min simulation at 1 kHz is 1.8 million rows), and every
    float in full, round-trip precision. Header names are quoted only where CSV needs it."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    plain = not any(c in name for name in columns for c in ',"\n\r')
    pacsv.write_csv(pa.table({k: np.ascontiguousarray(v) for k, v in columns.items()}),
                    str(out), pacsv.WriteOptions(quoting_style="needed",
                                                 quoting_header="none" if plain else "needed"))


def _write_table(result: Any, out: Path) -> None:
    make_parent(out)
    if out.suffix == ".parquet":
        result.to_pandas().to_parquet(out, index=False)
    elif out.suffix == ".csv":
        write_csv({"t": result.t, **{n: result[n] for n in result.names}}, out)
    else:
        raise ModelError(f"{out}: unknown output type; use .csv or .parquet")


@simulate_app.command("train")
def train(
    model: Annotated[str, typer.Option(help="ding2003, ding2007 or hmed2018.")],
    pulse_times: Annotated[str, typer.Option(
        help="Pulse times in s: comma-separated LIST or a FILE with one value a line.")],
    t_end: Annotated[float, typer.Option(help="Last sample time, s (inclusive).")],
    sfreq: Annotated[float, typer.Option(help="Sampling rate of the output, Hz.")],
    out: Annotated[Path, typer.Option(help="Output CSV: t,force then the other states.")],
    fatigue: Annotated[bool, typer.Option("--fatigue", help="Switch on the fatigue model.")]
    = False,
    pulse_widths: Annotated[str | None, typer.Option(
        help="Phase widths in us (LIST or FILE; one value applies to all pulses).")] = None,
    amplitudes: Annotated[str | None, typer.Option(
        help="Amplitudes in mA (LIST or FILE; one value applies to all pulses).")] = None,
    params: Annotated[Path | None, typer.Option(
        help="JSON of parameter overrides by name, SI units (e.g. an identify --out file).")]
    = None,
) -> None:
    """One Ding-family model on a pulse train, with its published default parameters."""
    from opennmes.physiology import MODELS, simulate_train

    if model not in MODELS:
        raise ModelError(f"unknown model {model!r}; models: {list(MODELS)}")
    output_file(out, "--out", (".csv",))
    _check_grid(sfreq, t_end)
    res = simulate_train(
        model, _values(pulse_times, "--pulse-times", 1.0, times=True), t_end=t_end, sfreq=sfreq,
        fatigue=fatigue,
        pulse_widths=None if pulse_widths is None else
        _values(pulse_widths, "--pulse-widths", 1e-6),
        amplitudes=None if amplitudes is None else _values(amplitudes, "--amplitudes", 1e-3),
        params=_load_params(params) if params is not None else None,
    )
    _write_table(res, out)
    f = res["force"]
    typer.echo(f"{res.patient}: {f.size} samples, peak force {f.max():.4g} N -> {out}")


@simulate_app.command("program")
def program(
    program_file: Annotated[Path, typer.Argument(
        metavar="PROGRAM", help="Program file (.yaml/.json) or pulse schedule (.csv/.parquet).")],
    patient: Annotated[str, typer.Option(help="Virtual patient preset (see 'nmes simulate "
                                              "presets').")],
    out: Annotated[Path, typer.Option(help="Output table (.csv or .parquet).")],
    plot: Annotated[Path | None, typer.Option(help="Write a figure (PNG).")] = None,
    sfreq: Annotated[float, typer.Option(help="Sampling rate of the output, Hz.")] = 1000.0,
    t_end: Annotated[float | None, typer.Option(
        help="Last sample time, s; default: the end of the program.")] = None,
    emg: Annotated[bool, typer.Option("--emg", help="Synthesise EMG channels.")] = False,
    voluntary_drive: Annotated[float | None, typer.Option(
        help="Constant voluntary drive 0-1 of every muscle.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the EMG noise.")] = None,
) -> None:
    """Simulate a program (or pulse schedule) on a virtual patient preset."""
    from opennmes.physiology import get_preset, simulate

    pat = get_preset(patient)
    suffix = program_file.suffix.lower()
    if not program_file.exists():
        raise ModelError(f"{program_file}: no such file")
    output_file(out, "--out", (".csv", ".parquet"))
    if plot is not None:
        output_file(plot, "--plot")
    _check_grid(sfreq, t_end)
    if suffix in (".csv", ".parquet"):
        from opennmes.stim import PulseSchedule

        input_pulses(program_file)
        src: Any = PulseSchedule.read(str(program_file))
    else:
        from opennmes.stim import load_program

        src = load_program(program_file)
    if t_end is None:  # the program's (or the schedule's) end
        _check_grid(sfreq, float(src.duration_s) if hasattr(src, "duration_s")
                    else float(src.t.max()) if len(src) else 0.0)
    res = simulate(src, pat, sfreq=sfreq, t_end=t_end, emg=emg,
                   voluntary_drive=voluntary_drive, seed=seed)
    _write_table(res, out)
    for name in res.names:
        y = res[name]
        if name.endswith(".force"):
            typer.echo(f"{name}: peak {y.max():.4g} N")
        elif name.endswith(".A"):
            typer.echo(f"{name}: end {y[-1]:.4g} N/s ({100 * y[-1] / y[0]:.1f} % of rest)")
        elif name.endswith(".angle"):
            typer.echo(f"{name}: {math.degrees(y.min()):.1f} to {math.degrees(y.max()):.1f} deg")
    if plot is not None:
        fig = res.plot()
        fig.savefig(make_parent(plot), dpi=120)
    typer.echo(f"{pat.name}: {res.t.size} samples at {sfreq:g} Hz -> {out}")


@simulate_app.command("presets")
def presets() -> None:
    """List the virtual patient presets."""
    from opennmes.physiology import PRESETS

    for name, factory in PRESETS.items():
        p = factory()
        typer.echo(f"{name}: {p.description}")
        typer.echo(f"    muscles: {', '.join(p.muscle_names)}; joints: "
                   f"{', '.join(j.name for j in p.joints)}")


def identify(
    force_file: Annotated[Path, typer.Argument(
        metavar="FORCE.csv", help="Trace with a 't' column (s) and a force/torque column.")],
    pulses: Annotated[Path, typer.Option(
        help="Pulse times: a pulse schedule CSV (t, amplitude, phase_width, ...) or one time "
             "(s) a line.")],
    model: Annotated[str, typer.Option(
        help="ding2003, ding2007 or hmed2018, with -fatigue to fit the fatigue model.")]
    = "ding2003-fatigue",
    column: Annotated[str | None, typer.Option(help="Force column (default: force).")] = None,
    fresh_window: Annotated[float | None, typer.Option(
        help="Length of the fresh-muscle start used for the force stage, s.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the fit as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write measured vs fitted (PNG).")] = None,
) -> None:
    """Fit a force(-fatigue) model to a recorded trace: the parameters the trace determines
    with 95 % profile-likelihood intervals, the rest fixed at published values (and said so),
    and warnings from the residuals."""
    import numpy as np
    import pandas as pd

    from opennmes.physiology import identify as run_identify
    from opennmes.physiology import read_trace

    for path, option in ((out, "--out"), (plot, "--plot")):
        if path is not None:
            output_file(path, option)
    if not force_file.is_file():
        raise ModelError(f"{force_file}: no such file")
    names = input_table(force_file)
    if "t" not in names and "time" in names:
        input_table(force_file, time_column="time")
    t, f = read_trace(str(force_file), column)
    if not pulses.is_file():
        raise ModelError(f"--pulses {pulses}: no such file")
    try:
        head = pd.read_csv(pulses, nrows=1)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{pulses}: cannot read pulses: {exc}") from exc
    pw = amp = None
    if "t" in head.columns and "phase_width" in head.columns:
        input_pulses(pulses)
        df = pd.read_csv(pulses)
        pt = df["t"].to_numpy(np.float64)
        pw = df["phase_width"].to_numpy(np.float64)
        amp = df["amplitude"].to_numpy(np.float64) if "amplitude" in df.columns else None
    else:
        pt = np.asarray(_values(str(pulses), "--pulses", 1.0, times=True))
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        job = bar.add_task("identify", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(job, description=stage, completed=done, total=total)

        res = run_identify(t, f, pt, model=model, pulse_widths=pw, amplitudes=amp,
                           fresh_window=fresh_window, progress=progress)
    typer.echo(res.summary())
    if out is not None:
        doc = {"model": res.params.name, "params": res.params.to_dict(),
               "estimates": {k: {"value": v[0], "ci_low": v[1], "ci_high": v[2]}
                             for k, v in res.estimates.items()},
               "fixed": {k: {"value": v, "reason": why} for k, (v, why) in res.fixed.items()},
               "warnings": list(res.warnings),
               "confidence": res.confidence, "rmse": res.rmse, "r2": res.r2,
               "n_samples": res.n_samples}
        make_parent(out).write_text(json.dumps(doc, indent=2))
        typer.echo(f"-> {out}")
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 3))
        ax.plot(t, f, lw=0.8, label="measured")
        ax.plot(t, res.fitted, lw=0.8, label=f"{res.params.name} fit")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("force (N)")
        ax.legend(frameon=False)
        fig.tight_layout()
        fig.savefig(make_parent(plot), dpi=120)


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``identify`` to the ``nmes`` command."""
    app.add_typer(simulate_app, name="simulate")
    app.command("identify")(identify)
