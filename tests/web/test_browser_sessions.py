"""Login sessions in a real browser: an admin logs a clinician out everywhere; the clinician
changes their password on the account page."""

from __future__ import annotations

import pytest

from .conftest import PASSWORDS, browser_login, shot

pytestmark = pytest.mark.browser


def test_log_out_everywhere_and_change_password(live_server, browser_factory, app) -> None:  # type: ignore[no-untyped-def]
    base = live_server.url
    clin, admin = browser_factory(), browser_factory()
    browser_login(clin, base, "clin")
    clin.wait_for_url(f"{base}/patients")
    browser_login(admin, base, "admin")
    admin.wait_for_url(f"{base}/admin/users")
    assert "clin" in admin.inner_text("#sessions")
    shot(admin, "admin-03-login-sessions")
    admin.click("#account-clin button:has-text('Log out everywhere')")
    admin.wait_for_url(f"{base}/admin/users")
    assert "clin is logged out everywhere (1 login session ended)." in admin.inner_text("main")
    clin.goto(f"{base}/patients")
    assert clin.url.startswith(f"{base}/login?next=")  # the browser's cookie opens nothing
    browser_login(clin, base, "clin")
    clin.wait_for_url(f"{base}/patients")
    clin.click("a:has-text('My account')")
    clin.wait_for_url(f"{base}/account")
    clin.fill("input[name=current_password]", PASSWORDS["clin"])
    clin.fill("input[name=new_password]", "a-new-clin-pass-789")
    clin.fill("input[name=new_password_again]", "a-new-clin-pass-789")
    clin.click("button:has-text('Change password')")
    clin.wait_for_url(f"{base}/account")
    assert "Your password is changed." in clin.inner_text("main")
    assert "this one" in clin.inner_text("#my-sessions")
    shot(clin, "clinician-11-account")
    clin.goto(f"{base}/patients")
    assert clin.url == f"{base}/patients"  # still logged in, with a new session
    assert app.state.accounts.authenticate("clin", "a-new-clin-pass-789") is not None
    assert clin.js_errors == [] and admin.js_errors == []
