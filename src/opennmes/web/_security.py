"""Who is asking and what they may see: login state, roles, CSRF and patient ownership.

Rules
-----
- Every page needs a login, except ``/login`` and the static files.
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

from opennmes.store import Patient
from opennmes.web._accounts import Accounts, User

__all__ = ["LoginRequired", "Forbidden", "current_user", "optional_user", "require",
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


def optional_user(request: Request) -> User | None:
    """The logged-in user, or None."""
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        return None
    accounts: Accounts = request.app.state.accounts
    user = accounts.get_user(uid)
    if user is None or request.session.get("role") != user.role:
        request.session.clear()
        return None
    return user


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
