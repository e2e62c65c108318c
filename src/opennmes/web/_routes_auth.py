"""Login, logout, the role home page and account administration (add, deactivate,
reactivate, log out everywhere, end one login session)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from opennmes.web._accounts import AccountError, AccountInfo, Accounts, User
from opennmes.web._app import flash, render
from opennmes.web._limits import AccountLockout, LoginLimiter, wait_words
from opennmes.web._middleware import SESSION_KEY
from opennmes.web._security import current_session, current_user, optional_user, require
from opennmes.web._sessions import WebSession, WebSessions

__all__ = ["router", "start_login", "admin_users_page"]

router = APIRouter()

_HOME = {"admin": "/admin/users", "clinician": "/patients", "patient": "/home"}


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.get("/")
def index(user: User = Depends(current_user)) -> Response:
    """Send each role to its start page."""
    return RedirectResponse(_HOME[user.role], status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form."""
    user = optional_user(request)
    if user is not None:
        return RedirectResponse(_safe_next(next) or _HOME[user.role], status_code=303)
    return render(request, "login.html", None, next=_safe_next(next) or "")


def _client(request: Request) -> str:
    """The client's address (from a trusted proxy's header, see ``_middleware``)."""
    return request.client.host if request.client else "unknown"


@router.post("/login")
def login(request: Request, username: str = Form(""), password: str = Form(""),
          next: str = Form("")) -> Response:
    """Check the password (rate-limited per user name and client address, and per account)
    and start a login session."""
    accounts: Accounts = request.app.state.accounts
    limiter: LoginLimiter = request.app.state.limiter
    lockout: AccountLockout = request.app.state.lockout
    client = _client(request)
    name = username.strip().lower()[:64]
    key = f"{name}|{client}"
    detail = {"username": username[:64], "client": client, "peer": request.state.peer}
    locked, wait = lockout.locked_for(name), limiter.retry_after(key)
    if locked > 0 or wait > 0:
        why = "the account is locked" if locked > 0 else f"too many failures from {client}"
        accounts.audit(None, "login_blocked", f"login for {username!r} refused: {why}",
                       detail=detail)
        if locked > 0:
            error = ("Too many failed attempts for this account, so it is locked for now. "
                     f"Try again in {wait_words(locked)}.")
        else:
            error = f"Too many failed attempts. Try again in {wait_words(wait)}."
        return render(request, "login.html", None, status_code=429,
                      next=_safe_next(next) or "", error=error)
    user = accounts.authenticate(username, password)
    if user is None:
        limiter.failed(key)
        error = "User name or password is wrong."
        accounts.audit(None, "login_failed", f"failed login for {username!r} from {client}",
                       detail=detail)
        if lockout.failed(name):
            minutes = wait_words(lockout.duration)
            accounts.audit(None, "account_locked", f"account {name!r} locked for {minutes} "
                           f"after {lockout.max_failures} failed logins", detail=detail)
            error += (" After too many failed attempts the account is now locked: try again "
                      f"in {minutes}.")
        return render(request, "login.html", None, status_code=401,
                      next=_safe_next(next) or "", error=error)
    limiter.succeeded(key)
    lockout.succeeded(name)
    start_login(request, user, client)
    accounts.audit(user, "login", f"{user.username} logged in", patient_id=user.patient_id,
                   detail={"client": client})
    return RedirectResponse(_safe_next(next) or _HOME[user.role], status_code=303)


def start_login(request: Request, user: User, client: str) -> WebSession:
    """A new login session for this browser: a fresh cookie (no fixation) with its token."""
    sessions: WebSessions = request.app.state.sessions
    token, ws = sessions.start(user.id, client=client,
                               user_agent=request.headers.get("user-agent"))
    request.session.clear()
    request.session[SESSION_KEY] = token
    return ws


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the login session on the server, and forget the cookie."""
    user, ws = optional_user(request), current_session(request)
    if user is not None and ws is not None:
        request.app.state.sessions.end(ws.id, "logout")
        request.app.state.accounts.audit(user, "logout", f"{user.username} logged out",
                                         patient_id=user.patient_id)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def admin_users_page(request: Request, user: User, status_code: int = 200,
                     **extra: Any) -> Response:
    """The accounts page (with an error and the form kept, on a refusal)."""
    accounts: Accounts = request.app.state.accounts
    sessions: WebSessions = request.app.state.sessions
    live = sessions.list_live()
    counts: dict[int, int] = {}
    for ws in live:
        counts[ws.user_id] = counts.get(ws.user_id, 0) + 1
    return render(request, "admin_users.html", user, status_code=status_code,
                  accounts=accounts.list_accounts(), sessions=live, session_counts=counts,
                  this_session=current_session(request),
                  patients=request.app.state.store.list_patients(), **extra)


@router.get("/admin/users")
def users_page(request: Request, user: User = Depends(require("admin"))) -> Response:
    """Accounts with their login sessions, and a form to add one."""
    return admin_users_page(request, user)


@router.post("/admin/users")
def add_user(request: Request, username: str = Form(""), password: str = Form(""),
             role: str = Form(""), patient_id: str = Form(""),
             user: User = Depends(require("admin"))) -> Response:
    """Create an account."""
    accounts: Accounts = request.app.state.accounts
    try:
        new = accounts.create_user(username, password, role, patient_id or None)
    except AccountError as exc:
        return admin_users_page(request, user, status_code=400, error=str(exc),
                                form={"username": username, "role": role,
                                      "patient_id": patient_id})
    accounts.audit(user, "user_created", f"account {new.username} ({new.role}) created",
                   patient_id=new.patient_id, detail={"username": new.username,
                                                      "role": new.role})
    flash(request, f"Account {new.username} created.")
    return RedirectResponse("/admin/users", status_code=303)


def _account(request: Request, user_id: int) -> AccountInfo:
    info = request.app.state.accounts.get_account(user_id)
    if info is None:
        raise HTTPException(404, f"no account with id {user_id}")
    return info


@router.post("/admin/users/{user_id}/deactivate")
def deactivate_user(request: Request, user_id: int,
                    user: User = Depends(require("admin"))) -> Response:
    """Deactivate an account: it cannot log in, and its login sessions end now."""
    target = _account(request, user_id).user
    if target.id == user.id:
        return admin_users_page(request, user, status_code=400,
                                error="You cannot deactivate your own account; ask another "
                                      "admin.")
    accounts: Accounts = request.app.state.accounts
    accounts.set_active(target.id, False)
    ended = request.app.state.sessions.end_user(target.id, "account deactivated")
    accounts.audit(user, "user_deactivated", f"account {target.username} deactivated "
                   f"({ended} login session{'s' if ended != 1 else ''} ended)",
                   patient_id=target.patient_id,
                   detail={"username": target.username, "sessions_ended": ended})
    flash(request, f"Account {target.username} deactivated; it can no longer log in.")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/activate")
def activate_user(request: Request, user_id: int,
                  user: User = Depends(require("admin"))) -> Response:
    """Let a deactivated account log in again (with its old password)."""
    target = _account(request, user_id).user
    accounts: Accounts = request.app.state.accounts
    accounts.set_active(target.id, True)
    accounts.audit(user, "user_reactivated", f"account {target.username} reactivated",
                   patient_id=target.patient_id, detail={"username": target.username})
    flash(request, f"Account {target.username} reactivated.")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/logout")
def logout_everywhere(request: Request, user_id: int,
                      user: User = Depends(require("admin"))) -> Response:
    """End every login session of an account (on every computer)."""
    target = _account(request, user_id).user
    ended = request.app.state.sessions.end_user(target.id, "logged out everywhere by admin")
    request.app.state.accounts.audit(
        user, "sessions_ended", f"{target.username} logged out everywhere ({ended} login "
        f"session{'s' if ended != 1 else ''} ended)", patient_id=target.patient_id,
        detail={"username": target.username, "sessions_ended": ended})
    if target.id == user.id:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)
    flash(request, f"{target.username} is logged out everywhere ({ended} login "
                   f"session{'s' if ended != 1 else ''} ended).")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/sessions/{session_id}/end")
def end_session(request: Request, session_id: int,
                user: User = Depends(require("admin"))) -> Response:
    """End one login session."""
    sessions: WebSessions = request.app.state.sessions
    ws = sessions.get(session_id)
    if ws is None:
        raise HTTPException(404, f"no login session {session_id}")
    mine = current_session(request)
    if sessions.end(ws.id, "ended by admin"):
        request.app.state.accounts.audit(
            user, "session_ended", f"a login session of {ws.username} ended",
            detail={"username": ws.username, "session": ws.id, "client": ws.client})
    if mine is not None and mine.id == ws.id:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)
    flash(request, f"The login session of {ws.username} from {ws.client or 'unknown'} ended.")
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/audit")
def audit_page(request: Request, user: User = Depends(require("admin"))) -> Response:
    """The whole audit log, newest first."""
    return render(request, "audit.html", user,
                  entries=request.app.state.accounts.list_audit(limit=500))
