"""``nmes track``: a closed-loop tracking session (PID + iterative learning) on a stimulator."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opennmes.cli.run import DbOption, resolve_program
from opennmes.errors import ProgramError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["register"]


def _target(spec: str, frequency: float, peak: float, side: str) -> np.ndarray:
    """``standard`` or a joint-angle JSON file -> one target value per pulse, rad."""
    from opennmes.control import seated_knee_target, standard_knee_target

    if spec == "standard":
        return standard_knee_target(frequency, peak=math.radians(peak))
    path = Path(spec)
    if not path.is_file():
        raise ProgramError(f"--target {spec!r}: give 'standard' or a joint-angle JSON file "
                           "(e.g. ../shared/data/gait/joint_angles_stroke_100hz.json)")
    from opennmes.sensing import read_joint_angles

    angles = read_joint_angles(path)
    name = f"{side}_knee_angle"
    if name not in angles.names:
        raise ProgramError(f"--target {spec!r} has no {name!r}; channels: {list(angles.names)}")
    return seated_knee_target(angles[name], angles.sfreq, frequency, repeats=3)


def track(
    program: Annotated[str, typer.Argument(help="Program file or saved name[@version]; its "
                                                "channel gives the pulse shape, rate and "
                                                "the amplitude ceiling.")],
    device: Annotated[str, typer.Option("--device", help="Stimulator URL, e.g. "
                                                         "sim://healthy-adult.")],
    patient: Annotated[str, typer.Option("--patient", help="Patient id in the store.")],
    db: DbOption = None,
    channel: Annotated[str | None, typer.Option(
        help="Program channel to control (default: the first).")] = None,
    signal: Annotated[str, typer.Option(
        help="Measured signal to track (sim:// patients: knee.angle).")] = "knee.angle",
    target: Annotated[str, typer.Option(
        help="'standard' (rest, raised-cosine rise to --peak in 2 s, hold 3 s, fall 2 s) or "
             "a joint-angle JSON file whose knee trajectory (3 strides) is replayed as "
             "extension of the seated knee.")] = "standard",
    peak: Annotated[float, typer.Option(help="Peak of the standard target, deg.")] = 60.0,
    side: Annotated[str, typer.Option(help="Side of the knee in a JSON target.")] = "right",
    repetitions: Annotated[int, typer.Option(help="Repetitions of the target.")] = 3,
    rest: Annotated[float, typer.Option(help="Rest between repetitions, s.")] = 5.0,
    ilc: Annotated[bool, typer.Option(
        "--ilc/--no-ilc", help="Learn the feed-forward between repetitions (ILC).")] = True,
    kp: Annotated[float, typer.Option(help="PID gain, mA/deg.")] = 0.087,
    ki: Annotated[float, typer.Option(help="PID integral gain, mA/(deg s).")] = 0.87,
    kd: Annotated[float, typer.Option(help="PID derivative gain, mA s/deg.")] = 0.035,
    virtual: Annotated[bool, typer.Option(
        "--virtual", help="Run on a virtual clock, faster than real time (sim:// only).")]
    = False,
    max_rmse: Annotated[float, typer.Option(
        "--max-rmse", help="Largest tracking error (RMSE) of the last repetition that counts "
                           "as tracked, deg.")] = 10.0,
    plain: Annotated[bool, typer.Option("--plain", help="Plain progress lines.")] = False,
) -> None:
    """Track a knee-angle target in closed loop, recorded as a session.

    The operator's ceiling rises from 0 to the program amplitude in 2 mA steps before the
    first repetition; on sim:// presets the controller's feed-forward is the preset's static
    angle-amplitude curve. Prints each repetition's RMSE and a verdict: exit status 3 when
    the loop did not track the target (saturated in the last repetition, or its RMSE above
    --max-rmse); the session is recorded either way.
    """
    import urllib.parse

    import numpy as np

    from opennmes.cli.run import summary_lines
    from opennmes.control import PID, IterativeLearning, inverse_curve, static_curve
    from opennmes.devices import VirtualClock, open_stimulator
    from opennmes.session import (
        ClosedLoopDrive,
        ScriptedOperator,
        closed_loop_program,
        play,
        start_session,
        tracking_verdict,
    )
    from opennmes.store import open_store

    if repetitions < 1:
        raise ProgramError(f"--repetitions {repetitions} must be >= 1")
    if not rest >= 0:
        raise ProgramError(f"--rest {rest} s must be >= 0")
    if not (math.isfinite(max_rmse) and max_rmse > 0):
        raise ProgramError(f"--max-rmse {max_rmse} deg must be > 0")
    parts = urllib.parse.urlsplit(device)
    is_sim = parts.scheme.lower() == "sim"
    if virtual and not is_sim:
        raise ProgramError("--virtual runs only on sim://; a real device runs in real time")
    with open_store(db) as store:
        prog = resolve_program(program, store)
        store.get_patient(patient)
        ch_name = channel or prog.channel_names[0]
        ch = next((c for c in prog.channels if c.name == ch_name), None)
        if ch is None:
            raise ProgramError(f"--channel {ch_name!r} is not in the program; channels: "
                               f"{list(prog.channel_names)}")
        f = float(ch.frequency)
        tgt = _target(target, f, peak, side)
        ramp_s = ch.amplitude / 2e-3 * 0.02 + 0.5  # the operator's ceiling reaches the top
        start = math.ceil(ramp_s)
        period = tgt.size / f + rest
        session_prog = closed_loop_program(prog, ch_name, start + repetitions * period + 0.5)
        u_max = float(ch.amplitude)
        ff: Any = None
        preset = parts.netloc or parts.path.strip("/")
        if is_sim and preset:
            from opennmes.physiology import get_preset

            body = get_preset(preset)
            amps = np.linspace(0.0, u_max, 19)
            ff = inverse_curve(amps, static_curve(body, amps, frequency=f,
                                                  pulse_width=ch.pulse_width_s,
                                                  channel=ch_name))
        per_deg = 180.0 / math.pi * 1e-3  # mA/deg -> A/rad
        pid = PID(kp=kp * per_deg, ki=ki * per_deg, kd=kd * per_deg, dt=1 / f, u_min=0.0,
                  u_max=u_max, rate_limit=0.1, derivative_filter=0.05, feedforward=ff)
        learn = IterativeLearning(gain=0.02, sfreq=f, u_min=-u_max, u_max=u_max, delay=0.3,
                                  q_cutoff=2.0) if ilc else None
        drive = ClosedLoopDrive(ch_name, pid, tgt, signal=signal, start=start,
                                period=period if repetitions > 1 else None, ilc=learn)
        url = device
        if is_sim and "sfreq=" not in device:
            url = device + ("&" if "?" in device else "?") + f"sfreq={f:g}&emg=0"
        clock: Any = VirtualClock() if virtual else None
        with open_stimulator(url, clock=clock) as stim:
            runner = start_session(store, patient, session_prog, stim, chunk=0.01, step=2e-3,
                                   drives=[drive], meta={"command": "nmes track",
                                                         "target": target})
            runner.add_hook(ScriptedOperator.titrate([ch_name], {ch_name: u_max}, 2e-3, 0.0,
                                                     0.02))
            result = play(runner, live=False if plain else None, every=10.0)
    for line in summary_lines(result):
        typer.echo(line)
    if result.status != "finished":
        typer.echo(f"error: session aborted: {result.how}: {result.reason}", err=True)
        sys.exit(1)
    limit = math.radians(max_rmse) if signal.endswith(".angle") else None
    verdict = tracking_verdict(result.events, ch_name, max_rmse=limit)
    for line in verdict.lines():
        typer.echo(line)
    if not verdict.reached:
        typer.echo(f"error: {ch_name}: the closed loop did not track its target (session "
                   f"{result.session_id} is recorded)", err=True)
        sys.exit(3)


def register(app: typer.Typer) -> None:
    """Add ``nmes track``."""
    app.command("track")(track)
