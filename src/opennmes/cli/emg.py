"""``nmes emg process FILE``: EMG envelopes and onsets from a recording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from opennmes.errors import SignalError
from opennmes.units import parse_quantity

__all__ = ["register"]

group = typer.Typer(help="Process EMG recordings: envelopes, onsets.", no_args_is_help=True)


@group.command("process")
def process(
    file: Annotated[Path, typer.Argument(help="Recording: .c3d, .edf, .bdf, .csv or .txt.")],
    channel: Annotated[list[str] | None, typer.Option(
        "--channel", "-c", help="Channel to process (repeat); default: all EMG channels.")] = None,
    band: Annotated[str, typer.Option(help="Band-pass edges, e.g. '20 Hz,450 Hz'.")]
    = "20 Hz,450 Hz",
    notch: Annotated[str | None, typer.Option(help="Mains notch, e.g. '50 Hz'.")] = None,
    envelope: Annotated[str, typer.Option(help="linear, rms or none.")] = "linear",
    cutoff: Annotated[str, typer.Option(help="Linear-envelope low-pass.")] = "5 Hz",
    rms_window: Annotated[str, typer.Option(help="RMS window.")] = "100 ms",
    rest: Annotated[str | None, typer.Option(
        help="Quiet segment for onset detection, e.g. '0 s,0.5 s'; omit to skip onsets.")]
    = None,
    method: Annotated[str, typer.Option(help="Onset method: threshold, tkeo, cusum.")]
    = "threshold",
    pulses: Annotated[Path | None, typer.Option(
        help="Pulse file (.csv/.parquet PulseSchedule) of stimulation during the recording: "
             "suppress artefacts and M-waves before the envelope.")] = None,
    artefact: Annotated[str, typer.Option(help="With --pulses: blank, comb, template, nlms.")]
    = "nlms",
    stim_channel: Annotated[str | None, typer.Option(
        help="With --pulses: only the pulses of this stimulation channel.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder for CSV, JSON and PNG.")]
    = None,
    plot: Annotated[bool, typer.Option(help="Write envelopes.png (needs --out).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
    = False,
) -> None:
    """Band-pass, rectify and envelope each EMG channel; optionally find onsets and offsets."""
    from opennmes.cli._parse import parse_range, write_signals_csv
    from opennmes.cli._paths import input_pulses, input_table, output_folder
    from opennmes.sensing import EmgPipeline, detect_onsets, events_to_pandas, read_emg

    input_table(file)
    if pulses is not None:
        input_pulses(pulses)
    if out is not None:
        output_folder(out, "--out")
    sig = read_emg(file, channel or None)
    cleaning: dict[str, object] = {}
    if pulses is not None:
        import numpy as np

        from opennmes.sensing import locked_residual, pulse_times, suppress_artefacts
        from opennmes.stim import PulseSchedule

        times = pulse_times(PulseSchedule.read(str(pulses)), stim_channel)
        if times.size < 3:
            raise SignalError(f"{pulses}: {times.size} pulses; need at least 3")
        window = float(min(0.03, 0.9 * np.min(np.diff(times)))) if times.size > 1 else 0.03
        before = locked_residual(sig, times, window)
        sig = suppress_artefacts(sig, times, artefact)
        after = locked_residual(sig, times, window)
        cleaning = {"method": artefact, "pulses": int(times.size),
                    "locked_residual_before": before.round(4).tolist(),
                    "locked_residual_after": after.round(4).tolist()}
    lo, hi = parse_range(band, "frequency", "--band")
    pipe = EmgPipeline(sig.sfreq, len(sig.names), band=(lo, hi),
                       notch=() if notch is None else (parse_quantity(notch, "frequency",
                                                                      name="--notch"),),
                       envelope=envelope, cutoff=parse_quantity(cutoff, "frequency",
                                                                name="--cutoff"),
                       rms_window=parse_quantity(rms_window, "time", name="--rms-window"))
    env = pipe.process(sig)
    events = []
    if rest is not None:
        events = detect_onsets(sig, parse_range(rest, "time", "--rest"), method)
    summary = {
        "file": str(file), "sfreq_Hz": sig.sfreq, "duration_s": sig.duration,
        "artefact_suppression": cleaning or None,
        "channels": [{"name": n, "unit": u, "mean_envelope": float(env[n].mean()),
                      "peak_envelope": float(env[n].max()),
                      "onsets": [round(e.t, 4) for e in events
                                 if e.channel == n and e.kind == "onset"],
                      "offsets": [round(e.t, 4) for e in events
                                  if e.channel == n and e.kind == "offset"]}
                     for n, u in zip(env.names, env.units, strict=True)],
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_signals_csv(env, out / "envelope.csv")
        events_to_pandas(events).to_csv(out / "onsets.csv", index=False)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        if plot:
            from opennmes.sensing import Assessment

            a = Assessment([], [], [], [], [], [], {})
            a._plots = {"envelopes": {file.stem: env}, "events": {file.stem: events}}
            a._draw(out)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"{file}: {len(sig.names)} EMG channels at {sig.sfreq:g} Hz, "
               f"{sig.duration:.2f} s")
    for ch in summary["channels"]:  # type: ignore[attr-defined]
        scale, u = (1e6, "uV") if ch["unit"] == "V" else (1.0, ch["unit"])
        typer.echo(f"  {ch['name']:<14} mean {ch['mean_envelope'] * scale:9.2f} {u}  "
                   f"peak {ch['peak_envelope'] * scale:9.2f} {u}  onsets "
                   f"{', '.join(f'{t:.3f}' for t in ch['onsets']) or '-'}")
    if out is not None:
        typer.echo(f"wrote {out}/envelope.csv, onsets.csv, summary.json")


def register(app: typer.Typer) -> None:
    """Add the ``emg`` group to the ``nmes`` command."""
    app.add_typer(group, name="emg")
