"""How fast a frozen device is found, and how close the record stays to what it played.

The procedure of ``tests/devices/test_frozen_device.py`` (the emulator as its own process,
``nmes emulate ... --record``, frozen with SIGSTOP for 1 s, 1.5 s into a plateau or a constant
40 Hz program), repeated on both devices, on an idle machine and beside ``n_hogs()`` CPU hogs.
Detection latency: from SIGSTOP to the host's fault. Goal (issue "Truthful record"): within
0.5 s, every run; the host's delivered pulses within one pulse per channel of the emulator's
record.

Late updates: the P24 test program (ramps, doublets, three channels) streamed for 6 s to the
in-process emulator beside the CPU hogs, where the emulator thread sometimes reads an update
after the period it was meant for (the finding of the issue). Counted: pulses the emulator
played, pulses the host flagged unconfirmed, and pulses recorded as delivered that the
emulator did not play at that amplitude (goal: none).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _load import cpu_load, n_hogs  # noqa: E402
from tests.devices.test_frozen_device import run_frozen  # noqa: E402

RUNS = 6  # per device and load (alternating plateau and constant programs)


def _series(load: int) -> tuple[list[float], int, int, int]:
    lat: list[float] = []
    worst = unconfirmed = runs = 0
    for kind in ("rehastim2", "p24"):
        for i in range(RUNS):
            program = ("plateau", "constant")[i % 2]
            with tempfile.TemporaryDirectory() as d:
                got = run_frozen(kind, program, 1.0, Path(d) / "played.csv")
            fault = got["fault"]
            runs += 1
            if fault is None or getattr(fault, "kind", "") != "timeout":
                lat.append(float("inf"))
                continue
            lat.append(fault.t - got["frozen"])
            host, emu = got["delivered"], got["emulator"]
            n = len(host.channel_names)
            diff = np.abs(np.bincount(host.channel, minlength=n)
                          - np.bincount(emu.channel, minlength=n)[:n])
            worst = max(worst, int(diff.max()))
            unconfirmed += len(got["unconfirmed"])
    return lat, worst, unconfirmed, runs


def _late_updates() -> tuple[int, int, int]:
    from tests.devices.conftest import P24_PROGRAM, match, stream

    from opennmes.devices import open_stimulator
    from opennmes.devices.sciencemode4 import P24Emulator
    from opennmes.stim import load_program_text

    prog = load_program_text(P24_PROGRAM.replace("duration: 1.2 s", "duration: 6 s"))
    with P24Emulator() as emu, open_stimulator(f"p24://{emu.port}") as stim:
        stream(stim, prog, 60)
        stim.stop()
        delivered, unconfirmed = stim.delivered(), stim.unconfirmed()
        played = emu.record.schedule(delivered.channel_names, {0: 0, 1: 1, 2: 2})
    wrong = sum(match(played, int(c), float(t), float(a)) is None for c, t, a in
                zip(delivered.channel, delivered.t, delivered.amplitude, strict=True))
    return len(played), len(unconfirmed), wrong


def run() -> list[dict]:
    rows = []
    with cpu_load(n_hogs()):
        late = [_late_updates() for _ in range(5)]
    played, flagged, wrong = (sum(x[i] for x in late) for i in range(3))
    rows.append({"name": f"P24 late updates beside {n_hogs()} CPU hogs, 5 x 6 s: pulses "
                         "recorded as delivered that the device did not play so",
                 "value": wrong, "unit": "pulses", "goal": "0", "passed": wrong == 0,
                 "note": f"{played} pulses played, {flagged} flagged unconfirmed "
                         f"({100 * flagged / max(played, 1):.2f} %)"})
    for label, hogs in (("idle", 0), (f"beside {n_hogs()} CPU hogs", n_hogs())):
        if hogs:
            with cpu_load(hogs):
                lat, worst, unconf, runs = _series(hogs)
        else:
            lat, worst, unconf, runs = _series(0)
        a = np.array(lat)
        rows.append({"name": f"frozen device found, {label}: p50 / p95 / max of {runs} runs",
                     "value": f"{np.median(a) * 1e3:.0f} / {np.percentile(a, 95) * 1e3:.0f} / "
                              f"{a.max() * 1e3:.0f}",
                     "unit": "ms", "goal": "max < 500 ms", "passed": bool(a.max() < 0.5),
                     "note": "SIGSTOP of the emulator process to the host's fault"})
        rows.append({"name": f"record vs device after a freeze, {label}: worst difference",
                     "value": worst, "unit": "pulses per channel", "goal": "<= 1",
                     "passed": worst <= 1,
                     "note": f"{unconf} pulses flagged unconfirmed in {runs} runs (sent after "
                             "the device's last answer)"})
    return rows
