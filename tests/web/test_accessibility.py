"""Every page for every role checked with axe-core (from npm, pinned in
scripts/ensure-test-js.sh) in a real browser: 0 serious or critical violations; and the home
patient's pages at phone width (360 x 740): nothing wider than the screen, controls big
enough to press, the placement picture on the page, no record ids or device addresses."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

import pytest

from opennmes.store import Store
from opennmes.therapy import TherapyRecord
from tests.browser_tools import axe_violations

from .conftest import browser_login

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}


def _prescribe(store: Store) -> None:
    rec = TherapyRecord(store)
    rec.prescribe("TKA-001", "total-knee-arthroplasty", side="right",
                  start_date=dt.date.today(), by="clin", notes="Two sessions a day, sitting.")
    rec.record_outcome("TKA-001", "pain_nrs", 6, measured_on=dt.date.today())


def _check(page, where: str, found: dict[str, list[str]]) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_load_state("load")
    for v in axe_violations(page):
        found.setdefault(where, []).append(
            f"[{v['impact']}] {v['id']}: {v['help']} -> " + " | ".join(v["nodes"][:3]))


def _start_and_stop(page, found: dict[str, list[str]], where: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_url(re.compile(r".*/live/[\w-]+$"))
    page.wait_for_selector("#chart-amplitude .main-svg")
    _check(page, where, found)
    page.click("#stop-button")
    page.wait_for_selector("#ended:not([hidden])")
    _check(page, where + " (ended)", found)


def test_no_serious_or_critical_axe_violations_for_any_role(live_server, browser_factory,  # type: ignore[no-untyped-def]
                                                            store: Store) -> None:
    _prescribe(store)
    base = live_server.url
    found: dict[str, list[str]] = {}
    page = browser_factory()
    page.goto(f"{base}/login")
    _check(page, "login", found)
    # the physiotherapist
    browser_login(page, base, "clin")
    page.wait_for_url(f"{base}/patients")
    for path in ("/patients", "/patients/TKA-001", "/patients/TKA-001/screening",
                 "/patients/TKA-001/prescribe", "/patients/TKA-001/outcomes",
                 "/patients/TKA-001/progress", "/account"):
        page.goto(base + path)
        _check(page, f"clinician {path}", found)
    page.goto(f"{base}/patients/TKA-001")
    page.select_option("select[name=device_url]", "sim://healthy-adult?sfreq=500&seed=1")
    page.click("button:has-text('Start session')")
    _start_and_stop(page, found, "clinician live")
    [info] = store.list_sessions(patient_id="TKA-001")
    page.goto(f"{base}/sessions/{info.id}")
    _check(page, "clinician session record", found)
    # the patient at home
    page = browser_factory()
    browser_login(page, base, "pat")
    page.wait_for_url(f"{base}/home")
    _check(page, "patient /home", found)
    page.goto(f"{base}/account")
    _check(page, "patient /account", found)
    page.goto(f"{base}/home")
    page.click("#start-today")
    _start_and_stop(page, found, "patient live")
    # the administrator
    page = browser_factory()
    browser_login(page, base, "admin")
    for path in ("/admin/users", "/audit", "/patients", "/account"):
        page.goto(base + path)
        _check(page, f"admin {path}", found)
    assert not found, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in found.items())


def _no_overflow(page) -> None:  # type: ignore[no-untyped-def]
    """Nothing wider than the screen: no horizontal scrolling, no element past the edge."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"page is {width} px wide at {PHONE['width']} px"
    out = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => (e instanceof HTMLElement && e.offsetParent !== null)
                     || (e instanceof SVGSVGElement && !e.parentElement.closest('svg')))
        .filter(e => { const r = e.getBoundingClientRect();
                       // wholly off to the left (Plotly's text-measuring svg) hides nothing
                       return r.width > 0 && r.right > 0
                              && (r.right > innerWidth + 0.5 || r.left < -0.5); })
        .map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' + (e.textContent || '').trim()
             .slice(0, 30))""")
    assert out == [], out


def _small_controls(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Buttons and links of the page's controls smaller than 44 x 44 CSS px (WCAG 2.5.5)."""
    return list(page.evaluate("""() => [...document.querySelectorAll(
            'main button, main a.button, main input[type=submit], header button')]
        .filter(e => e.offsetParent !== null)
        .filter(e => { const r = e.getBoundingClientRect();
                       return r.height < 44 || r.width < 44; })
        .map(e => (e.getAttribute('aria-label') || e.textContent).trim().slice(0, 30))"""))


def test_home_patient_pages_at_phone_width(live_server, browser_factory, store: Store) -> None:  # type: ignore[no-untyped-def]
    _prescribe(store)
    base = live_server.url
    page = browser_factory()
    page.set_viewport_size(PHONE)
    shots = Path(tempfile.mkdtemp(prefix="opennmes-phone-"))
    browser_login(page, base, "pat")
    page.wait_for_url(f"{base}/home")
    page.screenshot(path=str(shots / "home.png"), full_page=True)
    _no_overflow(page)
    assert page.locator("header button:has-text('Log out')").is_visible()
    picture = page.locator("#today svg, #today img")
    assert picture.count() >= 1, "no placement picture on today's session"
    box = picture.first.bounding_box()
    assert box is not None and box["width"] >= 200  # big enough to see where the pads go
    assert _small_controls(page) == []
    text = page.inner_text("body")
    assert "rx-" not in text and "sim://" not in text and "://" not in text
    page.click("#start-today")
    page.wait_for_url(re.compile(r".*/live/[\w-]+$"))
    page.wait_for_selector("#chart-amplitude .main-svg")
    page.screenshot(path=str(shots / "live.png"), full_page=True)
    _no_overflow(page)
    assert _small_controls(page) == []
    text = page.inner_text("body")
    assert "://" not in text and "TKA-001" not in page.inner_text("main")
    page.click("#stop-button")
    page.wait_for_selector("#ended:not([hidden])")
    page.screenshot(path=str(shots / "ended.png"), full_page=True)
    _no_overflow(page)
    assert (shots / "home.png").stat().st_size > 0
