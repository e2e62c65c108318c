"""Foundation benchmark: expand and guard-check a 60-minute, 8-channel, 50 Hz program
(1.44 million pulses). Goals: under 0.5 s and under 200 MB (issue "Foundation")."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc

from opennmes.safety import SafetyGuard, device_profile
from opennmes.stim import Channel, Electrode, Program


def _program() -> Program:
    chans = [
        Channel(name=f"ch{i + 1}", electrode=Electrode(area=45e-4, site="quadriceps"),
                frequency=50.0, pulse_width=300e-6, amplitude=0.040)
        for i in range(8)
    ]
    return Program(name="bench 60 min x 8 ch x 50 Hz", channels=chans, duration=3600.0)


def _once(program: Program) -> tuple[int, float, float]:
    t0 = time.perf_counter()
    schedule = program.expand()
    t1 = time.perf_counter()
    SafetyGuard.for_program(program, device_profile("sim")).check(schedule)
    t2 = time.perf_counter()
    return len(schedule), t1 - t0, t2 - t1


def run() -> list[dict[str, object]]:
    program = _program()
    _once(program)  # warm-up (imports, allocator)
    times = []
    for _ in range(7):
        gc.collect()
        n, te, tg = _once(program)
        times.append((te + tg, te, tg))
    total = statistics.median(t[0] for t in times)
    expand = statistics.median(t[1] for t in times)
    guard = statistics.median(t[2] for t in times)
    gc.collect()
    tracemalloc.start()
    _once(program)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return [
        {"name": f"expand + guard, {n} pulses (median of 7)", "value": total, "unit": "s",
         "goal": "< 0.5 s", "passed": total < 0.5},
        {"name": "  of which expansion", "value": expand, "unit": "s", "goal": "-",
         "passed": None},
        {"name": "  of which guard check", "value": guard, "unit": "s", "goal": "-",
         "passed": None},
        {"name": "peak memory allocated (tracemalloc)", "value": peak / 1e6, "unit": "MB",
         "goal": "< 200 MB", "passed": peak / 1e6 < 200},
    ]
