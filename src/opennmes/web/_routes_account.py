"""The user's own account: change the password, see where one is logged in, choose one's
language; the language switch (for everyone, logged in or not)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from opennmes.i18n import LANGUAGES
from opennmes.web._accounts import AccountError, Accounts, User
from opennmes.web._app import flash, render, translate
from opennmes.web._limits import AccountLockout, wait_words
from opennmes.web._middleware import LANG_COOKIE
from opennmes.web._routes_auth import _safe_next, start_login
from opennmes.web._security import current_session, current_user
from opennmes.web._sessions import WebSessions

__all__ = ["router"]

router = APIRouter()


def _account_page(request: Request, user: User, status_code: int = 200,
                  **extra: Any) -> Response:
    sessions: WebSessions = request.app.state.sessions
    return render(request, "account.html", user, status_code=status_code,
                  sessions=sessions.list_live(user.id), this_session=current_session(request),
                  **extra)


@router.post("/language")
def choose_language(request: Request, lang: str = Form(""), next: str = Form("")) -> Response:
    """Remember the language chosen with the switch in this browser (the ``nmes_lang``
    cookie, one year; it outlives a logout so the login page speaks it too) and go back to
    the page. A language the app does not have forgets the choice: the browser's language
    applies again."""
    response = RedirectResponse(_safe_next(next) or "/", status_code=303)
    _remember_in_browser(request, response, lang if lang in LANGUAGES else None)
    return response


def _remember_in_browser(request: Request, response: Response, lang: str | None) -> None:
    """Set (or, for None, forget) the ``nmes_lang`` cookie of the language switch."""
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, httponly=True,
                            samesite="lax",
                            secure=request.app.state.settings.cookie_secure)
    else:
        response.delete_cookie(LANG_COOKIE)


@router.post("/account/language")
def set_my_language(request: Request, lang: str = Form(""),
                    user: User = Depends(current_user)) -> Response:
    """Keep the user's own language in the database (it replaces the browser's on every
    computer the user logs in on; the switch still changes it for one browser) and use it in
    this browser now. An empty choice goes back to the browser's language."""
    accounts: Accounts = request.app.state.accounts
    try:
        accounts.set_language(user.id, lang or None)
    except AccountError as exc:
        return _account_page(request, user, status_code=400,
                             error=translate(request, "The language was not changed: {error}.")
                             .format(error=exc))
    accounts.audit(user, "language_changed",
                   f"{user.username} chose the language {lang or 'of the browser'}",
                   patient_id=user.patient_id, detail={"language": lang or None})
    response = RedirectResponse("/account", status_code=303)
    _remember_in_browser(request, response, lang or None)
    return response


@router.get("/account")
def account_page(request: Request, user: User = Depends(current_user)) -> Response:
    """The password form and the user's login sessions."""
    return _account_page(request, user)


@router.post("/account/password")
def change_password(request: Request, current_password: str = Form(""),
                    new_password: str = Form(""), new_password_again: str = Form(""),
                    user: User = Depends(current_user)) -> Response:
    """Change the password (the current one is required; the policy of new accounts
    applies); every login session of the user ends, and this browser gets a new one."""
    accounts: Accounts = request.app.state.accounts
    lockout: AccountLockout = request.app.state.lockout
    locked = lockout.locked_for(user.username)
    if locked > 0:
        return _account_page(request, user, status_code=429,
                             error="Too many wrong passwords for this account, so it is locked "
                                   f"for now. Try again in {wait_words(locked)}.")
    if not accounts.verify_password(user.id, current_password):
        # a stolen session must not be a way to guess the password
        accounts.audit(user, "password_change_failed",
                       f"{user.username}: wrong current password when changing it",
                       patient_id=user.patient_id)
        error = "The current password is wrong; the password was not changed."
        if lockout.failed(user.username):
            error += (" After too many wrong passwords the account is now locked: try again "
                      f"in {wait_words(lockout.duration)}.")
        return _account_page(request, user, status_code=400, error=error)
    try:
        if new_password != new_password_again:
            raise AccountError("the two new passwords differ; type the same one twice")
        if new_password == current_password:
            raise AccountError("the new password is the current one; choose another")
        accounts.set_password(user.id, new_password)
    except AccountError as exc:
        return _account_page(request, user, status_code=400,
                             error=f"The password was not changed: {exc}.")
    lockout.succeeded(user.username)
    ended = request.app.state.sessions.end_user(user.id, "password changed")
    start_login(request, user, request.client.host if request.client else "unknown")
    accounts.audit(user, "password_changed", f"{user.username} changed their password "
                   f"({ended} login session{'s' if ended != 1 else ''} ended)",
                   patient_id=user.patient_id, detail={"sessions_ended": ended})
    flash(request, "Your password is changed. You are logged out everywhere else.")
    return RedirectResponse("/account", status_code=303)
