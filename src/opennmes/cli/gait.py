"""``nmes gait events FILE``: gait events from a shank gyroscope recording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.sensing import GaitEvents
    from opennmes.signals import Signals


__all__ = ["register"]

group = typer.Typer(help="Gait events for drop-foot stimulation.", no_args_is_help=True)


@group.command("events")
def events(
    file: Annotated[Path, typer.Argument(help="Recording with a shank gyroscope (.txt, .csv, "
                                         ".c3d, .edf).")],
    channel: Annotated[str, typer.Option("--channel", "-c",
                                         help="Sagittal gyroscope channel (rad/s).")] = "Gyr_Z",
    streaming: Annotated[bool, typer.Option(
        help="Also run the causal real-time detector and report its latency.")] = True,
    heel_switch: Annotated[str | None, typer.Option(
        help="Use this heel-switch (FSR) channel instead of a gyroscope.")] = None,
    on_level: Annotated[float | None, typer.Option(
        help="Heel switch: loaded above this level (channel units).")] = None,
    off_level: Annotated[float | None, typer.Option(
        help="Heel switch: unloaded below this level (channel units).")] = None,
    debounce: Annotated[str, typer.Option(help="Heel switch debounce time.")] = "30 ms",
    out: Annotated[Path | None, typer.Option(help="Output folder for CSV, JSON and PNG.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
    = False,
) -> None:
    """Initial contact, foot-off and mid-swing per stride; stride and swing durations."""
    from opennmes.cli._paths import input_table, output_folder
    from opennmes.sensing import GaitEventDetector, detect_gait_events, read_signals

    input_table(file)
    if out is not None:
        output_folder(out, "--out")
    sig = read_signals(file)
    if heel_switch is not None:
        _heel(sig, heel_switch, on_level, off_level, debounce, out, as_json)
        return
    ev = detect_gait_events(sig, channel)
    summary: dict[str, object] = {
        "file": str(file), "channel": channel, "sfreq_Hz": sig.sfreq,
        "strides": ev.n_strides, "polarity": ev.polarity,
        "stride_mean_s": float(np.mean(ev.stride_times)),
        "stride_sd_s": float(np.std(ev.stride_times)),
        "swing_mean_s": float(np.nanmean(ev.swing_times)),
        "swing_sd_s": float(np.nanstd(ev.swing_times)),
    }
    live = []
    if streaming:
        det = GaitEventDetector(sig.sfreq, polarity=ev.polarity)
        live = det.update(sig, channel)
        for kind in ("foot_off", "mid_swing", "initial_contact"):
            lat = [e.latency for e in live if e.kind == kind]
            summary[f"latency_{kind}_median_ms"] = float(np.median(lat) * 1e3) if lat else None
            summary[f"streaming_{kind}_count"] = len(lat)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        ev.to_pandas().to_csv(out / "strides.csv", index=False)
        if live:
            import pandas as pd

            pd.DataFrame([{"kind": e.kind, "t": e.t, "t_detected": e.t_detected,
                           "latency": e.latency} for e in live]).to_csv(
                out / "streaming_events.csv", index=False)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        _plot(sig.t, ev.polarity * sig[channel], ev, out / "gait.png")
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"{file}: {ev.n_strides} strides on {channel}; stride "
               f"{summary['stride_mean_s']:.3f} +- {summary['stride_sd_s']:.3f} s, swing "
               f"{summary['swing_mean_s']:.3f} +- {summary['swing_sd_s']:.3f} s")
    if streaming:
        typer.echo("  real-time detector latency (median): " + ", ".join(
            f"{k} {summary[f'latency_{k}_median_ms']:.0f} ms"
            for k in ("foot_off", "mid_swing", "initial_contact")
            if summary[f"latency_{k}_median_ms"] is not None))


def _heel(sig: Signals, name: str, on_level: float | None, off_level: float | None,
          debounce: str, out: Path | None, as_json: bool) -> None:
    from opennmes.errors import SignalError
    from opennmes.sensing import HeelSwitchDetector, swing_windows
    from opennmes.units import parse_quantity

    if on_level is None or off_level is None:
        raise SignalError("--heel-switch needs --on-level and --off-level (channel units)")
    det = HeelSwitchDetector(sig.sfreq, on_level, off_level,
                             parse_quantity(debounce, "time", name="--debounce"))
    evs = det.update(sig.pick([name]))
    ic = np.array([e.t for e in evs if e.kind == "initial_contact"])
    swings = swing_windows(evs)
    summary = {"channel": name, "sfreq_Hz": sig.sfreq, "initial_contacts": int(ic.size),
               "foot_offs": sum(1 for e in evs if e.kind == "foot_off"),
               "stride_mean_s": float(np.mean(np.diff(ic))) if ic.size > 1 else None,
               "swing_mean_s": float(np.mean([b - a for a, b in swings])) if swings else None,
               "latency_s": det.n_db / sig.sfreq - 1 / sig.sfreq}
    if out is not None:
        import pandas as pd

        out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([{"kind": e.kind, "t": e.t, "t_detected": e.t_detected}
                      for e in evs]).to_csv(out / "heel_events.csv", index=False)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"{name}: {summary['initial_contacts']} initial contacts, "
               f"{summary['foot_offs']} foot-offs; stride {summary['stride_mean_s']} s, "
               f"swing {summary['swing_mean_s']} s")


def _plot(t: np.ndarray, g: np.ndarray, ev: GaitEvents, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3))
    ax.plot(t, g, lw=0.7, color="k")
    for times, color, label in ((ev.foot_off, "b", "foot-off"),
                                (ev.mid_swing, "g", "mid-swing"),
                                (ev.initial_contact, "r", "initial contact")):
        ax.plot(times, np.interp(times, t, g), "o", color=color, ms=3, label=label)
    ax.set_xlabel("time [s]")
    ax.set_ylabel("angular velocity [rad/s]")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def register(app: typer.Typer) -> None:
    """Add the ``gait`` group to the ``nmes`` command."""
    app.add_typer(group, name="gait")
