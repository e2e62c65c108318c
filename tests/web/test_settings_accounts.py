"""Settings refuse insecure defaults; accounts hash passwords; logins are rate limited."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from opennmes.store import Store
from opennmes.web import AccountError, Accounts, LoginLimiter, Settings, WebConfigError

from .conftest import PASSWORDS


def test_secret_key_is_generated_once_and_stored_private(tmp_path: Path) -> None:
    a = Settings.load(data_dir=tmp_path)
    b = Settings.load(data_dir=tmp_path)
    assert a.secret_key == b.secret_key and len(a.secret_key) >= 60
    key_file = tmp_path / "web-secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    os.chmod(key_file, 0o644)
    with pytest.raises(WebConfigError, match="readable by others"):
        Settings.load(data_dir=tmp_path)


@pytest.mark.parametrize("key, match", [("changeme", "placeholder"),
                                        ("a" * 64, "placeholder or too uniform"),
                                        ("abcdefghij0123", "14 characters, fewer than")])
def test_insecure_secret_keys_are_refused(key: str, match: str) -> None:
    with pytest.raises(WebConfigError, match=match):
        Settings(secret_key=key)
    with pytest.raises(WebConfigError, match=match):
        Settings.load(secret_key=key)


def test_secret_key_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NMES_SECRET_KEY", "Env-Key-0123456789-abcdefghijKLMN")
    assert Settings.load(data_dir=tmp_path).secret_key == "Env-Key-0123456789-abcdefghijKLMN"
    assert not (tmp_path / "web-secret.key").exists()


def test_passwords_are_argon2_hashes(store: Store) -> None:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        hashes = dict(conn.execute(sa.text("SELECT username, password_hash FROM users")).all())
    assert hashes["clin"].startswith("$argon2id$")
    assert PASSWORDS["clin"] not in hashes["clin"]
    accounts = Accounts(store)
    assert accounts.authenticate("clin", PASSWORDS["clin"]) is not None
    assert accounts.authenticate("CLIN ", PASSWORDS["clin"]) is not None  # names are lower-case
    assert accounts.authenticate("clin", PASSWORDS["clin"] + "x") is None
    assert accounts.authenticate("nobody", "whatever-123") is None


@pytest.mark.parametrize("args, match", [
    (("x", "long-enough-1", "clinician"), "2 to 64 characters"),
    (("nurse", "short", "clinician"), "5 characters; at least 10"),
    (("nurse", "long-enough-1", "doctor"), "role 'doctor' is unknown"),
    (("nurse", "long-enough-1", "patient"), "needs the patient id"),
    (("nurse", "long-enough-1", "patient", "NOPE"), "unknown patient 'NOPE'"),
    (("clin", "long-enough-1", "clinician"), "is taken"),
])
def test_bad_accounts_are_refused(store: Store, args: tuple[str, ...], match: str) -> None:
    accounts = Accounts(store)
    n = accounts.count_users()
    with pytest.raises(AccountError, match=match):
        accounts.create_user(*args)
    assert accounts.count_users() == n


def test_login_limiter_window() -> None:
    limiter = LoginLimiter(max_failures=3, window=60.0)
    for _ in range(2):
        limiter.failed("k")
    assert limiter.retry_after("k") == 0.0
    limiter.failed("k")
    assert 59.0 < limiter.retry_after("k") <= 60.0
    assert limiter.retry_after("other") == 0.0
    limiter.succeeded("k")
    assert limiter.retry_after("k") == 0.0


def test_login_is_rate_limited_and_audited(client_for, app) -> None:  # type: ignore[no-untyped-def]
    c = client_for()
    for _ in range(5):
        r = c.submit("/login", {"username": "clin", "password": "wrong-password"})
        assert r.status_code == 401 and "wrong" in r.text
    r = c.submit("/login", {"username": "clin", "password": PASSWORDS["clin"]})
    assert r.status_code == 429 and "Too many failed attempts" in r.text  # even the right one
    actions = [e.action for e in app.state.accounts.list_audit()]
    assert actions.count("login_failed") == 5 and "login_blocked" in actions
    # another user from the same client is not blocked
    r = c.submit("/login", {"username": "clin2", "password": PASSWORDS["clin2"]})
    assert r.status_code == 303


def test_login_renews_the_session_and_logout_ends_it(client_for) -> None:  # type: ignore[no-untyped-def]
    c = client_for()
    before = c.cookies.get("nmes_session")
    r = c.submit("/login", {"username": "clin", "password": PASSWORDS["clin"],
                            "next": "//evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/patients"  # no open redirect
    assert c.cookies.get("nmes_session") != before
    c.page("/patients")
    assert c.submit("/logout").headers["location"] == "/login"
    assert c.get("/patients", follow_redirects=False).status_code == 303


def test_security_headers(client_for) -> None:  # type: ignore[no-untyped-def]
    r = client_for("clin").get("/patients")
    assert r.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    cookie = r.request.headers.get("cookie", "")
    assert "nmes_session=" in cookie
