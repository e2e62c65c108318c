"""``nmes serve``: run the web app on this computer."""

from __future__ import annotations

import logging
import secrets

import typer

__all__ = ["register"]

log = logging.getLogger(__name__)


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (localhost only by "
                             "default; put a TLS proxy in front for anything else)."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0: any free port)."),
    db: str = typer.Option(None, "--db", help="Database URL (default: NMES_DB_URL, else the "
                           "SQLite file in the user data directory)."),
    create_admin: str = typer.Option(None, "--create-admin", metavar="NAME",
                                     help="Create this admin account (a password is "
                                     "generated and printed once) before starting."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
    trusted_proxy: list[str] | None = typer.Option(
        None, "--trusted-proxy", metavar="ADDRESS",
        help="Address or network (e.g. 127.0.0.1, 10.0.0.0/8) of a reverse proxy whose "
             "X-Forwarded-For header names the client; repeat for several. Without it the "
             "header is ignored."),
) -> None:
    """Start the web app (clinician and patient pages) with the embedded defaults.

    On the first start, with no account yet, an ``admin`` account is created and its
    generated password printed once.
    """
    import uvicorn

    from opennmes.store import open_store
    from opennmes.web import Accounts, Settings, create_app

    settings = Settings.load(db_url=db, trusted_proxies=tuple(trusted_proxy or ()))
    store = open_store(db)
    accounts = Accounts(store)
    name = create_admin or ("admin" if accounts.count_users() == 0 else None)
    if name:
        password = secrets.token_urlsafe(12)
        accounts.create_user(name, password, "admin")
        accounts.audit(None, "user_created", f"admin account {name} created by nmes serve",
                       detail={"username": name, "role": "admin"})
        typer.echo(f"created admin account {name!r} with password: {password}")
        typer.echo("(shown once; log in and create clinician accounts under Accounts)")
    app = create_app(settings, store=store)
    typer.echo(f"OpenNMES web app on http://{host}:{port}/  (database {store.url})")
    try:
        # keep idle browser connections longer than a user reads a page; the app itself
        # decides whose X-Forwarded-For to believe (Settings.trusted_proxies), so uvicorn's
        # own proxy handling (which believes any local peer) stays off
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_keep_alive=30,
                    proxy_headers=False)
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add ``nmes serve`` to the CLI."""
    app.command("serve")(serve)
