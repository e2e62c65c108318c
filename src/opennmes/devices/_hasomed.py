"""Shared driver machinery of the Hasomed stimulators: grid playback over a serial link.

A backend supplies its codec (encode/decode, acknowledgement matching), its handshake, its
keep-alive, its status query and the wire commands for start/update/stop/single pulse; this
class supplies the request/acknowledgement loop with retries, the real-time update schedule,
fault bookkeeping and the delivered-pulse record.

The record is the device's truth. While it stimulates, the device is asked for its status at
least every ``poll_interval`` s (once per period for programs faster than 10 Hz, at most 50 times
a second). A pulse counts as delivered only up to the last moment the device said it was still
stimulating; the pulses after it, and those of a period an update may or may not have reached
in time, are *unconfirmed* (:meth:`Stimulator.unconfirmed`). A device that says nothing for
``answer_deadline`` s after it was asked something (frozen, powered off, a cable that breaks
without an error) is a fatal fault: output off, the fault recorded.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections import deque
from typing import Any, ClassVar

import numpy as np

from opennmes.devices._base import Stimulator
from opennmes.devices._clock import Clock
from opennmes.devices._events import (
    Acknowledged,
    DeviceEvent,
    DeviceFault,
    Disconnected,
    LateCommand,
)
from opennmes.devices._plan import GridChannel, GridPlan, Pattern, Pulse
from opennmes.devices._realtime import device_thread
from opennmes.devices._serial import SerialLink, Waiter, timeout_error
from opennmes.errors import DeviceError, ProgramError, ProtocolError
from opennmes.schedule import PulseSchedule

__all__ = ["HasomedStimulator"]

log = logging.getLogger(__name__)


class HasomedStimulator(Stimulator):
    """Base of the RehaStim 2 and P24 drivers (see :class:`Stimulator` for the lifecycle).

    Parameters
    ----------
    url : str
    port : str
        Serial port path.
    clock : Clock, optional
    ack_timeout : float
        Seconds to wait for an acknowledgement before a retry.
    retries : int
        Extra tries after a timeout or a transfer error (protocol rule: resend).
    poll_interval : float
        Longest interval in s between status queries while stimulating; a program faster than
        ``1 / poll_interval`` is queried once per period (at most every ``fastest_poll`` s), so
        at most about one pulse per channel waits for confirmation.
    """

    serial_settings: ClassVar[dict[str, Any]] = {}
    packet_modulo: ClassVar[int] = 256
    keepalive_interval: ClassVar[float] = 0.5
    late_threshold: ClassVar[float] = 0.005
    return_lead: ClassVar[float] = 0.005
    """s: deliver() returns this much before the next window's first command is due, so the
    host has time to check and plan the next chunk."""
    edge_before: ClassVar[float] = 0.003
    """s: a command is not sent in the ``edge_before`` s before a period start or pulse..."""
    edge_after: ClassVar[float] = 0.003
    """... nor in the ``edge_after`` s after it, so the host knows which period it changes."""
    answer_deadline: ClassVar[float] = 0.35
    """s: a device that has said nothing for this long since it was asked something has stopped
    answering. With status queries at most 0.1 s apart it is found within 0.5 s of freezing."""
    fastest_poll: ClassVar[float] = 0.02
    """s: the shortest interval between status queries (programs above 50 Hz)."""

    def __init__(self, url: str, port: str, *, clock: Clock | None = None,
                 ack_timeout: float = 0.25, retries: int = 2, poll_interval: float = 0.1
                 ) -> None:
        super().__init__(url, clock=clock)
        self.poll_interval = float(poll_interval)
        self.port = port
        self.ack_timeout = float(ack_timeout)
        self.retries = int(retries)
        self._link: SerialLink | None = None
        self._waiters: dict[tuple[int, int], Waiter] = {}
        self._req_lock = threading.RLock()
        self._pn = 0
        self._last_write = 0.0
        self._ka_thread: threading.Thread | None = None
        self._ka_stop = threading.Event()
        self._grid: list[GridChannel] = []
        self._plan: GridPlan | None = None
        self._end_rel: float | None = None
        self.round_trips: deque[float] = deque(maxlen=100_000)
        self.lateness: deque[float] = deque(maxlen=100_000)
        self.late_commands = 0
        self.retried = 0
        self.protocol_errors = 0
        self.last_send = 0.0
        self.last_ack = 0.0
        self._sent: tuple[Pattern, ...] | None = None
        # the device's truth: when it last spoke, the first question since, its answers
        self._heard = 0.0
        self._asked: float | None = None
        self._polls: dict[int, float] = {}
        self._last_poll = 0.0
        self._poll_every = self.poll_interval
        self._confirmed = -math.inf
        self._trust = True
        self.polls_sent = 0
        self.polls_answered = 0
        self._status_ack = self._status_query()[1]

    # ------------------------------------------------------------------ codec hooks
    def _new_decoder(self) -> Any:
        raise NotImplementedError

    def _encode(self, message: Any, packet_number: int) -> bytes:
        raise NotImplementedError

    def _decode(self, frame: Any) -> Any:
        raise NotImplementedError

    def _ack_key(self, message: Any, frame: Any) -> tuple[int, int] | None:
        """(command, packet number) if ``message`` acknowledges a request, else None."""
        raise NotImplementedError

    def _result_of(self, ack: Any) -> tuple[bool, bool, str]:
        """(ok, retry, text) of an acknowledgement."""
        raise NotImplementedError

    def _unsolicited(self, message: Any, frame: Any, t: float) -> None:
        raise NotImplementedError

    def _handshake(self) -> None:
        """Run right after the port opens (e.g. the Init/InitAck exchange)."""

    def _keepalive(self) -> None:
        """Called by the keep-alive thread (every 10 ms while streaming, else every
        ``keepalive_interval / 4`` s); status queries are sent by the base."""

    def _status_query(self) -> tuple[Any, int]:
        """The status request and the command of its acknowledgement."""
        raise NotImplementedError

    def _on_status(self, ack: Any) -> bool:
        """Read a status acknowledgement (post what it reports); True while it says the
        device is stimulating."""
        raise NotImplementedError

    # ------------------------------------------------------------------ link
    def _post(self, event: DeviceEvent) -> None:
        fatal = isinstance(event, Disconnected) or (isinstance(event, DeviceFault)
                                                     and event.fatal)
        if fatal:
            self._trust = False  # nothing the device says later confirms a pulse before it
        if fatal and self._t0 is not None and self._end_rel is None and self._state == "running":
            self._end_rel = self.clock.now() - self._t0
        if isinstance(event, Acknowledged):
            with self._lock:
                if len(self._events) > 10_000:
                    del self._events[:5_000]
        super()._post(event)

    def _on_frame(self, frame: Any, t: float) -> None:
        self._heard_at(t)
        try:
            msg = self._decode(frame)
        except ProtocolError as exc:
            self._on_protocol_error(exc)
            return
        key = self._ack_key(msg, frame)
        if key is not None:
            if key[0] == self._status_ack and key[1] in self._polls:
                self.polls_answered += 1
                self._on_poll_answer(msg, self._polls.pop(key[1]), t)
                return
            w = self._waiters.pop(key, None)
            if w is not None:
                w.message, w.t = msg, t
                w.event.set()
                return
        self._unsolicited(msg, frame, t)

    def _heard_at(self, t: float) -> None:
        self._heard = max(self._heard, t)
        asked = self._asked
        if asked is not None and asked <= t:
            self._asked = None

    def _asking(self, t: float) -> None:
        """A message that the device must answer left at ``t``."""
        if self._asked is None:
            self._asked = t

    # ------------------------------------------------------------------ the device's truth
    def _streaming(self) -> bool:
        """The device plays a schedule and has not faulted: watch it."""
        return (self._state == "running" and self._sent is not None and self._fault is None
                and self._end_rel is None)

    def _send_poll(self) -> None:
        """Ask for the status without waiting (the reader thread reads the answer)."""
        msg, _ = self._status_query()
        pn = self._next_pn()
        t = time.monotonic()
        self._polls[pn] = t
        self._last_poll = t
        self.polls_sent += 1
        self._asking(t)
        self._write(self._encode(msg, pn))

    def _on_poll_answer(self, msg: Any, sent: float, t: float) -> None:
        ok, _, _ = self._result_of(msg)
        self.round_trips.append(t - sent)
        running = self._on_status(msg) if ok else False
        t0 = self._t0
        if running and self._trust and t0 is not None and self._plan is not None:
            # the device was stimulating when it read the query, which left at `sent`: every
            # pulse up to then was played (allowing for the uncertainty of t = 0)
            self._confirmed = max(self._confirmed,
                                  sent - t0 - self._plan.start_uncertainty)

    def _watch(self, now: float) -> None:
        """Keep-alive thread: status queries while streaming, and the answer deadline."""
        if not self._streaming():
            return
        asked = self._asked
        if asked is not None and now - asked > self.answer_deadline and self._heard < asked:
            self._no_answer(now, asked)
            return
        stale = [pn for pn, t in self._polls.items() if now - t > 4 * self.answer_deadline]
        for pn in stale:
            self._polls.pop(pn, None)
        self._try_poll(now, self._poll_every)

    def _try_poll(self, now: float, every: float) -> None:
        """Send a status query if ``every`` s have passed since the last one; skipped while a
        request waits for its answer (that request is the question)."""
        if now - self._last_poll >= every and self._req_lock.acquire(blocking=False):
            try:
                if self._link is not None and self._link.alive:
                    self._send_poll()
            finally:
                self._req_lock.release()

    def _no_answer(self, now: float, asked: float) -> None:
        silent = now - max(self._heard, asked)
        t0 = self._t0 if self._t0 is not None else now
        last = (f"at {self._heard - t0:.2f} s" if self._heard > t0 else "before the start")
        self._post(DeviceFault(now, self.kind, self._rel(), kind="timeout",
                               message=f"the device stopped answering (nothing for "
                                       f"{silent * 1e3:.0f} ms after a query; last heard from "
                                       f"it {last}): it may have frozen or lost power; output "
                                       "stopped, the pulses after its last answer are "
                                       "unconfirmed"))
        for w in list(self._waiters.values()):
            w.event.set()  # a request waiting for this device gives up now

    def _final_status(self) -> None:
        """At a normal stop: one last status query, so the pulses up to the stop are
        confirmed (or found missing)."""
        if self._sent is None or self._fault is not None or self._end_rel is not None:
            return
        msg, ack_cmd = self._status_query()
        try:
            ack = self.request(msg, ack_cmd, "status")
        except DeviceError as exc:
            log.warning("%s: no status before the stop: %s", self.port, exc)
            return
        self._on_poll_answer(ack, self.last_send, self.last_ack)

    def confirmed_until(self) -> float:
        return self._confirmed

    def _on_protocol_error(self, exc: ProtocolError) -> None:
        self._heard_at(time.monotonic())  # garbled, but the device is there
        self.protocol_errors += 1
        log.info("%s: bad frame from the device: %s", self.port, exc)

    def _on_disconnect(self, reason: str) -> None:
        self._post(Disconnected(self.clock.now(), self.kind, self._rel(), reason=reason))
        for w in list(self._waiters.values()):
            w.event.set()

    def _rel(self) -> float | None:
        return None if self._t0 is None else self.clock.now() - self._t0

    def _write(self, data: bytes) -> None:
        assert self._link is not None
        self._link.write(data)
        self._last_write = time.monotonic()

    def _next_pn(self) -> int:
        pn = self._pn
        self._pn = (self._pn + 1) % self.packet_modulo
        return pn

    def request(self, message: Any, ack_command: int, what: str) -> Any:
        """Send ``message``, wait for its acknowledgement; retry on timeout or transfer error.

        Raises DeviceTimeoutError after the last try and DeviceError for a refusal.
        """
        if self._link is None or not self._link.alive:
            raise DeviceError(f"{self.url}: the device is disconnected")
        with self._req_lock:
            tries = self.retries + 1
            text = ""
            for attempt in range(tries):
                pn = self._next_pn()
                w = Waiter()
                self._waiters[(ack_command, pn)] = w
                t_send = time.monotonic()
                self.last_send = self.clock.now()
                self._asking(t_send)
                self._write(self._encode(message, pn))
                if not w.wait(self.ack_timeout):
                    self._waiters.pop((ack_command, pn), None)
                    self.retried += attempt + 1 < tries
                    log.info("%s: %s not acknowledged (try %d/%d)", self.port, what,
                             attempt + 1, tries)
                    continue
                if w.message is None:  # woken by a disconnect or a device gone silent
                    f = self._fault
                    why = f.message if isinstance(f, DeviceFault) else "device disconnected"
                    raise DeviceError(f"{self.url}: {why} (during {what})")
                ok, retry, text = self._result_of(w.message)
                rt = w.t - t_send
                if ok:
                    self.round_trips.append(rt)
                    self.last_ack = self.last_send + rt
                    self._post(Acknowledged(self.clock.now(), self.kind, self._rel(),
                                            command=what, packet_number=pn, round_trip=rt))
                    return w.message
                if retry and attempt + 1 < tries:
                    self.retried += 1
                    continue
                raise DeviceError(f"{self.url}: the device refused {what}: {text}")
            if text:
                raise DeviceError(f"{self.url}: the device refused {what}: {text}")
            err = timeout_error(self.url, what, self.ack_timeout, tries)
        self._post(DeviceFault(self.clock.now(), self.kind, self._rel(), kind="timeout",
                               message=str(err)))
        raise err

    # ------------------------------------------------------------------ lifecycle hooks
    def _open(self) -> None:
        # threads hold only a weak reference, so a driver left open is garbage collected
        # (and warns, and stops the device) like any other object
        ref = weakref.ref(self)

        def on_frame(frame: Any, t: float) -> None:
            obj = ref()
            if obj is not None:
                obj._on_frame(frame, t)

        def on_error(exc: ProtocolError) -> None:
            obj = ref()
            if obj is not None:
                obj._on_protocol_error(exc)

        def on_disconnect(reason: str) -> None:
            obj = ref()
            if obj is not None:
                obj._on_disconnect(reason)

        self._link = SerialLink(self.port, dict(self.serial_settings), self._new_decoder(),
                                on_frame, on_error, on_disconnect)
        self._link.open()
        try:
            self._handshake()
        except Exception:
            self._link.close()
            self._link = None
            raise
        self._ka_stop.clear()
        self._ka_thread = threading.Thread(target=_keepalive_loop,
                                           args=(ref, self._ka_stop, self.keepalive_interval),
                                           daemon=True, name=f"keep-alive {self.port}")
        self._ka_thread.start()

    def _close(self) -> None:
        self._ka_stop.set()
        if self._ka_thread is not None and self._ka_thread is not threading.current_thread():
            self._ka_thread.join(timeout=2.0)
        if self._link is not None:
            self._link.close()
            self._link = None

    def _start(self) -> None:
        self._plan = GridPlan(self._grid, self._channel_names, self._validate)
        self._end_rel = None
        self._sent = None
        self._confirmed = -math.inf
        self._trust = True
        self._polls.clear()
        self._asked = None
        shortest = min((g.period for g in self._grid), default=self.poll_interval)
        self._poll_every = max(min(self.poll_interval, shortest), self.fastest_poll)
        self._wire_arm()

    def _deliver(self, chunk: PulseSchedule, until: float | None) -> None:
        plan = self._plan
        assert plan is not None
        updates = plan.plan(chunk, until)
        for u in updates:
            if u.first:
                vec = plan.vector_at(0.0)
                self._t0 = self.clock.now()
                self._wire_update(vec, first=True)
                # t = 0 is when the device got the start command: between its (last) send and
                # its acknowledgement; the midpoint errs by at most half a round trip
                self._t0 = (self.last_send + self.last_ack) / 2
                plan.start_uncertainty = (self.last_ack - self.last_send) / 2
                plan.acknowledge(0.0, vec)
                self._sent = vec
                self._last_poll = 0.0  # ask at once: the device confirms its start
                continue
            assert self._t0 is not None
            target = self._t0 + u.t
            self.clock.sleep_until(target)
            self._raise_if_faulted()
            now = self.clock.now()
            late = now - target
            self.lateness.append(late)
            if late > self.late_threshold:
                self.late_commands += 1
                self._post(LateCommand(now, self.kind, now - self._t0, command="update",
                                       lateness=late))
            # the patterns, the send and the record are taken together, under the request
            # lock: a keep-alive exchange cannot slip in between and make them stale
            with self._req_lock:
                self._avoid_edges(pulses=False)
                vec = plan.vector_at(self.clock.now() - self._t0)
                if vec == self._sent:
                    continue
                self._wire_update(vec, first=False)
                plan.acknowledge(self.last_send - self._t0, vec, self.last_ack - self._t0)
                self._sent = vec
        if self._t0 is not None:
            # return in time for the next chunk's first update (one period ahead)
            self.clock.sleep_until(self._t0 + plan.window_end - plan.max_period
                                   - self.return_lead)

    def finish(self) -> None:
        """Play out the stream: zero output after the last window, wait for it, then stop.

        Use it at the natural end of a program; :meth:`stop` is the immediate abort.
        """
        if self._state != "running" or self._plan is None or self._t0 is None:
            self.stop(reason="finished")
            return
        plan = self._plan
        end = plan.window_end
        self.deliver(PulseSchedule.empty(self._channel_names), until=end + plan.max_period)
        self.clock.sleep_until(self._t0 + end + self.edge_after)
        self.stop(reason="finished")

    def _avoid_edges(self, pulses: bool) -> None:
        """Wait, if needed, so that the next command leaves clear of period starts (and, with
        ``pulses``, of pulse onsets): the host's record then knows exactly which periods the
        command changed, whatever the transport latency below ``edge_before``."""
        plan = self._plan
        if plan is None or self._t0 is None:
            return
        for _ in range(64):
            rel = self.clock.now() - self._t0
            hit = None
            for g, pat in zip(plan.channels, plan.current, strict=True):
                k = math.floor((rel + self.edge_before) / g.period)
                edges = [k * g.period]
                if pulses:
                    edges += [k * g.period + g.offset + q.dt for q in pat]
                for e in edges:
                    if e - self.edge_before < rel < e + self.edge_after:
                        hit = e if hit is None else max(hit, e)
            if hit is None:
                return
            self.clock.sleep_until(self._t0 + hit + self.edge_after)

    def _set_intensity(self, channel: str, amplitude: float) -> None:
        plan = self._plan
        assert plan is not None
        gi = [g.name for g in self._grid].index(channel)
        cur = plan.current[gi]
        if cur:
            a0 = cur[0].amplitude or 1.0
            pat: Pattern = tuple(p._replace(amplitude=amplitude,
                                            amplitude2=p.amplitude2 * amplitude / a0)
                                 for p in cur)
        else:
            ch = self._program.channels[self._channel_names.index(channel)]
            f2, w2 = ch.second_phase
            pat = (Pulse(0.0, amplitude, ch.pulse_width_s, ch.interphase_gap, amplitude * f2,
                         w2, ch.waveform_id),)
        q = pat[0]
        one = PulseSchedule(t=np.zeros(1),
                            channel=np.array([self._channel_names.index(channel)]),
                            amplitude=np.array([q.amplitude]),
                            phase_width=np.array([q.phase_width]),
                            interphase_gap=np.array([q.interphase_gap]),
                            amplitude2=np.array([q.amplitude2]),
                            phase_width2=np.array([q.phase_width2]),
                            waveform=np.array([q.waveform]), channel_names=self._channel_names)
        from opennmes.safety import SafetyGuard

        SafetyGuard(self.safety_profile(), self._areas).check(one)
        self._validate(self._grid[gi], 0.0, pat)
        vec = list(plan.vector_at(self.clock.now() - self._t0)) if self._t0 is not None \
            else list(plan.current)
        vec[gi] = pat
        if self._t0 is None:
            raise DeviceError("set_intensity needs a running schedule: deliver a chunk first")
        with self._req_lock:
            self._avoid_edges(pulses=False)
            self._wire_update(tuple(vec), first=False)
            plan.current[gi] = pat
            plan._tl[gi].clear()
            plan.acknowledge(self.last_send - self._t0, tuple(vec), self.last_ack - self._t0)
            self._sent = tuple(vec)

    def _stop(self) -> None:
        # the record ends when the stop is acknowledged (or has failed): a pulse between the
        # command and its arrival counts as delivered, so the dose is never under-counted
        try:
            if self._link is not None and self._link.alive:
                if self._fault is None:
                    self._avoid_edges(pulses=True)  # <= 4 ms: a clean, exactly known end
                    self._final_status()
                self._wire_stop()
        finally:
            if self._t0 is not None and self._end_rel is None:
                self._end_rel = self.clock.now() - self._t0

    def _record(self) -> tuple[PulseSchedule, np.ndarray]:
        """Every pulse the host asked for, and which of them the device did not confirm."""
        if self._plan is None:
            return PulseSchedule.empty(self._channel_names), np.zeros(0, dtype=bool)
        end = self._end_rel if self._end_rel is not None else self.now_rel()
        sched, unsure = self._plan.record(end)
        return sched, unsure | (sched.t > self._confirmed + 1e-9)

    def _delivered(self) -> PulseSchedule:
        sched, unsure = self._record()
        return sched.take(np.flatnonzero(~unsure))

    def _unconfirmed(self) -> PulseSchedule:
        sched, unsure = self._record()
        return sched.take(np.flatnonzero(unsure))

    # ------------------------------------------------------------------ wire hooks
    def _validate(self, channel: GridChannel, t_k: float, pattern: Pattern) -> None:
        raise NotImplementedError

    def _wire_arm(self) -> None:
        raise NotImplementedError

    def _wire_update(self, patterns: tuple[Pattern, ...], *, first: bool) -> None:
        raise NotImplementedError

    def _wire_stop(self) -> None:
        raise NotImplementedError



def _keepalive_loop(ref: weakref.ref[HasomedStimulator], stop: threading.Event,
                    interval: float) -> None:
    with device_thread():  # raised with the loop by realtime()
        _keep_alive(ref, stop, interval)


def _keep_alive(ref: weakref.ref[HasomedStimulator], stop: threading.Event,
                interval: float) -> None:
    wait = interval / 4
    while not stop.wait(wait):
        obj = ref()
        if obj is None or obj._link is None or not obj._link.alive:
            return
        try:
            obj._watch(time.monotonic())
            obj._keepalive()
        except DeviceError as exc:
            log.warning("%s: keep-alive failed: %s", obj.port, exc)
        wait = 0.01 if obj._streaming() else interval / 4
        del obj


def refuse(channel: str, t: float, what: str, fix: str) -> ProgramError:
    """A ProgramError in the common format: where, why, what to change."""
    return ProgramError(f"channel {channel!r}, period at {t:.6f} s: {what}; {fix}")
