"""``nmes track``: a closed-loop tracking session (PID + iterative learning) on a stimulator."""

from __future__ import annotations

import math
import sys
from typing import Annotated, Any

import typer

from opennmes.cli.run import DbOption, resolve_program
from opennmes.errors import ProgramError

__all__ = ["register"]


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
    controller: Annotated[str, typer.Option(
        help="pid: PID + ILC on --signal; mpc: receding-horizon control (1 s window, "
             "penalising fatigue) of the muscle's force, with the sim:// preset's muscle as "
             "the model.")] = "pid",
    peak_force: Annotated[float, typer.Option(
        "--peak-force", help="With --controller mpc: peak of the standard force target, "
                             "N.")] = 100.0,
    max_rmse_force: Annotated[float, typer.Option(
        "--max-rmse-force", help="With --controller mpc: largest force RMSE of the last "
                                 "repetition that counts as tracked, N.")] = 10.0,
) -> None:
    """Track a knee-angle target in closed loop (or, with --controller mpc, a force target
    by model-predictive control), recorded as a session.

    The operator's ceiling rises from 0 to the program amplitude in 2 mA steps before the
    first repetition; on sim:// presets the controller's feed-forward is the preset's static
    angle-amplitude curve. Prints each repetition's RMSE and a verdict: exit status 3 when
    the loop did not track the target (saturated in the last repetition, or its RMSE above
    --max-rmse); the session is recorded either way.
    """
    import urllib.parse

    from opennmes.cli.run import summary_lines
    from opennmes.devices import VirtualClock, open_stimulator
    from opennmes.session import (
        PER_MA_PER_DEG,
        knee_target,
        plan_tracking,
        play,
        start_session,
        tracking_verdict,
    )
    from opennmes.store import open_store

    if not (math.isfinite(max_rmse) and max_rmse > 0):
        raise ProgramError(f"--max-rmse {max_rmse} deg must be > 0")
    if controller not in ("pid", "mpc"):
        raise ProgramError(f"--controller {controller!r}; one of pid, mpc")
    if controller == "mpc" and not virtual:
        raise ProgramError("--controller mpc runs on a virtual clock only (add --virtual): "
                           "a window's solve (0.1-0.3 s on this machine) is longer than a "
                           "session window, and on a real clock the watchdog stops the session")
    for opt, v in (("--peak-force", peak_force), ("--max-rmse-force", max_rmse_force)):
        if not (math.isfinite(v) and v > 0):
            raise ProgramError(f"{opt} {v} N must be > 0")
    if virtual and urllib.parse.urlsplit(device).scheme.lower() != "sim":
        raise ProgramError("--virtual runs only on sim://; a real device runs in real time")
    with open_store(db) as store:
        prog = resolve_program(program, store)
        store.get_patient(patient)
        name = channel or prog.channel_names[0]
        ch = next((c for c in prog.channels if c.name == name), None)
        if ch is None:
            raise ProgramError(f"--channel {name!r} is not in the program; channels: "
                               f"{list(prog.channel_names)}")
        plan: Any
        if controller == "mpc":
            if target != "standard":
                raise ProgramError(f"--target {target!r}: --controller mpc tracks a force; use "
                                   "'standard' (its shape, scaled to --peak-force N)")
            from opennmes.control import standard_knee_target
            from opennmes.session import plan_mpc_tracking

            tgt = standard_knee_target(float(ch.frequency), peak=peak_force)
            plan = plan_mpc_tracking(prog, tgt, device, channel=name,
                                     signal=None if signal == "knee.angle" else signal,
                                     repetitions=repetitions, rest=rest)
            signal = plan.drive.signal
        else:
            tgt = knee_target(target, float(ch.frequency), peak=math.radians(peak), side=side)
            plan = plan_tracking(prog, tgt, device, channel=name, signal=signal,
                                 gains=(kp * PER_MA_PER_DEG, ki * PER_MA_PER_DEG,
                                        kd * PER_MA_PER_DEG),
                                 repetitions=repetitions, rest=rest, ilc=ilc)
        clock: Any = VirtualClock() if virtual else None
        with open_stimulator(plan.device_url, clock=clock) as stim:
            runner = start_session(store, patient, plan.program, stim, chunk=0.01,
                                   step=plan.step, drives=[plan.drive],
                                   meta={"command": "nmes track", "target": target})
            runner.add_hook(plan.titration())
            result = play(runner, live=False if plain else None, every=10.0)
    for line in summary_lines(result):
        typer.echo(line)
    if result.status != "finished":
        typer.echo(f"error: session aborted: {result.how}: {result.reason}", err=True)
        sys.exit(1)
    limit = math.radians(max_rmse) if signal.endswith(".angle") else None
    if controller == "mpc":
        limit = max_rmse_force
    verdict = tracking_verdict(result.events, plan.channel, max_rmse=limit)
    for line in verdict.lines():
        typer.echo(line)
    if not verdict.reached:
        typer.echo(f"error: {plan.channel}: the closed loop did not track its target (session "
                   f"{result.session_id} is recorded)", err=True)
        sys.exit(3)


def register(app: typer.Typer) -> None:
    """Add ``nmes track``."""
    app.command("track")(track)
