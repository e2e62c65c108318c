"""Clocks for devices: the real monotonic clock, and a virtual clock for faster-than-real-time
runs of the simulated stimulator (tests, demos)."""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "RealClock", "VirtualClock"]


class Clock(Protocol):
    """What a device needs from a clock: the time in seconds and a way to wait for a time."""

    virtual: bool

    def now(self) -> float:
        """Current time in s (arbitrary origin, monotonic)."""
        ...

    def sleep_until(self, t: float) -> None:
        """Return at (or just after) time ``t`` in s; return at once if ``t`` has passed."""
        ...


class RealClock:
    """``time.monotonic``; sleeps in short slices so late wake-ups stay under ~1 ms."""

    virtual = False

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float) -> None:
        while True:
            dt = t - time.monotonic()
            if dt <= 0:
                return
            time.sleep(dt if dt < 0.002 else dt - 0.001)


class VirtualClock:
    """A clock that only moves when someone waits on it (or calls :meth:`advance`).

    Parameters
    ----------
    start : float
        Initial time, in s.
    """

    virtual = True

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._t

    def sleep_until(self, t: float) -> None:
        with self._lock:
            if t > self._t:
                self._t = float(t)

    def advance(self, dt: float) -> None:
        """Move the clock forward by ``dt`` seconds (>= 0)."""
        if dt < 0:
            raise ValueError(f"a clock cannot go back (dt = {dt} s)")
        with self._lock:
            self._t += float(dt)
