"""The web app: clinician and patient pages over the store, therapy and session services.

``create_app(Settings.load())`` builds a FastAPI app with server-rendered pages (Jinja2, no
JavaScript build step), live charts with Plotly, accounts with roles (admin, clinician,
patient), login sessions kept on the server (so that logout, a password change or an
admin can end them), login rate limits and account lockout, CSRF protection on every form,
request size limits and an audit log. ``nmes serve`` runs it on localhost.
"""

from opennmes.web._accounts import AccountError, AccountInfo, Accounts, AuditEntry, User
from opennmes.web._app import COOKIE_NAME, create_app
from opennmes.web._limits import AccountLockout, LoginLimiter
from opennmes.web._sessions import WebSession, WebSessions
from opennmes.web._settings import SECRET_ENV_VAR, Settings, WebConfigError

__all__ = ["create_app", "Settings", "WebConfigError", "SECRET_ENV_VAR", "COOKIE_NAME",
           "Accounts", "AccountInfo", "User", "AuditEntry", "AccountError", "LoginLimiter",
           "AccountLockout", "WebSessions", "WebSession"]
