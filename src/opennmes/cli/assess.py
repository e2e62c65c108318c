"""``nmes assess FILE...``: biofeedback assessment of EMG recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from opennmes.errors import SignalError

__all__ = ["register"]


def assess(
    files: Annotated[list[Path], typer.Argument(help="EMG recordings. With two files and no "
                                                "--pair, the first is the left side and the "
                                                "second the right, matched by channel name.")],
    rest: Annotated[str, typer.Option(help="Quiet segment for onsets, e.g. '0 s,0.5 s'.")],
    label: Annotated[list[str] | None, typer.Option(
        help="Label per file (repeat); default left/right for two files, else file names.")]
    = None,
    pair: Annotated[list[str] | None, typer.Option(
        help="Left:right channel pair within a file, e.g. 'Biceps_L:Biceps_R' (repeat).")]
    = None,
    cocontraction: Annotated[list[str] | None, typer.Option(
        help="Agonist:antagonist pair for the co-contraction index (repeat).")] = None,
    reference: Annotated[Path | None, typer.Option(
        help="JSON of reference timing {muscle: {onset: s, offset: s}} in seconds.")] = None,
    channel: Annotated[list[str] | None, typer.Option(
        "--channel", "-c", help="Channels to use (repeat); default: all EMG channels.")]
    = None,
    kind: Annotated[str | None, typer.Option(
        help="What the recordings are: isometric (a sustained contraction) or dynamic (a "
             "movement). Fatigue is judged only for isometric recordings of 20 s or more.")]
    = None,
    asymmetry_limit: Annotated[float, typer.Option(
        help="Weaker-side deficit in percent above which a muscle is deficient.")] = 20.0,
    out: Annotated[Path | None, typer.Option(help="Output folder for JSON, CSV and PNG.")]
    = None,
    plots: Annotated[bool, typer.Option(help="Write figures into --out.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Asymmetry, activation timing, co-contraction and fatigue; which muscles are deficient."""
    from opennmes.cli._parse import parse_pair, parse_range
    from opennmes.cli._paths import input_table, output_folder
    from opennmes.sensing import assess as run_assess
    from opennmes.sensing import read_emg

    for f in files:
        input_table(f)
    if out is not None:
        output_folder(out, "--out")
    labels = list(label or [])
    if not labels:
        labels = ["left", "right"] if len(files) == 2 and not pair else [f.stem for f in files]
    if len(labels) != len(files) or len(set(labels)) != len(labels):
        raise SignalError(f"need one distinct --label per file: {len(files)} files, labels "
                          f"{labels}")
    recordings = {lab: read_emg(f, channel or None) for lab, f in zip(labels, files,
                                                                      strict=True)}
    pairs = [parse_pair(p, "--pair") for p in pair or []]
    sides = (labels[0], labels[1]) if len(files) == 2 and not pairs else None
    ref = None
    if reference is not None:
        try:
            ref = json.loads(reference.read_text())
        except (OSError, ValueError) as exc:
            raise SignalError(f"{reference}: cannot read reference timing JSON: {exc}") from exc
    result = run_assess(recordings, rest=parse_range(rest, "time", "--rest"), pairs=pairs,
                        sides=sides, reference=ref,
                        cocontraction=[parse_pair(c, "--cocontraction")
                                       for c in cocontraction or []],
                        asymmetry_limit=asymmetry_limit, kind=kind)
    if out is not None:
        result.write(out, plots=plots)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for line in result.findings:
        typer.echo(line)
    if out is not None:
        typer.echo(f"wrote {out}/assessment.json and tables")


def register(app: typer.Typer) -> None:
    """Add the ``assess`` command to ``nmes``."""
    app.command("assess")(assess)
