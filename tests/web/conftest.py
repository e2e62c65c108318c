"""Fixtures of the web tests: a temp SQLite store, the app, accounts for every role, and
clients that log in through the real login form."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opennmes.store import Store, open_store
from opennmes.web import Accounts, Settings, create_app

PASSWORDS = {"admin": "admin-pass-123", "clin": "clin-pass-123", "clin2": "clin2-pass-123",
             "pat": "pat-pass-1234", "pat2": "pat2-pass-123"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _no_user_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user data directory or a configured database."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("NMES_DB_URL", raising=False)
    monkeypatch.delenv("NMES_SECRET_KEY", raising=False)


def seed(store: Store) -> None:
    """Two clinicians with one patient each, both patients with a login, and an admin."""
    accounts = Accounts(store)
    accounts.create_user("admin", PASSWORDS["admin"], "admin")
    accounts.create_user("clin", PASSWORDS["clin"], "clinician")
    accounts.create_user("clin2", PASSWORDS["clin2"], "clinician")
    store.add_patient("TKA-001", year_of_birth=1955, sex="female", height=1.65, mass=70.0,
                      clinician="clin")
    store.add_patient("TKA-002", year_of_birth=1960, sex="male", clinician="clin2")
    accounts.create_user("pat", PASSWORDS["pat"], "patient", "TKA-001")
    accounts.create_user("pat2", PASSWORDS["pat2"], "patient", "TKA-002")


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded database made once (argon2 hashing is slow on purpose); tests get a copy."""
    path = tmp_path_factory.mktemp("template") / "web.db"
    with open_store(f"sqlite:///{path}") as st:
        seed(st)
    return path


@pytest.fixture()
def store(tmp_path: Path, _template_db: Path) -> Iterator[Store]:
    import shutil

    for suffix in ("", "-wal", "-shm"):
        src = _template_db.with_name(_template_db.name + suffix)
        if src.exists():
            shutil.copy(src, tmp_path / f"web.db{suffix}")
    with open_store(f"sqlite:///{tmp_path / 'web.db'}") as st:
        yield st


@pytest.fixture()
def settings() -> Settings:
    return Settings(secret_key=secrets.token_urlsafe(40), live_period=0.05)


@pytest.fixture()
def app(settings: Settings, store: Store):  # type: ignore[no-untyped-def]
    application = create_app(settings, store=store)
    yield application
    application.state.live.stop_all("test over")  # no session process outlives its test


def csrf_of(html: str) -> str:
    """The CSRF token in a rendered page."""
    m = _CSRF.search(html)
    assert m, "page has no CSRF token"
    return m.group(1)


class Client(TestClient):
    """A test client that remembers the page's CSRF token."""

    csrf: str = ""

    def page(self, url: str) -> str:
        r = self.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:500])
        self.csrf = csrf_of(r.text)
        return r.text

    def submit(self, url: str, data: dict[str, str] | None = None, **kw):  # type: ignore[no-untyped-def]
        payload = {"csrf_token": self.csrf, **(data or {})}
        return self.post(url, data=payload, follow_redirects=False, **kw)


def make_client(app, username: str | None = None) -> Client:  # type: ignore[no-untyped-def]
    client = Client(app, base_url="https://testserver")
    client.page("/login")
    if username is not None:
        r = client.submit("/login", {"username": username, "password": PASSWORDS[username]})
        assert r.status_code == 303, r.text[:500]
        client.page(r.headers["location"])
    return client


@pytest.fixture()
def client_for(app):  # type: ignore[no-untyped-def]
    clients: list[Client] = []

    def factory(username: str | None = None) -> Client:
        c = make_client(app, username)
        clients.append(c)
        return c

    yield factory
    for c in clients:
        c.close()


# --------------------------------------------------------------------------- browser tests
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "_artifacts" / "screenshots"


class LiveServer:
    """The app served by uvicorn on 127.0.0.1 at a random free port, in a thread."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        import threading

        import uvicorn

        # as `nmes serve` runs it: the app, not uvicorn, reads X-Forwarded-For
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="on", proxy_headers=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        import time

        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture()
def live_server(app) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    server = LiveServer(app)
    yield server
    server.stop()


# the session's Playwright is the fixture `_playwright` of tests/conftest.py (one per process)


@pytest.fixture()
def browser_factory(_playwright, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Pages of fresh headless Chromium instances (own user-data dir each)."""
    contexts = []

    def factory(javascript: bool = True):  # type: ignore[no-untyped-def]
        ctx = _playwright.chromium.launch_persistent_context(
            str(tmp_path / f"chromium-profile-{len(contexts)}"), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1200, "height": 900},
            java_script_enabled=javascript)
        contexts.append(ctx)
        ctx.set_default_timeout(15_000)
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.js_errors = errors
        return page

    yield factory
    for ctx in contexts:
        ctx.close()


@pytest.fixture()
def browser_page(browser_factory):  # type: ignore[no-untyped-def]
    """A page of a fresh headless Chromium (own user-data dir)."""
    return browser_factory()


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot under tests/_artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def browser_login(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("button:has-text('Log in')")


# --------------------------------------------------------------------------- functional channels
def button_protocol_text() -> str:
    """The library's EMG-triggered hand-opening protocol with a button trigger instead (a
    30-minute session, as the library's)."""
    from opennmes.therapy import PROTOCOL_DIR

    text = (PROTOCOL_DIR / "stroke-hand-opening-emg.yaml").read_text()
    swaps = [("id: stroke-hand-opening-emg", "id: stroke-hand-opening-button"),
             ("title: Hand opening after stroke, EMG-triggered NMES",
              "title: Hand opening after stroke, button-triggered NMES"),
             ("  source: emg\n  start_on: emg-above-threshold\n  threshold: 3.0\n"
              "  threshold_unit: x-baseline-rms\n", "  source: button\n  start_on: press\n"),
             ("trigger: {source: emg, signal: wrist_extensors.emg, threshold: 3, refractory: 8 s,"
              "\n                max_burst: 7 s}",
              "trigger: {source: button, refractory: 3 s, max_burst: 7 s}"),
             ("  name: Stroke hand opening, EMG-triggered burst",
              "  name: Stroke hand opening, button-triggered burst"),
             ("      off: 8 s\n", "      off: 3 s\n")]
    for old, new in swaps:
        assert text.count(old) == 1, f"the library protocol changed: {old!r} not found once"
        text = text.replace(old, new)
    return text


@pytest.fixture()
def button_protocol(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A button-triggered protocol added to the protocol library for this test."""
    from opennmes.therapy import _library, load_protocol_text

    proto = load_protocol_text(button_protocol_text(), source="button test protocol")
    lib = dict(_library._library())
    lib[proto.id] = proto
    monkeypatch.setattr(_library, "_library", lambda: lib)
    return proto
