"""Login sessions kept on the server: a cookie saved before logout, a password change, a
deactivation or an admin's "log out everywhere" opens nothing afterwards."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from opennmes.stim import load_program_text
from opennmes.store import Store, open_store
from opennmes.web import COOKIE_NAME, Accounts, Settings, create_app

from .conftest import PASSWORDS, Client, make_client
from .test_access import PROGRAM
from .test_bad_input import error_of


def saved_cookie(client: Client) -> str:
    value = client.cookies.get(COOKIE_NAME)
    assert value, "the client has no session cookie"
    return value


def replay(app, cookie: str, url: str = "/patients"):  # type: ignore[no-untyped-def]
    """GET ``url`` from another browser that carries only the saved cookie."""
    other = TestClient(app, base_url="https://testserver")
    try:
        return other.get(url, headers={"cookie": f"{COOKIE_NAME}={cookie}"},
                         follow_redirects=False)
    finally:
        other.close()


def opens_nothing(app, cookie: str) -> bool:  # type: ignore[no-untyped-def]
    r = replay(app, cookie)
    return r.status_code == 303 and r.headers["location"].startswith("/login")


def user_id(app, username: str) -> int:  # type: ignore[no-untyped-def]
    """The id of an active account."""
    return next(u.id for u in app.state.accounts.list_users() if u.username == username)


def test_a_cookie_saved_before_logout_opens_nothing_after_it(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    c = make_client(app, "clin")
    cookie, token = saved_cookie(c), c.csrf
    assert replay(app, cookie).status_code == 200  # the copy works while logged in
    run = app.state.live.start(app.state.accounts.get_user(user_id(app, "clin")), "TKA-001",
                               load_program_text(PROGRAM), "sim://")
    try:
        assert replay(app, cookie, f"/live/{run.id}/data").status_code == 200
        assert c.submit("/logout").headers["location"] == "/login"
        assert opens_nothing(app, cookie)
        # nor the live feed (answered from memory) or a form with the old page's token
        assert replay(app, cookie, f"/live/{run.id}/data").status_code == 401
        other = TestClient(app, base_url="https://testserver")
        r = other.post("/patients", data={"csrf_token": token, "patient_id": "TKA-666"},
                       headers={"cookie": f"{COOKIE_NAME}={cookie}"}, follow_redirects=False)
        other.close()
        assert r.status_code == 401
        assert "TKA-666" not in [p.id for p in store.list_patients()]
    finally:
        app.state.live.stop_all("test over")
    [ws] = [s for s in _rows(store) if s["user_id"] == user_id(app, "clin")]
    assert ws["revoked_reason"] == "logout" and ws["revoked_at"] is not None
    assert len(ws["token_hash"]) == 64 and ws["token_hash"] not in cookie  # only a hash


def _rows(store: Store) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM web_sessions"))]


def test_password_change_ends_every_other_session(app) -> None:  # type: ignore[no-untyped-def]
    here, elsewhere = make_client(app, "clin"), make_client(app, "clin")
    before_here, before_elsewhere = saved_cookie(here), saved_cookie(elsewhere)
    here.page("/account")
    new = "a-new-clin-pass-456"
    r = here.submit("/account/password", {"current_password": PASSWORDS["clin"],
                                          "new_password": new, "new_password_again": new})
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert "Your password is changed" in here.page("/account")  # this browser stays in
    assert saved_cookie(here) != before_here  # ... with a new login session
    assert opens_nothing(app, before_elsewhere)
    assert opens_nothing(app, before_here)
    assert elsewhere.get("/patients", follow_redirects=False).status_code == 303
    accounts: Accounts = app.state.accounts
    assert accounts.authenticate("clin", PASSWORDS["clin"]) is None
    assert accounts.authenticate("clin", new) is not None
    [entry] = [e for e in accounts.list_audit() if e.action == "password_changed"]
    assert entry.username == "clin" and entry.detail == {"sessions_ended": 2}


@pytest.mark.parametrize("fields, expected", [
    ({"current_password": "not-my-password", "new_password": "another-pass-123",
      "new_password_again": "another-pass-123"}, "The current password is wrong"),
    ({"current_password": PASSWORDS["clin"], "new_password": "short",
      "new_password_again": "short"}, "the password has 5 characters; at least 10"),
    ({"current_password": PASSWORDS["clin"], "new_password": "another-pass-123",
      "new_password_again": "another-pass-124"}, "the two new passwords differ"),
    ({"current_password": PASSWORDS["clin"], "new_password": PASSWORDS["clin"],
      "new_password_again": PASSWORDS["clin"]}, "the new password is the current one"),
])
def test_a_refused_password_change_changes_nothing(app, fields: dict[str, str],
                                                   expected: str) -> None:  # type: ignore[no-untyped-def]
    c = make_client(app, "clin")
    cookie = saved_cookie(c)
    c.page("/account")
    r = c.submit("/account/password", fields)
    assert r.status_code == 400 and expected in error_of(r.text), error_of(r.text)
    assert app.state.accounts.authenticate("clin", PASSWORDS["clin"]) is not None
    assert replay(app, cookie).status_code == 200  # still logged in


def test_deactivation_ends_the_sessions_and_the_logins(app) -> None:  # type: ignore[no-untyped-def]
    clin = make_client(app, "clin")
    cookie, clin_id = saved_cookie(clin), user_id(app, "clin")
    admin = make_client(app, "admin")
    html = admin.page("/admin/users")
    assert 'id="account-clin"' in html
    r = admin.submit(f"/admin/users/{clin_id}/deactivate")
    assert r.status_code == 303
    html = admin.page("/admin/users")
    assert "Account clin deactivated" in html and "deactivated</span>" in html
    assert opens_nothing(app, cookie)
    r = make_client(app).submit("/login", {"username": "clin", "password": PASSWORDS["clin"]})
    assert r.status_code == 401 and "User name or password is wrong" in r.text
    actions = [e.action for e in app.state.accounts.list_audit()]
    assert "user_deactivated" in actions
    # reactivated, the account logs in again (the old cookie stays dead)
    assert admin.submit(f"/admin/users/{clin_id}/activate").status_code == 303
    make_client(app, "clin")
    assert opens_nothing(app, cookie)
    assert "user_reactivated" in [e.action for e in app.state.accounts.list_audit()]


def test_an_admin_cannot_deactivate_their_own_account(app) -> None:  # type: ignore[no-untyped-def]
    admin = make_client(app, "admin")
    admin.page("/admin/users")
    r = admin.submit(f"/admin/users/{user_id(app, 'admin')}/deactivate")
    assert r.status_code == 400 and "cannot deactivate your own account" in error_of(r.text)
    assert admin.get("/admin/users").status_code == 200


def test_log_out_everywhere_and_end_one_session(app) -> None:  # type: ignore[no-untyped-def]
    first, second, third = (make_client(app, "pat") for _ in range(3))
    cookies = [saved_cookie(c) for c in (first, second, third)]
    admin = make_client(app, "admin")
    html = admin.page("/admin/users")
    assert html.split('id="sessions"')[1].count("<td>pat</td>") == 3  # three listed
    sessions = app.state.sessions.list_live(user_id(app, "pat"))
    assert len(sessions) == 3
    # end one session: only that browser is out
    ended = sessions[0]  # the most recently used: the third
    r = admin.submit(f"/admin/sessions/{ended.id}/end")
    assert r.status_code == 303
    assert opens_nothing(app, cookies[2])
    assert replay(app, cookies[0], "/home").status_code == 200
    # log out everywhere: the rest too
    admin.page("/admin/users")
    r = admin.submit(f"/admin/users/{user_id(app, 'pat')}/logout")
    assert r.status_code == 303
    assert "pat is logged out everywhere (2 login sessions ended)" in admin.page("/admin/users")
    assert all(opens_nothing(app, c) for c in cookies)
    assert app.state.sessions.list_live(user_id(app, "pat")) == []
    actions = [e.action for e in app.state.accounts.list_audit()]
    assert "sessions_ended" in actions and "session_ended" in actions
    # the patient logs in again
    make_client(app, "pat")


def test_sessions_end_when_idle_or_old(store: Store) -> None:
    """Times come from an injected clock (no waiting)."""
    import secrets

    settings = Settings(secret_key=secrets.token_urlsafe(40), session_max_age=3600.0,
                        session_idle_timeout=600.0)
    app = create_app(settings, store=store)
    sessions = app.state.sessions
    now = [dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)]
    sessions.now = lambda: now[0]
    sessions.cache_ttl = 0.0  # every request asks the database
    c = make_client(app, "clin")
    cookie = saved_cookie(c)
    for _ in range(10):  # used every 5 minutes: alive until the hour is over
        now[0] += dt.timedelta(minutes=5)
        assert replay(app, cookie).status_code == 200
    now[0] += dt.timedelta(minutes=9, seconds=59)
    assert replay(app, cookie).status_code == 200
    now[0] += dt.timedelta(minutes=1)  # 60 minutes after the login
    assert opens_nothing(app, cookie)
    c = make_client(app, "clin")
    cookie = saved_cookie(c)
    now[0] += dt.timedelta(minutes=10, seconds=1)  # idle for longer than 10 minutes
    assert opens_nothing(app, cookie)


def test_an_existing_database_upgrades_and_logs_in(tmp_path: Path) -> None:
    """A database made before login sessions (revision 0002, with an account in it) is
    migrated on open; its account logs in and gets a login session."""
    import secrets

    from argon2 import PasswordHasher

    from opennmes.store._engine import current_revision, head_revision, make_engine, upgrade_schema

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade_schema(engine, "0002")
    with engine.begin() as conn:
        assert "web_sessions" not in sa.inspect(conn).get_table_names()
        conn.execute(sa.text("INSERT INTO users (username, password_hash, role, active, "
                             "created_at) VALUES ('clin', :h, 'clinician', 1, :t)"),
                     {"h": PasswordHasher().hash(PASSWORDS["clin"]),
                      "t": dt.datetime(2026, 1, 5, 8, 0)})
    engine.dispose()
    with open_store(url) as st:
        assert current_revision(st.engine) == head_revision()
        with st.engine.connect() as conn:
            assert "web_sessions" in sa.inspect(conn).get_table_names()
        app = create_app(Settings(secret_key=secrets.token_urlsafe(40)), store=st)
        c = make_client(app, "clin")
        assert c.get("/patients").status_code == 200
        assert [s.username for s in app.state.sessions.list_live()] == ["clin"]
