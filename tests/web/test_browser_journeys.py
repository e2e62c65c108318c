"""The main journeys in a real browser (Debian chromium driven by Playwright), with a
screenshot of every page under tests/_artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from opennmes.store import Store
from opennmes.therapy import TherapyRecord

from .conftest import browser_login, shot

pytestmark = pytest.mark.browser


def wait_level(page, mA: float) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(  # a function, not an expression: the page's CSP forbids eval
        f"() => document.getElementById('level-0').textContent === '{mA:.1f} mA'",
        timeout=10_000)


def wait_ended(store: Store, session_id: int) -> None:
    deadline = time.monotonic() + 10
    while store.get_session(session_id).status == "running":
        assert time.monotonic() < deadline, "the session did not end"
        time.sleep(0.05)


def test_clinician_journey(live_server, browser_page, store: Store) -> None:  # type: ignore[no-untyped-def]
    """Log in, add and screen a patient, prescribe, run a simulated session with the live
    view, stop it, enter outcomes and open the progress report."""
    page, base = browser_page, live_server.url
    browser_login(page, base, "clin")
    page.wait_for_url(f"{base}/patients")
    shot(page, "clinician-01-patients")
    # new patient
    page.fill("input[name=patient_id]", "TKA-014")
    page.fill("input[name=year_of_birth]", "1958")
    page.select_option("select[name=sex]", "female")
    page.fill("input[name=height_cm]", "164")
    page.fill("input[name=mass_kg]", "72")
    page.click("button:has-text('Add patient')")
    page.wait_for_url(f"{base}/patients/TKA-014")
    shot(page, "clinician-02-new-patient")
    # screening: a metal implant in the right knee is a precaution, not a block
    page.click("a:has-text('Screening')")
    page.check("#f_metal_implant")
    page.fill("input[name=site_metal_implant]", "right quadriceps")
    shot(page, "clinician-03-screening")
    page.click("button:has-text('Save screening')")
    page.wait_for_url(f"{base}/patients/TKA-014")
    assert "metal_implant (right quadriceps)" in page.inner_text("#screening-factors")
    # prescribe from the library
    page.click("a:has-text('Prescribe')")
    page.select_option("select[name=protocol_id]", "total-knee-arthroplasty")
    page.select_option("select[name=side]", "right")
    page.fill("input[name=notes]", "Sit with the knee bent; stop if the wound hurts.")
    shot(page, "clinician-04-prescribe")
    page.click("button:has-text('Check and prescribe')")
    page.wait_for_url(f"{base}/patients/TKA-014")
    assert "Early quadriceps NMES after total knee arthroplasty" in page.inner_text(
        "#prescriptions")
    shot(page, "clinician-05-patient-record")
    # start a simulated session and watch it live
    page.select_option("select[name=device_url]", "sim://healthy-adult?sfreq=500&seed=1")
    page.click("button:has-text('Start session')")
    page.wait_for_url(re.compile(r".*/live/[\w-]+$"))
    page.wait_for_selector("#chart-amplitude .main-svg")
    assert page.inner_text("#level-0") == "0.0 mA"  # every session starts at zero
    # up to 40 mA, one 1-mA step per press: the virtual patient's quadriceps (80 cm2 pads)
    # starts to contract above ~30 mA
    for _ in range(40):
        page.click("button[aria-label='intensity up quadriceps']")
    wait_level(page, 40.0)
    page.wait_for_selector("#stimulating.on")
    live_url = page.url
    deadline = time.monotonic() + 10
    while True:  # the live feed shows the force the patient produces
        feed = page.request.get(f"{live_url}/data").json()
        forces = [s["force"] for s in feed["samples"] if s["force"] is not None]
        if forces and max(forces) > 1.0:
            break
        assert time.monotonic() < deadline, "no force in the live feed"
        time.sleep(0.2)
    assert feed["force_label"] == "quadriceps force (N)"
    page.wait_for_function("() => document.querySelectorAll('#chart-force .scatterlayer .trace')"
                           ".length === 1")
    # every chart says what its axes are, in units people read
    assert page.text_content("#chart-amplitude .g-xtitle") == "time (s)"
    assert page.text_content("#chart-amplitude .g-ytitle") == "mA"
    assert page.text_content("#chart-force .g-ytitle") == "quadriceps force (N)"
    assert page.text_content("#chart-emg .g-ytitle") == "mV (rms)"
    time.sleep(0.8)  # let the charts fill
    shot(page, "clinician-06-live")
    [info] = store.list_sessions(patient_id="TKA-014")
    assert info.status == "running"
    page.click("#stop-button")
    page.wait_for_selector("#ended:not([hidden])")
    wait_ended(store, info.id)
    shot(page, "clinician-07-stopped")
    done = store.get_session(info.id)
    assert done.status == "finished" and "stop pressed by clin" in (done.end_reason or "")
    record = store.load_session(info.id)
    ups = [e for e in record.events if e.kind == "intensity"]
    assert len(ups) == 40 and ups[-1].data["new"] == pytest.approx(40e-3)
    assert {e.data["by"] for e in ups} == {"clin"}
    assert 30e-3 < record.pulses.amplitude.max() <= 40e-3 + 1e-9  # never above the set level
    assert page.js_errors == []
    # outcomes: TUG at baseline and now
    page.goto(f"{base}/patients/TKA-014/outcomes")
    page.select_option("select[name=instrument]", "tug")
    page.fill("input[name=value]", "14.2")
    page.fill("input[name=measured_on]", (dt.date.today() - dt.timedelta(days=14)).isoformat())
    page.click("button:has-text('Save measurement')")
    page.select_option("select[name=instrument]", "tug")
    page.fill("input[name=value]", "11.5 s")
    page.click("button:has-text('Save measurement')")
    page.wait_for_selector("table.history tr:nth-child(2)")
    shot(page, "clinician-08-outcomes")
    # progress report
    page.click("a:has-text('Open the progress report')")
    page.wait_for_url(f"{base}/patients/TKA-014/progress")
    page.wait_for_selector("#chart-0 .main-svg")
    text = page.inner_text("main")
    assert "Timed Up and Go" in text and "-2.7 s" in text
    # a 2.7 s faster TUG is beyond the knee-OA MDC of 1.1 s (CPS §6; therapy instrument table)
    assert "improved beyond the MDC 1.1" in text
    assert re.search(r"\d+ of \d+ sessions done so far", text)
    shot(page, "clinician-09-progress")
    assert page.js_errors == []
    actions = [e.action for e in live_server.server.config.app.state.accounts.list_audit(
        patient_id="TKA-014")]
    for expected in ("patient_added", "screening_changed", "prescribed",
                     "stimulation_started", "stimulation_stopped", "outcome_recorded"):
        assert expected in actions


def test_patient_journey(live_server, browser_page, store: Store) -> None:  # type: ignore[no-untyped-def]
    """The patient logs in, runs today's session (up, pause, resume), rates comfort, stops."""
    TherapyRecord(store).prescribe("TKA-001", "total-knee-arthroplasty", side="right",
                                   start_date=dt.date.today(), by="clin",
                                   notes="Two sessions a day, sitting.")
    page, base = browser_page, live_server.url
    browser_login(page, base, "pat")
    page.wait_for_url(f"{base}/home")
    assert "Early quadriceps NMES after total knee arthroplasty" in page.inner_text("#today")
    assert "Two sessions a day, sitting." in page.inner_text("#today")
    shot(page, "patient-01-home")
    page.click("#start-today")
    page.wait_for_url(re.compile(r".*/live/[\w-]+$"))
    page.wait_for_selector("#chart-amplitude .main-svg")
    # the patient reads the program's name, not the record's ids or the device's address
    title = page.inner_text("h1")
    assert title.startswith("Quadriceps") or "quadriceps" in title.lower(), title
    assert "rx-" not in title and "TKA-001" not in title and "sim://" not in page.inner_text("main")
    for _ in range(3):
        page.click("button[aria-label='intensity up quadriceps']")
    wait_level(page, 3.0)
    shot(page, "patient-02-live")
    page.click("#pause-button")
    page.wait_for_function("() => document.getElementById('state').textContent === 'paused'")
    page.wait_for_selector("#stimulating:not(.on)")
    shot(page, "patient-03-paused")
    page.click("#pause-button")
    page.wait_for_function("() => document.getElementById('state').textContent === 'running'")
    page.click("form.comfort button[value='8']")
    page.wait_for_function("() => document.getElementById('live-message').textContent"
                           ".includes('comfort 8 of 10')")
    page.click("#stop-button")
    page.wait_for_selector("#ended:not([hidden])")
    shot(page, "patient-04-ended")
    [info] = store.list_sessions(patient_id="TKA-001")
    wait_ended(store, info.id)
    events = store.load_session(info.id).events
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    assert "pause" in kinds and "resume" in kinds
    [comfort] = [e for e in events if e.kind == "comfort"]
    assert comfort.data["score"] == 8 and comfort.data["by"] == "pat"
    page.click("a:has-text('Back to my sessions')")
    page.wait_for_url(f"{base}/home")
    assert "done" in page.inner_text("main")
    # adherence in plain words, with the comfort rating just given; a session stopped after
    # a few seconds gave a sliver of its dose: partial, not done, and the page says so
    assert "0 sessions done" in page.inner_text("#adherence")
    assert page.inner_text("#done-today") == (
        "Today: 0 of 2 done. 1 session stopped before most of the exercise was done: it does "
        "not count yet.")
    assert "Your comfort rating on average: 8 out of 10." in page.inner_text("#adherence")
    shot(page, "patient-05-home-after")
    assert page.js_errors == []


def test_stop_works_with_scripts_off(live_server, browser_factory, store: Store, app) -> None:  # type: ignore[no-untyped-def]
    """With JavaScript disabled the intensity and stop buttons still work as plain forms."""
    from opennmes.stim import load_program_text

    from .test_access import PROGRAM

    clin = next(u for u in app.state.accounts.list_users() if u.username == "clin")
    run = app.state.live.start(clin, "TKA-001", load_program_text(PROGRAM),
                               "sim://healthy-adult?sfreq=500&seed=1")
    page = browser_factory(javascript=False)
    base = live_server.url
    browser_login(page, base, "clin")
    page.wait_for_url(f"{base}/patients")
    page.goto(f"{base}/live/{run.id}")
    page.click("button[aria-label='intensity up quadriceps']")  # a full page round trip
    page.wait_for_url(f"{base}/live/{run.id}")
    assert "Intensity up." in page.inner_text("main")
    deadline = time.monotonic() + 5
    while run.snapshot()["levels_mA"][0] == 0.0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    page.click("#stop-button")
    page.wait_for_url(f"{base}/live/{run.id}")
    assert "Stopped. The output is off." in page.inner_text("main")
    run.session.wait(timeout=10)
    assert run.outcome is not None and run.outcome["how"] == "stopped"
    shot(page, "clinician-10-stopped-without-javascript")


def test_admin_pages(live_server, browser_page) -> None:  # type: ignore[no-untyped-def]
    page, base = browser_page, live_server.url
    browser_login(page, base, "admin")
    page.wait_for_url(f"{base}/admin/users")
    page.fill("input[name=username]", "physio3")
    page.fill("input[name=password]", "a-long-password-1")
    page.select_option("select[name=role]", "clinician")
    page.click("button:has-text('Add account')")
    page.wait_for_url(f"{base}/admin/users")
    assert "physio3" in page.inner_text("table")
    shot(page, "admin-01-accounts")
    page.click("a:has-text('Audit log')")
    assert "account physio3 (clinician) created" in page.inner_text("table.audit")
    shot(page, "admin-02-audit")
