"""The session supervisor: a recorded session in its own process on sim:// with its virtual
patient, operated by the one command vocabulary; it ends at zero output with its record
finished when stopped, when its parent dies or stalls, and when a command fails.

Everything is asserted by the record (events, their order, the delivered pulses) and by the
order of what the supervisor reports, never by wall-clock figures; the waits have generous
timeouts (a loaded machine) that only keep a broken test from hanging.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import opennmes
from opennmes.session import (
    Command,
    CommandError,
    SessionRefused,
    SupervisedSession,
    supervise,
)
from opennmes.stim import Program, load_program_text
from opennmes.store import Store, open_store

from .conftest import RELAXED

WAIT = 60.0
"""Longest wait for anything a session process does, s (a safety net, not a figure)."""

PROGRAM = """
name: supervised
channels:
  - name: quad
    electrode: {{area: 50 cm2, site: quadriceps, side: right}}
    frequency: 40 Hz
    pulse_width: 300 us
    interphase_gap: 100 us
    amplitude: 20 mA
    ramp_up: 0.25 s
    on: 1 s
    ramp_down: 0.25 s
    off: 0.5 s
  - name: hand
    electrode: {{area: 25 cm2, site: wrist extensors, side: right}}
    frequency: 40 Hz
    pulse_width: 300 us
    interphase_gap: 100 us
    amplitude: 20 mA
    ramp_up: 0.25 s
    ramp_down: 0.25 s
    trigger: {{source: button, refractory: 0.5 s, max_burst: 30 s}}
duration: {duration} s
"""
DEVICE = "sim://healthy-adult?sfreq=500&seed=1"
OPTIONS = {"stall_margin": RELAXED}


def program(duration: float = 600.0) -> Program:
    """Two channels, quad cyclic (2 s per repetition), hand button-triggered (a burst lasts
    until it is ended, at most 30 s)."""
    return load_program_text(PROGRAM.format(duration=duration))


def wait_for(what: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return value


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    url = f"sqlite:///{tmp_path / 'supervised.db'}"
    store = open_store(url)
    store.add_patient("P-1")
    store.add_patient("P-pacer", contraindications=[{"factor": "pacemaker", "site": None}])
    yield url, store
    store.close()


@pytest.fixture
def started(db: tuple[str, Store]) -> Iterator[tuple[SupervisedSession, Store]]:
    url, store = db
    sup = supervise(url, "P-1", program(), DEVICE, meta={"via": "test"}, options=OPTIONS,
                    parent="the test")
    with sup:  # stopped and waited for on the way out, whatever the test did
        yield sup, store


def _count(sup: SupervisedSession, kind: str) -> int:
    return len(sup.events(kinds=(kind,)))


def _press(sup: SupervisedSession, kind: str, command: Command, *args: Any) -> dict[str, Any]:
    """Send a command and wait for the event it records; returns that event."""
    n = _count(sup, kind)
    sup.send(command, *args, by="clin")
    wait_for(lambda: _count(sup, kind) > n)
    return sup.events(kinds=(kind,))[n]


def _ended(store: Store, session_id: int) -> Any:
    return wait_for(lambda: (info := store.get_session(session_id)).status != "running"
                    and info)


def _no_pulse_after_the_stop(store: Store, session_id: int) -> Any:
    rec = store.load_session(session_id)
    stop = rec.events[-1]
    assert stop.kind == "stop"
    assert len(rec.pulses) == 0 or float(rec.pulses.t.max()) <= stop.t + 1e-9
    return rec


def test_every_command_reaches_the_session_and_the_record(started) -> None:  # type: ignore[no-untyped-def]
    sup, store = started
    assert sup.process.pid != os.getpid()  # its own process
    assert sup.channels == ["quad", "hand"] and sup.triggerable == ["hand"]
    assert sup.drives == {"hand": "triggered by the button"}
    assert sup.max_amplitude == [0.02, 0.02]
    levels = [_press(sup, "intensity", Command.INCREASE, "quad")["new"] for _ in range(3)]
    assert levels == [0.001, 0.002, 0.003]
    assert _press(sup, "intensity", Command.DECREASE, "quad")["new"] == 0.002
    assert _press(sup, "intensity", Command.SET_LEVEL, "quad", 0.001)["new"] == 0.001
    sup.send(Command.SELECT, "hand")
    wait_for(lambda: sup.status().get("selected") == "hand")
    up = _press(sup, "intensity", Command.INCREASE)  # the selected channel
    assert (up["channel"], up["new"]) == ("hand", 0.001)
    assert _press(sup, "pause", Command.PAUSE)["by"] == "clin"
    wait_for(lambda: sup.status().get("paused"))
    _press(sup, "resume", Command.RESUME)
    _press(sup, "pause", Command.TOGGLE_PAUSE)
    _press(sup, "resume", Command.TOGGLE_PAUSE)
    wait_for(lambda: not sup.status().get("paused"))
    burst = _press(sup, "trigger", Command.TRIGGER, "hand")
    assert (burst["channel"], burst["result"], burst["source"]) == ("hand", "burst", "clin")
    assert _press(sup, "trigger", Command.END_BURST, "hand")["result"] == "end"
    assert _press(sup, "comfort", Command.RATE_COMFORT, 7)["score"] == 7
    skin = _press(sup, "skin_check", Command.SKIN_CHECK, True, "no redness", "quad")
    assert (skin["ok"], skin["channel"], skin["note"]) == (True, "quad", "no redness")
    assert _press(sup, "adverse_event", Command.ADVERSE_EVENT, "tingling")["note"] == "tingling"
    # refused by the session, reported back, and the session plays on
    sup.send(Command.SET_LEVEL, "quad", 0.05, by="clin")  # above the program's 20 mA
    assert "intensity" in wait_for(lambda: sup.error) and not sup.ended
    before = sup.status()["seq"]
    wait_for(lambda: sup.status()["seq"] > before)  # still playing
    sup.stop("done", by="clin")
    assert sup.wait(WAIT) and sup.outcome is not None
    assert sup.outcome["how"] == "stopped" and sup.outcome["status"] == "finished"
    info = store.get_session(sup.session_id)
    assert info.status == "finished" and info.end_reason == "stopped: done"
    rec = _no_pulse_after_the_stop(store, sup.session_id)
    operated = [e for e in rec.events if e.kind not in ("start", "loop")]
    assert [e.kind for e in operated] == (
        ["intensity"] * 6 + ["pause", "resume", "pause", "resume", "trigger", "trigger",
                             "comfort", "skin_check", "adverse_event", "stop"])
    assert {e.data["by"] for e in operated if "by" in e.data} == {"clin"}
    assert rec.events[-1].data["by"] == "clin"
    assert sup.events()[-1]["kind"] == "stop"  # forwarded too, before ``ended``
    seqs = [s["seq"] for s in sup.statuses()]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap
    with pytest.raises(opennmes.NmesError, match="has ended"):
        sup.send(Command.PAUSE)


def test_commands_are_checked_before_they_are_sent(started) -> None:  # type: ignore[no-untyped-def]
    sup, store = started
    with pytest.raises(CommandError, match="unknown channel 'nope'; channels"):
        sup.send(Command.INCREASE, "nope")
    with pytest.raises(CommandError, match="'quad' is not triggered by a button"):
        sup.send(Command.TRIGGER, "quad")
    with pytest.raises(CommandError, match=r"0 \(unbearable\) to 10"):
        sup.send(Command.RATE_COMFORT, 11)
    with pytest.raises(CommandError, match="unknown session command 'jump'"):
        sup.send("jump")
    sup.emergency_stop("emergency stop pressed", by="clin")
    assert sup.wait(WAIT) and sup.outcome["how"] == "emergency"
    info = store.get_session(sup.session_id)
    assert info.status == "aborted" and info.end_reason == "emergency: emergency stop pressed"
    rec = _no_pulse_after_the_stop(store, sup.session_id)
    assert [e.kind for e in rec.events] == ["start", "stop"]  # nothing refused was recorded


def test_a_failing_command_ends_the_session_at_zero_output(started) -> None:  # type: ignore[no-untyped-def]
    sup, store = started
    _press(sup, "intensity", Command.INCREASE, "quad")
    sup.conn.send(("increase",))  # malformed: what a bug on either side could send
    assert sup.wait(WAIT)
    assert sup.outcome["how"] == "emergency"
    info = store.get_session(sup.session_id)
    assert info.status == "aborted" and "failed" in info.end_reason
    rec = _no_pulse_after_the_stop(store, sup.session_id)
    assert rec.events[-1].data["by"] == "server"


def test_refused_before_anything_is_recorded(db) -> None:  # type: ignore[no-untyped-def]
    url, store = db
    with pytest.raises(SessionRefused, match="pacemaker"):
        supervise(url, "P-pacer", program(), DEVICE, options=OPTIONS)
    with pytest.raises(SessionRefused, match="NO-SUCH"):
        supervise(url, "NO-SUCH", program(), DEVICE, options=OPTIONS)
    with pytest.raises(SessionRefused, match="virtual clock runs only on sim://"):
        supervise(url, "P-1", program(), "rehastim2:///dev/null", virtual=True)
    assert store.list_sessions() == [] and store.info()["program_versions"] == 0


_PARENT = """
import sys, time
from opennmes.session import supervise
from opennmes.stim import load_program_text
sup = supervise({url!r}, "P-1", load_program_text({text!r}), {device!r}, options={options!r},
                virtual={virtual!r}, parent="the test's parent process",
                parent_timeout={parent_timeout!r})
for _ in range(3):
    sup.send("increase", "quad", by="parent")
print(sup.session_id, flush=True)
time.sleep(600)
"""


def _parent(url: str, *, virtual: bool, duration: float,
            parent_timeout: float) -> tuple[subprocess.Popen[str], int]:
    """A separate process that supervises a session, raises quad three steps and waits."""
    code = _PARENT.format(url=url, text=PROGRAM.format(duration=duration), device=DEVICE,
                          options=OPTIONS, virtual=virtual, parent_timeout=parent_timeout)
    env = os.environ | {"PYTHONPATH": str(Path(opennmes.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip(), f"the parent process failed (exit {proc.wait()})"
    return proc, int(line)


def _levels(store: Store, session_id: int) -> list[float]:
    return [e.data["new"] for e in store.load_session(session_id).events
            if e.kind == "intensity"]


def test_the_session_stops_when_its_parent_dies(db) -> None:  # type: ignore[no-untyped-def]
    url, store = db
    # a parent slowed by a loaded machine must not count as stalled here: only its death
    proc, sid = _parent(url, virtual=False, duration=600.0, parent_timeout=WAIT)
    try:
        wait_for(lambda: _levels(store, sid) == [0.001, 0.002, 0.003])
        assert store.get_session(sid).status == "running"
    finally:
        proc.kill()  # kill -9: no clean-up of any kind in the parent
        proc.wait()
    info = _ended(store, sid)
    assert info.status == "finished"
    assert info.end_reason == "stopped: the test's parent process went away"
    rec = _no_pulse_after_the_stop(store, sid)
    kinds = [e.kind for e in rec.events if e.kind != "loop"]
    assert kinds == ["start", "intensity", "intensity", "intensity", "stop"]
    assert rec.events[-1].data["by"] == "server"
    assert len(rec.pulses) > 0  # it did play, until its parent died


def test_the_session_stops_when_its_parent_stalls(db) -> None:  # type: ignore[no-untyped-def]
    """A parent that stops reading (frozen with SIGSTOP): the session process's messages
    wait, its control loop does not; once one has waited ``parent_timeout`` the session
    stops, long before its hour-long program (virtual clock) would end."""
    url, store = db
    proc, sid = _parent(url, virtual=True, duration=3600.0, parent_timeout=1.0)
    try:
        wait_for(lambda: _levels(store, sid) == [0.001, 0.002, 0.003])
        os.kill(proc.pid, signal.SIGSTOP)
        info = _ended(store, sid)
    finally:
        proc.kill()
        proc.wait()
    assert info.status == "finished" and info.end_reason.startswith(
        "stopped: the test's parent process stopped responding")
    rec = _no_pulse_after_the_stop(store, sid)
    assert rec.events[-1].data["by"] == "server"
