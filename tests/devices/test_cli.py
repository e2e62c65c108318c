"""``nmes devices`` and ``nmes emulate``, run as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys

from opennmes.devices import open_stimulator
from opennmes.stim import load_program_text

from .conftest import RS2_PROGRAM


def test_devices_lists_ports_and_schemes() -> None:
    out = subprocess.run([sys.executable, "-m", "opennmes", "devices"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "sim://" in out.stdout and "rehastim2://" in out.stdout and "p24://" in out.stdout
    js = subprocess.run([sys.executable, "-m", "opennmes", "devices", "--json"],
                        capture_output=True, text=True, timeout=60)
    assert js.returncode == 0 and isinstance(json.loads(js.stdout), list)


def test_emulate_rehastim2_serves_a_driver_until_stopped() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "opennmes", "emulate", "rehastim2",
                             "--duration", "8"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = line.strip().rsplit(" ", 1)[-1]
        assert port.startswith("/dev/"), line
        assert proc.stdout.readline().strip() == f"open it with: rehastim2://{port}"
        prog = load_program_text(RS2_PROGRAM)
        with open_stimulator(f"rehastim2://{port}") as stim:
            stim.configure(prog)
            stim.start()
            sched = stim.quantize(prog.expand())
            stim.deliver(sched.window(0, 0.4), until=0.4)
            stim.stop()
            n = len(stim.delivered())
        proc.terminate()
        tail = proc.stdout.read()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert n > 0 and f"stopped: {n} pulses recorded" in tail and "output zero" in tail
