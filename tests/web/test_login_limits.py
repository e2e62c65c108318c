"""Login limits keyed on the real client: X-Forwarded-For only from trusted proxies, and the
per-account lockout (times from an injected clock, no waiting)."""

from __future__ import annotations

import re
import secrets
import signal
from pathlib import Path

import httpx
import pytest

from opennmes.store import Store, open_store
from opennmes.web import Accounts, Settings, WebConfigError, create_app

from .conftest import PASSWORDS, Client, csrf_of
from .test_serve_cli import _free_port, _serve, _wait_up


def anon(app, address: str) -> Client:  # type: ignore[no-untyped-def]
    """A browser on the login page, connecting from ``address``."""
    c = Client(app, base_url="https://testserver", client=(address, 50000))
    c.page("/login")
    return c


def login(c: Client, username: str, password: str, forwarded_for: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else None
    return c.submit("/login", {"username": username, "password": password}, headers=headers)


def test_forged_forwarded_for_does_not_escape_the_limit_under_nmes_serve(tmp_path: Path) -> None:
    """Through `nmes serve` (uvicorn on 127.0.0.1): five wrong passwords, each claiming another
    client in X-Forwarded-For, then the right one: still refused."""
    db = f"sqlite:///{tmp_path / 'clinic.db'}"
    port = _free_port()
    proc = _serve(tmp_path, db, port)
    try:
        assert proc.stdout is not None
        m = re.match(r"created admin account 'admin' with password: (\S+)",
                     proc.stdout.readline())
        assert m
        r = _wait_up(port, proc)
        cookie = r.headers["set-cookie"].split(";")[0]  # Secure: carried by hand
        token = csrf_of(r.text)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as h:

            def attempt(password: str, forged: str) -> int:
                h.cookies.clear()
                return h.post("/login", data={"csrf_token": token, "username": "admin",
                                              "password": password},
                              headers={"cookie": cookie, "x-forwarded-for": forged,
                                       "forwarded": f"for={forged}", "x-real-ip": forged},
                              ).status_code

            statuses = [attempt("wrong-password", f"203.0.113.{i}") for i in range(6)]
            assert statuses == [401] * 5 + [429]
            assert attempt(m.group(1), "198.51.100.1") == 429
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    with open_store(db) as store:
        audit = Accounts(store).list_audit()
    failed = [e.detail["client"] for e in audit if e.action == "login_failed"]
    assert failed == ["127.0.0.1"] * 5  # the real peer, never a forged address


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored(app) -> None:  # type: ignore[no-untyped-def]
    c = anon(app, "192.0.2.50")
    for i in range(5):
        assert login(c, "clin", "wrong-password", f"203.0.113.{i}").status_code == 401
    r = login(c, "clin", PASSWORDS["clin"], "198.51.100.1")
    assert r.status_code == 429 and "Too many failed attempts" in r.text


def test_a_trusted_proxys_forwarded_for_is_honoured(store: Store) -> None:
    settings = Settings(secret_key=secrets.token_urlsafe(40), trusted_proxies=("10.0.0.0/8",))
    app = create_app(settings, store=store)
    proxy = anon(app, "10.1.2.3")  # every browser comes through the proxy
    for _ in range(5):
        assert login(proxy, "clin", "wrong-password", "203.0.113.7").status_code == 401
    r = login(proxy, "clin", PASSWORDS["clin"], "203.0.113.7")
    assert r.status_code == 429  # that client is limited ...
    r = login(proxy, "clin", PASSWORDS["clin"], "198.51.100.9, 10.9.9.9")
    assert r.status_code == 303  # ... another client behind the same proxy is not
    audit = app.state.accounts.list_audit()
    [ok] = [e for e in audit if e.action == "login"]
    assert ok.detail == {"client": "198.51.100.9"}
    assert {e.detail["peer"] for e in audit if e.action == "login_failed"} == {"10.1.2.3"}
    assert {e.detail["client"] for e in audit if e.action == "login_failed"} == {"203.0.113.7"}


@pytest.mark.parametrize("peer, header, client", [
    ("10.0.0.5", ["203.0.113.7"], "203.0.113.7"),
    ("10.0.0.5", ["198.51.100.1, 203.0.113.7, 10.0.0.6"], "203.0.113.7"),  # proxies skipped
    ("10.0.0.5", ["198.51.100.1", "203.0.113.7"], "203.0.113.7"),  # several header lines
    ("10.0.0.5", ["10.0.0.7, 10.0.0.6"], "10.0.0.7"),  # only proxies: the farthest one
    ("10.0.0.5", ["203.0.113.7, not-an-ip"], "10.0.0.5"),  # garbage: the last trusted hop
    ("10.0.0.5", [], "10.0.0.5"),
    ("192.0.2.1", ["203.0.113.7"], "192.0.2.1"),  # untrusted peer: header ignored
    ("::ffff:10.0.0.5", ["2001:db8::1"], "2001:db8::1"),
    ("testclient", ["203.0.113.7"], "testclient"),
])
def test_client_address_from_forwarded_for(peer: str, header: list[str], client: str) -> None:
    from opennmes.web._middleware import TrustedProxies

    assert TrustedProxies(("10.0.0.0/8",)).client_of(peer, header) == client
    assert TrustedProxies(()).client_of(peer, header) == peer


@pytest.mark.parametrize("proxies, match", [(("localhost",), "'localhost' is not an IP"),
                                            ("127.0.0.1", "not one string")])
def test_bad_trusted_proxies_are_refused(proxies: object, match: str) -> None:
    with pytest.raises(WebConfigError, match=match):
        Settings(secret_key=secrets.token_urlsafe(40), trusted_proxies=proxies)  # type: ignore[arg-type]


def test_an_account_locks_after_failures_from_many_addresses(app) -> None:  # type: ignore[no-untyped-def]
    """10 failures in 15 minutes from ten addresses lock the account for 15 minutes."""
    now = [1000.0]
    app.state.lockout.clock = lambda: now[0]
    for i in range(9):
        r = login(anon(app, f"203.0.113.{i}"), "clin", "wrong-password")
        assert r.status_code == 401 and "locked" not in r.text
        now[0] += 30.0
    r = login(anon(app, "203.0.113.9"), "clin", "wrong-password")
    assert r.status_code == 401
    assert "the account is now locked: try again in 15 minutes" in r.text
    # locked: even the right password, from a fresh address, is refused, in plain words
    r = login(anon(app, "198.51.100.1"), "clin", PASSWORDS["clin"])
    assert r.status_code == 429
    assert "it is locked for now. Try again in 15 minutes." in r.text
    now[0] += 14 * 60
    r = login(anon(app, "198.51.100.2"), "clin", PASSWORDS["clin"])
    assert r.status_code == 429 and "Try again in 1 minute." in r.text
    # another account is not affected
    assert login(anon(app, "198.51.100.3"), "clin2", PASSWORDS["clin2"]).status_code == 303
    # once the lock has expired the right password works
    now[0] += 60
    assert login(anon(app, "198.51.100.4"), "clin", PASSWORDS["clin"]).status_code == 303
    actions = [e.action for e in app.state.accounts.list_audit()]
    assert actions.count("account_locked") == 1 and actions.count("login_blocked") == 2


def test_unknown_names_lock_like_real_ones(app) -> None:  # type: ignore[no-untyped-def]
    """The lockout does not tell which user names exist."""
    for name in ("clin", "nobody-here"):
        for i in range(10):
            r = login(anon(app, f"203.0.113.{i}"), name, "wrong-password")
        assert r.status_code == 401 and "now locked" in r.text
        r = login(anon(app, "198.51.100.1"), name, "whatever-pass-1")
        assert r.status_code == 429 and "Try again in 15 minutes." in r.text


def test_wrong_current_passwords_count_towards_the_lockout(app) -> None:  # type: ignore[no-untyped-def]
    """A stolen session is no way around the lockout to guess the password."""
    from .conftest import make_client

    c = make_client(app, "clin")
    c.page("/account")
    for _ in range(10):
        r = c.submit("/account/password", {"current_password": "a-guess-12345",
                                           "new_password": "another-pass-123",
                                           "new_password_again": "another-pass-123"})
        assert r.status_code == 400
    assert "now locked" in r.text
    r = c.submit("/account/password", {"current_password": PASSWORDS["clin"],
                                       "new_password": "another-pass-123",
                                       "new_password_again": "another-pass-123"})
    assert r.status_code == 429 and "Try again in 15 minutes" in r.text
    assert app.state.accounts.authenticate("clin", PASSWORDS["clin"]) is not None


def test_nmes_serve_passes_trusted_proxies_and_keeps_uvicorns_proxy_handling_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from opennmes.cli import app as cli

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    result = CliRunner().invoke(cli, ["serve", "--db", f"sqlite:///{tmp_path / 'x.db'}",
                                      "--trusted-proxy", "127.0.0.1",
                                      "--trusted-proxy", "10.0.0.0/8"])
    assert result.exit_code == 0, result.output
    assert seen["proxy_headers"] is False
    assert seen["app"].state.settings.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")  # type: ignore[attr-defined]


@pytest.mark.parametrize("seconds, words", [(0.2, "1 second"), (40, "40 seconds"),
                                            (60, "1 minute"), (61, "2 minutes"),
                                            (900, "15 minutes"), (3600, "1 hour"),
                                            (5400, "1 hour 30 minutes")])
def test_waits_in_plain_words(seconds: float, words: str) -> None:
    from opennmes.web._limits import wait_words

    assert wait_words(seconds) == words
