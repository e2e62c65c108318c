"""Login limits: failures per user name and client address, and the per-account lockout.

Both are kept in the web process's memory (the app runs as one process: its live sessions
live there too); a restart forgets them. They count user names whether an account exists or
not, so that a lockout does not reveal which names are real.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["LoginLimiter", "AccountLockout", "wait_words"]

_MAX_KEYS = 50_000  # forget idle keys beyond this many (a flood of made-up names)


def wait_words(seconds: float) -> str:
    """A wait in plain words, rounded up: ``"40 seconds"``, ``"1 minute"``, ``"2 hours"``.

    Parameters
    ----------
    seconds : float
        The wait, in s.
    """
    s = max(1, math.ceil(seconds))
    if s < 60:
        return f"{s} second{'s' if s != 1 else ''}"
    minutes = math.ceil(s / 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    text = f"{hours} hour{'s' if hours != 1 else ''}"
    return text + (f" {rest} minute{'s' if rest != 1 else ''}" if rest else "")


class LoginLimiter:
    """At most ``max_failures`` failed logins per key (user name and client address) per
    ``window`` s; ``clock`` gives the time in s (monotonic by default)."""

    def __init__(self, max_failures: int, window: float,
                 clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 when allowed now)."""
        now = self.clock()
        with self._lock:
            q = self._recent(key, now)
            if not q:
                self._failures.pop(key, None)
            if len(q) < self.max_failures:
                return 0.0
            return max(0.0, self.window - (now - q[0]))

    def failed(self, key: str) -> None:
        """Record a failed attempt."""
        now = self.clock()
        with self._lock:
            if len(self._failures) >= _MAX_KEYS:
                self._prune(now)
            self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key``."""
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            if not self._recent(key, now):
                del self._failures[key]


class AccountLockout:
    """``max_failures`` failed logins for one user name within ``window`` s (from any
    address) lock it for ``duration`` s; even the right password is refused until then.

    Parameters
    ----------
    max_failures : int
        Failures that lock the account.
    window : float
        Window in which they are counted, in s.
    duration : float
        How long the account stays locked, in s.
    clock : callable
        The time in s (monotonic by default; tests pass their own).
    """

    def __init__(self, max_failures: int, window: float, duration: float,
                 clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self.duration = duration
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked_for(self, name: str) -> float:
        """Seconds the account ``name`` stays locked (0 when it is not locked)."""
        now = self.clock()
        with self._lock:
            until = self._locked_until.get(name)
            if until is None:
                return 0.0
            if until <= now:
                del self._locked_until[name]
                return 0.0
            return until - now

    def failed(self, name: str) -> bool:
        """Record a failed login for ``name``; True when this failure locked it."""
        now = self.clock()
        with self._lock:
            if len(self._failures) >= _MAX_KEYS:
                self._prune(now)
            q = self._failures.setdefault(name, deque())
            while q and now - q[0] > self.window:
                q.popleft()
            q.append(now)
            if len(q) < self.max_failures:
                return False
            del self._failures[name]  # after the lock, counting starts again
            self._locked_until[name] = now + self.duration
            return True

    def succeeded(self, name: str) -> None:
        """Forget the failures of ``name`` (after a successful login)."""
        with self._lock:
            self._failures.pop(name, None)

    def _prune(self, now: float) -> None:
        for name, q in list(self._failures.items()):
            if not q or now - q[-1] > self.window:
                del self._failures[name]
        for name, until in list(self._locked_until.items()):
            if until <= now:
                del self._locked_until[name]
