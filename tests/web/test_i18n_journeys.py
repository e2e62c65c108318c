"""The home patient's journey in a real headless Chromium, in English and in German, at phone
width (360 x 740) and on a desktop: log in, today's session with the placement picture, start,
one step up, pause and resume, rate comfort, stop, the session record, the account page. Every
page is checked with axe-core (0 serious or critical violations), searched for English texts
of the catalogue (German journeys), checked for horizontal overflow (phone), and saved as a
screenshot under tests/_artifacts/screenshots/i18n-*.png.

German comes two ways: from the browser's language (phone) and from the account's own
language setting in a browser set to English (desktop)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from opennmes import i18n
from opennmes.store import Store
from opennmes.therapy import TherapyRecord
from tests.browser_tools import axe_violations

from .conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORDS, shot
from .test_accessibility import PHONE, _no_overflow
from .test_i18n_pages import _untranslated, english_sources

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return i18n.extract_messages()


def _prescribe(store: Store) -> str:
    """Today's session for TKA-001 and two strength measurements; the program's name."""
    rec = TherapyRecord(store)
    rx = rec.prescribe("TKA-001", "total-knee-arthroplasty", side="right",
                  start_date=dt.date.today(), by="clin", notes="Two sessions a day, sitting.")
    rec.record_outcome("TKA-001", "mvic_torque", 85.5,
                       measured_on=dt.date.today() - dt.timedelta(days=14), side="right")
    rec.record_outcome("TKA-001", "mvic_torque", 102.5, measured_on=dt.date.today(),
                       side="right")
    return rx.program_name


@pytest.mark.parametrize(("lang", "device"), [("en", "phone"), ("de", "phone"),
                                              ("en", "desktop"), ("de", "desktop")])
def test_the_home_patients_journey_in_her_language(  # type: ignore[no-untyped-def]
        live_server, _playwright, store: Store, catalog: Catalog, tmp_path: Path,
        lang: str, device: str) -> None:
    program = _prescribe(store)
    base = live_server.url
    viewport = PHONE if device == "phone" else DESKTOP
    # phone: the browser asks for German; desktop: an English browser, German chosen on the
    # account page (the account's setting)
    browser_lang = "de-DE" if (lang, device) == ("de", "phone") else "en-GB"
    ctx = _playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
        args=CHROMIUM_ARGS, viewport=viewport, locale=browser_lang)
    ctx.set_default_timeout(60_000)
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sources = english_sources(catalog, lang) if lang != "en" else []
    found: dict[str, list[str]] = {}
    step = 0
    # what the records hold in English, shown as written: the therapist's note, the
    # program's name, and (once the session has ended) the reason it ended
    data = ["Two sessions a day, sitting.", program]

    def _(text: str) -> str:
        return i18n.gettext(lang, text)

    def check(name: str, page_lang: str = lang) -> None:
        nonlocal step
        step += 1
        page.wait_for_load_state("load")
        assert page.evaluate("() => document.documentElement.lang") == page_lang, name
        for v in axe_violations(page):
            found.setdefault(name, []).append(f"[{v['impact']}] {v['id']}: {v['help']}")
        if sources and page_lang == lang:
            bad = _untranslated(page.content(), sources, lang, tuple(data))
            if bad:
                found.setdefault(name, []).append(f"English: {bad}")
        shot(page, f"i18n-home-patient-{lang}-{device}-{step:02d}-{name}")
        if device == "phone":
            _no_overflow(page)

    try:
        page.goto(f"{base}/login")
        check("login", "de" if browser_lang == "de-DE" else "en")
        page.fill("input[name=username]", "pat")
        page.fill("input[name=password]", PASSWORDS["pat"])
        page.click("main form button[type=submit]")
        page.wait_for_url(f"{base}/home")
        if browser_lang != "de-DE" and lang == "de":  # the account's own language
            page.goto(f"{base}/account")
            check("account-before", "en")
            page.select_option("#language-form select[name=lang]", "de")
            page.click("#language-form button[type=submit]")
            page.wait_for_url(f"{base}/account")
            assert page.evaluate("() => document.documentElement.lang") == "de"
            page.goto(f"{base}/home")
        check("home")
        body = page.inner_text("main")
        for text in ("Where the pads go", "Start today's session", "Your progress"):
            assert _(text) in body, (text, body[:800])
        number = "102,5" if lang == "de" else "102.5"
        assert f"{number} N m" in body
        assert i18n.protocol_gettext(lang, "Early quadriceps NMES after total knee "
                                           "arthroplasty") in body
        picture = page.locator("#today svg").first.bounding_box()
        assert picture is not None and picture["width"] >= 200
        assert "://" not in body and "rx-" not in body
        # starting spawns the session's process, which imports the package: on this shared,
        # loaded machine that alone has taken 20 s and more, so the wait is long
        page.click("#start-today", no_wait_after=True)
        page.wait_for_url(re.compile(r".*/live/[\w-]+$"), timeout=240_000)
        page.wait_for_selector("#chart-amplitude .main-svg")
        zero = i18n.format_quantity(0.0, "mA", lang, 1)
        assert page.inner_text("#level-0") == zero  # every session starts at zero
        check("live")
        page.click("button[name=direction][value=up]")
        one = i18n.format_quantity(1.0, "mA", lang, 1)
        page.wait_for_function(  # a function, not an expression: the page's CSP forbids eval
            f"() => document.getElementById('level-0').textContent === '{one}'")
        page.click("#pause-button")
        page.wait_for_function("() => document.getElementById('state').textContent === "
                               f"'{_('paused')}'")
        check("paused")
        page.click("#pause-button")
        page.wait_for_function("() => document.getElementById('state').textContent === "
                               f"'{_('running')}'")
        page.click("form.comfort button[value='8']")
        page.wait_for_function("() => document.getElementById('live-message').textContent"
                               ".includes('8')")
        page.click("#stop-button")
        page.wait_for_selector("#ended:not([hidden])")
        page.wait_for_selector("#record-link:not([hidden])")
        check("ended")
        [info] = store.list_sessions(patient_id="TKA-001")
        deadline = dt.datetime.now() + dt.timedelta(seconds=60)
        while store.get_session(info.id).status == "running":
            assert dt.datetime.now() < deadline, "the session did not end"
            page.wait_for_timeout(100)
        data.append(store.get_session(info.id).end_reason or "")
        page.click("#record-link")
        page.wait_for_url(re.compile(r".*/sessions/\d+$"))
        check("session-record")
        assert _("Events") in page.inner_text("main")
        page.goto(f"{base}/account")
        check("account")
        assert errors == [], errors
    finally:
        ctx.close()
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())
    [info] = store.list_sessions(patient_id="TKA-001")
    kinds = [e.kind for e in store.load_session(info.id).events]
    assert {"pause", "resume", "comfort"} <= set(kinds)
