"""A reproducible CPU load for the real-time benchmarks.

``cpu_load(n)`` starts ``n`` hog processes for the duration of a ``with`` block. Each hog
alternates pure-Python arithmetic (busy CPU) with allocating and dropping lists of a few
thousand floats (allocator and cache pressure), like a busy analysis or web process on the
same host. The hogs run at the default priority (nice 0, SCHED_OTHER), so they compete with
the stimulation process on equal terms unless that process raises its own priority.

``NMES_BENCH_LOAD`` sets the number of hogs of the loaded runs (default: two per core, a load
average of about 4 on a 2-core machine); 0 skips the loaded runs.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["cpu_load", "n_hogs", "loadavg", "GcWatch"]

log = logging.getLogger(__name__)


def n_hogs() -> int:
    """Number of hog processes of a loaded run (``NMES_BENCH_LOAD``, default 2 per core)."""
    return int(os.environ.get("NMES_BENCH_LOAD", str(2 * (os.cpu_count() or 1))))


def loadavg() -> float:
    """The 1-minute load average (0 where the OS does not tell)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def _hog(stop: Any, seed: int) -> None:
    x = seed
    keep: list[list[float]] = []
    while not stop.is_set():
        for _ in range(20_000):  # ~1-2 ms of pure-Python work
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        block = [float(i ^ x) for i in range(4000)]
        block.sort()
        keep.append(block)
        if len(keep) > 64:  # ~10 MB live, then freed: allocator and cache churn
            keep.clear()


@contextmanager
def cpu_load(n: int) -> Iterator[int]:
    """Run ``n`` CPU hog processes while the block runs; yields ``n``.

    The hogs are forked before the block starts its threads, and always stopped (then
    terminated if they do not stop within 2 s) when the block ends.
    """
    if n <= 0:
        yield 0
        return
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    procs = [ctx.Process(target=_hog, args=(stop, i + 1), daemon=True, name=f"cpu hog {i}")
             for i in range(n)]
    for p in procs:
        p.start()
    log.info("started %d CPU hog processes", n)
    try:
        yield n
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=2.0)
            if p.is_alive():
                p.terminate()
                p.join(timeout=1.0)


class GcWatch:
    """Wall time of every cyclic-collector run while installed (gc.callbacks)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, s)
        self._t = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._t))

    def summary(self) -> str:
        """Runs, longest pause, full (generation 2) runs and the longest of those."""
        full = [d for g, d in self.pauses if g == 2]
        return (f"{len(self.pauses)} collector runs, longest "
                f"{max((d for _, d in self.pauses), default=0.0) * 1e3:.1f} ms, {len(full)} "
                f"full, longest full {max(full, default=0.0) * 1e3:.1f} ms")

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)
