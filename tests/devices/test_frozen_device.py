"""A device that freezes while it stimulates: the host finds out, stops, and records only what
the device confirmed.

The emulator runs as its own process (``nmes emulate ... --record``), as a stimulator is its own
machine, and is frozen with SIGSTOP for 1 s (shorter than either device's watchdog) and for 4 s
(longer: the device stops by itself when it wakes), during the plateau of a contraction and
during a continuous constant program, when the host sends nothing but its status queries. The
host's record of delivered pulses is compared with the emulator's own record of what it played.
How fast the freeze is found is measured in ``bench/bench_freeze.py`` (no clock in a test).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opennmes.devices import DeviceFault, open_stimulator
from opennmes.errors import DeviceError
from opennmes.schedule import PulseSchedule
from opennmes.stim import load_program_text

_CHANNEL = """
  - name: {name}
    electrode: {{area: 50 cm2, site: {site}, side: right}}
    frequency: 40 Hz
    pulse_width: 300 us
    interphase_gap: 100 us
    amplitude: {amp} mA
"""
_PLATEAU = "    ramp_up: 500 ms\n    on: 5 s\n    ramp_down: 500 ms\n    off: 2 s\n"
PROGRAMS = {
    # the freeze comes 1.5 s in: a second into the plateau of the first contraction
    "plateau": "name: plateau\nchannels:" + _CHANNEL.format(name="quad", site="quadriceps",
                                                            amp=24) + _PLATEAU
               + _CHANNEL.format(name="ham", site="hamstrings", amp=16) + _PLATEAU
               + "duration: 9 s\n",
    "constant": "name: constant\nchannels:" + _CHANNEL.format(name="quad", site="quadriceps",
                                                              amp=24)
                + _CHANNEL.format(name="ham", site="hamstrings", amp=16) + "duration: 9 s\n",
}
FREEZE_AT = 1.5  # s of stimulation


def _emulator(kind: str, record: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "opennmes", "emulate", kind, "--record",
                             str(record)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    port = line.strip().rsplit(" ", 1)[-1]
    assert port.startswith("/dev/"), line
    proc.stdout.readline()
    return proc, port


def run_frozen(kind: str, program: str, freeze: float, record: Path) -> dict[str, Any]:
    """Stimulate, freeze the emulator process ``FREEZE_AT`` s in for ``freeze`` s, and return
    what each side recorded (host: delivered, unconfirmed, events; emulator: its record)."""
    prog = load_program_text(PROGRAMS[program])
    proc, port = _emulator(kind, record)
    times: dict[str, float] = {}

    def freezer() -> None:
        os.kill(proc.pid, signal.SIGSTOP)
        times["frozen"] = time.monotonic()
        time.sleep(freeze)
        times["thawed"] = time.monotonic()
        os.kill(proc.pid, signal.SIGCONT)

    thread = threading.Thread(target=freezer)
    err: Exception | None = None
    try:
        with open_stimulator(f"{kind}://{port}") as stim:
            stim.configure(prog)
            stim.start()
            sched = stim.quantize(prog.expand())
            try:
                for i in range(90):
                    stim.deliver(sched.window(i / 10, (i + 1) / 10), until=(i + 1) / 10)
                    if (i + 1) / 10 >= FREEZE_AT and not thread.is_alive() and \
                            "frozen" not in times:
                        thread.start()
            except DeviceError as exc:
                err = exc
            stim.stop()
            out = {"delivered": stim.delivered(), "unconfirmed": stim.unconfirmed(),
                   "events": stim.events(), "error": err, "fault": stim.fault,
                   "confirmed_until": stim.confirmed_until()}
        thread.join()
        time.sleep(0.5)  # the woken device reads what the host sent meanwhile
    finally:
        if thread.is_alive():
            thread.join()
        proc.send_signal(signal.SIGTERM)
        tail, _ = proc.communicate(timeout=30)
    out.update(times)
    out["emulator"] = PulseSchedule.read(str(record))
    out["emulator_says"] = tail
    return out


def _per_channel(s: PulseSchedule, names: tuple[str, ...]) -> dict[str, int]:
    counts = np.bincount(s.channel, minlength=len(s.channel_names))
    return {names[i]: int(counts[i]) for i in range(len(names))}


@pytest.mark.parametrize("freeze", [1.0, 4.0])
@pytest.mark.parametrize("program", ["plateau", "constant"])
@pytest.mark.parametrize("kind", ["rehastim2", "p24"])
def test_a_frozen_device_is_stopped_and_the_record_is_what_it_played(
        kind: str, program: str, freeze: float, tmp_path: Path) -> None:
    got = run_frozen(kind, program, freeze, tmp_path / "played.csv")
    fault = got["fault"]
    assert isinstance(got["error"], DeviceError), "the session went on with a frozen device"
    assert isinstance(fault, DeviceFault) and fault.kind == "timeout", fault
    assert "stopped answering" in fault.message
    # found while the device was frozen (order, not a time budget)
    assert got["frozen"] < fault.t
    if freeze >= 4.0:
        assert fault.t < got["thawed"]
    # output is zero at the end, on the device's own word
    assert "output zero" in got["emulator_says"], got["emulator_says"]
    delivered, unconfirmed, played = got["delivered"], got["unconfirmed"], got["emulator"]
    names = delivered.channel_names
    host = _per_channel(delivered, names)
    device = _per_channel(played, names)  # device channel i plays program channel i
    for ch in names:
        assert host[ch] > 0
        assert abs(host[ch] - device[ch]) <= 1, (ch, host, device)
    # nothing counted as delivered that the device did not play, to the pulse and the mA
    assert len(unconfirmed) > 0
    assert delivered.t.max() <= got["confirmed_until"] + 1e-9
    for i, ch in enumerate(names):  # the host's pulses are the device's first ones
        h, d = delivered.for_channel(ch), played.take(np.flatnonzero(played.channel == i))
        n = min(len(h), len(d))
        assert np.all(np.abs(h.t[:n] - d.t[:n]) < 0.005), ch
        assert np.allclose(h.amplitude[:n], d.amplitude[:n], rtol=0, atol=1e-9), ch
    # what the device played beyond the host's record is among the unconfirmed pulses
    assert len(delivered) + len(unconfirmed) >= len(played)
