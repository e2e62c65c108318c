"""``nmes demo``: a whole quadriceps strengthening session on a virtual post-surgery patient.

Embedded defaults: SQLite in the user data folder (``demo.db``), the ``sim://`` stimulator on a
virtual clock, the ``post-surgery`` virtual patient. A scripted operator does what a
physiotherapist does: raises the intensity a step at a time to the tolerated level during the
first contraction, records comfort, pauses when the phone rings, raises the intensity again as
tolerance grows, checks the skin. The session is stored and an HTML report written.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from opennmes.store import ENV_VAR

__all__ = ["register", "DEMO_PROGRAM", "DEMO_PATIENT", "demo_db_url", "demo_script"]

DEMO_PATIENT = "demo-post-tka"

DEMO_PROGRAM = """
name: Quadriceps strengthening after TKA (demo)
indication: total knee arthroplasty
evidence: Stevens-Lapsley 2012 (50 Hz, 250 us, 3 s ramp, 12 s on, 45 s off, 15 contractions)
channels:
  - name: quadriceps
    electrode: {width: 7.6 cm, height: 12.7 cm, site: quadriceps, side: right}
    waveform: symmetric-biphasic
    frequency: 50 Hz
    pulse_width: 250 us
    amplitude: 100 mA
    ramp_up: 3 s
    on: 12 s
    off: 45 s
repetitions: 15
"""
"""The Stevens-Lapsley 2012 TKA quadriceps protocol (CPS §2.3, S18): 15 contractions of 15 s
(3 s ramp) with 45 s rest, at 50 Hz and 250 us, up to the maximum tolerated intensity."""


def demo_db_url() -> str:
    """``NMES_DB_URL`` if set, else ``demo.db`` in the user data folder (or a temp folder)."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env
    import platformdirs

    for base in (Path(platformdirs.user_data_dir("opennmes")),
                 Path(tempfile.gettempdir()) / "opennmes"):
        try:
            base.mkdir(parents=True, exist_ok=True)
            probe = base / ".write-test"
            probe.write_text("")
            probe.unlink()
            return f"sqlite:///{base / 'demo.db'}"
        except OSError:
            continue
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='opennmes-demo-')) / 'demo.db'}"


def demo_script(channel: str, tolerated: float, later: float) -> list[tuple[float, str, tuple]]:
    """The operator's actions: (session time s, runner method, args). Levels in A."""
    acts: list[tuple[float, str, tuple]] = []
    # first contraction: the patient and the therapist find the tolerated level, 1 mA a step
    n1 = int(round(tolerated / 1e-3))
    acts += [(0.5 + 0.25 * k, "increase", (channel,)) for k in range(n1)]
    acts += [(17.0, "rate_comfort", (6,)),
             (150.0, "rate_comfort", (7,)),
             # tolerance grows: a few more steps during the fifth contraction's ramp
             ]
    n2 = int(round((later - tolerated) / 1e-3))
    acts += [(240.5 + 0.3 * k, "increase", (channel,)) for k in range(n2)]
    acts += [(330.0, "pause", ()),  # the phone rings
             (375.0, "resume", ()),
             (600.0, "rate_comfort", (7,)),
             (880.0, "skin_check", (True, "slight redness under both pads, fades")),
             (905.0, "rate_comfort", (8,))]
    return acts


class _Pace:
    """Hook: keep session time at most ``speed`` times the wall time (a watchable view)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.wall0: float | None = None

    def __call__(self, runner: object, t: float) -> None:
        now = time.monotonic()
        if self.wall0 is None:
            self.wall0 = now
        ahead = t / self.speed - (now - self.wall0)
        if ahead > 0:
            time.sleep(ahead)


def demo(
    db: Annotated[str | None, typer.Option(
        "--db", help=f"Database URL; default ${ENV_VAR}, else demo.db in the user data "
                     "folder.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the HTML report (default: reports in the user data "
                      "folder).")] = None,
    plain: Annotated[bool, typer.Option(
        "--plain", help="Plain progress lines instead of the live view.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the virtual patient.")] = 1,
    speed: Annotated[float | None, typer.Option(
        help="Session seconds per wall second (0: as fast as possible). Default: 30 with the "
             "live view (about 35 s), as fast as possible otherwise.")] = None,
) -> None:
    """Run a stored quadriceps session on a virtual post-surgery patient and write its report
    (under a minute, on a virtual clock)."""
    from opennmes.cli._paths import output_folder
    from opennmes.cli.run import report_dir, summary_lines
    from opennmes.devices import VirtualClock, open_stimulator
    from opennmes.errors import StoreError
    from opennmes.physiology import get_preset
    from opennmes.report.session_report import write_session_report
    from opennmes.session import ScriptedOperator, play, start_session
    from opennmes.stim import load_program_text
    from opennmes.store import open_store

    wall0 = time.monotonic()
    if out is not None:
        output_folder(out, "--out")
    url = db or demo_db_url()
    program = load_program_text(DEMO_PROGRAM, source="nmes demo")
    echo = typer.echo
    with open_store(url) as store:
        try:
            store.get_patient(DEMO_PATIENT)
        except StoreError:
            store.add_patient(DEMO_PATIENT, year_of_birth=1958, sex="female", height=1.65,
                              mass=72.0, notes="virtual patient of nmes demo (post-surgery "
                              "preset), 3 weeks after right total knee arthroplasty",
                              contraindications=[{"factor": "recent_surgery",
                                                  "site": "right quadriceps"}])
        echo(f"OpenNMES demo: {program.name}")
        echo(f"  database {store.url}; patient {DEMO_PATIENT} (virtual, post-surgery preset); "
             "device sim:// on a virtual clock")
        clock = VirtualClock()
        patient = get_preset("post-surgery").isometric()  # knee held on a dynamometer
        with open_stimulator("sim://?sfreq=100&emg=0", clock=clock, patient=patient,
                             seed=seed) as stim:
            runner = start_session(store, DEMO_PATIENT, program, stim,
                                   chunk=0.1, step=1e-3, meta={"command": "nmes demo",
                                                               "seed": seed})
            ch = program.channels[0].name
            runner.add_hook(ScriptedOperator(demo_script(ch, 0.045, 0.055)))
            live = False if plain else sys.stdout.isatty()
            pace = (30.0 if live else 0.0) if speed is None else speed
            if pace > 0:
                runner.add_hook(_Pace(pace))
            result = play(runner, live=live, every=25.0)
        for line in summary_lines(result):
            echo(line)
        assert result.session_id is not None
        folder = out if out is not None else report_dir(store.url)
        path = write_session_report(store.load_session(result.session_id),
                                    folder / f"session-{result.session_id}.html")
        db_arg = shlex.quote(db or store.engine.url.render_as_string(hide_password=True))
    echo(f"report: {path}")
    sid = result.session_id
    echo("look at it again:")
    echo(f"  nmes sessions list --db {db_arg}")
    echo(f"  nmes sessions show {sid} --db {db_arg}")
    echo(f"  nmes sessions report {sid} --db {db_arg}")
    echo(f"(demo took {time.monotonic() - wall0:.1f} s of wall time for "
         f"{result.duration:.0f} s of session time)")
    if result.status != "finished":
        sys.exit(1)


def register(app: typer.Typer) -> None:
    """Add ``nmes demo``."""
    app.command("demo")(demo)
