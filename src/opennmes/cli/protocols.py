"""``nmes protocols list | show | new-program | prescribe | sheet``: the protocol library."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from opennmes.cli._paths import make_parent, output_file, parse_date
from opennmes.units import parse_quantity

__all__ = ["register"]

group = typer.Typer(help="The protocol library: evidence-based program templates; a "
                         "patient's program or prescription from one.", no_args_is_help=True)


def _ms(v: float) -> str:
    return f"{v * 1e3:g} mA"


@group.command("list")
def list_(
    mode: Annotated[str | None, typer.Option(help="Only cyclic, triggered or tens.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only protocols with this tag.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the protocols: id, mode, evidence level, dose and title."""
    from opennmes.therapy import list_protocols

    protos = list_protocols(mode=mode, tag=tag)
    if as_json:
        typer.echo(json.dumps([p.summary() for p in protos], indent=2))
        return
    for p in protos:
        d = p.dose
        per = (f"{d.contractions_per_session} contr." if d.contractions_per_session
               else f"{d.minutes_per_session:g} min")
        dose = f"{per} x{d.sessions_per_day}/day {d.sessions_per_week}/wk {d.programme_weeks} wk"
        typer.echo(f"{p.id:30s} {p.mode:9s} {p.evidence.level:17s} {dose:34s} {p.title}")


def _show_text(p: Any) -> list[str]:
    from opennmes.therapy import DIAGRAMS

    d, sw, it = p.dose, p.start_window, p.intensity
    out = [f"{p.title}  [{p.id}]", f"indication: {p.indication}", f"mode: {p.mode}",
           f"evidence: {p.evidence.level}: {p.evidence.summary}"]
    out += [f"  {s.id} [{s.tag}] {s.citation}" for s in p.evidence.sources]
    out.append(f"placement: {p.placement.diagram}: {DIAGRAMS[p.placement.diagram]}")
    out.append(f"position: {p.placement.position}")
    for e in p.placement.electrodes:
        out.append(f"  {e.channel}: {e.landmarks}" + (f" ({e.size})" if e.size else ""))
    out.append("channels:")
    for c in p.program.channels:
        env = ("continuous" if c.on is None else
               f"ramp {c.ramp_up:g} s, on {c.on:g} s, ramp down {c.ramp_down:g} s, "
               f"off {c.off:g} s")
        pw = "" if c.waveform == "sine" else f", {c.pulse_width_s * 1e6:.0f} us"
        out.append(f"  {c.name}: {c.electrode.site} ({c.electrode.side or '-'}), "
                   f"{c.electrode.area_m2 * 1e4:.0f} cm2, {c.waveform}, {c.frequency:g} Hz{pw},"
                   f" up to {_ms(c.amplitude)}; {env}; train {c.train.kind}")
    per = (f"{d.contractions_per_session} contractions" if d.contractions_per_session
           else f"{d.minutes_per_session:g} min")
    rng = (f" ({d.programme_weeks_range[0]}-{d.programme_weeks_range[1]})"
           if d.programme_weeks_range else "")
    out.append(f"dose: {per} per session, {d.sessions_per_day}/day, {d.sessions_per_week}/week"
               f", {d.programme_weeks}{rng} weeks")
    latest = "" if sw.latest_days is None else f" to {sw.latest_days:g}"
    when = ("any time" if sw.reference == "any" else
            f"{sw.earliest_days:g}{latest} days after {sw.reference}")
    out.append(f"start: {when}" + (f"; {sw.note}" if sw.note else ""))
    out.append(f"intensity: {it.target}" + (f"; {it.note}" if it.note else ""))
    for r in p.progression:
        step = _ms(float(r.step)) if r.parameter == "amplitude" else f"{float(r.step):g}"
        out.append(f"progression: {r.parameter} {r.when}: step {step}"
                   + (f" ({r.note})" if r.note else ""))
    if p.trigger is not None:
        t = p.trigger
        out.append(f"trigger: {t.source}, start on {t.start_on}, stop on {t.stop_on or '-'}, "
                   f"delay {t.delay:g} s, extension {t.extension:g} s, timeout {t.timeout:g} s,"
                   f" refractory {t.refractory:g} s"
                   + (f", threshold {t.threshold:g} {t.threshold_unit}" if t.threshold else ""))
    return out


@group.command()
def show(
    protocol: Annotated[str, typer.Argument(help="Protocol id (see `nmes protocols list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole protocol as JSON "
                                          "(program values with units).")] = False,
) -> None:
    """Show a protocol: evidence, placement, channels, dose, start window, intensity target,
    progression and trigger."""
    from opennmes.therapy import get_protocol

    p = get_protocol(protocol)
    if as_json:
        typer.echo(json.dumps(p.model_dump(mode="json", exclude_none=True), indent=2))
        return
    typer.echo("\n".join(_show_text(p)))


def _amps(values: list[str]) -> float | dict[str, float] | None:
    if not values:
        return None
    out: dict[str, float] = {}
    for v in values:
        if "=" in v:
            ch, q = v.split("=", 1)
            out[ch.strip()] = parse_quantity(q, "current", name=f"amplitude of {ch.strip()}")
        else:
            return parse_quantity(v, "current", name="amplitude")
    return out


def _electrodes(values: list[str]) -> dict[str, dict[str, str]] | None:
    out: dict[str, dict[str, str]] = {}
    for v in values:
        if "=" not in v:
            raise typer.BadParameter(f"{v!r}: write CHANNEL=AREA, e.g. 'quadriceps=80 cm2'")
        ch, area = v.split("=", 1)
        out[ch.strip()] = {"area": area.strip()}
    return out or None


AmpOpt = Annotated[list[str], typer.Option(
    "--amplitude", help="Amplitude ceiling: '60 mA' for all channels or 'CHANNEL=60 mA'.")]
AreaOpt = Annotated[list[str], typer.Option(
    "--area", help="Electrode area of a channel: 'CHANNEL=80 cm2' (repeat per channel).")]
SideOpt = Annotated[str | None, typer.Option(help="left, right or bilateral.")]


@group.command("new-program")
def new_program(
    protocol: Annotated[str, typer.Argument(help="Protocol id.")],
    output: Annotated[Path, typer.Option("-o", "--out", help="Program file to write "
                                         "(.yaml or .json).")],
    side: SideOpt = None,
    amplitude: AmpOpt = [],  # noqa: B006 - typer needs a literal default
    area: AreaOpt = [],  # noqa: B006
    device: Annotated[str, typer.Option(help="Limit profile: sim, rehastim2, p24.")] = "sim",
) -> None:
    """Write a program file from a protocol, adapted to a side, electrodes and an amplitude
    ceiling, after checking it against the safety limits (exit 2 when it breaks one)."""
    from opennmes.safety import check_program
    from opennmes.stim import save_program
    from opennmes.therapy import build_program, get_protocol

    output_file(output, "--out", (".yaml", ".yml", ".json"))
    program = build_program(get_protocol(protocol), side=side, electrodes=_electrodes(area),
                            max_amplitude=_amps(amplitude))
    report = check_program(program, device)
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    if not report.ok:
        for line in report.errors():
            typer.echo(f"error: {line}", err=True)
        typer.echo("nothing was written", err=True)
        raise typer.Exit(2)
    save_program(program, make_parent(output))
    typer.echo(f"{output}: {program.name}, {len(program.channels)} channel(s), "
               f"{program.duration_s / 60:.1f} min, OK for {report.profile.name}")


@group.command()
def prescribe(
    patient: Annotated[str, typer.Argument(help="Patient id in the store.")],
    protocol: Annotated[str, typer.Argument(help="Protocol id.")],
    start: Annotated[str, typer.Option(help="Start date YYYY-MM-DD (default today).")] = "",
    side: SideOpt = None,
    amplitude: AmpOpt = [],  # noqa: B006
    area: AreaOpt = [],  # noqa: B006
    reference: Annotated[str | None, typer.Option(
        help="Date of surgery / stroke / ICU admission (YYYY-MM-DD) for the start window.")]
    = None,
    by: Annotated[str | None, typer.Option(help="Who prescribes.")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default "
                                           "$NMES_DB_URL or the user data folder).")] = None,
) -> None:
    """Screen the patient's contraindications, check and save a prescription (nothing is
    saved when screening or a safety check fails)."""
    from opennmes.store import open_store
    from opennmes.therapy import TherapyRecord

    day = parse_date(start, "--start") if start else dt.datetime.now(dt.UTC).date()
    ref = parse_date(reference, "--reference") if reference else None
    with open_store(db) as store:
        rx = TherapyRecord(store).prescribe(
            patient, protocol, start_date=day, side=side, reference_date=ref,
            electrodes=_electrodes(area), max_amplitude=_amps(amplitude), by=by)
    for f in rx.findings:
        typer.echo(f"note: {f}", err=True)
    typer.echo(f"prescription {rx.id}: {protocol} for {patient} from {day}, "
               f"{rx.schedule.sessions_per_week}/week for {rx.schedule.weeks} weeks; "
               f"program {rx.program_name!r}")


@group.command()
def sheet(
    prescription: Annotated[int, typer.Argument(help="Prescription id.")],
    html: Annotated[Path, typer.Option("--html", help="HTML file to write (print it from "
                                       "the browser).")],
    db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
) -> None:
    """Write the printable prescription sheet with the electrode placement picture."""
    from opennmes.report.progress_report import prescription_sheet_html
    from opennmes.store import open_store
    from opennmes.therapy import TherapyRecord

    output_file(html, "--html")
    with open_store(db) as store:
        page = prescription_sheet_html(TherapyRecord(store), prescription)
    make_parent(html).write_text(page, encoding="utf-8")
    typer.echo(f"wrote {html}")


def register(app: typer.Typer) -> None:
    """Add ``nmes protocols`` to the command."""
    app.add_typer(group, name="protocols")
