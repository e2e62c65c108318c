"""Device benchmarks: 8 channels updated at 50 Hz for 10 minutes through each emulator (a real
pseudo-terminal, pyserial, the real driver code), command round trips, decoder throughput.

``NMES_BENCH_DEVICE_SECONDS`` shortens the streaming runs (default 600 s each).
"""

from __future__ import annotations

import os
import time

import numpy as np

from opennmes.devices import open_stimulator
from opennmes.devices.sciencemode2 import protocol as p2
from opennmes.devices.sciencemode4 import protocol as p4
from opennmes.stim import PulseSchedule, Waveform, load_program_text

SECONDS = float(os.environ.get("NMES_BENCH_DEVICE_SECONDS", "600"))
CHUNK = 0.1  # s per deliver() call, as a session runner would stream


def _program(duration: float) -> str:
    chans = "".join(f"""
  - name: ch{i + 1}
    electrode: {{area: 25 cm2, site: quadriceps}}
    frequency: 50 Hz
    pulse_width: 250 us
    interphase_gap: 100 us
    amplitude: 30 mA""" for i in range(8))
    return f"name: bench\nchannels:{chans}\nduration: {duration} s\n"


def _schedule(duration: float) -> PulseSchedule:
    """8 channels at 50 Hz; every channel's amplitude changes at (almost) every period."""
    k = np.arange(int(round(duration * 50)))
    t = np.repeat(k / 50, 8)
    ch = np.tile(np.arange(8), k.size)
    amp = (20 + np.round(8 * np.sin(2 * np.pi * 1.7 * t + ch))) / 1000
    return PulseSchedule.from_arrays(t, amp, 250e-6, channel=ch, interphase_gap=100e-6,
                                     waveform=Waveform.SYMMETRIC_BIPHASIC,
                                     channel_names=tuple(f"ch{i + 1}" for i in range(8)))


def _stream(kind: str) -> list[dict]:
    # the emulator runs in its own process (`nmes emulate`), as a real device would: it does
    # not share the driver's interpreter lock
    import subprocess
    import sys
    import tempfile

    prog = load_program_text(_program(SECONDS))
    sched = _schedule(SECONDS)
    n_chunks = int(round(SECONDS / CHUNK))
    with tempfile.TemporaryDirectory() as tmp:
        rec_path = os.path.join(tmp, "record.parquet")
        proc = subprocess.Popen([sys.executable, "-m", "opennmes", "emulate", kind, "--record",
                                 rec_path], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            port = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
            with open_stimulator(f"{kind}://{port}") as stim:
                stim.configure(prog)
                stim.start()
                t_wall = time.monotonic()
                for i in range(n_chunks):
                    end = (i + 1) / 10 + (i == n_chunks - 1) * 0.02
                    stim.deliver(sched.window(i / 10, (i + 1) / 10), until=end)
                stim.stop()
                wall = time.monotonic() - t_wall
                delivered = stim.delivered()
                late = np.asarray(stim.lateness)  # type: ignore[attr-defined]
                rts = np.asarray(stim.round_trips) * 1e3  # type: ignore[attr-defined]
                commands = stim._plan.commands  # type: ignore[attr-defined]
            proc.terminate()
            proc.wait(timeout=60)
            raw = PulseSchedule.read(rec_path)
        finally:
            proc.kill()
        record = PulseSchedule(t=raw.t, channel=raw.channel, amplitude=raw.amplitude,
                               phase_width=raw.phase_width, interphase_gap=raw.interphase_gap,
                               amplitude2=raw.amplitude2, phase_width2=raw.phase_width2,
                               waveform=raw.waveform, channel_names=delivered.channel_names)
        truthful = record.equals(delivered, atol_t=1e-9, atol_a=1e-12)
    # pulses the device gave exactly as scheduled (an update that missed its period leaves
    # the previous amplitude for one period; the record says so)
    slot = 1.5e-3 if kind == "rehastim2" else 0.0
    n_as_planned = 0
    if len(record) == len(sched):
        same_t = np.abs(record.t - (sched.t + slot * sched.channel)) < 1e-9
        same_a = np.abs(record.amplitude - sched.amplitude) < 1e-12
        n_as_planned = int((same_t & same_a).sum())
    frac = n_as_planned / len(sched)
    late_ms = float(late.max() * 1e3) if late.size else 0.0
    p99_ms = float(np.percentile(late, 99) * 1e3) if late.size else 0.0
    backlog = wall - SECONDS
    note = (f"{SECONDS:g} s, {commands} updates, {len(record)} pulses recorded, "
            f"wall {wall:.2f} s")
    return [
        {"name": f"{kind}: 8 ch x 50 Hz for {SECONDS:g} s, backlog at the end", "value": backlog,
         "unit": "s", "goal": "< 0.05 s (the stream never falls behind)",
         "passed": backlog < 0.05, "note": note},
        {"name": f"{kind}: pulses delivered exactly as scheduled", "value": 100 * frac,
         "unit": "%", "goal": "100 % (an update late by more than its slack misses a period)",
         "passed": frac == 1.0,
         "note": f"{len(sched) - n_as_planned} of {len(sched)} pulses kept the previous "
                 "period's amplitude"},
        {"name": f"{kind}: host record equals the emulator's record", "value": int(truthful),
         "unit": "", "goal": "1 (the dose log is what the device did)", "passed": truthful},
        {"name": f"{kind}: update lateness p99 / worst", "value": p99_ms, "unit": "ms",
         "goal": "p99 < 10 ms (the slack at 50 Hz)", "passed": p99_ms < 10.0,
         "note": f"worst {late_ms:.1f} ms; {int((late > 0.005).sum())} of {late.size} "
                 "updates later than 5 ms"},
        {"name": f"{kind}: command round trip, median", "value": float(np.median(rts)),
         "unit": "ms", "goal": "< 5 ms", "passed": float(np.median(rts)) < 5.0,
         "note": f"{rts.size} acknowledged commands"},
        {"name": f"{kind}: command round trip, p99", "value": float(np.percentile(rts, 99)),
         "unit": "ms", "goal": "< 20 ms", "passed": float(np.percentile(rts, 99)) < 20.0},
    ]


def _decoder(kind: str) -> dict:
    if kind == "rehastim2":
        msg: object = p2.StartChannelListMode(tuple(p2.ChannelEntry(0, 250, 15 + i)
                                                    for i in range(8)))
        frames = b"".join(p2.encode(msg, i % 256) for i in range(5000))  # type: ignore[arg-type]
        dec: object = p2.FrameDecoder()
        decode = p2.decode
        wire = 460800 / 12  # bytes/s at 460 800 baud, 8E1 (12 bits per byte)
    else:
        pts = (p4.Point.from_ma(250, 15), p4.Point.from_ma(100, 0), p4.Point.from_ma(250, -15))
        msg = p4.MlUpdate(tuple((i, p4.MlChannelConfig(0, 40, False, pts)) for i in range(8)))
        frames = b"".join(p4.encode(msg, i % 64) for i in range(5000))  # type: ignore[arg-type]
        dec = p4.FrameDecoder()
        decode = p4.decode  # type: ignore[assignment]
        wire = 12e6 / 8  # USB full speed, upper bound
    t = time.perf_counter()
    dec.feed(frames)  # type: ignore[attr-defined]
    n = 0
    while (f := dec.next_frame()) is not None:  # type: ignore[attr-defined]
        decode(f)
        n += 1
    dt = time.perf_counter() - t
    rate = len(frames) / dt
    return {"name": f"{kind}: decoder throughput (8-channel update frames to messages)",
            "value": n / dt, "unit": "frames/s",
            "goal": ">= 1000 frames/s (20x an 8 ch x 50 Hz update stream)",
            "passed": n / dt >= 1000 and n == 5000,
            "note": f"{rate / 1e6:.2f} MB/s of {len(frames) // 5000}-byte frames; wire "
                    f"{wire / 1e6:.3g} MB/s"}


def run() -> list[dict]:
    rows = [_decoder("rehastim2"), _decoder("p24")]
    rows += _stream("rehastim2")
    rows += _stream("p24")
    return rows
