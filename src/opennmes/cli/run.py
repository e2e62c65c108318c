"""``nmes run PROGRAM --device URL --patient ID``: a live, recorded therapy session."""

from __future__ import annotations

import contextlib
import math
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opennmes.errors import NmesError, ProgramError
from opennmes.store import ENV_VAR

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.session import SessionResult
    from opennmes.stim import Program
    from opennmes.store import Store

__all__ = ["register", "resolve_program", "report_dir", "summary_lines", "database_slug"]

DbOption = Annotated[str | None, typer.Option(
    "--db", help=f"Database URL (sqlite:///file.db or postgresql://...); default ${ENV_VAR}, "
                 "else opennmes.db in the user data folder.")]


def resolve_program(arg: str, store: Store) -> Program:
    """A program from a file path, or a saved program ``name`` / ``name@version``."""
    from opennmes.stim import load_program, program_from_dict

    path = Path(arg)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise ProgramError(f"program file {arg!r} does not exist")
        return load_program(path)
    name, _, ver = arg.partition("@")
    version = None
    if ver:
        try:
            version = int(ver)
        except ValueError:
            raise ProgramError(f"program version in {arg!r} must be a number "
                               "(name@3)") from None
    pv = store.get_program(name, version)
    return program_from_dict(pv.document)


def database_slug(url: str) -> str:
    """A folder name for a database URL: ``sqlite:////home/a/demo.db`` -> ``demo``,
    ``postgresql://u:***@db.example:5432/nmes`` -> ``db.example-nmes``."""
    import re
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        name = Path(parts.path).stem or "memory"
    else:
        name = f"{parts.hostname or 'local'}-{parts.path.strip('/') or 'db'}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "db"


def report_dir(database: str | None = None) -> Path:
    """Where reports go by default: ``reports/<database>`` in the user data folder (a temp
    folder when that is not writable), one folder per database so that two databases'
    ``session-1.html`` do not overwrite each other. ``database`` is the store's URL (its file
    name for SQLite, host and name otherwise)."""
    import tempfile

    import platformdirs

    sub = database_slug(database) if database else ""
    for base in (Path(platformdirs.user_data_dir("opennmes")), Path(tempfile.gettempdir())
                 / "opennmes"):
        d = base / "reports" / sub if sub else base / "reports"
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / ".write-test"
            probe.write_text("")
            probe.unlink()
            return d
        except OSError:
            continue
    raise NmesError("no writable folder for reports; pass --report PATH")


def summary_lines(result: SessionResult) -> list[str]:
    """A short text summary of a session result."""
    from opennmes.report.words import unconfirmed_words
    from opennmes.session import LoopEvent, PulsesUnconfirmed, Triggered

    lines = [f"session {result.session_id if result.session_id is not None else '-'}: "
             f"{result.status} ({result.how}: {result.reason}) after {result.duration:.1f} s"]
    for d in result.dose:
        lines.append(
            f"  {d.channel}: {d.pulses} pulses, {d.contractions} contractions, tolerated "
            f"{d.tolerated_level * 1e3:.1f} mA (felt without discomfort), highest delivered "
            f"{d.peak_amplitude * 1e3:.1f} mA, highest set {d.max_level * 1e3:.1f} mA, "
            f"charge {d.total_charge * 1e3:.2f} mC, max rms current density "
            f"{d.max_rms_current_density * 0.1:.3f} mA/cm2")
    for ch in sorted({e.channel for e in result.events if isinstance(e, Triggered)}):
        got = [e.result for e in result.events if isinstance(e, Triggered) and e.channel == ch]
        lines.append(f"  {ch}: {got.count('burst')} triggered bursts, {got.count('ignored')} "
                     f"triggers ignored, {got.count('silent')} sensor silences")
    for e in result.events:
        if isinstance(e, PulsesUnconfirmed):
            lines.append("  " + unconfirmed_words(e.data()))
        elif isinstance(e, LoopEvent) and e.what == "saturated":
            lines.append(f"  {e.channel} at {e.t:.1f} s: {e.detail}")
        elif isinstance(e, LoopEvent) and e.what == "repetition" and e.value is not None:
            deg = f" = {math.degrees(e.value):.2f} deg" if e.detail.endswith("(rad)") else ""
            lines.append(f"  {e.channel} at {e.t:.1f} s: {e.detail} {e.value:.4g}{deg}")
    return lines


def _parse_ack(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k.strip() or len(v.strip()) < 3:
            raise ProgramError(f"--acknowledge {it!r}: use FACTOR=REASON, e.g. "
                               "pacemaker='cardiology cleared lower-limb NMES'")
        out[k.strip()] = v.strip()
    return out


def run(
    program: Annotated[str, typer.Argument(help="Program file (YAML/JSON) or saved program "
                                                "name[@version].")],
    device: Annotated[str, typer.Option("--device", help="Stimulator URL: sim://[preset], "
                                                         "rehastim2:///dev/ttyUSB0, "
                                                         "p24:///dev/ttyACM0.")],
    patient: Annotated[str, typer.Option("--patient", help="Patient id in the store.")],
    db: DbOption = None,
    chunk: Annotated[float, typer.Option(help="Window sent to the device per loop, s.")] = 0.04,
    step: Annotated[float, typer.Option(help="Intensity step per key press, mA (<= 2).")] = 1.0,
    titrate_to: Annotated[float | None, typer.Option(
        "--titrate-to", help="Raise every channel one step at a time up to this level, mA, "
                             "each step once the level before it has played in a "
                             "contraction (unattended runs; keys still work).")] = None,
    titrate_interval: Annotated[float, typer.Option(
        help="How long each level plays in a contraction before the next titration step, "
             "s.")] = 0.5,
    virtual: Annotated[bool, typer.Option(
        "--virtual", help="Run on a virtual clock, faster than real time (sim:// only).")]
    = False,
    acknowledge: Annotated[list[str] | None, typer.Option(
        "--acknowledge", help="FACTOR=REASON: a recorded decision that lifts a liftable "
                              "screening block (repeatable).")] = None,
    stall_margin: Annotated[float, typer.Option(
        "--stall-margin", help="Watchdog: stop when the device has played this many ms past "
                               "the last window the loop sent (real clock).")] = 60.0,
    plain: Annotated[bool, typer.Option("--plain", help="Plain progress lines, no live "
                                                        "view.")] = False,
    test_run: Annotated[bool, typer.Option(
        "--test-run", help="A therapist trying the program: recorded, but not counted as the "
                           "patient's session (adherence).")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Write the HTML session report here.")] = None,
    sensor: Annotated[list[str] | None, typer.Option(
        "--sensor", help="[NAME=]FILE: replay a recording (C3D, EDF/BDF, CSV, text) as a live "
                         "sensor from the session start, e.g. the EMG or shank gyroscope a "
                         "triggered channel listens to (repeatable; NAME defaults to the file "
                         "name without its extension). [NAME=]lsl:type=EMG (or name=, "
                         "source_id=, timeout= s): a live LSL stream as the sensor, found "
                         "before any current flows. [NAME=]i24:PORT[,rate=1000]"
                         "[,channels=emg1+bi][,silence=0.5]: a Hasomed I24 measuring live "
                         "(NAME defaults to emg); an electrode off ends the session.")] = None,
    sensor_loop: Annotated[bool, typer.Option(
        "--sensor-loop", help="Replay each --sensor recording again when it ends.")] = False,
    lsl: Annotated[bool, typer.Option(
        "--lsl", help="Publish the session on LSL: every delivered pulse and every event as "
                      "markers (stream NAME-markers), each sensor's samples (NAME-SENSOR).")]
    = False,
    lsl_name: Annotated[str, typer.Option(
        "--lsl-name", help="Prefix of the LSL stream names (--lsl).")] = "OpenNMES",
    lsl_trigger: Annotated[list[str] | None, typer.Option(
        "--lsl-trigger", help="CHANNEL=lsl:type=Markers[,marker=go]: markers of an LSL "
                              "stream (task software) start bursts on a triggered channel "
                              "(repeatable).")] = None,
) -> None:
    """Run a therapy session live: start at zero, raise the intensity with the keys, and
    record everything (events, delivered pulses, dose, signals)."""
    import urllib.parse

    from opennmes.cli._paths import output_file
    from opennmes.devices import VirtualClock, open_stimulator
    from opennmes.session import Titration, start_session
    from opennmes.store import open_store

    acks = _parse_ack(acknowledge or [])
    if report is not None:
        output_file(report, "--report")
    if not 0 < step <= 2.0:
        raise ProgramError(f"--step {step} mA must be above 0 and at most 2 mA")
    if not titrate_interval > 0:
        raise ProgramError(f"--titrate-interval {titrate_interval} s must be above 0")
    if titrate_to is not None and not 0 < titrate_to <= 200.0:
        raise ProgramError(f"--titrate-to {titrate_to} mA must be above 0 and at most 200 mA "
                           "(each channel stops at its program amplitude)")
    if not 10.0 <= stall_margin <= 1000.0:
        raise ProgramError(f"--stall-margin {stall_margin} ms must be within 10 to 1000 ms")
    parts = urllib.parse.urlsplit(device)
    is_sim = parts.scheme.lower() == "sim"
    if virtual and not is_sim:
        raise ProgramError("--virtual runs only on sim://; a real device runs in real time")
    if lsl and not lsl_name.strip():
        raise ProgramError("--lsl-name must not be empty")
    # LSL streams are found (or refused) here, before the store or the device opens
    sensors = [_sensor(spec, sensor_loop) for spec in sensor or []]
    triggers = [_lsl_trigger(spec) for spec in lsl_trigger or []]
    with _closing(sensors + triggers), open_store(db) as store:
        prog = resolve_program(program, store)
        store.get_patient(patient)  # unknown patient: clear error before any device opens
        _check_triggers(triggers, prog)
        clock: Any = VirtualClock() if virtual else None
        stim = open_stimulator(device, clock=clock)
        with stim:
            runner = start_session(store, patient, prog, stim,
                                   screening_acknowledged=acks, chunk=chunk, step=step * 1e-3,
                                   stall_margin=stall_margin * 1e-3, sensors=sensors,
                                   meta={"command": "nmes run"}
                                   | ({"test_run": True} if test_run else {})
                                   | ({"lsl": f"{lsl_name}-markers"} if lsl else {}))
            for trig in triggers:
                runner.add_hook(trig)
            if titrate_to is not None:
                target = {c: min(titrate_to * 1e-3, runner.max_amplitude[c])
                          for c in runner.channels}
                runner.add_hook(Titration(runner.channels, target, interval=titrate_interval))
            old = signal.signal(signal.SIGTERM,
                                lambda *_: runner.stop("SIGTERM received", by="system"))
            try:
                typer.echo(f"session {runner.writer.id if runner.writer else '-'} started: "
                           f"{prog.name} on {device} for patient {patient}; every channel "
                           "starts at 0 mA", err=True)
                result = _play(runner, plain, lsl_name if lsl else None)
            finally:
                signal.signal(signal.SIGTERM, old)
        for line in summary_lines(result):
            typer.echo(line)
        if report is not None and result.session_id is not None:
            from opennmes.report.session_report import write_session_report

            path = write_session_report(store.load_session(result.session_id), report)
            typer.echo(f"report: {path}")
    if result.status != "finished":
        typer.echo(f"error: session aborted: {result.how}: {result.reason}", err=True)
        sys.exit(1)


def _play(runner: Any, plain: bool, lsl_name: str | None) -> SessionResult:
    """Play the session, published on LSL under ``lsl_name`` when given."""
    from opennmes.session import LslPublisher, play

    if lsl_name is None:
        return play(runner, live=False if plain else None, every=10.0)
    with LslPublisher(runner, name=lsl_name) as out:
        typer.echo(f"LSL: markers on {lsl_name}-markers (source_id {out.source_id}), "
                   f"signals on {lsl_name}-<sensor>", err=True)
        return play(runner, live=False if plain else None, every=10.0)


@contextlib.contextmanager
def _closing(items: list[Any]) -> Iterator[None]:
    """Close every sensor and trigger that can be closed (an I24's measurement, LSL inlets)
    when the command ends, however it ends."""
    try:
        yield
    finally:
        for x in items:
            close = getattr(x, "close", None)
            if callable(close):
                close()


def _sensor(spec: str, loop: bool) -> Any:
    """``[NAME=]lsl:...`` -> an LslSensor; ``[NAME=]i24:PORT...`` -> an I24Sensor (measuring
    from now); ``[NAME=]FILE`` -> a ReplaySensor."""
    from opennmes.session import I24Sensor, LslSensor, i24_spec, lsl_spec

    name, sep, rest = spec.partition("=")
    if spec.lower().startswith(("lsl:", "i24:")):
        name, rest = "", spec
    if rest.lower().startswith("i24:"):
        return I24Sensor(name=name.strip() or "emg", **i24_spec(rest))
    if rest.lower().startswith("lsl:"):
        kw = lsl_spec(rest)
        if "marker" in kw:
            raise ProgramError(f"--sensor {spec!r}: marker= is for --lsl-trigger")
        return LslSensor(name.strip() or None, **kw)
    return _replay(spec, loop)


def _check_triggers(triggers: list[Any], prog: Program) -> None:
    """Each --lsl-trigger names a channel whose program declares a trigger."""
    from opennmes.session import TriggerDrive, program_drives

    ok = [d.channel for d in program_drives(prog) if isinstance(d, TriggerDrive)]
    for trig in triggers:
        if trig.channel not in ok:
            raise ProgramError(f"--lsl-trigger: channel {trig.channel!r} is not triggered in "
                               f"program {prog.name!r}; triggered channels: {ok}")


def _lsl_trigger(spec: str) -> Any:
    """``CHANNEL=lsl:...`` -> an LslTrigger."""
    from opennmes.session import LslTrigger, lsl_spec

    channel, sep, rest = spec.partition("=")
    if not sep or not channel.strip() or not rest.lower().startswith("lsl:"):
        raise ProgramError(f"--lsl-trigger {spec!r}: use CHANNEL=lsl:type=Markers"
                           "[,marker=go]")
    return LslTrigger(channel.strip(), **lsl_spec(rest))


def _replay(spec: str, loop: bool) -> Any:
    """``[NAME=]FILE`` -> a ReplaySensor of the recording."""
    from opennmes.sensing import read_signals
    from opennmes.session import ReplaySensor

    name, sep, path = spec.partition("=")
    if not sep:
        name, path = Path(spec).stem, spec
    if not name or not path:
        raise ProgramError(f"--sensor {spec!r}: give FILE or NAME=FILE")
    if not Path(path).is_file():
        raise ProgramError(f"--sensor {spec!r}: no file {path!r}")
    from opennmes.cli._paths import input_table

    input_table(Path(path))
    return ReplaySensor(read_signals(path), name, loop=loop)


def register(app: typer.Typer) -> None:
    """Add ``nmes run``."""
    app.command("run")(run)
