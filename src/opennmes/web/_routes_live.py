"""Live session pages: the view, its JSON feed, intensity, pause, comfort, trigger and stop.

Every control is a plain HTML form (CSRF token included) so that it works with scripts off;
the page's script only submits the same forms with ``fetch`` and draws the charts. Each control
sends a command of the session's one vocabulary (:class:`opennmes.session.Command`) through
the run's supervised session, which checks it first. Stop is handled on the event loop (no
wait for a worker thread) and acted on at once by the session process, whatever the page's
scripts do.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opennmes.errors import NmesError
from opennmes.session import Command
from opennmes.web._accounts import User
from opennmes.web._app import flash, render, translate
from opennmes.web._live import LiveRun, LiveSessions, RunNotFound
from opennmes.web._routes_clinic import load_patient
from opennmes.web._security import Forbidden, LoginRequired, current_user, fast_user

__all__ = ["router"]

router = APIRouter()


def _run(request: Request, run_id: str, user: User) -> LiveRun:
    live: LiveSessions = request.app.state.live
    try:
        run = live.get(run_id)
    except RunNotFound:
        raise Forbidden("this live session is not yours to see (or it ended long ago)") from None
    load_patient(request, run.patient_id, user)
    return run


def _reply(request: Request, run: LiveRun, message: str | None = None,
           error: str | None = None) -> Response:
    if request.headers.get("x-requested-with") == "fetch":
        body = run.snapshot(since=2**62)
        body["message"], body["error"] = message, error
        return JSONResponse(body, status_code=400 if error else 200)
    if error:
        flash(request, error, "error")
    elif message:
        flash(request, message)
    return RedirectResponse(f"/live/{run.id}", status_code=303)


@router.get("/live/{run_id}")
def live_page(request: Request, run_id: str, user: User = Depends(current_user)) -> Response:
    """The live view: charts, intensity, pause, comfort and the stop button."""
    run = _run(request, run_id, user)
    return render(request, "live.html", user, run=run, snap=run.snapshot(since=2**62),
                  period_ms=int(request.app.state.settings.live_period * 1000))


async def _fast_access(request: Request, run_id: str) -> tuple[User, LiveRun]:
    """The user and the run, checked from memory (no database call, no thread hop unless the
    login session's or the user's cache entry has expired); same rules as the patient
    pages."""
    user = await fast_user(request)
    if user is None:
        raise LoginRequired()
    try:
        run = request.app.state.live.get(run_id)
    except RunNotFound:
        raise Forbidden("this live session is not yours to see (or it ended long ago)") from None
    allowed = (user.role == "admin"
               or (user.role == "clinician" and run.clinician == user.username)
               or (user.role == "patient" and user.patient_id == run.patient_id))
    if not allowed:
        raise Forbidden("this live session is not yours to see (or it ended long ago)")
    return user, run


@router.get("/live/{run_id}/data")
async def live_data(request: Request, run_id: str, since: int = -1) -> Response:
    """State and new samples since sequence number ``since`` (currents in mA).

    Polled 20 times a second per viewer, so answered on the event loop from memory.
    """
    _, run = await _fast_access(request, run_id)
    return JSONResponse(run.snapshot(since=since))


@router.post("/live/{run_id}/stop")
async def live_stop(request: Request, run_id: str) -> Response:
    """Stop now: output to zero, the record is finished.

    Handled on the event loop before anything else (no wait for a free worker thread): the
    session process zeroes the output from its command thread at once; the audit line is
    written afterwards.
    """
    user, run = await _fast_access(request, run_id)
    reason = f"stop pressed by {user.username}"
    run.stop(reason, by=user.username)
    await run_in_threadpool(request.app.state.live.audit_stop, run, user, reason)
    return _reply(request, run, translate(request, "Stopped. The output is off."))


@router.post("/live/{run_id}/intensity")
def live_intensity(request: Request, run_id: str, direction: str = Form(""),
                   channel: str = Form(""), user: User = Depends(current_user)) -> Response:
    """One step up or down on a channel (all channels when none is given)."""
    run = _run(request, run_id, user)
    if direction not in ("up", "down"):
        return _reply(request, run, error=f"direction {direction!r} must be 'up' or 'down'")
    if run.ended:
        return _reply(request, run, error=translate(request, "the session has ended"))
    channels = [channel] if channel else run.channels
    command = Command.INCREASE if direction == "up" else Command.DECREASE
    try:
        for ch in channels:
            run.session.check(command, ch)
        for ch in channels:
            run.session.send(command, ch, by=user.username)
    except NmesError as exc:
        return _reply(request, run, error=str(exc))
    return _reply(request, run, translate(request, "Intensity up.") if direction == "up"
                  else translate(request, "Intensity down."))


@router.post("/live/{run_id}/pause")
def live_pause(request: Request, run_id: str, command: str = Form("pause"),
               user: User = Depends(current_user)) -> Response:
    """Pause (output to zero, program clock held) or resume (ramping back from zero)."""
    run = _run(request, run_id, user)
    if command not in ("pause", "resume"):
        return _reply(request, run, error=f"command {command!r} must be 'pause' or 'resume'")
    try:
        run.session.send(Command(command), by=user.username)
    except NmesError as exc:
        return _reply(request, run, error=str(exc))
    return _reply(request, run, translate(request, "Paused.") if command == "pause"
                  else translate(request, "Resuming."))


@router.post("/live/{run_id}/comfort")
def live_comfort(request: Request, run_id: str, score: str = Form(""),
                 user: User = Depends(current_user)) -> Response:
    """Record a comfort rating, 0 (unbearable) to 10 (fully comfortable)."""
    run = _run(request, run_id, user)
    value: int | str = int(score) if score.strip().isdigit() else score
    try:
        run.session.check(Command.RATE_COMFORT, value)
    except NmesError as exc:
        return _reply(request, run, error=str(exc))
    if run.ended:
        return _reply(request, run, error=translate(
            request, "the session has ended; rate comfort during the session"))
    try:
        run.session.send(Command.RATE_COMFORT, value, by=user.username)
    except NmesError as exc:
        return _reply(request, run, error=str(exc))
    return _reply(request, run, translate(
        request, "Thank you: comfort {score} of 10 recorded.").format(score=int(score)))


@router.post("/live/{run_id}/trigger")
def live_trigger(request: Request, run_id: str, channel: str = Form(""),
                 action: str = Form("burst"), user: User = Depends(current_user)) -> Response:
    """Start a burst on a triggered channel (``action`` ``burst``) or ask the running burst to
    ramp down (``end``); the session acts at its next window and reports what happened as a
    ``trigger`` event (shown on the page)."""
    run = _run(request, run_id, user)
    if action not in ("burst", "end"):
        return _reply(request, run, error=f"action {action!r} must be 'burst' or 'end'")
    if run.ended:
        return _reply(request, run, error="the session has ended")
    try:
        run.session.check(Command.TRIGGER, channel)
    except NmesError as exc:
        return _reply(request, run, error=str(exc))
    snap = run.snapshot(since=2**62)
    if action == "burst" and snap["paused"]:
        return _reply(request, run, error="The session is paused: press Resume first, then "
                                          f"Trigger {channel}.")
    try:
        run.session.send(Command.TRIGGER if action == "burst" else Command.END_BURST, channel,
                         by=f"button:{user.username}")
    except NmesError as exc:
        return _reply(request, run, error=str(exc))
    if action == "end":
        return _reply(request, run, f"Ending the burst on {channel}.")
    level = snap["levels_mA"][snap["channels"].index(channel)]
    if level <= 0:
        return _reply(request, run, f"Trigger sent to {channel}, but its intensity is 0 mA, "
                                    "so the burst is not felt: raise it with + Up.")
    return _reply(request, run, f"Trigger sent: a burst starts on {channel} at up to "
                                f"{level:.1f} mA.")
