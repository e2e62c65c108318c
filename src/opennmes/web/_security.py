"""Who is asking and what they may see: login state, roles, CSRF and patient ownership.

Rules
-----
- Every page needs a login, except ``/login`` and the static files. A login is a live row of
  ``web_sessions`` (see :mod:`opennmes.web._sessions`) whose random token is in the signed
  cookie; the cookie alone opens nothing.
- ``admin`` manages accounts and sees everything; ``clinician`` sees only the patients whose
  record names them as clinician; ``patient`` sees only their own record and sessions.
- Every POST carries the session's CSRF token (form field ``csrf_token`` or header
  ``X-CSRF-Token``); a missing or wrong token is refused with 403 before anything runs.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from opennmes.store import Patient
from opennmes.web._accounts import Accounts, User
from opennmes.web._middleware import SESSION_KEY
from opennmes.web._sessions import WebSession, WebSessions

__all__ = ["LoginRequired", "Forbidden", "current_user", "optional_user", "current_session",
           "fast_user", "require",
           "csrf_token", "check_csrf", "check_patient_access", "CSRF_FIELD", "CSRF_HEADER"]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """Raised when a page needs a login; pages redirect to /login, APIs answer 401."""


class Forbidden(HTTPException):
    """403 with a plain reason shown to the user."""

    def __init__(self, reason: str):
        super().__init__(status_code=403, detail=reason)


def csrf_token(request: Request) -> str:
    """The CSRF token of this browser session (created on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse an unsafe request whose CSRF token is missing or does not match the session's."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
        raise Forbidden("the form's security token (CSRF) is missing or out of date; reload "
                        "the page and submit again")


def _login(request: Request) -> tuple[User, WebSession] | None:
    """The user and login session of this request (looked up once per request)."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str):
        return None
    memo = getattr(request.state, "login", None)
    if memo is not None and memo[0] == token:
        return memo[1]
    sessions: WebSessions = request.app.state.sessions
    accounts: Accounts = request.app.state.accounts
    ws = sessions.resolve(token)
    user = accounts.get_user(ws.user_id) if ws is not None else None
    found = (user, ws) if user is not None and ws is not None else None
    if found is None:
        request.session.clear()  # logged out, revoked, expired or deactivated
    request.state.login = (token, found)
    return found


def optional_user(request: Request) -> User | None:
    """The logged-in user (of a live login session), or None."""
    found = _login(request)
    return found[0] if found is not None else None


def current_session(request: Request) -> WebSession | None:
    """The login session of this request, or None."""
    found = _login(request)
    return found[1] if found is not None else None


async def fast_user(request: Request) -> User | None:
    """:func:`optional_user` answered from memory when both the login session and the user
    are cached (no database call, no thread hop), for routes polled many times a second."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str):
        return None
    ws = request.app.state.sessions.cached(token)
    user = (request.app.state.accounts.cached_user(ws.user_id) if isinstance(ws, WebSession)
            else ws)
    if user is False or (ws is not None and user is None):
        return await run_in_threadpool(optional_user, request)
    return user if isinstance(user, User) else None


def current_user(request: Request) -> User:
    """The logged-in user; LoginRequired when nobody is logged in."""
    user = optional_user(request)
    if user is None:
        raise LoginRequired()
    return user


def require(*roles: str) -> Callable[..., Coroutine[Any, Any, User]]:
    """A dependency giving the current user when their role is one of ``roles``."""

    async def dependency(user: User = Depends(current_user)) -> User:
        if user.role not in roles:
            raise Forbidden(f"this page is for {' or '.join(roles)} accounts; you are logged "
                            f"in as {user.username} ({user.role})")
        return user

    return dependency


def check_patient_access(user: User, patient: Patient) -> None:
    """Refuse (403) when ``user`` may not see ``patient``."""
    if user.role == "admin":
        return
    if user.role == "clinician" and patient.clinician == user.username:
        return
    if user.role == "patient" and user.patient_id == patient.id:
        return
    raise Forbidden("this patient's record is not yours to see")
