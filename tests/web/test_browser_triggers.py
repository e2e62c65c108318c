"""Triggered channels in a real browser (Debian chromium driven by Playwright): a
button-triggered prescription runs from the web and its Trigger button delivers a burst; a
prescription whose trigger needs a live sensor is refused before anything is written."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from opennmes.store import Store
from opennmes.therapy import TherapyRecord

from .conftest import browser_login, shot
from .test_browser_journeys import wait_ended, wait_level

pytestmark = pytest.mark.browser

SIM = "sim://healthy-adult?sfreq=500&seed=1"
CHANNEL = "wrist and finger extensors"


def test_button_triggered_session_from_the_browser(live_server, browser_page, store: Store,
                                                   button_protocol) -> None:  # type: ignore[no-untyped-def]
    """Prescribe the button-triggered protocol, start it on sim://, raise the intensity,
    press Trigger: the page says a burst started and the record has it, with its pulses."""
    page, base = browser_page, live_server.url
    browser_login(page, base, "clin")
    page.wait_for_url(f"{base}/patients")
    page.goto(f"{base}/patients/TKA-001/prescribe")
    page.select_option("select[name=protocol_id]", button_protocol.id)
    page.select_option("select[name=side]", "left")
    page.click("button:has-text('Check and prescribe')")
    page.wait_for_url(f"{base}/patients/TKA-001")
    page.select_option("select[name=device_url]", SIM)
    page.click("button:has-text('Start session')")
    page.wait_for_url(re.compile(r".*/live/[\w-]+$"))
    page.wait_for_selector("#chart-amplitude .main-svg")
    trigger = page.locator(f"button[aria-label='trigger {CHANNEL}']")
    assert trigger.inner_text() == f"Trigger {CHANNEL}"
    assert "triggered by the button" in page.inner_text("#triggers")
    assert page.inner_text("#trigger-events") == "Nothing yet."
    for _ in range(8):
        page.click(f"button[aria-label='intensity up {CHANNEL}']")
    wait_level(page, 8.0)
    assert page.locator("#stimulating").inner_text() == "output off"  # silent until triggered
    trigger.click()
    page.wait_for_function("() => document.getElementById('live-message').textContent"
                           ".includes('a burst starts on')")
    page.wait_for_function(
        "() => document.getElementById('trigger-events').textContent"
        f".includes('Burst started on {CHANNEL} (button pressed by clin).')")
    page.wait_for_selector("#stimulating.on")
    trigger.click()  # during the burst (or the rest time after it): ignored, and the page
    page.wait_for_function(  # says why
        "() => document.getElementById('trigger-events').textContent"
        f".includes('Trigger on {CHANNEL} ignored (button pressed by clin): ')")
    shot(page, "clinician-11-trigger-burst")
    [info] = store.list_sessions(patient_id="TKA-001")
    page.click("#stop-button")
    page.wait_for_selector("#ended:not([hidden])")
    assert trigger.is_disabled()
    wait_ended(store, info.id)
    record = store.load_session(info.id)
    trig = [e.data for e in record.events if e.kind == "trigger"]
    assert [t["result"] for t in trig][:2] == ["burst", "ignored"]
    assert trig[0]["channel"] == CHANNEL and trig[0]["source"] == "button:clin"
    on = record.pulses.channel == list(record.pulses.channel_names).index(CHANNEL)
    assert on.sum() > 10  # at 30 Hz, the ramp alone gives 30 pulses per second
    burst_t = next(e.t for e in record.events if e.kind == "trigger")
    assert record.pulses.t[on].min() >= burst_t  # nothing before the press
    assert 0 < record.pulses.amplitude[on].max() <= 8e-3 + 1e-9
    page.click("a:has-text('See the session record')")
    page.wait_for_url(f"{base}/sessions/{info.id}")
    assert f"{CHANNEL}: triggered by the button; 1 burst, 1 trigger ignored" in \
        page.inner_text("#drives")
    assert f"Burst started on {CHANNEL} (button pressed by clin)." in page.inner_text("#events")
    # the dose as a table in people's units, the events in words: no SI, no JSON
    dose = page.inner_text("#dose")
    assert "8.0 mA" in dose and "mC" in dose and "mA/cm²" in dose
    body = page.inner_text("body")
    assert '"max_level"' not in body and "{" not in body
    assert not re.search(r"\d (A|C|s\^-1|A/m\^2)\b", body)  # no SI amperes or coulombs
    shot(page, "clinician-12-trigger-record")
    assert page.js_errors == []


def test_emg_triggered_prescription_is_refused_in_the_browser(
        live_server, browser_factory, store: Store) -> None:  # type: ignore[no-untyped-def]
    """The therapist's start says why (channel, signal, no live sensor input in the web app,
    the command to use) and writes nothing; the patient's home page says the session cannot
    start here instead of offering a button that cannot work."""
    rx = TherapyRecord(store).prescribe("TKA-001", "stroke-hand-opening-emg", side="left",
                                        start_date=dt.date.today(), by="clin")
    base = live_server.url
    page = browser_factory()
    browser_login(page, base, "clin")
    page.wait_for_url(f"{base}/patients")
    page.goto(f"{base}/patients/TKA-001")
    assert "Needs a live sensor (wrist and finger extensors listens to 'wrist_extensors.emg' " \
           "(emg))" in page.inner_text(".sensor-note")
    page.select_option("select[name=device_url]", SIM)
    page.click("button:has-text('Start session')")
    page.wait_for_url(f"{base}/patients/TKA-001")
    text = page.inner_text(".flash.error")
    assert text.startswith("The session did not start: channel "
                           f"'{CHANNEL}' is triggered by the patient's muscle activity (EMG) "
                           "and listens to the sensor signal 'wrist_extensors.emg', but the "
                           "web app has no live sensor input yet.")
    assert f"nmes run '{rx.program_name}' --patient TKA-001 --device '{SIM}' " \
           "--sensor NAME=FILE" in text
    shot(page, "clinician-13-emg-trigger-refused")
    patient = browser_factory()
    browser_login(patient, base, "pat")
    patient.wait_for_url(f"{base}/home")
    assert patient.locator("#start-today").count() == 0  # no button that cannot work
    assert patient.inner_text("#needs-sensor") == (
        "This session needs a muscle or movement sensor that this app cannot read yet, so it "
        "cannot start here. Please ask your therapist.")
    shot(patient, "patient-06-needs-sensor")
    assert store.list_sessions(patient_id="TKA-001") == []
    app = live_server.server.config.app
    assert app.state.live.for_patient("TKA-001") == []
    assert "stimulation_started" not in [e.action for e in app.state.accounts.list_audit()]
    assert page.js_errors == [] and patient.js_errors == []
