"""Where the tail latency of the stimulation path comes from (not part of ``make bench``).

``python bench/diagnose_realtime.py [sleep|pty|trigger] [DEVICE]`` measures, quiet and under the
CPU load of ``bench/_load.py``:

* ``sleep``: how late ``RealClock.sleep_until`` returns for 10 ms waits, alone, beside a
  busy Python thread (interpreter-lock contention, with the default and a 0.5 ms switch
  interval), at nice -10 and on SCHED_FIFO (only the sleeping thread, then every thread);
* ``pty``: how long 20 bytes written to a pseudo-terminal's master take to become readable
  on its slave, by a thread on SCHED_FIFO 10 (the kernel hands tty input to a worker thread
  of default priority, which the load delays whatever the priority of the reader);
* ``trigger``: trigger decision -> first pulse at the emulated device, split into
  decision -> command written (host) and command written -> first pulse (transport, emulator,
  and the wait for the device's next period slot), with the collector pauses seen meanwhile;
  emulator in this process or in a process of its own on SCHED_FIFO, with and without
  ``opennmes.devices.realtime()``.

Results are printed; the figures quoted in bench/RESULTS.md and the docs come from runs of
this script and of bench_control / bench_session.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
import time
import tty
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import cpu_load, loadavg, n_hogs  # noqa: E402
from bench_control import _trigger_latency  # noqa: E402

from opennmes.devices import RealClock, realtime  # noqa: E402

log = logging.getLogger("diagnose")


def _pct(x: list[float] | np.ndarray, scale: float = 1e3) -> str:
    a = np.asarray(x, dtype=float) * scale
    if a.size == 0:
        return "n/a"
    return (f"p50 {np.percentile(a, 50):6.2f}  p99 {np.percentile(a, 99):6.2f}  "
            f"max {a.max():6.2f} ms")


def _sleep_probe(n: int = 500, period: float = 0.01, busy: bool = False,
                 switch: float | None = None, mode: str = "default") -> list[float]:
    stop = threading.Event()
    th = None
    if busy:
        def spin() -> None:
            x = 0
            while not stop.is_set():
                x += 1
        th = threading.Thread(target=spin, daemon=True)
        th.start()
    old_switch = sys.getswitchinterval()
    if switch is not None:
        sys.setswitchinterval(switch)
    if mode == "fifo-thread":
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    elif mode == "nice-thread":
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    hints = realtime(switch_interval=switch, scope="process") if mode == "realtime()" else None
    if hints is not None:
        hints.__enter__()
    try:
        clock = RealClock()
        over = []
        t = time.monotonic()
        for _ in range(n):
            t += period
            clock.sleep_until(t)
            over.append(time.monotonic() - t)
            t = max(t, time.monotonic())
    finally:
        if hints is not None:
            hints.__exit__(None, None, None)
        if mode == "fifo-thread":
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        elif mode == "nice-thread":
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        sys.setswitchinterval(old_switch)
        stop.set()
        if th is not None:
            th.join()
    return over


def sleep() -> None:
    cases = [("alone", {}), ("busy thread beside", {"busy": True}),
             ("busy thread, switch 0.5 ms", {"busy": True, "switch": 0.0005}),
             ("nice -10 (this thread)", {"mode": "nice-thread"}),
             ("SCHED_FIFO 10 (this thread)", {"mode": "fifo-thread"}),
             ("busy thread, SCHED_FIFO (this thread only)", {"busy": True,
                                                              "mode": "fifo-thread"}),
             ("busy thread, realtime(scope=\"process\"), switch 0.5 ms",
              {"busy": True, "mode": "realtime()", "switch": 0.0005})]
    for hogs in (0, n_hogs()):
        with cpu_load(hogs):
            time.sleep(1.0)
            for label, kw in cases:
                over = _sleep_probe(**kw)  # type: ignore[arg-type]
                print(f"sleep_until 10 ms, {hogs} hogs (load {loadavg():.1f}), {label:52s} "
                      f"late by {_pct(over)}", flush=True)


def _pty_probe(n: int = 1500) -> list[float]:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    out = []
    try:
        for _ in range(n):
            t = time.monotonic()
            os.write(master, b"x" * 20)
            select.select([slave], [], [], 1.0)
            os.read(slave, 100)
            out.append(time.monotonic() - t)
            time.sleep(0.01)
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        os.close(master)
        os.close(slave)
    return out


def pty() -> None:
    for hogs in (0, n_hogs()):
        with cpu_load(hogs):
            time.sleep(1.0)
            lat = _pty_probe()
            print(f"pty write -> readable, SCHED_FIFO 10 reader, {hogs} hogs (load "
                  f"{loadavg():.1f}): {_pct(lat)}; over 5 ms: "
                  f"{sum(x > 0.005 for x in lat)} of {len(lat)}", flush=True)


def trigger(device: str = "p24", n: int = 30) -> None:
    for hogs in (0, n_hogs()):
        for remote, hints in ((False, False), (False, True), (True, False), (True, True)):
            with cpu_load(hogs):
                time.sleep(1.0)
                r = _trigger_latency(device, n_triggers=n, remote=remote, hints=hints)
                la = loadavg()
            where = "own process (FIFO 20)" if remote else "in-process"
            print(f"{device}, {hogs} hogs (load {la:.1f}), emulator {where}, "
                  f"realtime() {'on' if hints else 'off'}, {len(r['first'])} triggers\n"
                  f"    decision -> first pulse  {_pct(r['first'])}\n"
                  f"    decision -> written      {_pct(r['to_send'])}\n"
                  f"    written -> first pulse   {_pct(r['after_send'])}\n"
                  f"    round trip of the update {_pct(r['round_trip'])}\n"
                  f"    {r['gc']}; late updates {r['late_commands']}", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    what = sys.argv[1] if len(sys.argv) > 1 else "trigger"
    if what == "sleep":
        sleep()
    elif what == "pty":
        pty()
    else:
        trigger(sys.argv[2] if len(sys.argv) > 2 else "p24")
