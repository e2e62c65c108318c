"""Lab Streaming Layer: an EMG stream from a pylsl outlet triggers a session on the emulated
RehaStim 2, and an LSL inlet receives every pulse the session recorded as delivered (and its
events) as markers on LSL's clock; a stream not found is refused before any current; a stream
that goes silent stops the session like any silent sensor; markers of task software start
bursts. Real time, on this machine's liblsl (pylsl's wheel); no wall-clock asserts."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opennmes.errors import SessionError, SignalError
from opennmes.sensing import read_text
from opennmes.session import (
    LslPublisher,
    LslSensor,
    LslTrigger,
    ScriptedOperator,
    SessionRunner,
    TriggerDrive,
    Triggered,
    WatchdogFired,
    lsl_spec,
    start_session,
)
from opennmes.signals import Signals
from opennmes.stim import Channel, Electrode, Program
from opennmes.store import Store, open_store

from ..conftest import SHARED_DATA
from ..devices.conftest import match
from .conftest import RELAXED, backend

pylsl = pytest.importorskip("pylsl")

EMG = SHARED_DATA / "emg" / "bitalino_forearm_1000hz.txt"


def _wrist() -> Channel:
    """40 Hz, 300 us, 100 us gap (the RehaStim 2 grid and gap)."""
    return Channel(name="wrist extensors", electrode=Electrode(area=36e-4, site="wrist extensors"),
                   frequency=40.0, pulse_width=300e-6, interphase_gap=100e-6, amplitude=0.025,
                   ramp_up=0.5, on=2.0, ramp_down=0.5)


class Pusher:
    """A pylsl outlet that pushes ``signals`` in real time, 10 ms at a time, from the first
    call (a session hook: the stream starts with the session), up to ``until`` s of it."""

    def __init__(self, signals: Signals, stream_type: str, *, until: float | None = None,
                 loop: bool = False) -> None:
        self.source_id = f"test-{uuid.uuid4().hex[:10]}"
        info = pylsl.StreamInfo("test-emg", stream_type, len(signals.names), signals.sfreq,
                                pylsl.cf_float32, self.source_id)
        info.set_channel_labels(list(signals.names))
        info.set_channel_units(list(signals.units))
        self.outlet = pylsl.StreamOutlet(info)
        self.signals = signals
        self.until = signals.duration if until is None else until
        self.loop = loop
        self.pushed = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def __call__(self, runner: Any, t: float) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        sig = self.signals
        step = int(round(0.01 * sig.sfreq))
        stop = min(sig.n_samples, int(self.until * sig.sfreq)) // step * step
        start = time.monotonic()
        i = 0
        while i < stop or self.loop:
            if self._stop.is_set():
                return
            delay = start + (i + step) / sig.sfreq - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            j = i % stop
            self.outlet.push_chunk(np.ascontiguousarray(sig.data[:, j:j + step].T,
                                                        dtype=np.float32))
            i += step
            self.pushed = i

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'lsl.db'}")
    s.add_patient("P1")
    yield s
    s.close()


def rec_events(db: str) -> list[Any]:
    with open_store(db) as s:
        return s.load_session(1).events


def _marker_inlet(source_id: str) -> Any:
    infos = pylsl.resolve_byprop("source_id", source_id, 1, 10.0)
    assert len(infos) == 1
    inlet = pylsl.StreamInlet(infos[0])
    inlet.open_stream(10.0)
    return inlet


def _listen(stream: str, into: list[tuple[np.ndarray, np.ndarray]], runner: Any) -> None:
    """Samples of the published stream ``stream`` until the session ends."""
    infos = pylsl.resolve_byprop("name", stream, 1, 30.0)
    inlet = pylsl.StreamInlet(infos[0])
    assert inlet.info(10.0).get_channel_labels() == ["EMG"]
    while True:
        ended = runner.state == "ended"
        x, ts = inlet.pull_chunk(timeout=0.5, as_numpy=True)
        if len(ts):
            into.append((np.asarray(x), np.asarray(ts)))
        elif ended:
            return


def _pull_markers(inlet: Any) -> list[tuple[float, dict[str, Any]]]:
    """Every marker up to and including the session's stop."""
    got: list[tuple[float, dict[str, Any]]] = []
    while True:
        x, ts = inlet.pull_sample(timeout=30.0)
        assert ts is not None, f"no stop marker after {len(got)} markers"
        got.append((ts, json.loads(x[0])))
        if got[-1][1]["event"] == "stop":
            return got


def test_lsl_spec() -> None:
    assert lsl_spec("lsl:type=EMG,name=Amp 1, timeout=2.5") == {
        "stream_type": "EMG", "stream_name": "Amp 1", "timeout": 2.5}
    assert lsl_spec("source_id=x,marker=go") == {"source_id": "x", "marker": "go"}
    with pytest.raises(SessionError, match="unknown key 'rate'"):
        lsl_spec("lsl:rate=100")
    with pytest.raises(SessionError, match="timeout = 'soon'"):
        lsl_spec("lsl:type=EMG,timeout=soon")
    with pytest.raises(SessionError, match="KEY=VALUE"):
        lsl_spec("lsl:EMG")
    with pytest.raises(SessionError, match="name=, type= or source_id="):
        LslSensor(timeout=0.2)


def test_a_stream_not_found_is_refused_by_name_and_timeout() -> None:
    kind = f"none-{uuid.uuid4().hex[:8]}"
    with pytest.raises(SignalError, match=f"no LSL stream with type='{kind}' found within "
                                          "0.3 s"):
        LslSensor("shank", stream_type=kind, timeout=0.3)
    with pytest.raises(SessionError, match="timeout = 120"):
        LslSensor("shank", stream_type=kind, timeout=120)


def test_text_markers_are_not_a_sensor() -> None:
    sid = f"test-{uuid.uuid4().hex[:10]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo("task", "Markers", 1, pylsl.IRREGULAR_RATE,
                                                 pylsl.cf_string, sid))
    with pytest.raises(SignalError, match="text markers"):
        LslSensor("task", source_id=sid, timeout=5.0)
    del outlet


def test_an_lsl_sensor_needs_the_real_clock() -> None:
    sid = f"test-{uuid.uuid4().hex[:10]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo("amp", "EMG", 1, 500.0, pylsl.cf_float32,
                                                 sid))
    sensor = LslSensor("forearm", source_id=sid, timeout=5.0)
    assert sensor.names == ("forearm",) and sensor.units == ("",) and sensor.sfreq == 500.0
    program = Program(name="virtual", channels=[_wrist()], duration=1.0)
    with backend("sim") as (stim, _):
        with pytest.raises(SessionError, match="'forearm'.*virtual clock"):
            SessionRunner(program, stim, sensors=[sensor])
    sensor.close()
    del outlet


def test_emg_over_lsl_triggers_the_rehastim2_and_every_pulse_is_a_marker(
        store: Store) -> None:
    """Real BITalino EMG (rest, then the strong burst near 15-17 s) pushed on a pylsl outlet
    in real time: the session's LSL sensor feeds the EMG trigger, the emulated RehaStim 2
    plays the burst, and an inlet on the session's marker stream receives every pulse of the
    record, in order, with the intended value beside the delivered one, and every event."""
    emg = read_text(EMG).crop(12.0, 18.5)
    pusher = Pusher(emg, "EMG")
    program = Program(name="EMG-triggered wrist over LSL", channels=[_wrist()],
                      duration=emg.duration - 0.5)
    sensor = LslSensor("forearm", source_id=pusher.source_id, timeout=10.0)
    assert sensor.names == emg.names and sensor.sfreq == emg.sfreq
    drive = TriggerDrive("wrist extensors", "emg", signal=emg.names[0], refractory=2.0,
                         rest=1.0)
    try:
        with backend("rehastim2") as (stim, emu):
            runner = start_session(store, "P1", program, stim, sensors=[sensor],
                                   drives=[drive], chunk=0.02, step=2e-3,
                                   stall_margin=RELAXED, sensor_timeout=2.0)
            runner.add_hook(pusher)
            runner.add_hook(ScriptedOperator.titrate(["wrist extensors"],
                                                     {"wrist extensors": 0.024}, 2e-3, 0.0,
                                                     0.02))
            samples: list[tuple[np.ndarray, np.ndarray]] = []
            with LslPublisher(runner, name=f"test-{uuid.uuid4().hex[:6]}") as out:
                inlet = _marker_inlet(out.source_id)
                listener = threading.Thread(target=_listen, args=(f"{out.name}-forearm",
                                                                 samples, runner), daemon=True)
                listener.start()
                res = runner.run()
                listener.join(30.0)
            markers = _pull_markers(inlet)
            played = emu.record.schedule()
    finally:
        pusher.close()
        sensor.close()
    assert res.status == "finished", res.reason
    started = [e for e in res.events if isinstance(e, Triggered) and e.result == "burst"]
    assert started and all(e.source == "emg:" + emg.names[0] for e in started)
    assert res.session_id is not None
    rec = store.load_session(res.session_id)
    assert len(rec.pulses) > 20
    # the record (what the device confirmed) is what the markers say, pulse by pulse
    pulses = [m for _, m in markers if m["event"] == "pulse"]
    assert len(pulses) == len(rec.pulses) == len(res.delivered)
    names = rec.pulses.channel_names
    assert [p["channel"] for p in pulses] == [names[c] for c in rec.pulses.channel]
    np.testing.assert_allclose([p["t"] for p in pulses], rec.pulses.t, atol=1e-6)
    np.testing.assert_allclose([p["amplitude"] for p in pulses], rec.pulses.amplitude,
                               atol=1e-9)
    np.testing.assert_allclose([p["phase_width"] for p in pulses], rec.pulses.phase_width,
                               atol=1e-9)
    # and what the emulated device played at those times and amplitudes
    for p in pulses:
        assert match(played, 0, p["t"], p["amplitude"]) is not None, p
    # the intended value beside the delivered one: what the session sent for that pulse (an
    # update that left late, on a loaded machine, plays a period later: the two differ there)
    intended = [p["intended_amplitude"] for p in pulses]
    assert sum(i is not None for i in intended) >= len(pulses) - 2
    assert all(0 < i <= 0.024 + 1e-12 for i in intended if i is not None)
    assert all(p["intended_phase_width"] == pytest.approx(300e-6) for p in pulses
               if p["intended_phase_width"] is not None)
    # every event of the record, in session time order, between start and stop
    kinds = [m["event"] for _, m in markers if m["event"] != "pulse"]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    rec_events = sorted((round(e.t, 6), e.kind) for e in rec.events)
    got_events = sorted((m["t"], m["event"]) for _, m in markers if m["event"] != "pulse")
    assert got_events == rec_events
    trig = [m for _, m in markers if m["event"] == "trigger" and m["result"] == "burst"]
    assert len(trig) == len(started)
    # markers come in session time order, each stamped on LSL's clock at session time plus
    # one offset
    t = np.array([m["t"] for _, m in markers])
    stamps = np.array([ts for ts, _ in markers])
    assert np.all(np.diff(t) >= 0)
    assert np.ptp(stamps - t) < 1e-5
    # the sensor's samples went out too, labelled, on the same clock: each one received is
    # the recorded sample at that session time
    offset = float(np.median(stamps - t))
    x = np.vstack([a for a, _ in samples])
    ts = np.concatenate([b for _, b in samples]) - offset
    stream = rec.streams["forearm"]
    assert len(ts) > 1000
    i = np.round((ts - stream.t0) * stream.sfreq).astype(int)
    assert i.min() >= 0 and i.max() < stream.n_samples
    np.testing.assert_allclose(x[:, 0], stream.data[0, i], rtol=1e-6)


def test_a_silent_lsl_stream_stops_the_session(store: Store) -> None:
    """The amplifier stops sending 1.5 s in: the watchdog stops the output and the record
    says which sensor went silent."""
    emg = read_text(EMG).crop(12.0, 18.5)
    pusher = Pusher(emg, "EMG", until=1.5)
    program = Program(name="silent LSL", channels=[_wrist()], duration=5.0)
    sensor = LslSensor("forearm", source_id=pusher.source_id, timeout=10.0)
    drive = TriggerDrive("wrist extensors", "emg", signal=emg.names[0], rest=1.0)
    try:
        with backend("rehastim2") as (stim, emu):
            runner = start_session(store, "P1", program, stim, sensors=[sensor],
                                   drives=[drive], chunk=0.02, step=2e-3,
                                   stall_margin=RELAXED, sensor_timeout=0.5)
            runner.add_hook(pusher)
            res = runner.run()
            assert emu.output_is_zero
    finally:
        pusher.close()
        sensor.close()
    assert res.status == "aborted" and res.how == "watchdog", res.reason
    fired = [e for e in res.events if isinstance(e, WatchdogFired)]
    assert len(fired) == 1 and fired[0].cause == "sensor" and "'forearm'" in fired[0].detail
    # the stream's samples are in the record up to the silence, and the session went on
    # after them only for the watchdog's limit
    assert res.session_id is not None
    rec = store.load_session(res.session_id)
    sig = rec.streams["forearm"]
    assert 0 < sig.n_samples <= pusher.pushed
    assert sig.t0 + sig.duration < fired[0].t
    assert rec.info.status == "aborted"


def test_task_markers_start_bursts(store: Store) -> None:
    """Task software sends 'go' and 'rest' markers: each 'go' starts a burst on the
    externally triggered channel, recorded as triggered by the stream."""
    sid = f"test-{uuid.uuid4().hex[:10]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo("task", "Markers", 1, pylsl.IRREGULAR_RATE,
                                                 pylsl.cf_string, sid))
    trigger = LslTrigger("wrist extensors", source_id=sid, marker="go", timeout=10.0)
    program = Program(name="task markers", channels=[_wrist()], duration=4.0)
    drive = TriggerDrive("wrist extensors", "external", refractory=0.5)
    sent: list[str] = []

    def send(runner: SessionRunner, t: float) -> None:
        for at, what in ((0.3, "rest"), (0.5, "go"), (1.0, "rest")):
            if t >= at and len(sent) < [0.3, 0.5, 1.0].index(at) + 1:
                outlet.push_sample([what])
                sent.append(what)

    try:
        with backend("rehastim2") as (stim, _):
            runner = start_session(store, "P1", program, stim, drives=[drive], chunk=0.02,
                                   step=2e-3, stall_margin=RELAXED)
            runner.add_hook(ScriptedOperator.titrate(["wrist extensors"],
                                                     {"wrist extensors": 0.02}, 2e-3, 0.0,
                                                     0.01))
            runner.add_hook(send)
            runner.add_hook(trigger)
            res = runner.run()
    finally:
        trigger.close()
    assert res.status == "finished", res.reason
    assert sent == ["rest", "go", "rest"]
    assert trigger.received == 3 and trigger.matched == 1
    trig = [e for e in res.events if isinstance(e, Triggered)]
    assert [(e.result, e.source) for e in trig] == [("burst", "lsl:task")]
    assert trig[0].t >= 0.5
    assert len(res.delivered) > 0 and res.delivered.t[0] >= trig[0].t - 1e-9


EMG_PROGRAM = """
name: EMG-triggered wrist, LSL
channels:
  - name: wrist extensors
    electrode: {area: 36 cm2, site: wrist extensors, side: left}
    frequency: 40 Hz
    pulse_width: 300 us
    interphase_gap: 100 us
    amplitude: 20 mA
    ramp_up: 0.2 s
    on: 0.5 s
    ramp_down: 0.2 s
    trigger: {source: emg, signal: EMG, rest: 1 s, refractory: 1 s}
duration: 5 s
"""


def test_nmes_run_with_an_lsl_sensor_and_lsl_markers(tmp_path: Path) -> None:
    """``nmes run --sensor forearm=lsl:source_id=... --lsl``: the EMG arrives over LSL, the
    trigger fires on its burst, and a marker inlet receives the session (the pulses it sees
    are the record's, the last marker the stop); a stream that is not there is refused with
    one error line before any session is written."""
    from ..conftest import run_nmes

    prog = tmp_path / "emg.yaml"
    prog.write_text(EMG_PROGRAM)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    with open_store(db) as s:
        s.add_patient("P1")
    missing = f"none-{uuid.uuid4().hex[:8]}"
    r = run_nmes("run", str(prog), "--device", "sim://", "--patient", "P1", "--db", db,
                 "--plain", "--sensor", f"forearm=lsl:type={missing},timeout=0.3")
    assert r.returncode == 2
    assert f"error: no LSL stream with type='{missing}' found within 0.3 s" in r.stderr
    with open_store(db) as s:
        assert s.info()["sessions"] == 0
    # a live run: rest EMG until the session has started (its start marker arrived), then,
    # after the detector's second of rest, one strong burst
    sid = f"test-{uuid.uuid4().hex[:10]}"
    info = pylsl.StreamInfo("test-emg", "EMG", 1, 1000.0, pylsl.cf_float32, sid)
    info.set_channel_labels(["EMG"])
    outlet = pylsl.StreamOutlet(info)
    prefix = f"test-{uuid.uuid4().hex[:6]}"
    got: list[tuple[float, dict[str, Any]]] = []
    started = threading.Event()
    done = threading.Event()

    def listen() -> None:
        infos = pylsl.resolve_byprop("name", f"{prefix}-markers", 1, 60.0)
        inlet = pylsl.StreamInlet(infos[0])
        x, ts = inlet.pull_sample(timeout=60.0)
        got.append((ts, json.loads(x[0])))
        started.set()
        got.extend(_pull_markers(inlet))

    def push() -> None:
        rng = np.random.default_rng(1)
        t_go: float | None = None
        nxt = time.monotonic()
        while not done.is_set():
            nxt += 0.01
            time.sleep(max(0.0, nxt - time.monotonic()))
            x = rng.normal(0.0, 1.0, 10)
            if started.is_set() and t_go is None:
                t_go = time.monotonic() + 1.5
            if t_go is not None and t_go <= time.monotonic() < t_go + 0.3:
                x += 100.0 * np.sin(np.linspace(0, 2 * np.pi, 10, endpoint=False))
            outlet.push_chunk(x.astype(np.float32).reshape(-1, 1))

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    try:
        r = run_nmes("run", str(prog), "--device", "sim://healthy-adult?sfreq=100&emg=0",
                     "--patient", "P1", "--db", db, "--plain", "--titrate-to", "20",
                     "--titrate-interval", "0.02", "--sensor", f"forearm=lsl:source_id={sid}",
                     "--lsl", "--lsl-name", prefix, "--stall-margin", "1000")
    finally:
        done.set()
        pusher.join(5.0)
    listener.join(60.0)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"LSL: markers on {prefix}-markers" in r.stderr
    bursts = [e for e in rec_events(db) if e.kind == "trigger" and e.data["result"] == "burst"]
    assert bursts and f"{len(bursts)} triggered bursts" in r.stdout
    with open_store(db) as s:
        rec = s.load_session(1)
    assert rec.info.meta.get("lsl") == f"{prefix}-markers"
    assert rec.streams["forearm"].n_samples > 3000
    assert got and got[-1][1]["event"] == "stop" and got[-1][1]["how"] == "completed"
    pulses = [m for _, m in got if m["event"] == "pulse"]
    n = len(pulses)
    assert n > 10 and len(rec.pulses) >= n
    np.testing.assert_allclose([p["t"] for p in pulses], rec.pulses.t[-n:], atol=1e-6)
    np.testing.assert_allclose([p["amplitude"] for p in pulses], rec.pulses.amplitude[-n:],
                               atol=1e-9)


def test_nmes_run_refuses_a_bad_lsl_trigger(tmp_path: Path) -> None:
    """--lsl-trigger names a triggered channel of the program, as CHANNEL=lsl:...; anything
    else is one error line before a session is written."""
    from ..conftest import run_nmes

    prog = tmp_path / "emg.yaml"
    prog.write_text(EMG_PROGRAM)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    with open_store(db) as s:
        s.add_patient("P1")
    sid = f"test-{uuid.uuid4().hex[:10]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo("task", "Markers", 1, pylsl.IRREGULAR_RATE,
                                                 pylsl.cf_string, sid))
    base = ["run", str(prog), "--device", "sim://", "--patient", "P1", "--db", db, "--plain"]
    r = run_nmes(*base, "--lsl-trigger", "wrist extensors")
    assert r.returncode == 2 and "use CHANNEL=lsl:type=Markers" in r.stderr
    r = run_nmes(*base, "--lsl-trigger", f"biceps=lsl:source_id={sid}")
    assert r.returncode == 2
    assert "channel 'biceps' is not triggered in program 'EMG-triggered wrist, LSL'; " \
           "triggered channels: ['wrist extensors']" in r.stderr
    r = run_nmes(*base, "--sensor", f"task=lsl:source_id={sid},marker=go")
    assert r.returncode == 2 and "marker= is for --lsl-trigger" in r.stderr
    with open_store(db) as s:
        assert s.info()["sessions"] == 0
    del outlet
