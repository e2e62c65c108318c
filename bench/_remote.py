"""An emulated device in a process of its own, for the latency benchmarks.

A real stimulator is a separate machine: the host's load does not delay when it reads a
command. An emulator thread inside the host process does get delayed (it waits for the
interpreter lock and for a CPU like any host thread), and then records the command as late.
``remote_emulator(cls)`` runs the emulator in a child process instead, optionally on
SCHED_FIFO, so that a benchmark can tell the host's own delay from the emulator's.
Times in the record are ``time.monotonic()`` seconds, the same clock in every process.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RemoteEmulator", "remote_emulator"]

log = logging.getLogger(__name__)


@dataclass
class RemoteEmulator:
    """What the parent sees: the port while running, the record after the block."""

    port: str
    pulse_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Absolute ``time.monotonic()`` of every recorded pulse, sorted (filled at exit)."""
    log: list[tuple[float, str]] = field(default_factory=list)
    realtime: bool = False


def _child(kind: str, conn: Any, fifo: int) -> None:
    rt = False
    if fifo > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo))
            rt = True
        except (AttributeError, OSError):
            rt = False
    if kind == "rehastim2":
        from opennmes.devices.sciencemode2 import RehaStim2Emulator as Emu
    else:
        from opennmes.devices.sciencemode4 import P24Emulator as Emu  # type: ignore[assignment]
    with Emu() as emu:
        conn.send((emu.port, rt))
        conn.recv()  # the parent is done
        rec = emu.record.schedule()
        origin = emu._t_start if kind == "rehastim2" else emu._t_ref  # type: ignore[attr-defined]
        times = np.sort(rec.t + (origin or 0.0))
        conn.send((times, list(emu.log)))
    conn.close()


@contextmanager
def remote_emulator(kind: str, fifo: int = 0) -> Iterator[RemoteEmulator]:
    """Run the ``kind`` ("rehastim2" or "p24") emulator in a child process.

    Parameters
    ----------
    kind : str
    fifo : int
        SCHED_FIFO priority of the child (0: default scheduling), as an independent device
        whose timing does not depend on the host's load.
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(kind, child, fifo), daemon=True,
                       name=f"{kind} emulator")
    proc.start()
    if not parent.poll(30.0):
        proc.terminate()
        raise RuntimeError(f"the {kind} emulator process did not start within 30 s")
    port, rt = parent.recv()
    out = RemoteEmulator(port=port, realtime=rt)
    try:
        yield out
    finally:
        parent.send("done")
        if parent.poll(30.0):
            out.pulse_times, out.log = parent.recv()
        proc.join(timeout=5.0)
        if proc.is_alive():
            proc.terminate()
