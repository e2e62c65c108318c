"""``nmes outcomes instruments | add | history | report``: outcome measures and progress."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

group = typer.Typer(help="Outcome measures with published ranges and MCIDs, their history "
                         "and the patient's progress report.", no_args_is_help=True)

DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL (default $NMES_DB_URL "
                                           "or the user data folder).")]


@group.command()
def instruments() -> None:
    """List the instruments: key, range, unit and published thresholds."""
    from opennmes.therapy import INSTRUMENTS

    for inst in INSTRUMENTS.values():
        typer.echo(f"{inst.key:20s} {inst.name} [{inst.fmt(inst.minimum)} .. "
                   f"{inst.fmt(inst.maximum)}; {'higher' if inst.higher_is_better else 'lower'}"
                   " is better]")
        for t in inst.thresholds:
            typer.echo(f"{'':22s}{t.kind} {inst.band(t)} ({t.population}): {t.source}")


@group.command()
def add(
    patient: Annotated[str, typer.Argument(help="Patient id.")],
    instrument: Annotated[str, typer.Argument(help="Instrument key (`nmes outcomes "
                                              "instruments`).")],
    value: Annotated[str, typer.Argument(help="Value with its unit, e.g. '95 deg', '12.4 s', "
                                         "'34'.")],
    date: Annotated[str, typer.Option(help="Date measured, YYYY-MM-DD (default today).")] = "",
    side: Annotated[str | None, typer.Option(help="left or right.")] = None,
    population: Annotated[str | None, typer.Option(help="Threshold population, e.g. "
                                                   "chronic-stroke.")] = None,
    by: Annotated[str | None, typer.Option(help="Who measured.")] = None,
    db: DbOpt = None,
) -> None:
    """Record a measurement (refused with the valid range when out of range)."""
    from opennmes.cli._paths import parse_date
    from opennmes.store import open_store
    from opennmes.therapy import TherapyRecord

    day = parse_date(date, "--date") if date else dt.datetime.now(dt.UTC).date()
    with open_store(db) as store:
        rec = TherapyRecord(store)
        m = rec.record_outcome(patient, instrument, value, measured_on=day, side=side,
                               population=population, by=by)
        h = rec.outcome_history(patient, instrument, side)
        dup = rec.duplicate_warning(m)
    typer.echo(f"saved {instrument} = {h.instrument.fmt(m.value)} on {day} (id {m.id})")
    if dup:
        typer.echo(dup)
    if h.latest is not None:
        typer.echo(h.latest.message)


@group.command()
def delete(
    measurement_id: Annotated[int, typer.Argument(help="Measurement id (printed by `add` and "
                                                       "`history`).")],
    db: DbOpt = None,
) -> None:
    """Remove a measurement entered by mistake (a duplicate, a wrong patient)."""
    from opennmes.store import open_store
    from opennmes.therapy import TherapyRecord

    with open_store(db) as store:
        TherapyRecord(store).delete_outcome(measurement_id)
    typer.echo(f"removed measurement {measurement_id}")


@group.command()
def history(
    patient: Annotated[str, typer.Argument(help="Patient id.")],
    db: DbOpt = None,
) -> None:
    """Every instrument's measurements with the change from baseline and its verdict, named
    with its threshold (MCID or MDC) and the population it was published for."""
    from opennmes.store import open_store
    from opennmes.therapy import TherapyRecord, threshold_text, verdict_text

    with open_store(db) as store:
        hs = TherapyRecord(store).outcome_histories(patient)
    if not hs:
        typer.echo("no measurements")
    for h in hs:
        typer.echo(f"{h.instrument.name}" + (f" ({h.side})" if h.side else ""))
        typer.echo(f"  judged against: {threshold_text(h.threshold)}")
        for i, m in enumerate(h.measurements):
            a = h.from_baseline[i - 1] if i else None
            verdict = verdict_text(a.status, a.threshold) if a else "baseline"
            typer.echo(f"  {m.measured_on}  {h.instrument.fmt(m.value):>14s}  {verdict}  "
                       f"(id {m.id})")
        if h.latest is not None:
            typer.echo(f"  {h.latest.message}")


@group.command()
def report(
    patient: Annotated[str, typer.Argument(help="Patient id.")],
    html: Annotated[Path | None, typer.Option(help="HTML file to write.")] = None,
    pdf: Annotated[Path | None, typer.Option(
        help="PDF file to write (A4, laid out by Chromium, which must be installed).")] = None,
    lang: Annotated[str, typer.Option(
        help="Language of the report: en, de or es (texts, numbers and dates).")] = "en",
    db: DbOpt = None,
) -> None:
    """Write the patient's progress report (outcomes with MCID bands, adherence, sessions)."""
    from opennmes.cli._paths import make_parent, output_file
    from opennmes.i18n import LANGUAGES
    from opennmes.report.progress_report import write_progress_report
    from opennmes.store import open_store

    if html is None and pdf is None:
        raise typer.BadParameter("give --html and/or --pdf")
    if lang not in LANGUAGES:
        raise typer.BadParameter(f"--lang {lang!r} is not one of {', '.join(LANGUAGES)}")
    for path, option in ((html, "--html"), (pdf, "--pdf")):
        if path is not None:
            output_file(path, option)
    with open_store(db) as store:
        store.get_patient(patient)  # an unknown patient makes no folder
        for path in (html, pdf):
            if path is not None:
                make_parent(path)
        data = write_progress_report(store, patient, html=html, pdf=pdf, lang=lang)
    for p in (html, pdf):
        if p is not None:
            typer.echo(f"wrote {p}")
    typer.echo(f"{len(data.prescriptions)} prescription(s), {len(data.histories)} outcome "
               "series")


def register(app: typer.Typer) -> None:
    """Add ``nmes outcomes`` to the command."""
    app.add_typer(group, name="outcomes")
