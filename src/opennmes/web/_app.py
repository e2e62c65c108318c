"""The application factory: settings in, a FastAPI app out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from opennmes.i18n import DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES, N_, gettext, install_jinja
from opennmes.store import Store, open_store
from opennmes.web._accounts import Accounts, User
from opennmes.web._limits import AccountLockout, LoginLimiter
from opennmes.web._middleware import BodyLimit, ClientAddress, Language, TrustedProxies
from opennmes.web._security import LoginRequired, check_csrf, csrf_token, optional_user
from opennmes.web._sessions import WebSessions
from opennmes.web._settings import Settings

__all__ = ["create_app", "render", "flash", "language", "translate", "COOKIE_NAME"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
COOKIE_NAME = "nmes_session"


def flash(request: Request, message: str, kind: str = "info") -> None:
    """Queue a message shown once on the next page."""
    messages = list(request.session.get("flash", []))
    messages.append([kind, message])
    request.session["flash"] = messages[-5:]


def language(request: Request, user: User | None = None) -> str:
    """The reader's language: the language switch's choice in this browser, else the
    logged-in user's own setting (account page), else the browser's ``Accept-Language`` (the
    :class:`Language` middleware negotiates the first and the last). ``user`` is the
    logged-in user where the caller has it; else the one this request looked up, if any."""
    lang = str(getattr(request.state, "lang", DEFAULT_LANGUAGE))
    if getattr(request.state, "lang_chosen", False):
        return lang
    if user is None:
        login = getattr(request.state, "login", None)  # (token, (user, session) or None)
        user = login[1][0] if login is not None and login[1] is not None else None
    if user is not None and user.language in LANGUAGES and user.language != lang:
        lang = user.language
        request.state.lang = lang  # the response's Content-Language says it too
    return lang


def translate(request: Request, message: str) -> str:
    """``message`` in the reader's language (for flash messages and errors)."""
    return gettext(language(request), message)


def render(request: Request, template: str, user: User | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """Render a page with the user, the CSRF token and pending messages."""
    templates: Jinja2Templates = request.app.state.templates
    messages = request.session.pop("flash", [])
    return templates.TemplateResponse(
        request, template,
        {"user": user, "csrf_token": csrf_token(request), "messages": messages,
         "lang": language(request, user), **context},
        status_code=status_code,
    )


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Build the web app.

    Parameters
    ----------
    settings : Settings
        Secret key, database URL and limits (see :class:`Settings`).
    store : Store, optional
        An open store to use (closed by the caller); by default one is opened from
        ``settings.db_url`` and closed when the app shuts down.
    """
    owned = store is None
    the_store = store if store is not None else open_store(settings.db_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import threading

        # start the session fork server now (modules and kernels load once, ~2 s), so the
        # first session starts at once
        threading.Thread(target=app.state.live.warm_up, daemon=True,
                         name="nmes-web-warm-up").start()
        try:
            yield
        finally:
            app.state.live.stop_all("server shutting down")
            if owned:
                the_store.close()

    app = FastAPI(title="OpenNMES", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, dependencies=[Depends(check_csrf)])

    from opennmes.web._live import LiveSessions

    app.state.settings = settings
    app.state.store = the_store
    app.state.accounts = Accounts(the_store)
    app.state.sessions = WebSessions(the_store, max_age=settings.session_max_age,
                                     idle_timeout=settings.session_idle_timeout)
    app.state.limiter = LoginLimiter(settings.login_max_failures, settings.login_window)
    app.state.lockout = AccountLockout(settings.lockout_max_failures, settings.lockout_window,
                                       settings.lockout_duration)
    app.state.live = LiveSessions(the_store, app.state.accounts, settings)

    # middleware, innermost first: the body limit needs the decoded cookie; everything
    # sees the real client address
    app.add_middleware(BodyLimit, anonymous=settings.anonymous_max_body_size,
                       logged_in=settings.max_body_size, sessions=app.state.sessions,
                       refuse=_refuse_too_large)
    app.add_middleware(SessionMiddleware, secret_key=settings.secret_key,
                       session_cookie=COOKIE_NAME, max_age=int(settings.session_max_age),
                       same_site="strict", https_only=settings.cookie_secure)
    app.add_middleware(Language)
    app.add_middleware(ClientAddress, trusted=TrustedProxies(settings.trusted_proxies))
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    install_jinja(templates.env)
    templates.env.globals["app_name"] = "OpenNMES"
    templates.env.globals["language_names"] = LANGUAGE_NAMES
    templates.env.auto_reload = False  # templates ship with the package
    app.state.templates = templates

    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    plotly_path = _plotly_js()

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        from fastapi.responses import FileResponse

        return FileResponse(plotly_path, media_type="application/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    app.add_middleware(_SecurityHeaders)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request) or request.method != "GET":
            return JSONResponse({"error": "login required"}, status_code=401)
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_json(request) and exc.status_code != 413:
            return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))
        titles = {403: N_("Not allowed"), 404: N_("Not found"), 405: N_("Not allowed here"),
                  413: N_("Too large"), 429: N_("Too many attempts")}
        reason = str(exc.detail)
        if exc.status_code == 413:
            reason = _too_large(request)
            if _wants_json(request):
                return JSONResponse({"error": reason}, status_code=413)
        user = await run_in_threadpool(optional_user, request)
        return render(request, "error.html", user, status_code=exc.status_code,
                      title=translate(request, titles.get(exc.status_code, N_("Error"))),
                      reason=reason)

    from opennmes.web import (
        _routes_account,
        _routes_auth,
        _routes_clinic,
        _routes_live,
        _routes_patient,
        _routes_therapy,
    )

    for module in (_routes_auth, _routes_account, _routes_clinic, _routes_therapy,
                   _routes_live, _routes_patient):
        app.include_router(module.router)
    return app


_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"),
]


class _SecurityHeaders:
    """Pure ASGI middleware adding the security headers (and ``Cache-Control: no-store``
    unless the response sets its own) to every HTTP response; cheaper than an
    ``@app.middleware`` function on the 20 Hz live feed."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in _HEADERS if k not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _refuse_too_large(request: Request) -> Response:
    """The 413 answer to a request whose declared length is over its limit (the app is not
    called; nobody is looked up)."""
    reason = _too_large(request)
    if _wants_json(request):
        return JSONResponse({"error": reason}, status_code=413)
    return render(request, "error.html", None, status_code=413,
                  title=translate(request, "Too large"), reason=reason)


def _too_large(request: Request) -> str:
    limit, anonymous = getattr(request.state, "body_limit", (None, False))
    size = f"{limit // 1024} KiB" if isinstance(limit, int) and limit >= 1024 else f"{limit} bytes"
    if anonymous:
        return (f"The request is larger than the {size} accepted before logging in. Log in "
                "and try again.")
    return (f"The request is larger than the {size} this server accepts. Send a smaller file "
            "or form.")


def _wants_json(request: Request) -> bool:
    return (request.url.path.endswith((".json", "/data"))
            or "application/json" in request.headers.get("accept", "")
            or request.headers.get("x-requested-with") == "fetch")
