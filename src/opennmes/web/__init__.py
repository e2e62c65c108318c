"""The web app: clinician and patient pages over the store, therapy and session services.

``create_app(Settings.load())`` builds a FastAPI app with server-rendered pages (Jinja2, no
JavaScript build step), live charts with Plotly, accounts with roles (admin, clinician,
patient), CSRF protection on every form and an audit log. ``nmes serve`` runs it on localhost.
"""

from opennmes.web._accounts import AccountError, Accounts, AuditEntry, LoginLimiter, User
from opennmes.web._app import COOKIE_NAME, create_app
from opennmes.web._settings import SECRET_ENV_VAR, Settings, WebConfigError

__all__ = ["create_app", "Settings", "WebConfigError", "SECRET_ENV_VAR", "COOKIE_NAME",
           "Accounts", "User", "AuditEntry", "AccountError", "LoginLimiter"]
