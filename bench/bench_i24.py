"""How fast the I24 emulator and driver stream live data, per output rate.

The in-process I24 emulator on a pty streams one DlSendLiveData frame per sample instant (two
EMG channels and bioimpedance), the I24 driver decodes them in its reader thread and the
benchmark reads its blocks every 10 ms for ``SECONDS`` s of wall time. Result per rate: the
samples received per second of wall time as a share of the rate (100 % = live), and how far
the last sample received trails the samples due at the end (lag, s). Two Python threads on the
same machine do both sides of the wire, so the highest rates measure this machine's Python,
not the protocol; every sample still arrives (tests/devices/test_i24.py checks completeness).
"""

from __future__ import annotations

import os
import time

SECONDS = 3.0
RATES = (1000, 4000, 8000, 16000, 32000)


def _stream(rate: int) -> tuple[float, float]:
    from opennmes.devices.sciencemode4 import I24, I24Emulator

    with I24Emulator(seed=1) as emu, I24(emu.port, timeout=30.0, silence=30.0) as dev:
        dev.start(("emg1", "emg2", "bi"), rate)
        t0 = time.monotonic()
        got = 0
        while time.monotonic() - t0 < SECONDS:
            b = dev.read()
            if b is not None:
                got += b.n_samples
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        lag = (elapsed * rate - got) / rate
        dev.stop()
    return got / elapsed / rate, lag


def run() -> list[dict]:
    rows = []
    load = os.getloadavg()[0]
    for rate in RATES:
        share, lag = _stream(rate)
        rows.append({"name": f"I24 live data at {rate} samples/s (3 channels), emulator and "
                             "driver over a pty: received per wall second, lag at the end",
                     "value": f"{share * 100:.0f} % / {lag:.2f} s", "unit": "of the rate / s",
                     "goal": ">= 95 % (live)", "passed": bool(share >= 0.95),
                     "note": f"{SECONDS:g} s, load average {load:.1f} at the start"})
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
