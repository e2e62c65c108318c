"""A real browser (Debian chromium driven by Playwright) against the served app."""

from __future__ import annotations

import pytest

from .conftest import browser_login, shot

pytestmark = pytest.mark.browser


def test_login_sets_a_secure_cookie_and_shows_the_patient_list(live_server, browser_page):  # type: ignore[no-untyped-def]
    page = browser_page
    page.goto(f"{live_server.url}/patients")
    assert page.url.startswith(f"{live_server.url}/login?next=")  # not logged in: redirected
    shot(page, "01-login")
    browser_login(page, live_server.url, "clin")
    page.wait_for_url(f"{live_server.url}/patients")
    assert page.locator("#patients").inner_text().count("TKA-") == 1  # only their patient
    assert "TKA-001" in page.content() and "TKA-002" not in page.content()
    cookies = page.context.cookies()
    session = [c for c in cookies if c["name"] == "nmes_session"]
    assert session and session[0]["secure"] and session[0]["httpOnly"]
    assert session[0]["sameSite"] == "Strict"
    shot(page, "02-patients")
    assert page.js_errors == []
