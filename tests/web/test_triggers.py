"""Triggered (functional) channels from the web: the Trigger button's command reaches the
session process and its events come back in plain words; programs whose triggers need a live
sensor are refused before anything is written."""

from __future__ import annotations

import datetime as dt
import html
import re
import time

import numpy as np
import pytest

from opennmes.report.words import event_words, session_words
from opennmes.stim import load_program
from opennmes.store import Store
from opennmes.therapy import TherapyRecord, get_protocol
from opennmes.web._live import sensor_refusal

from .conftest import make_client

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples" / "programs"
SIM = "sim://healthy-adult?sfreq=500&seed=1"


def _wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _fetch(client, url: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(url, data=data, headers={"X-CSRF-Token": client.csrf,
                                                "X-Requested-With": "fetch"})


@pytest.mark.parametrize(("file", "channel", "signal", "source"), [
    ("drop-foot-gait-triggered.yaml", "left peroneal", "Gyr_Z", "walking pattern"),
    ("emg-triggered-wrist.yaml", "wrist extensors", "wrist_extensors.emg", "muscle activity"),
])
def test_sensor_refusal_names_channel_signal_and_the_command(file: str, channel: str,
                                                             signal: str, source: str) -> None:
    program = load_program(EXAMPLES / file)
    [trig] = [c.trigger for c in program.channels if c.name == channel]
    assert trig is not None and trig.signal == signal  # the example still listens to it
    msg = sensor_refusal(program, "P-1", "sim://")
    assert msg is not None
    assert f"channel {channel!r}" in msg and f"sensor signal {signal!r}" in msg
    assert source in msg and "no live sensor input yet" in msg
    assert "--patient P-1 --device sim:// --sensor" in msg and "=FILE" in msg
    assert "nothing was started or recorded" in msg


def test_button_triggered_programs_are_not_refused(button_protocol) -> None:  # type: ignore[no-untyped-def]
    assert sensor_refusal(button_protocol.program, "P-1", "sim://") is None


@pytest.mark.parametrize("protocol", ["drop-foot-fes", "stroke-hand-opening-emg"])
def test_sensed_prescription_is_refused_before_anything_is_written(
        app, store: Store, protocol: str) -> None:  # type: ignore[no-untyped-def]
    """Therapist start and the patient's "today's session": both refused in the web process
    (no session process, no record, no audit line of a start), with the reason in the page."""
    rx = TherapyRecord(store).prescribe("TKA-001", protocol, side="left",
                                        start_date=dt.date.today())
    proto = get_protocol(protocol)
    [ch] = proto.program.channels
    assert ch.trigger is not None
    versions = len(store.list_programs())
    clin = make_client(app, "clin")
    clin.page("/patients/TKA-001")
    r = clin.submit("/patients/TKA-001/sessions", {"prescription_id": str(rx.id),
                                                   "device_url": SIM})
    assert r.status_code == 303 and r.headers["location"] == "/patients/TKA-001"
    page = html.unescape(clin.page("/patients/TKA-001"))
    assert "The session did not start" in page
    assert f"channel '{ch.name}'" in page and f"'{ch.trigger.signal}'" in page
    assert "the web app has no live sensor input yet" in page
    assert f"nmes run '{rx.program_name}' --patient TKA-001" in page and "--sensor " in page
    assert f"Needs a live sensor ({ch.name} listens to '{ch.trigger.signal}'" in page
    pat = make_client(app, "pat")
    home = pat.page("/home")
    assert 'id="needs-sensor"' in home and 'id="start-today"' not in home
    r = pat.submit("/home/start")  # the form is not offered; a hand-made request is refused
    assert r.status_code == 303 and r.headers["location"] == "/home"
    page = html.unescape(pat.page("/home"))
    assert "The session could not start" in page and "no live sensor input yet" in page
    assert f"'{ch.trigger.signal}'" in page and "Please call your therapist" in page
    assert store.list_sessions(patient_id="TKA-001") == []
    assert len(store.list_programs()) == versions
    assert app.state.live.for_patient("TKA-001") == []
    assert "stimulation_started" not in [e.action for e in app.state.accounts.list_audit()]


def test_trigger_button_reaches_the_session_and_reports_back(
        app, store: Store, button_protocol) -> None:  # type: ignore[no-untyped-def]
    clin = next(u for u in app.state.accounts.list_users() if u.username == "clin")
    program = button_protocol.program
    [ch] = program.channel_names
    run = app.state.live.start(clin, "TKA-001", program, SIM)
    assert run.triggerable == [ch]
    assert run.drives == {ch: "triggered by the button"}
    c = make_client(app, "clin")
    page = c.page(f"/live/{run.id}")
    assert f"Trigger {ch}" in page and 'action="/live/' in page
    url = f"/live/{run.id}/trigger"
    r = _fetch(c, url, {"channel": ch})
    assert r.status_code == 200 and "intensity is 0 mA" in r.json()["message"]
    _wait(lambda: any(e["result"] == "burst" for e in run.snapshot()["events"]))
    [first] = run.snapshot()["events"]
    assert first["text"] == f"Burst started on {ch} (button pressed by clin)."
    for _ in range(5):
        assert _fetch(c, f"/live/{run.id}/intensity",
                      {"direction": "up", "channel": ch}).status_code == 200
    _wait(lambda: run.snapshot()["levels_mA"] == [5.0])
    assert _fetch(c, url, {"channel": ch}).status_code == 200  # during the burst: ignored
    _wait(lambda: run.snapshot()["events"][0]["result"] == "ignored")
    assert run.snapshot()["events"][0]["text"] == (
        f"Trigger on {ch} ignored (button pressed by clin): a burst is already running.")
    # a burst lasts 1 + 5 + 1 s (ramp up, on, ramp down), then 3 s of refractory time
    _wait(lambda: run.snapshot()["t"] > first["t"] + 10.2)
    r = _fetch(c, url, {"channel": ch})
    assert r.status_code == 200
    assert f"a burst starts on {ch} at up to 5.0 mA" in r.json()["message"]
    _wait(lambda: run.snapshot()["events"][0]["result"] == "burst")
    r = c.submit(url, {"channel": ch, "action": "end"})  # a plain form (scripts off)
    assert r.status_code == 303 and r.headers["location"] == f"/live/{run.id}"
    assert f"Ending the burst on {ch}." in c.page(f"/live/{run.id}")
    r = _fetch(c, url, {"channel": "nope"})
    assert r.status_code == 400 and "'nope' is not triggered" in r.json()["error"]
    r = _fetch(c, url, {"channel": ch, "action": "twice"})
    assert r.status_code == 400 and "must be 'burst' or 'end'" in r.json()["error"]
    _fetch(c, f"/live/{run.id}/pause", {"command": "pause"})
    _wait(lambda: run.snapshot()["paused"])
    r = _fetch(c, url, {"channel": ch})
    assert r.status_code == 400 and "paused: press Resume first" in r.json()["error"]
    c.post(f"/live/{run.id}/stop", data={"csrf_token": c.csrf}, follow_redirects=False)
    _wait(lambda: run.ended)
    record = store.load_session(run.session_id)
    trig = [e.data for e in record.events if e.kind == "trigger"]
    assert [t["result"] for t in trig].count("burst") == 2
    assert {t["source"] for t in trig if t["result"] == "burst"} == {"button:clin"}
    assert "end" in [t["result"] for t in trig]
    on = record.pulses.channel == list(record.pulses.channel_names).index(ch)
    assert on.sum() > 0 and 0 < record.pulses.amplitude[on].max() <= 5e-3 + 1e-9
    # the second burst starts at the press: no pulse between the bursts
    t = record.pulses.t[on]
    assert np.max(np.diff(t)) > 3.0
    page = html.unescape(re.sub(r"<[^>]+>", "", c.page(f"/sessions/{run.session_id}")))
    assert f"{ch}: triggered by the button; 2 bursts, 1 trigger ignored" in page
    assert f"Burst started on {ch} (button pressed by clin)." in page


def test_trigger_refused_on_a_program_without_triggers(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    from opennmes.stim import load_program_text

    from .test_access import PROGRAM

    clin = next(u for u in app.state.accounts.list_users() if u.username == "clin")
    run = app.state.live.start(clin, "TKA-001", load_program_text(PROGRAM), "sim://")
    c = make_client(app, "clin")
    page = c.page(f"/live/{run.id}")
    assert "Trigger " not in page and 'id="triggers"' not in page
    r = _fetch(c, f"/live/{run.id}/trigger", {"channel": "quadriceps"})
    assert r.status_code == 400
    assert r.json()["error"] == ("channel 'quadriceps' is not triggered by a button; triggered "
                                 "channels: []")
    app.state.live.stop(run, None, "test over")


@pytest.mark.parametrize(("kind", "data", "words"), [
    ("trigger", {"channel": "peroneal", "result": "burst", "source": "gait:foot_off"},
     "Burst started on peroneal (foot lifted off)."),
    ("trigger", {"channel": "hand", "result": "ignored", "source": "emg:x",
                 "detail": "refractory"},
     "Trigger on hand ignored (muscle activity (EMG) detected): it came during the rest time "
     "after the last burst."),
    ("trigger", {"channel": "peroneal", "result": "end", "source": "gait:initial_contact"},
     "Burst on peroneal ramping down (foot back on the ground)."),
    ("trigger", {"channel": "hand", "result": "timeout", "source": "max_burst"},
     "Burst on hand ended: the longest burst time was reached."),
    ("trigger", {"channel": "hand", "result": "silent", "source": "watchdog",
                 "detail": "no sensor data for 0.520 s"},
     "Output on hand set to zero: the trigger's sensor went silent (no sensor data for "
     "0.520 s)."),
    ("loop", {"channel": "hand", "what": "calibrated",
              "detail": "EMG onset threshold from 1.00 s of rest", "value": 5.2857e-06},
     "hand: the EMG detector is ready (EMG onset threshold from 1.00 s of rest; threshold "
     "5.29e-06)."),
    ("loop", {"channel": "knee", "what": "repetition",
              "detail": "repetition 2 ended; tracking RMSE (rad)", "value": 0.0412},
     "knee: repetition 2 ended; tracking RMSE 2.4 degrees."),
    ("intensity", {"channel": "hand", "old": 0.0, "new": 0.001, "by": "clinician"},
     "Intensity of hand raised from 0.0 mA to 1.0 mA by the physiotherapist."),
    ("intensity", {"channel": "hand", "old": 0.0125, "new": 0.009000000000000001,
                   "by": "patient"},
     "Intensity of hand lowered from 12.5 mA to 9.0 mA by the patient."),
    ("stop", {"how": "emergency", "reason": "emergency stop pressed", "by": "patient"},
     "Emergency stop by the patient: emergency stop pressed."),
    ("device_error", {"fault": "timeout", "message": "the device stopped answering"},
     "Device fault (timeout): the device stopped answering."),
    ("comfort", {"score": 6, "by": "patient"}, "Comfort rated 6 of 10 by the patient."),
    ("unconfirmed", {"pulses": {"quad": 15}, "start": 1.45, "end": 1.8, "after": 1.44},
     "15 pulses (15 on quad) sent between 1.45 s and 1.80 s were not confirmed by the device "
     "after its last confirmation at 1.44 s; they are not counted as delivered."),
])
def test_event_words(kind: str, data: dict, words: str) -> None:  # type: ignore[type-arg]
    assert event_words(kind, data) == words


def test_session_words_counts_results_per_channel() -> None:
    from types import SimpleNamespace as E

    events = [E(kind="start", t=0.0, data={"drives": {"hand": "triggered by the button"}}),
              E(kind="trigger", t=1.0, data={"channel": "hand", "result": "burst"}),
              E(kind="trigger", t=2.0, data={"channel": "hand", "result": "ignored"}),
              E(kind="trigger", t=9.0, data={"channel": "hand", "result": "burst"}),
              E(kind="stop", t=10.0, data={})]
    out = session_words(events)
    assert out["drives"] == {"hand": "triggered by the button"}
    assert out["bursts"] == {"hand": "2 bursts, 1 trigger ignored"}
    assert [w for _, _, w in out["events"]][1] == "Burst started on hand (unknown)."
    assert len(out["events"]) == 5
    assert session_words(events[:1])["bursts"] == {"hand": "no triggers"}


def test_titration_steps_are_one_line() -> None:
    from types import SimpleNamespace as E

    steps = [E(kind="intensity", t=0.5 * i, data={"channel": "quad", "old": i * 1e-3,
                                                   "new": (i + 1) * 1e-3, "by": "titration"})
             for i in range(45)]
    events = [E(kind="start", t=0.0, data={}), *steps,
              E(kind="intensity", t=30.0, data={"channel": "quad", "old": 0.045, "new": 0.043,
                                                "by": "patient"}),
              E(kind="stop", t=40.0, data={"how": "completed"})]
    rows = session_words(events)["events"]
    assert [r[2] for r in rows] == [
        "Session started: None ().",
        "Intensity of quad raised from 0.0 mA to 45.0 mA in 45 steps by the titration plan "
        "(0.0 to 22.0 s).",
        "Intensity of quad lowered from 45.0 mA to 43.0 mA by the patient.",
        "The program was completed."]
