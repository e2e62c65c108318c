"""The I24 from the command line: ``nmes run ... --sensor emg=i24:PORT`` records the I24's EMG
beside a P24 session (both emulated) and an electrode off ends it with an error line;
``nmes emulate i24`` serves a driver (the one subprocess test); ``nmes emulate rehastim2
--escapes`` picks the emulator's reading of unneeded escapes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from opennmes.devices.sciencemode4 import I24, I24Emulator, P24Emulator
from opennmes.sensing import read_text
from opennmes.store import open_store

from ..conftest import SHARED_DATA, run_nmes
from ..session.conftest import program_text

EMG = SHARED_DATA / "emg" / "bitalino_forearm_1000hz.txt"


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    with open_store(url) as s:
        s.add_patient("P1")
    return url


def _prog(tmp_path: Path) -> str:
    p = tmp_path / "prog.yaml"
    p.write_text(program_text(reps=1, on=0.5, off=0.5))
    return str(p)


def test_run_records_the_i24_beside_the_p24(tmp_path: Path, db: str) -> None:
    emg = read_text(EMG).crop(0.0, 10.0)
    with I24Emulator(emg) as i24, P24Emulator() as p24:
        r = run_nmes("run", _prog(tmp_path), "--device", f"p24://{p24.port}", "--patient",
                     "P1", "--db", db, "--plain", "--titrate-to", "10",
                     "--titrate-interval", "0.02", "--stall-margin", "1000",
                     "--sensor", f"forearm=i24:{i24.port},rate=500,silence=2")
        assert r.returncode == 0, r.stderr
        assert p24.output_is_zero and len(p24.record) > 0
        assert i24.mode == 1 and i24.power[3] == 0  # stopped and switched off at the end
    with open_store(db) as s:
        rec = s.load_session(1)
    sig = rec.streams["forearm"]
    assert sig.names == ("forearm",) and sig.sfreq == 500.0 and sig.units == ("V",)
    # the file's counts at every second sample (1000 -> 500 samples/s), from where the
    # session began, without a gap
    src = emg.data[0, ::2].astype(np.float32)
    got = sig.data[0].astype(np.float32)
    at = [k for k in range(len(src) - 40) if np.array_equal(src[k:k + 40], got[:40])]
    assert at, "the recorded stream is not the file's samples"
    np.testing.assert_array_equal(got, src[at[0]:at[0] + len(got)])


def test_run_with_an_electrode_off_on_the_i24_is_aborted(tmp_path: Path, db: str) -> None:
    with I24Emulator() as i24, P24Emulator() as p24:
        def loosen() -> None:
            while i24.mode != 3:  # once measuring: the negative electrode is off
                time.sleep(0.005)
            i24.electrode_off(0, "negative")

        th = threading.Thread(target=loosen, daemon=True)
        th.start()
        r = run_nmes("run", _prog(tmp_path), "--device", f"p24://{p24.port}", "--patient",
                     "P1", "--db", db, "--plain", "--stall-margin", "1000",
                     "--sensor", f"i24:{i24.port},channels=emg1+bi")
        th.join(5)
        assert p24.output_is_zero
    assert r.returncode == 1, r.stderr
    assert "error: session aborted: device_error: I24 sensor 'emg': negative electrode off on " \
           "channel 'emg.1' (emg1)" in r.stderr
    with open_store(db) as s:
        rec = s.load_session(1)
    assert rec.info.status == "aborted"
    assert [e.kind for e in rec.events if e.kind == "device_error"] == ["device_error"]


def test_run_refuses_a_bad_i24_sensor_before_anything(tmp_path: Path, db: str) -> None:
    r = run_nmes("run", _prog(tmp_path), "--device", "sim://", "--patient", "P1", "--db", db,
                 "--plain", "--sensor", "emg=i24:/dev/pts/9999,rate=1000")
    assert r.returncode == 2 and "cannot open serial port /dev/pts/9999" in r.stderr
    r = run_nmes("run", _prog(tmp_path), "--device", "sim://", "--patient", "P1", "--db", db,
                 "--plain", "--sensor", "emg=i24:/dev/pts/1,gain=3")
    assert r.returncode == 2 and "unknown key 'gain'" in r.stderr
    with open_store(db) as s:
        assert s.info()["sessions"] == 0


def test_emulate_rehastim2_escapes_option() -> None:
    r = run_nmes("emulate", "rehastim2", "--duration", "0.1", "--escapes", "strict")
    assert r.returncode == 0, r.stderr
    r = run_nmes("emulate", "rehastim2", "--duration", "0.1", "--escapes", "lenient")
    assert r.returncode == 2
    assert "escapes='lenient' is not an option; use one of tolerant, strict" in r.stderr


def test_emulate_i24_serves_the_driver_until_stopped() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "opennmes", "emulate", "i24", "--duration",
                             "60", "--emg", str(EMG)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = line.strip().rsplit(" ", 1)[-1]
        assert line.startswith("i24 emulator on /dev/"), line
        assert proc.stdout.readline().strip() == \
            f"use it with: nmes run ... --sensor emg=i24:{port},rate=1000"
        with I24(port) as dev:
            dev.start(("emg1",), 1000)
            got: list[np.ndarray] = []
            while sum(len(x) for x in got) < 300:
                b = dev.read()
                if b is not None:
                    got.append(b.values[0])
                time.sleep(0.01)
            dev.stop()
        proc.terminate()
        tail = proc.stdout.read()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    v = np.concatenate(got)[:300]
    np.testing.assert_array_equal(v, read_text(EMG).data[0, :300])  # counts, exact in float32
    assert "stopped: 1 measurements" in tail
