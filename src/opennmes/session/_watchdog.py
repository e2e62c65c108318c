"""The session watchdog: output to zero when the loop, the device or a sensor goes quiet.

A thread wakes every ``period`` s (wall time) and trips the runner when:

- **loop stall** (real clock): the device has played ``stall_margin`` s past the end of the
  last window the control loop handed it. A Hasomed device would otherwise repeat its last
  pattern; the stop goes out at once, so the output is zero well within 100 ms of the stall.
  When the loop is stuck inside ``deliver`` (waiting for an acknowledgement), the cause is
  recorded as ``device``;
- **frozen loop** (any clock): no loop iteration for ``wall_stall`` s of wall time;
- **device fault**: the stimulator reports a fatal fault or a lost link (the session ends as
  ``device_error`` with the device's message);
- **sensor**: a sensor's samples lag the session time by more than ``sensor_timeout`` s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.session._runner import SessionRunner

__all__ = ["Watchdog"]

log = logging.getLogger(__name__)


class Watchdog:
    """Watches a :class:`SessionRunner` (see the module docstring; times in s)."""

    def __init__(self, runner: SessionRunner, *, stall_margin: float | None,
                 sensor_timeout: float, wall_stall: float, period: float = 0.005) -> None:
        self.runner = runner
        self.stall_margin = stall_margin
        self.sensor_timeout = float(sensor_timeout)
        self.wall_stall = float(wall_stall)
        self.period = float(period)
        self.in_deliver = False
        self.armed = False
        """Deadline checks start once the first window has been delivered (a device has no
        earlier pattern to repeat; the first window may include one-off set-up work)."""
        self.fired: str | None = None
        self._window_end = 0.0
        self._last_beat = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching (the runner calls it when the session starts)."""
        self._last_beat = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="nmes-session-watchdog",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def beat(self, window_end: float) -> None:
        """The loop is handing the device the window ending at ``window_end`` s (session
        time): the output is covered until then."""
        self._window_end = window_end
        self._last_beat = time.monotonic()

    def check_sensors(self, t: float, ends: Mapping[str, float]) -> None:
        """Trip when a sensor's samples end more than ``sensor_timeout`` s before ``t``."""
        for name, end in ends.items():
            if t - end > self.sensor_timeout:
                self._fire("sensor", f"sensor {name!r} sent nothing since {end:.3f} s "
                           f"(session time {t:.3f} s, limit {self.sensor_timeout:g} s)", 0.0)
                return

    def _fire(self, cause: str, detail: str, latency: float) -> None:
        if self.fired is not None:
            return
        self.fired = cause
        log.error("watchdog: %s: %s", cause, detail)
        self.runner.trip(cause, detail, latency)

    def _run(self) -> None:
        stim = self.runner.stim
        while not self._stop.wait(self.period):
            if self.fired is not None or self.runner._stopping is not None:
                return
            fault = stim.fault
            if fault is not None:  # a device error, seen here first: stop with its reason
                msg = getattr(fault, "message", "") or getattr(fault, "reason", "")
                self.fired = "device_fault"
                self.runner._halt("device_error", f"{getattr(fault, 'kind', 'link')}: {msg}",
                                  "watchdog")
                return
            now = time.monotonic()
            if now - self._last_beat > self.wall_stall:
                where = "waiting for the device" if self.in_deliver else "control loop"
                self._fire("device" if self.in_deliver else "loop_stall",
                           f"no loop iteration for {now - self._last_beat:.3f} s ({where})",
                           now - self._last_beat - self.wall_stall)
                return
            if self.stall_margin is not None and self.armed and stim.t0 is not None:
                over = stim.now_rel() - self._window_end
                if over > self.stall_margin:
                    cause = "device" if self.in_deliver else "loop_stall"
                    where = ("the device did not take the next window (waiting for its "
                             "acknowledgement)" if self.in_deliver else
                             "the control loop did not send the next window")
                    self._fire(cause, f"{where}: {over * 1e3:.0f} ms past the last window end "
                               f"{self._window_end:.3f} s", over)
                    return
