"""Login, logout, the role home page and account administration."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from opennmes.web._accounts import AccountError, Accounts, User
from opennmes.web._app import flash, render
from opennmes.web._security import current_user, optional_user, require

__all__ = ["router"]

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


@router.post("/login")
def login(request: Request, username: str = Form(""), password: str = Form(""),
          next: str = Form("")) -> Response:
    """Check the password (rate-limited per user name and client) and start a session."""
    accounts: Accounts = request.app.state.accounts
    limiter = request.app.state.limiter
    client = request.client.host if request.client else "?"
    key = f"{username.strip().lower()}|{client}"
    wait = limiter.retry_after(key)
    if wait > 0:
        accounts.audit(None, "login_blocked", f"login for {username!r} refused: too many "
                       f"failures from {client}", detail={"username": username,
                                                          "client": client})
        return render(request, "login.html", None, status_code=429, next=_safe_next(next) or "",
                      error=f"Too many failed attempts. Try again in {int(wait) + 1} seconds.")
    user = accounts.authenticate(username, password)
    if user is None:
        limiter.failed(key)
        accounts.audit(None, "login_failed", f"failed login for {username!r} from {client}",
                       detail={"username": username, "client": client})
        return render(request, "login.html", None, status_code=401, next=_safe_next(next) or "",
                      error="User name or password is wrong.")
    limiter.succeeded(key)
    request.session.clear()  # a new session on login (no fixation)
    request.session["uid"] = user.id
    request.session["role"] = user.role
    accounts.audit(user, "login", f"{user.username} logged in", patient_id=user.patient_id)
    return RedirectResponse(_safe_next(next) or _HOME[user.role], status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session."""
    user = optional_user(request)
    if user is not None:
        request.app.state.accounts.audit(user, "logout", f"{user.username} logged out",
                                         patient_id=user.patient_id)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/admin/users")
def users_page(request: Request, user: User = Depends(require("admin"))) -> Response:
    """Accounts, and a form to add one."""
    accounts: Accounts = request.app.state.accounts
    return render(request, "admin_users.html", user, users=accounts.list_users(),
                  patients=request.app.state.store.list_patients())


@router.post("/admin/users")
def add_user(request: Request, username: str = Form(""), password: str = Form(""),
             role: str = Form(""), patient_id: str = Form(""),
             user: User = Depends(require("admin"))) -> Response:
    """Create an account."""
    accounts: Accounts = request.app.state.accounts
    try:
        new = accounts.create_user(username, password, role, patient_id or None)
    except AccountError as exc:
        return render(request, "admin_users.html", user, status_code=400, error=str(exc),
                      users=accounts.list_users(),
                      patients=request.app.state.store.list_patients(),
                      form={"username": username, "role": role, "patient_id": patient_id})
    accounts.audit(user, "user_created", f"account {new.username} ({new.role}) created",
                   patient_id=new.patient_id, detail={"username": new.username,
                                                      "role": new.role})
    flash(request, f"Account {new.username} created.")
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/audit")
def audit_page(request: Request, user: User = Depends(require("admin"))) -> Response:
    """The whole audit log, newest first."""
    return render(request, "audit.html", user,
                  entries=request.app.state.accounts.list_audit(limit=500))
