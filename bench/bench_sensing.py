"""Sensing benchmarks: the streaming EMG pipeline must run >= 200x faster than real time for
8 channels at 2 kHz (issue "Biofeedback and functional stimulation")."""

from __future__ import annotations

import time

import numpy as np

from opennmes.sensing import ArtefactSuppressor, EmgPipeline, GaitEventDetector, OnsetDetector
from opennmes.signals import Signals

FS = 2000.0
N_CH = 8
SECONDS = 60.0


def _speed(fn, n_runs: int = 3) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up: Numba compilation or cache load
    best = min(_timed(fn) for _ in range(n_runs))
    return SECONDS / best


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run() -> list[dict]:
    rng = np.random.default_rng(0)
    x = 1e-4 * rng.standard_normal((N_CH, int(SECONDS * FS)))
    rows: list[dict] = []
    for kind, chunk in (("linear", 20), ("linear", 200), ("rms", 20), ("rms", 200)):
        def go(kind: str = kind, chunk: int = chunk) -> None:
            p = EmgPipeline(FS, N_CH, notch=(50.0,), envelope=kind)
            for i in range(0, x.shape[1], chunk):
                p.process_array(x[:, i:i + chunk])

        v = _speed(go)
        rows.append({"name": f"streaming EMG pipeline, {kind} envelope, 8 ch @ 2 kHz, "
                             f"{chunk}-sample chunks ({chunk / FS * 1e3:.0f} ms)",
                     "value": v, "unit": "x real time", "goal": ">= 200",
                     "passed": v >= 200,
                     "note": "band-pass 20-450 Hz + 50 Hz notch + envelope"})
    names = [f"EMG{i}" for i in range(N_CH)]
    sig = Signals(x, FS, names, ["V"] * N_CH)

    def onsets() -> None:
        det = OnsetDetector(FS, names, "threshold")
        det.calibrate(sig.crop(0, 1.0))
        for t in np.arange(1.0, SECONDS, 0.01):
            det.update(Signals(x[:, int(t * FS):int(t * FS) + 20], FS, names, ["V"] * N_CH,
                               t))

    v = _speed(onsets, 1)
    rows.append({"name": "streaming onset detector (threshold), 8 ch @ 2 kHz, 10 ms chunks",
                 "value": v, "unit": "x real time", "goal": "informational",
                 "passed": None})
    pulses = np.arange(0.0, SECONDS, 1 / 33)

    def artefacts() -> None:
        f = ArtefactSuppressor(FS, N_CH, "nlms")
        for i in range(0, x.shape[1], 200):
            t0 = i / FS
            f.process(Signals(x[:, i:i + 200], FS, names, ["V"] * N_CH, t0),
                      pulses[(pulses >= t0) & (pulses < t0 + 0.1)])

    v = _speed(artefacts, 1)
    rows.append({"name": "per-phase NLMS M-wave suppression, 8 ch @ 2 kHz, 100 ms chunks",
                 "value": v, "unit": "x real time", "goal": "informational", "passed": None})
    fs_g = 120.0
    g = 3 * np.sin(2 * np.pi * np.arange(int(SECONDS * fs_g)) / fs_g / 1.3)

    def gait() -> None:
        d = GaitEventDetector(fs_g)
        for i in range(0, g.size, 12):
            d.update(Signals(g[None, i:i + 12], fs_g, ("gyro",), ("rad/s",), i / fs_g))

    v = _speed(gait, 1)
    rows.append({"name": "streaming gait-event detector, 120 Hz gyroscope, 100 ms chunks",
                 "value": v, "unit": "x real time", "goal": "informational", "passed": None})
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
