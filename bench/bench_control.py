"""Control benchmarks.

1. Trigger latency: from the trigger decision (an EMG onset or gait event confirmed by the
   streaming detector) to the first pulse at the emulated RehaStim 2 and P24, over a real pty,
   in real time, with 10 ms chunks. Goal: p99 under 30 ms (issue "Biofeedback and functional
   stimulation"). The burst starts the way a session starts it: the session's
   ``TriggerDrive`` takes the decision and ``TriggerDrive.start_now`` sets the burst's level on
   the running device at once (what ``SessionRunner`` does after each trigger); the devices
   pulse on their own period clock, so the first pulse waits
   for the next slot of the 20 ms grid at 50 Hz: the figure includes that wait. Measured
   quiet and under the CPU load of ``bench/_load.py`` (``NMES_BENCH_LOAD`` hog processes,
   default two per core), each with the default scheduling and inside
   ``opennmes.devices.realtime()``. The emulator runs on a thread of this process, so its
   own wake-ups are delayed by the load too (``bench/diagnose_realtime.py`` separates the
   two).
2. Detection latency of the streaming detectors on the real recordings (onset or event
   estimate to its confirmation), reported separately: it depends on the detector's hold time
   and filters, not on the delivery path.
3. Closed-loop step cost on the virtual patient (one controller step per pulse).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from opennmes.control import PID, standard_knee_target
from opennmes.devices import open_stimulator, realtime
from opennmes.devices.sciencemode2._emulator import RehaStim2Emulator
from opennmes.devices.sciencemode4._emulator import P24Emulator
from opennmes.physiology import get_preset
from opennmes.sensing import GaitEventDetector, OnsetDetector, read_text
from opennmes.session import TriggerDrive, track
from opennmes.stim import Channel, Electrode, Program

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import GcWatch, cpu_load, loadavg, n_hogs  # noqa: E402
from _remote import remote_emulator  # noqa: E402


@contextmanager
def _emulated(device: str, remote: bool) -> Iterator[tuple[str, Callable[[], np.ndarray]]]:
    """(port, pulse times) of an emulator in this process, or in a process of its own."""
    if remote:
        with remote_emulator(device, fifo=20) as emu:
            yield emu.port, lambda: emu.pulse_times
        return
    emulator = RehaStim2Emulator if device == "rehastim2" else P24Emulator
    with emulator() as local:
        def times() -> np.ndarray:
            rec = local.record.schedule()
            # the record is relative to the emulator's stimulation start (time.monotonic)
            origin = local._t_start if device == "rehastim2" else local._t_ref
            return np.sort(rec.t + (origin or 0.0))
        yield local.port, times


def _trigger_latency(device: str = "rehastim2", n_triggers: int = 60, seed: int = 1,
                     grid: bool = True, window: float = 0.01, remote: bool = False,
                     hints: bool = False) -> dict[str, Any]:
    """Trigger decision -> first pulse, s, and where the time went.

    ``remote``: the emulator runs in a child process on SCHED_FIFO (an independent device);
    ``hints``: the loop runs inside ``opennmes.devices.realtime()``.
    """
    rng = np.random.default_rng(seed)
    ch = Channel(name="wrist extensors", electrode=Electrode(area=36e-4, site="wrist extensors"),
                 frequency=50.0, pulse_width=300e-6, interphase_gap=100e-6, amplitude=0.02,
                 ramp_up=0.1, on=0.3,
                 ramp_down=0.1)
    program = Program(name="triggered", channels=[ch], duration=600.0)
    gaps = rng.uniform(0.8, 1.4, n_triggers)
    trigger_at = 0.5 + np.cumsum(gaps)
    t_end = float(trigger_at[-1] + 1.0)
    dt = window
    decisions: list[float] = []
    sends: list[float] = []
    round_trips: list[float] = []
    with _emulated(device, remote) as (port, pulse_times):
        stim = open_stimulator(f"{device}://{port}")
        with stim:
            stim.configure(program)
            # the watch starts inside realtime(): its one full collection at entry is before
            # the stream starts, on purpose
            with realtime() if hints else nullcontext(), GcWatch() as gcw:
                stim.start()
                drive = TriggerDrive(ch.name, "button")
                drive.bind(ch, (ch.name,), stim)
                if not grid:
                    assert drive.stimulation is not None
                    drive.stimulation.grid_origin = None
                k = 0
                for i in range(int(t_end / dt)):
                    t = i * dt
                    while k < n_triggers and trigger_at[k] < t + dt:
                        # the decision is taken now, when this window's sensor chunk arrived
                        decisions.append(time.monotonic())
                        drive.trigger(t, "bench")
                        drive.start_now(stim, ch.amplitude)
                        sends.append(stim.last_send)  # RealClock: time.monotonic
                        round_trips.append(stim.round_trips[-1])
                        k += 1
                    part = drive.render(t, (i + 1) * dt, ch.amplitude)
                    stim.deliver(stim.quantize(part), until=(i + 1) * dt)
                stim.stop()
    times = pulse_times()
    first, to_send, after_send = [], [], []
    for d, s in zip(decisions, sends, strict=True):
        j = int(np.searchsorted(times, d))
        if j < len(times):
            first.append(float(times[j] - d))
            to_send.append(s - d)
            after_send.append(float(times[j] - s))
    return {"first": first, "to_send": to_send, "after_send": after_send,
            "round_trip": round_trips, "gc": gcw.summary(),
            "late_commands": getattr(stim, "late_commands", 0)}


def _detection_latency() -> tuple[list[float], list[float]]:
    emg = read_text(DATA / "emg" / "bitalino_forearm_1000hz.txt")
    det = OnsetDetector(emg.sfreq, emg.names, "threshold")
    det.calibrate(emg.crop(4.0, 14.0))
    det.reset()
    onsets = []
    for i in range(int(emg.duration / 0.01)):
        onsets += [e.latency for e in det.update(emg.crop(i * 0.01, (i + 1) * 0.01))
                   if e.kind == "onset"]
    g = read_text(DATA / "gait" / "xsens_shank_walking_120hz.txt")
    gd = GaitEventDetector(g.sfreq)
    gd.calibrate(g, "Gyr_Z")
    gd.reset()
    gait = []
    dt = 1 / g.sfreq
    for i in range(int(g.duration / dt)):
        gait += [e.latency for e in gd.update(g.crop(i * dt, (i + 1) * dt), "Gyr_Z")
                 if e.kind == "foot_off"]
    return onsets, gait


def _closed_loop_step() -> float:
    f = 35.0
    patient = get_preset("healthy-adult")
    target = standard_knee_target(f)
    stream = patient.start(sfreq=f, seed=0, emg=False)
    pid = PID(kp=0.005, ki=0.05, kd=0.002, dt=1 / f, u_min=0.0, u_max=0.09, rate_limit=0.1)
    t0 = time.perf_counter()
    track(stream, target, pid, frequency=f, pulse_width=300e-6, channel="quadriceps",
          electrode_area=80e-4)
    return (time.perf_counter() - t0) / len(target)


def run() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    hogs = n_hogs()
    for device in ("rehastim2", "p24"):
        for n, hints in ((0, False), (0, True), (hogs, False), (hogs, True)):
            if n == hogs and hogs == 0:
                continue  # NMES_BENCH_LOAD=0: quiet runs only
            with cpu_load(n):
                r = _trigger_latency(device, hints=hints)
                la = loadavg()
            lat = r["first"]
            p99 = float(np.percentile(lat, 99))
            load = f"{n} CPU hog processes" if n else "quiet"
            how = "inside realtime()" if hints else "default scheduling"
            rows += [
                {"name": f"trigger decision -> first pulse at emulated {device}, 50 Hz channel "
                         f"({len(lat)} triggers), {load}, {how}, p50",
                 "value": statistics.median(lat) * 1e3, "unit": "ms", "goal": "-",
                 "passed": None,
                 "note": f"load average {la:.1f}; decision -> command written p99 "
                         f"{np.percentile(r['to_send'], 99) * 1e3:.1f} ms; update round trip "
                         f"p99 {np.percentile(r['round_trip'], 99) * 1e3:.1f} ms; "
                         f"{r['late_commands']} late updates"},
                {"name": "  p99", "value": p99 * 1e3, "unit": "ms", "goal": "< 30 ms",
                 "passed": p99 < 0.030},
                {"name": "  max", "value": max(lat) * 1e3, "unit": "ms", "goal": "-",
                 "passed": None},
            ]
    onset_lat, fo_lat = _detection_latency()
    step = _closed_loop_step()
    rows += [
        {"name": f"EMG onset detection latency, real BITalino EMG ({len(onset_lat)} onsets),"
                 " median", "value": statistics.median(onset_lat) * 1e3, "unit": "ms",
         "goal": "-", "passed": None, "note": "threshold method, 50 ms hold"},
        {"name": f"foot-off detection latency, real Xsens shank ({len(fo_lat)} events), "
                 "median", "value": statistics.median(fo_lat) * 1e3, "unit": "ms",
         "goal": "-", "passed": None},
        {"name": "closed-loop step on the virtual patient (PID + stream advance)",
         "value": step * 1e3, "unit": "ms", "goal": "< 28.6 ms (one 35 Hz period)",
         "passed": step < 1 / 35},
    ]
    return rows
