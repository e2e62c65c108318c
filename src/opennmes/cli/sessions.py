"""``nmes sessions list / show / export / report``: the recorded therapy sessions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from opennmes.cli._paths import output_file, output_folder
from opennmes.cli.run import DbOption, report_dir

__all__ = ["register"]

group = typer.Typer(help="Recorded therapy sessions: list, show, export, report.",
                    no_args_is_help=True)


def _duration(info: Any) -> str:
    """Session time covered by the recorded streams, else the wall time."""
    ends = [st.t_end for st in info.streams]
    if ends:
        return f"{max(ends):.0f} s"
    if info.ended_at is not None:
        return f"{(info.ended_at - info.started_at).total_seconds():.0f} s"
    return "-"


@group.command("list")
def list_cmd(
    db: DbOption = None,
    patient: Annotated[str | None, typer.Option(help="Only this patient's sessions.")] = None,
    status: Annotated[str | None, typer.Option(
        help="running, finished, aborted or interrupted.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")]
    = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (SI units).")] = False,
) -> None:
    """List sessions, newest first."""
    from opennmes.store import open_store

    with open_store(db) as store:
        rows = store.list_sessions(patient_id=patient, status=status, limit=limit)
    if as_json:
        typer.echo(json.dumps([{
            "id": s.id, "uid": s.uid, "patient_id": s.patient_id, "program": s.program_name,
            "program_version": s.program_version, "device_url": s.device_url,
            "status": s.status, "started_at": s.started_at.isoformat(),
            "ended_at": s.ended_at.isoformat() if s.ended_at else None,
            "end_reason": s.end_reason,
            "streams": {st.name: {"sfreq": st.sfreq, "n_samples": st.n_samples,
                                  "duration_s": st.n_samples / st.sfreq} for st in s.streams},
        } for s in rows], indent=2))
        return
    if not rows:
        typer.echo("no sessions")
    for s in rows:
        typer.echo(f"{s.id:5d}  {s.started_at:%Y-%m-%d %H:%M}  {s.patient_id:16s} "
                   f"{s.program_name} v{s.program_version}  {s.status:11s} "
                   f"{_duration(s):>7s}  {s.end_reason or ''}"
                   + ("  (test run: not counted)" if s.meta.get("test_run") else ""))


@group.command()
def show(
    session_id: Annotated[int, typer.Argument(help="Session id (see `nmes sessions list`).")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What a session was, how it ended, its dose and its events."""
    from opennmes.report.words import dose_line, dose_rows, grouped_events
    from opennmes.store import open_store

    with open_store(db) as store:
        rec = store.load_session(session_id)
    info = rec.info
    if as_json:
        typer.echo(json.dumps({
            "id": info.id, "uid": info.uid, "patient_id": info.patient_id,
            "program": info.program_name, "program_version": info.program_version,
            "device_url": info.device_url, "status": info.status,
            "started_at": info.started_at.isoformat(),
            "ended_at": info.ended_at.isoformat() if info.ended_at else None,
            "end_reason": info.end_reason, "pulses": len(rec.pulses), "dose": rec.dose,
            "events": [{"t": e.t, "kind": e.kind, "data": e.data} for e in rec.events],
            "streams": {k: {"sfreq": v.sfreq, "n_samples": v.n_samples}
                        for k, v in rec.streams.items()},
        }, indent=2))
        return
    typer.echo(f"session {info.id} ({info.uid})")
    typer.echo(f"  patient   {info.patient_id}")
    typer.echo(f"  program   {info.program_name} v{info.program_version}")
    typer.echo(f"  device    {info.device_url}")
    typer.echo(f"  started   {info.started_at.isoformat(timespec='seconds')}  ended "
               f"{info.ended_at.isoformat(timespec='seconds') if info.ended_at else '-'}")
    typer.echo(f"  status    {info.status}: {info.end_reason or ''}")
    typer.echo(f"  pulses    {len(rec.pulses)} delivered; streams: "
               + (", ".join(f"{k} ({v.n_samples} samples at {v.sfreq:g} Hz)"
                            for k, v in rec.streams.items()) or "none"))
    for row in dose_rows(rec.dose):
        typer.echo(f"  dose {dose_line(row)}")
    typer.echo("  events:")
    for t, _, words in grouped_events(rec.events):
        typer.echo(f"    {t:8.1f} s  {words}")


@group.command("export")
def export_cmd(
    session_id: Annotated[int | None, typer.Argument(
        help="Session id (or --patient for all of a patient's sessions, with --format bids).",
        show_default=False)] = None,
    folder: Annotated[Path | None, typer.Argument(
        help="New folder (or --out).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="New (or empty) folder to write.", show_default=False)] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="opennmes: Parquet and JSON that `nmes db import` reads back "
        "(docs/store.md); bids: a BIDS dataset (EMG, events, pulse table; docs/sessions.md).")]
    = "opennmes",
    patient: Annotated[str | None, typer.Option(
        help="With --format bids: every session of this patient (not running).")] = None,
    db: DbOption = None,
) -> None:
    """Export a session (pulses, streams, events, dose) to a folder, or as a BIDS dataset."""
    from opennmes.cli._paths import InputError
    from opennmes.store import export_session, open_store

    if fmt not in ("opennmes", "bids"):
        raise InputError(f"--format {fmt!r} is not known; use opennmes or bids")
    if folder is not None and out is not None:
        raise InputError(f"give the folder once: {folder} or --out {out}")
    target = folder if folder is not None else out
    if target is None:
        raise InputError("give the folder to write: --out DIR")
    if (session_id is None) == (patient is None):
        raise InputError("give a session id or --patient" + (
            ", not both" if patient is not None else ""))
    if patient is not None and fmt != "bids":
        raise InputError("--patient exports with --format bids only")
    with open_store(db) as store:
        if patient is not None:
            ids = sorted(s.id for s in store.list_sessions(patient_id=patient)
                         if s.status != "running")
            if not ids:
                raise InputError(f"patient {patient!r} has no sessions to export; see "
                                 "`nmes sessions list --patient`")
        else:
            assert session_id is not None
            store.get_session(session_id)  # an unknown id makes no folder
            ids = [session_id]
        if fmt == "bids":
            from opennmes.report.bids import write_bids

            path = write_bids(store, ids, output_folder(target, "--out"))
            typer.echo(f"wrote BIDS dataset of session{'s' if len(ids) > 1 else ''} "
                       f"{', '.join(map(str, ids))} to {path}")
            return
        path = export_session(store, ids[0], output_folder(target, "FOLDER"))
    typer.echo(f"exported session {ids[0]} to {path}")


@group.command()
def report(
    session_id: Annotated[int, typer.Argument(help="Session id.")],
    db: DbOption = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="HTML file to write (default: reports in the user data folder).")]
    = None,
) -> None:
    """Write the HTML session report (amplitude and force, fatigue, dose, events)."""
    from opennmes.report.session_report import write_session_report
    from opennmes.store import open_store

    if out is not None:
        output_file(out, "--out")
    with open_store(db) as store:
        rec = store.load_session(session_id)
        path = write_session_report(rec, out or report_dir(store.url)
                                    / f"session-{session_id}.html")
    typer.echo(f"report: {path}")


def register(app: typer.Typer) -> None:
    """Add ``nmes sessions``."""
    app.add_typer(group, name="sessions")
