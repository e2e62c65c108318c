"""How fast a frozen device is found, and how close the record stays to what it played.

The procedure of ``tests/devices/test_frozen_device.py`` (the emulator as its own process,
``nmes emulate ... --record``, frozen with SIGSTOP for 1 s, 1.5 s into a plateau or a constant
40 Hz program), repeated on both devices, on an idle machine and beside ``n_hogs()`` CPU hogs.
Detection latency: from SIGSTOP to the host's fault. Goal (issue "Truthful record"): within
0.5 s, every run; the host's delivered pulses within one pulse per channel of the emulator's
record.
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


def run() -> list[dict]:
    rows = []
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
