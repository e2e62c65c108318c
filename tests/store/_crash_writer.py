"""Records a session in real time until killed (driven by test_crash.py).

Usage: python _crash_writer.py DB_URL. Prints ``ready SESSION_ID START_UNIX_TIME`` once the
session has begun, then writes 50 ms blocks of 4-channel EMG at 2 kHz and 35 Hz pulses on 8
channels, each block as soon as its time has passed, and an event every 0.5 s; after handing
each block to the writer it prints ``w T_END`` (session seconds covered so far).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from opennmes.signals import Signals
from opennmes.stim import PulseSchedule
from opennmes.store import open_store

BLOCK = 0.05  # s
SFREQ = 2000.0  # Hz
CHANNELS = tuple(f"ch{i}" for i in range(8))


def main(url: str) -> None:
    store = open_store(url)
    store.add_patient("CRASH-1")
    pv = store.save_program({"name": "crash test", "frequency": 35.0}, "crash")
    writer = store.begin_session("CRASH-1", pv.id, "sim://")
    rng = np.random.default_rng(0)
    start_mono, start_wall = time.monotonic(), time.time()
    print(f"ready {writer.id} {start_wall!r}", flush=True)
    k = 0
    while True:
        delay = start_mono + (k + 1) * BLOCK - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = k * BLOCK
        writer.write_signals(Signals(rng.normal(0, 1e-4, (4, int(BLOCK * SFREQ))), SFREQ,
                                     ("emg1", "emg2", "emg3", "emg4"), ("V",) * 4, t0), "emg")
        onsets = np.arange(np.ceil(t0 * 35.0), np.ceil((t0 + BLOCK) * 35.0)) / 35.0
        if onsets.size:
            t = np.repeat(np.round(onsets, 6), len(CHANNELS))
            ch = np.tile(np.arange(len(CHANNELS)), onsets.size)
            writer.write_pulses(PulseSchedule.from_arrays(t, 0.03, 300e-6, channel=ch,
                                                          channel_names=CHANNELS))
        if k % 10 == 0:
            writer.log_event("tick", t0, {"k": k})
        print(f"w {t0 + BLOCK!r}", flush=True)
        k += 1


if __name__ == "__main__":
    main(sys.argv[1])
