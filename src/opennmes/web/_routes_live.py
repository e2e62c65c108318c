"""Live session pages: the view, its JSON feed, intensity, pause, comfort and stop.

Every control is a plain HTML form (CSRF token included) so that it works with scripts off;
the page's script only submits the same forms with ``fetch`` and draws the charts. Stop
zeroes the output at once from the request thread, whatever the page's scripts do.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opennmes.errors import NmesError
from opennmes.web._accounts import User
from opennmes.web._app import flash, render
from opennmes.web._live import LiveRun, LiveSessions, RunNotFound
from opennmes.web._routes_clinic import load_patient
from opennmes.web._security import Forbidden, current_user

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


@router.get("/live/{run_id}/data")
def live_data(request: Request, run_id: str, since: int = -1,
              user: User = Depends(current_user)) -> Response:
    """State and new samples since sequence number ``since`` (currents in mA)."""
    run = _run(request, run_id, user)
    return JSONResponse(run.snapshot(since=since))


@router.post("/live/{run_id}/stop")
def live_stop(request: Request, run_id: str, user: User = Depends(current_user)) -> Response:
    """Stop now: output to zero, the record is finished."""
    run = _run(request, run_id, user)
    request.app.state.live.stop(run, user, f"stop pressed by {user.username}")
    return _reply(request, run, "Stopped. The output is off.")


@router.post("/live/{run_id}/intensity")
def live_intensity(request: Request, run_id: str, direction: str = Form(""),
                   channel: str = Form(""), user: User = Depends(current_user)) -> Response:
    """One step up or down on a channel (all channels when none is given)."""
    run = _run(request, run_id, user)
    if direction not in ("up", "down"):
        return _reply(request, run, error=f"direction {direction!r} must be 'up' or 'down'")
    if run.ended:
        return _reply(request, run, error="the session has ended")
    channels = [channel] if channel else run.channels
    try:
        for ch in channels:
            (run.runner.increase if direction == "up" else run.runner.decrease)(
                ch, by=user.username)
    except NmesError as exc:
        return _reply(request, run, error=str(exc))
    return _reply(request, run, f"Intensity {direction}.")


@router.post("/live/{run_id}/pause")
def live_pause(request: Request, run_id: str, command: str = Form("pause"),
               user: User = Depends(current_user)) -> Response:
    """Pause (output to zero, program clock held) or resume (ramping back from zero)."""
    run = _run(request, run_id, user)
    if command not in ("pause", "resume"):
        return _reply(request, run, error=f"command {command!r} must be 'pause' or 'resume'")
    (run.runner.pause if command == "pause" else run.runner.resume)(by=user.username)
    return _reply(request, run, "Paused." if command == "pause" else "Resuming.")


@router.post("/live/{run_id}/comfort")
def live_comfort(request: Request, run_id: str, score: str = Form(""),
                 user: User = Depends(current_user)) -> Response:
    """Record a comfort rating, 0 (unbearable) to 10 (fully comfortable)."""
    run = _run(request, run_id, user)
    if not score.strip().isdigit() or not 0 <= int(score) <= 10:
        return _reply(request, run, error=f"comfort rating {score!r} must be a whole number "
                                          "from 0 (unbearable) to 10 (fully comfortable)")
    if run.ended:
        return _reply(request, run, error="the session has ended; rate comfort during the "
                                          "session")
    run.runner.rate_comfort(int(score), by=user.username)
    return _reply(request, run, f"Thank you: comfort {int(score)} of 10 recorded.")


async def _start(request: Request, user: User, patient_id: str, program: object,
                 device_url: str, meta: dict[str, object]) -> LiveRun:
    live: LiveSessions = request.app.state.live
    return await run_in_threadpool(live.start, user, patient_id, program,  # type: ignore[arg-type]
                                   device_url, meta=meta)
