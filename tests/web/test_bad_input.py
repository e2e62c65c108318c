"""Bad input: the page says what is wrong and why, and nothing is saved half."""

from __future__ import annotations

import re

from opennmes.store import Store
from opennmes.therapy import TherapyRecord

from .conftest import Client, make_client


def error_of(html: str) -> str:
    m = re.search(r'id="error">([^<]*)<', html)
    assert m, "the page shows no error"
    import html as _html

    return _html.unescape(m.group(1))


def clin(app) -> Client:  # type: ignore[no-untyped-def]
    return make_client(app, "clin")


def test_out_of_range_outcome_is_refused_with_the_range_and_source(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    """TUG valid range 1-300 s (therapy instrument table); 500 s is refused."""
    c = clin(app)
    c.page("/patients/TKA-001/outcomes")
    cases = {
        "500": "Timed Up and Go = 500 s is outside the valid range 1 s .. 300 s",
        "-3": "outside the valid range",
        "14 kg": "unit 'kg' does not fit",
        "fast": "cannot read 'fast'",
        "": "enter the measured value",
    }
    for value, expected in cases.items():
        r = c.submit("/patients/TKA-001/outcomes", {"instrument": "tug", "value": value})
        assert r.status_code == 400, value
        assert expected in error_of(r.text), (value, error_of(r.text))
        assert f'value="{value}"' in r.text  # the entry is kept for correction
    r = c.submit("/patients/TKA-001/outcomes", {"instrument": "tug", "value": "12",
                                                "measured_on": "2026-13-40"})
    assert "is not a date" in error_of(r.text)
    r = c.submit("/patients/TKA-001/outcomes", {"instrument": "no-such", "value": "12"})
    assert r.status_code == 400 and "no-such" in error_of(r.text)
    assert TherapyRecord(store).list_outcomes("TKA-001") == []  # nothing saved
    r = c.submit("/patients/TKA-001/outcomes", {"instrument": "tug", "value": "12.5 s"})
    assert r.status_code == 303
    [m] = TherapyRecord(store).list_outcomes("TKA-001")
    assert m.value == 12.5 and m.by == "clin"


def test_prescription_that_fails_screening_is_refused_and_nothing_saved(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    """DVT under the quadriceps electrode blocks quadriceps NMES (CPS §5: FDA labelling, S29)."""
    c = clin(app)
    c.page("/patients/TKA-001/screening")
    r = c.submit("/patients/TKA-001/screening", {"factor_dvt": "on",
                                                 "site_dvt": "right quadriceps"})
    assert r.status_code == 303
    programs_before = len(store.list_programs())
    c.page("/patients/TKA-001/prescribe")
    r = c.submit("/patients/TKA-001/prescribe", {"protocol_id": "total-knee-arthroplasty",
                                                 "side": "right"})
    assert r.status_code == 400
    msg = error_of(r.text)
    assert "refused by the contraindication screening" in msg
    assert "dvt" in msg and "thrombosis" in msg and "S29" in msg
    assert "nothing was saved" in msg
    assert TherapyRecord(store).list_prescriptions("TKA-001") == []
    assert len(store.list_programs()) == programs_before
    assert 'value="total-knee-arthroplasty" selected' in r.text  # the form keeps the choice
    # the other leg is fine: the screening is by site and side
    r = c.submit("/patients/TKA-001/prescribe", {"protocol_id": "total-knee-arthroplasty",
                                                 "side": "left"})
    assert r.status_code == 303
    [rx] = TherapyRecord(store).list_prescriptions("TKA-001")
    assert rx.document["side"] == "left"
    audit = app.state.accounts.list_audit(patient_id="TKA-001")
    assert [e.action for e in audit[:2]] == ["prescribed", "screening_changed"]
    assert audit[1].detail == {"old": [], "new": [{"factor": "dvt",
                                                   "site": "right quadriceps"}]}


def test_bad_prescription_fields_are_named(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    c = clin(app)
    c.page("/patients/TKA-001/prescribe")
    cases = {
        "max_amplitude_ma": ("900", "maximum amplitude: 900 mA is outside the allowed range"),
        "weeks": ("0", "weeks: 0 is outside the allowed range 1 to 104"),
        "start_date": ("tomorrow", "start date: 'tomorrow' is not a date"),
    }
    for field, (value, expected) in cases.items():
        r = c.submit("/patients/TKA-001/prescribe",
                     {"protocol_id": "total-knee-arthroplasty", field: value})
        assert r.status_code == 400 and expected in error_of(r.text), (field, r.text[:300])
    r = c.submit("/patients/TKA-001/prescribe", {"protocol_id": "no-such-protocol"})
    assert r.status_code == 400 and "no-such-protocol" in error_of(r.text)
    assert TherapyRecord(store).list_prescriptions("TKA-001") == []


BAD_PROTOCOL = """
id: my-knee
title: My knee protocol
indication: knee
mode: cyclic
evidence:
  level: expert-preset
  summary: a local protocol
  sources: [{id: X1, tag: D, citation: "local"}]
placement:
  diagram: quadriceps-2pad
  position: sitting
  electrodes: [{channel: quadriceps, landmarks: "over the quadriceps"}]
dose:
  contractions_per_session: 10
  sessions_per_day: 9
  sessions_per_week: 14
  programme_weeks: 6
start_window: {reference: surgery, earliest_days: 2}
intensity: {target: maximum-tolerated}
program:
  name: My knee
  channels:
    - name: quadriceps
      electrode: {area: 80 cm2, site: quadriceps, side: right}
      frequency: 50 Hz
      pulse_width: 250 us
      amplitude: 60 mA
      ramp_up: 2 s
      on: 10 s
      off: 30 s
  repetitions: 10
"""


def test_protocol_file_with_a_bad_field_is_explained(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    """sessions_per_day must be 1..6 (therapy Dose schema); the page names the field."""
    c = clin(app)
    c.page("/patients/TKA-001/prescribe")
    r = c.post("/patients/TKA-001/protocol-check", data={"csrf_token": c.csrf},
               files={"file": ("my-knee.yaml", BAD_PROTOCOL.encode(), "application/yaml")},
               follow_redirects=False)
    assert r.status_code == 400
    msg = error_of(r.text)
    assert msg.startswith("protocol file my-knee.yaml:")
    assert "dose.sessions_per_day" in msg and "6" in msg
    good = BAD_PROTOCOL.replace("sessions_per_day: 9", "sessions_per_day: 2")
    r = c.post("/patients/TKA-001/protocol-check", data={"csrf_token": c.csrf},
               files={"file": ("my-knee.yaml", good.encode(), "application/yaml")},
               follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    assert "is valid" in c.page(r.headers["location"])
    r = c.post("/patients/TKA-001/protocol-check", data={"csrf_token": c.csrf},
               files={"file": ("x.yaml", b"\xff\xfe", "application/yaml")},
               follow_redirects=False)
    assert r.status_code == 400 and "not UTF-8" in error_of(r.text)
    assert TherapyRecord(store).list_prescriptions("TKA-001") == []


def test_screening_with_an_unknown_site_changes_nothing(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    c = clin(app)
    c.page("/patients/TKA-001/screening")
    r = c.submit("/patients/TKA-001/screening", {
        "factor_pregnancy": "on", "factor_dvt": "on", "site_dvt": "left calf, right thigh"})
    assert r.status_code == 400
    assert "unknown body site 'right thigh'" in error_of(r.text)
    assert store.get_patient("TKA-001").contraindications == ()
    assert 'value="left calf, right thigh"' in r.text


def test_new_patient_with_bad_values_is_not_added(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    c = clin(app)
    c.page("/patients")
    n = len(store.list_patients())
    for data, expected in [({"height_cm": "17"}, "height: 17 cm is outside the allowed range"),
                           ({"mass_kg": "heavy"}, "mass: 'heavy' is not a number"),
                           ({"patient_id": "Jane Doe"}, "Jane Doe"),
                           ({"patient_id": "TKA-002"}, "exists already")]:
        r = c.submit("/patients", {"patient_id": "TKA-009", **data})
        assert r.status_code == 400 and expected in error_of(r.text), (data, r.text[:300])
    assert len(store.list_patients()) == n
    r = c.submit("/patients", {"patient_id": "TKA-009", "height_cm": "172", "mass_kg": "81"})
    assert r.status_code == 303
    p = store.get_patient("TKA-009")
    assert p.height == 1.72 and p.mass == 81.0 and p.clinician == "clin"


def test_start_refused_for_a_foreign_or_unknown_prescription(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    rec = TherapyRecord(store)
    import datetime as dt

    foreign = rec.prescribe("TKA-002", "total-knee-arthroplasty", side="right",
                           start_date=dt.date.today())
    c = clin(app)
    c.page("/patients/TKA-001")
    for rid in (str(foreign.id), "999", "abc"):
        r = c.submit("/patients/TKA-001/sessions", {"prescription_id": rid,
                                                    "device_url": "sim://"})
        assert r.status_code == 303
        html = c.page(r.headers["location"])
        assert "The session did not start" in html
    assert store.list_sessions(patient_id="TKA-001") == []
    assert store.list_sessions(patient_id="TKA-002") == []
