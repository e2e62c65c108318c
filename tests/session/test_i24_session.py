"""EMG-triggered stimulation with an I24 and a P24 together, both emulated byte for byte on
pseudo-terminals: the I24 streams real forearm EMG (BITalino, rest then a strong burst), the
session's I24 sensor feeds the EMG trigger, the P24 plays the bursts. An electrode that comes
off the I24 and an I24 that goes silent end the session at zero output with a recorded event.
Real time; no wall-clock asserts (order, completeness and the record)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opennmes.devices import open_stimulator
from opennmes.devices.sciencemode4 import I24Emulator, P24Emulator
from opennmes.errors import DeviceError, SessionError
from opennmes.sensing import read_text
from opennmes.session import (
    DeviceErrorEvent,
    I24Sensor,
    ScriptedOperator,
    SessionRunner,
    TriggerDrive,
    Triggered,
    i24_spec,
    start_session,
)
from opennmes.signals import Signals
from opennmes.stim import Channel, Electrode, Program
from opennmes.store import Store, open_store

from ..conftest import SHARED_DATA
from ..devices.conftest import match
from .conftest import RELAXED, backend

EMG = SHARED_DATA / "emg" / "bitalino_forearm_1000hz.txt"
LEVEL = 0.024


def forearm_volts(start: float = 12.0, stop: float = 18.5) -> Signals:
    """BITalino EMG in V (its transfer function: (ADC / 2^12 - 1/2) x 3.3 V / 1009), rest
    then the strong burst near 15-17 s of the file."""
    raw = read_text(EMG).crop(start, stop)
    v = (raw.data / 4096.0 - 0.5) * 3.3 / 1009.0
    return Signals(v, raw.sfreq, ("EMG",), ("V",), 0.0)


def _wrist() -> Channel:
    return Channel(name="wrist extensors", electrode=Electrode(area=36e-4, site="wrist extensors"),
                   frequency=40.0, pulse_width=300e-6, interphase_gap=100e-6, amplitude=0.025,
                   ramp_up=0.5, on=2.0, ramp_down=0.5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'i24.db'}")
    s.add_patient("P1")
    yield s
    s.close()


def _session(store: Store, sensor: I24Sensor, duration: float, i24: I24Emulator,
             emg: Signals | None = None, **kw: Any) -> tuple[SessionRunner, Any, Any]:
    """A session on a fresh P24 emulator; the I24 emulator plays ``emg`` from the session's
    start (so that its rest and its burst fall where the test expects them, however long the
    set-up took on a loaded machine)."""
    p24 = P24Emulator()
    p24.start()
    stim = open_stimulator(f"p24://{p24.port}")
    program = Program(name="EMG-triggered wrist, I24 + P24", channels=[_wrist()],
                      duration=duration)
    drive = TriggerDrive("wrist extensors", "emg", signal="emg", sensor="emg", refractory=2.0,
                         rest=1.0)
    runner = start_session(store, "P1", program, stim, sensors=[sensor], drives=[drive],
                           chunk=0.02, step=2e-3, stall_margin=RELAXED, sensor_timeout=2.0,
                           **kw)
    runner.add_hook(ScriptedOperator.titrate(["wrist extensors"], {"wrist extensors": LEVEL},
                                             2e-3, 0.0, 0.02))
    if emg is not None:
        def play(runner: SessionRunner, t: float) -> None:
            if i24.signals is None:
                i24.play(emg)
        runner.add_hook(play)
    return runner, stim, p24


def test_emg_from_the_i24_triggers_bursts_on_the_p24(store: Store) -> None:
    emg = forearm_volts()
    with I24Emulator() as i24:
        sensor = I24Sensor(i24.port, "emg", sample_rate=1000)
        try:
            runner, stim, p24 = _session(store, sensor, 5.0, i24, emg)
            with stim:
                res = runner.run()
            played = p24.record.schedule()
            assert p24.output_is_zero
            p24.close()
        finally:
            sensor.close()
        assert i24.mode == 1  # idle: the sensor stopped the measurement
    assert res.status == "finished", res.reason
    bursts = [e for e in res.events if isinstance(e, Triggered) and e.result == "burst"]
    assert bursts and all(e.source == "emg:emg" for e in bursts)
    assert res.session_id is not None
    rec = store.load_session(res.session_id)
    # the stream in the record is the recording the I24 sent, sample for sample (float32 on
    # the wire), contiguous from where the emulator began playing it (the session's start;
    # before it, the emulator's rest noise)
    sig = rec.streams["emg"]
    assert sig.sfreq == 1000.0 and sig.units == ("V",) and sig.n_samples > 4000
    src = emg.data[0].astype(np.float32)
    got = sig.data[0].astype(np.float32)
    at = [j for j in range(len(got) - 50) if np.array_equal(got[j:j + 50], src[100:150])]
    assert len(at) == 1
    d = at[0] - 100  # record index of the recording's first sample (-1: just before t = 0)
    j0 = max(d, 0)
    k = (np.arange(j0, len(got)) - d) % len(src)
    np.testing.assert_array_equal(got[j0:], src[k])
    assert sensor.missing == 0 and sensor.device.protocol_errors == 0
    # the first burst starts at the onset of the recorded burst: the EMG around the trigger
    # is well above the rest the detector calibrated on, and the second before it is not
    t_trig = bursts[0].t
    i = int(round((t_trig - sig.t0) * sig.sfreq))
    rest = np.std(sig.data[0, j0:j0 + 1000])
    assert np.sqrt(np.mean(sig.data[0, i - 50:i + 250] ** 2)) > 3 * rest
    assert np.sqrt(np.mean(sig.data[0, i - 1000:i - 100] ** 2)) < 2 * rest
    # the P24 played the bursts the record says it delivered, none before the trigger's
    # window (the event is stamped on the device clock, which runs up to two 20 ms windows
    # ahead of the loop that renders the burst)
    assert len(rec.pulses) > 20 and rec.pulses.t.min() >= t_trig - 0.04
    for j in range(len(rec.pulses)):
        assert match(played, 0, rec.pulses.t[j], rec.pulses.amplitude[j]) is not None
    assert rec.pulses.amplitude.max() <= LEVEL + 1e-12


def test_an_electrode_off_on_the_i24_stops_the_burst_and_is_recorded(store: Store) -> None:
    """The positive electrode comes off 0.3 s into the first burst: the output goes to zero,
    the session ends as a device error whose event names the channel and electrode, and the
    record keeps the EMG up to the sample where contact was lost."""
    emg = forearm_volts()
    seen: dict[str, float] = {}
    with I24Emulator() as i24:
        sensor = I24Sensor(i24.port, "emg", sample_rate=1000)

        def pull_electrode(runner: SessionRunner, t: float) -> None:
            trig = [e for e in runner.events if isinstance(e, Triggered)]
            if trig and "off" not in seen and t >= trig[0].t + 0.3:
                seen["off"] = t
                i24.electrode_off(0, "positive")

        try:
            runner, stim, p24 = _session(store, sensor, 6.0, i24, emg)
            runner.add_hook(pull_electrode)
            with stim:
                res = runner.run()
                assert p24.output_is_zero
            played = p24.record.schedule()
            p24.close()
        finally:
            sensor.close()
    assert "off" in seen, "no burst was triggered"
    assert res.status == "aborted" and res.how == "device_error", res.reason
    assert "positive electrode off on channel 'emg'" in res.reason
    errors = [e for e in res.events if isinstance(e, DeviceErrorEvent)]
    assert len(errors) == 1 and "check the electrodes" in errors[0].message
    assert sensor.contact_lost is not None
    lost_at = sensor.contact_lost[0]
    assert lost_at >= seen["off"] - 0.1
    assert res.session_id is not None
    rec = store.load_session(res.session_id)
    assert rec.info.status == "aborted"
    stop = [e for e in rec.events if e.kind == "stop"]
    assert len(stop) == 1 and stop[0].data["how"] == "device_error"
    recorded = [e for e in rec.events if e.kind == "device_error"]
    assert len(recorded) == 1 and "electrode off" in recorded[0].data["message"]
    # EMG recorded up to the lost contact, not past it
    sig = rec.streams["emg"]
    assert abs(sig.t0 + sig.n_samples / sig.sfreq - lost_at) < 1.5 / sig.sfreq
    # stimulation was running when the electrode came off, and nothing was delivered after
    # the session's stop
    assert len(rec.pulses) > 0 and len(played) >= len(rec.pulses)
    assert rec.pulses.t.max() <= stop[0].t


def test_a_silent_i24_stops_the_session(store: Store) -> None:
    """The I24 stops sending 1.5 s in: the driver sees the silence and the session ends at
    zero output, the samples up to the silence in the record."""
    with I24Emulator(forearm_volts()) as i24:
        sensor = I24Sensor(i24.port, "emg", sample_rate=500, silence=0.25)

        def silence(runner: SessionRunner, t: float) -> None:
            if t >= 1.5 and not i24.silent:
                i24.go_silent()

        try:
            runner, stim, p24 = _session(store, sensor, 5.0, i24)
            runner.add_hook(silence)
            with stim:
                res = runner.run()
                assert p24.output_is_zero
            p24.close()
        finally:
            sensor.close()  # the silent device: the stop times out, the port still closes
    assert res.status == "aborted" and res.how == "device_error", res.reason
    assert "sent no samples" in res.reason and "limit 0.25 s" in res.reason
    assert res.session_id is not None
    rec = store.load_session(res.session_id)
    sig = rec.streams["emg"]
    assert sig.sfreq == 500.0 and 1.0 < sig.t0 + sig.duration <= 1.6


def test_i24_spec_and_refusals() -> None:
    assert i24_spec("i24:/dev/ttyACM0,rate=2000,channels=emg1+bi, silence=0.5") == {
        "port": "/dev/ttyACM0", "sample_rate": 2000, "channels": ("emg1", "bi"),
        "silence": 0.5}
    assert i24_spec("i24:/dev/pts/3") == {"port": "/dev/pts/3"}
    with pytest.raises(SessionError, match="unknown key 'gain'"):
        i24_spec("i24:/dev/pts/3,gain=2")
    with pytest.raises(SessionError, match="rate = 'fast' must be a number"):
        i24_spec("i24:/dev/pts/3,rate=fast")
    with pytest.raises(SessionError, match="start with the port"):
        i24_spec("i24:rate=1000")
    with I24Emulator() as i24:
        with pytest.raises(DeviceError, match="300 samples/s: the I24 outputs"):
            I24Sensor(i24.port, "emg", sample_rate=300)
        with pytest.raises(DeviceError, match=r"I24 channels \['ecg'\]"):
            I24Sensor(i24.port, "emg", channels=("ecg",))
        sensor = I24Sensor(i24.port, "arm", channels=("emg1", "emg2", "bi"))
        try:
            assert sensor.names == ("arm.1", "arm.2", "arm.3")
            assert sensor.units == ("V", "V", "ohm")
            with backend("sim") as (stim, _):
                program = Program(name="virtual", channels=[_wrist()], duration=1.0)
                with pytest.raises(SessionError, match="'arm'.*virtual clock"):
                    SessionRunner(program, stim, sensors=[sensor])
        finally:
            sensor.close()
    with pytest.raises(DeviceError, match="cannot open serial port /nonexistent"):
        I24Sensor("/nonexistent", "emg")
