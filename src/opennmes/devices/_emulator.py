"""Emulator base: a device that speaks real bytes over a pseudo-terminal, on its own thread.

A backend implements ``_on_bytes_frame`` (handle one decoded frame), ``_tick`` (time-driven
behaviour: pulse generation, Init repetition, watchdog) and ``_next_deadline``. This base owns
the pty, the loop, outgoing byte delays and the injected faults (dropped, corrupted or delayed
bytes, unplugging), and the record of delivered pulses.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from typing import Any, Self

import numpy as np

from opennmes.devices._realtime import device_thread
from opennmes.errors import ProtocolError
from opennmes.schedule import PulseSchedule

__all__ = ["PtyEmulator", "PulseRecord"]

log = logging.getLogger(__name__)


class PulseRecord:
    """Pulses an emulator would have delivered: rows (t, channel, amp, pw, gap, amp2, pw2, wf)."""

    def __init__(self, n_channels: int) -> None:
        self.n_channels = n_channels
        self._rows: list[tuple[float, int, float, float, float, float, float, int]] = []
        self._lock = threading.Lock()

    def add(self, t: float, channel: int, amplitude: float, phase_width: float,
            interphase_gap: float, amplitude2: float, phase_width2: float, waveform: int) -> None:
        with self._lock:
            self._rows.append((t, channel, amplitude, phase_width, interphase_gap, amplitude2,
                               phase_width2, waveform))

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def schedule(self, channel_names: tuple[str, ...] | None = None,
                 channel_map: dict[int, int] | None = None) -> PulseSchedule:
        """The record as a PulseSchedule; device channel i is named ``ch{i+1}`` unless
        ``channel_names`` and ``channel_map`` (device channel -> name index) are given."""
        names = channel_names or tuple(f"ch{i + 1}" for i in range(self.n_channels))
        with self._lock:
            rows = list(self._rows)
        if channel_map is not None:
            rows = [(r[0], channel_map[r[1]], *r[2:]) for r in rows if r[1] in channel_map]
        if not rows:
            return PulseSchedule.empty(names)
        a = np.array(rows, dtype=float)
        order = np.lexsort((a[:, 1], a[:, 0]))
        a = a[order]
        return PulseSchedule(t=a[:, 0], channel=a[:, 1].astype(np.int16), amplitude=a[:, 2],
                             phase_width=a[:, 3], interphase_gap=a[:, 4], amplitude2=a[:, 5],
                             phase_width2=a[:, 6], waveform=a[:, 7].astype(np.int8),
                             channel_names=names)


class PtyEmulator:
    """Runs a device model on a pseudo-terminal.

    Use as a context manager; :attr:`port` is the path a driver opens. Times are
    ``time.monotonic()`` seconds.
    """

    name = "emulator"
    n_channels = 8
    stall_after = 0.5
    """s: a gap this long between two turns of the device loop means the device was frozen
    (SIGSTOP, a debugger): the pulses due in the gap were not played. Shorter gaps are the
    host machine's load, and the device plays what was due (a real device keeps time in
    hardware)."""

    def __init__(self) -> None:
        self._master = -1
        self._slave = -1
        self.port = ""
        self._thread: threading.Thread | None = None
        self._running = False
        self._unplugged = False
        self._out: list[tuple[float, bytes]] = []
        self._lock = threading.RLock()
        self.record = PulseRecord(self.n_channels)
        self.single_record = PulseRecord(self.n_channels)
        # faults
        self._drop_in = 0
        self._corrupt_in = 0
        self._delay_out = 0.0
        self._delay_frames = 0
        self._slow_read = 0.0
        self._slow_reads = 0
        self._freeze = 0.0
        self.frames_in = 0
        self.bad_frames_in = 0
        self.log: list[tuple[float, str]] = []
        self.on_frame: Callable[[Any], None] | None = None
        self.stalls: list[tuple[float, float]] = []
        """(from, to) ``time.monotonic()`` of every freeze of the device loop."""
        self._last_turn = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        """Open the pty and start the device thread; returns the port path."""
        if self._running:
            return self.port
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=f"{self.name} emulator",
                                        daemon=True)
        self._thread.start()
        return self.port

    def close(self) -> None:
        """Stop the device thread and close the pty."""
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ faults
    def drop_bytes(self, n: int) -> None:
        """Lose the next ``n`` bytes from the host."""
        with self._lock:
            self._drop_in += int(n)

    def corrupt_bytes(self, n: int = 1) -> None:
        """Flip bits of the next ``n`` bytes from the host that are inside a frame body."""
        with self._lock:
            self._corrupt_in += int(n)

    def delay_replies(self, seconds: float, frames: int = 1) -> None:
        """Hold the next ``frames`` replies for ``seconds``."""
        with self._lock:
            self._delay_out = float(seconds)
            self._delay_frames = int(frames)

    def slow_reads(self, seconds: float, reads: int = 1) -> None:
        """A busy device: the next ``reads`` times bytes arrive, act on them ``seconds`` later
        (an update may then reach a period after the one the host meant)."""
        with self._lock:
            self._slow_read = float(seconds)
            self._slow_reads = int(reads)

    def freeze(self, seconds: float) -> None:
        """The device hangs for ``seconds`` from its next turn: it plays nothing, reads
        nothing, answers nothing (as SIGSTOP does to an emulator in its own process)."""
        with self._lock:
            self._freeze = float(seconds)

    def unplug(self) -> None:
        """Pull the cable: stimulation stops and the port goes away (the host sees an error)."""
        with self._lock:
            self._unplugged = True
            self._stop_output("unplugged")
            self._running = False
            if self._master >= 0:
                try:
                    os.close(self._master)
                except OSError:
                    pass
                self._master = -1
            if self._slave >= 0:
                try:
                    os.close(self._slave)
                except OSError:
                    pass
                self._slave = -1

    def electrode_error(self, channel: int) -> None:
        """An electrode comes off ``channel`` (0-based)."""
        raise NotImplementedError

    def emergency_switch(self) -> None:
        """The patient presses the emergency switch."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    @property
    def output_is_zero(self) -> bool:
        """True when no channel would deliver current."""
        raise NotImplementedError

    def _stop_output(self, reason: str) -> None:
        raise NotImplementedError

    def _note(self, text: str) -> None:
        self.log.append((time.monotonic(), text))
        log.debug("%s: %s", self.name, text)

    # ------------------------------------------------------------------ io
    def send(self, data: bytes) -> None:
        """Queue bytes to the host (subject to injected delays)."""
        now = time.monotonic()
        with self._lock:
            due = now
            if self._delay_frames > 0:
                due = now + self._delay_out
                self._delay_frames -= 1
            self._out.append((due, data))
            self._flush(now)

    def _flush(self, now: float) -> None:
        keep = []
        for due, data in self._out:
            if due <= now and self._master >= 0:
                try:
                    os.write(self._master, data)
                except OSError:
                    pass
            else:
                keep.append((due, data))
        self._out = keep

    def _filter_in(self, data: bytes) -> bytes:
        with self._lock:
            if self._drop_in:
                k = min(self._drop_in, len(data))
                self._drop_in -= k
                data = data[k:]
            if self._corrupt_in and data:
                b = bytearray(data)
                for i in range(len(b)):
                    if self._corrupt_in and b[i] not in (0xF0, 0x0F, 0x81) and \
                            (b[i] ^ 0x24) not in (0xF0, 0x0F, 0x81):
                        b[i] ^= 0x24
                        self._corrupt_in -= 1
                data = bytes(b)
        return data

    def _loop(self) -> None:
        # the emulated device is part of the stimulation path: realtime() raises it too
        with device_thread():
            self._run()

    def _run(self) -> None:
        decoder = self._new_decoder()
        while self._running:
            if self._freeze:
                hang, self._freeze = self._freeze, 0.0
                time.sleep(hang)
            now = time.monotonic()
            with self._lock:
                self._advance(now)
                self._flush(now)
                wait = max(0.0, min(self._next_deadline(now) - now, 0.01))
                if self._out:
                    wait = min(wait, max(0.0, min(d for d, _ in self._out) - now))
                fd = self._master
            if fd < 0:
                return
            try:
                r, _, _ = select.select([fd], [], [], wait)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                # no host on the other side (EIO): wait a little instead of spinning, so that
                # other threads (close(), output_is_zero) get the lock
                time.sleep(0.005)
                continue
            with self._lock:
                hold = self._slow_read if self._slow_reads > 0 else 0.0
                self._slow_reads -= hold > 0
            if hold:
                time.sleep(hold)
            t = time.monotonic()
            with self._lock:
                self._advance(t)  # pulses due before these bytes arrived use the old settings
                data = self._filter_in(data)
                decoder.feed(data)
                while True:
                    try:
                        frame = decoder.next_frame()
                    except ProtocolError as exc:
                        self.bad_frames_in += 1
                        self._on_bad_frame(exc, decoder)
                        continue
                    if frame is None:
                        break
                    self.frames_in += 1
                    try:
                        self._on_frame(frame, t)
                    except Exception as exc:  # never let the device thread die
                        log.exception("%s emulator: frame handler failed: %s", self.name, exc)

    def _advance(self, now: float) -> None:
        last, self._last_turn = self._last_turn, now
        if last and now - last > self.stall_after:
            self.stalls.append((last, now))
            self._note(f"frozen for {now - last:.3f} s: the pulses due meanwhile were not played")
            self._skip_until(now)
        self._tick(now)

    # ------------------------------------------------------------------ backend hooks
    def _skip_until(self, now: float) -> None:
        """The device was frozen until ``now``: move its period clocks past the pulses due
        meanwhile without playing them (the clocks keep their phase)."""
        raise NotImplementedError

    def _new_decoder(self) -> Any:
        raise NotImplementedError

    def _on_frame(self, frame: Any, t: float) -> None:
        raise NotImplementedError

    def _on_bad_frame(self, exc: ProtocolError, decoder: Any) -> None:
        self._note(f"bad frame: {exc}")

    def _tick(self, now: float) -> None:
        raise NotImplementedError

    def _next_deadline(self, now: float) -> float:
        return now + 0.01

