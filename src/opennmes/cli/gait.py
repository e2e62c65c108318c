"""``nmes gait events FILE``: gait events from a shank gyroscope recording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.sensing import GaitEvents


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
    out: Annotated[Path | None, typer.Option(help="Output folder for CSV, JSON and PNG.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
    = False,
) -> None:
    """Initial contact, foot-off and mid-swing per stride; stride and swing durations."""
    from opennmes.sensing import GaitEventDetector, detect_gait_events, read_signals

    sig = read_signals(file)
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
