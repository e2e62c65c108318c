"""A session in its own process, supervised by the process that started it.

:func:`supervise` asks a fork server (started once, with the session, device, store and
physiology modules preloaded and the virtual patient's kernels loaded) for a child process.
The child opens the store and the device, runs :func:`~opennmes.session.start_session` (every
check before anything is recorded), plays the runner and writes the record. It reports over a
pipe: ``started`` (or ``refused`` with the reason), one ``status`` per control window (levels,
delivered amplitude, force, EMG rms, program position), every session ``event`` as it happens,
an ``error`` when a command is refused, and ``ended``. The parent sends commands of the one
vocabulary (:class:`~opennmes.session.Command`), checked on both sides; a thread of the child
applies each at once (:func:`~opennmes.session.apply_command`), so a stop zeroes the output
from that thread whatever the control loop is doing.

The child ends at zero output, with its record finished, when

- the parent goes away (its end of the pipe closes: a crash, a kill): the session stops;
- the parent stalls (a message to it has waited ``parent_timeout`` s): the session stops; the
  control loop only queues its messages, so a slow parent never delays a pulse;
- a command fails other than by being refused (a malformed message, a bug): emergency stop;
- the runner fails: the runner stops the output and the record says why.

The parent kills a child that has not ended ``kill_after`` s after a stop, or that has not
reported ``started`` within ``start_timeout`` s.
"""

from __future__ import annotations

import itertools
import logging
import math
import multiprocessing
import queue
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.errors import NmesError
from opennmes.session._commands import Command, apply_command, check_command

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.session._events import SessionEvent
    from opennmes.session._runner import SessionRunner
    from opennmes.stim import Program

__all__ = ["supervise", "SupervisedSession", "SessionRefused", "warm_up_supervisor",
           "PRELOAD", "START_TIMEOUT", "KILL_AFTER", "PARENT_TIMEOUT"]

log = logging.getLogger(__name__)

PRELOAD = ["opennmes.session._preload"]
"""Modules the fork server imports once for every session process."""
START_TIMEOUT = 60.0
"""Longest wait for a session process to report started or refused, s."""
KILL_AFTER = 5.0
"""A session process that has not ended this long after a stop is killed, s."""
PARENT_TIMEOUT = 10.0
"""A message to the parent that has waited this long (the parent stopped reading) stops the
session, s."""

_CTX: Any = None
_CTX_LOCK = threading.Lock()


class SessionRefused(NmesError):
    """The session did not start (the message says which check failed); nothing ran."""


def _context() -> Any:
    """The fork-server context (``spawn`` where there is none, e.g. Windows: each session
    process then loads the modules itself, a few seconds per start)."""
    global _CTX
    with _CTX_LOCK:
        if _CTX is None:
            ctx: Any
            try:
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(PRELOAD)
            except ValueError:
                ctx = multiprocessing.get_context("spawn")
            _CTX = ctx
        return _CTX


def warm_up_supervisor() -> None:
    """Start the session fork server now (modules and kernels load once, a few seconds), so
    that the first :func:`supervise` starts at once."""
    from multiprocessing import forkserver

    if _context().get_start_method() == "forkserver":
        forkserver.ensure_running()


def supervise(db_url: str, patient_id: str, program: Program, device_url: str, *,
              meta: Mapping[str, Any] | None = None,
              options: Mapping[str, Any] | None = None,
              screening_acknowledged: Mapping[str, str] | None = None,
              virtual: bool = False, parent: str = "the supervising process",
              start_timeout: float = START_TIMEOUT, parent_timeout: float = PARENT_TIMEOUT,
              kill_after: float = KILL_AFTER, buffer: int = 1500,
              keep_events: int = 1000) -> SupervisedSession:
    """Start a recorded session in its own process and return once it plays.

    The child process does everything :func:`~opennmes.session.start_session` does (patient,
    screening, the device's guard on the whole program, the device's acceptance) before
    anything is recorded, then plays the program with every channel at 0 A.

    Parameters
    ----------
    db_url : str
        Database URL, with its password, of the store the child records into.
    patient_id : str
    program : Program
    device_url : str
        Stimulator URL (``sim://...``, ``rehastim2://...``, ``p24://...``).
    meta : mapping, optional
        Plain JSON kept with the session.
    options : mapping, optional
        :class:`~opennmes.session.SessionRunner` options (``stall_margin`` in s, ``chunk``,
        ``step``, ...).
    screening_acknowledged : mapping, optional
        Factor -> recorded decision lifting a liftable screening block.
    virtual : bool
        Play on a virtual clock, faster than real time (``sim://`` only).
    parent : str
        How the records name this process when it goes away or stalls (e.g. ``"the web
        server"``: "the web server went away").
    start_timeout : float
        Longest wait for the child to report started or refused, s.
    parent_timeout : float
        The child stops the session when a message to this process has waited this long, s.
    kill_after : float
        The child is killed when it has not ended this long after a stop, s.
    buffer : int
        Statuses kept (:meth:`SupervisedSession.statuses`; 1500 is 60 s at 25 Hz).
    keep_events : int
        Session events kept (:meth:`SupervisedSession.events`).

    Raises
    ------
    SessionRefused
        A check failed or the child did not start; nothing ran (the message says why).
    """
    if virtual and not device_url.lower().startswith("sim:"):
        raise SessionRefused(f"a virtual clock runs only on sim://, not {device_url!r}; "
                             "nothing was started or recorded")
    job = {"db_url": db_url, "patient_id": patient_id, "program": program.to_file_dict(),
           "device_url": device_url, "meta": dict(meta or {}), "options": dict(options or {}),
           "acknowledged": dict(screening_acknowledged or {}), "virtual": bool(virtual),
           "parent": parent, "parent_timeout": float(parent_timeout)}
    ctx = _context()
    conn, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child_main, name="nmes-session", args=(child, job), daemon=True)
    proc.start()
    child.close()
    if not conn.poll(start_timeout):
        proc.kill()
        proc.join(timeout=5)
        conn.close()
        raise SessionRefused(f"the session process did not start within {start_timeout:g} s; "
                             "nothing ran")
    try:
        msg = conn.recv()
    except (EOFError, OSError):
        msg = ("refused", "the session process ended before starting")
    if msg[0] != "started":
        proc.join(timeout=5)
        conn.close()
        raise SessionRefused(str(msg[1]))
    return SupervisedSession(proc, conn, msg[1], kill_after=kill_after, buffer=buffer,
                             keep_events=keep_events)


class SupervisedSession:
    """A session playing in its own process, seen from the process that started it
    (:func:`supervise`).

    A reader thread keeps the latest status, the last ``buffer`` statuses (each numbered by
    ``seq``, without gaps) and the session's events; :meth:`send` checks a command against
    the session's channels and sends it; :meth:`stop` zeroes the output at once. Use it as a
    context manager to stop the session (if still playing) and wait for its end on exit.

    Attributes
    ----------
    process : multiprocessing.Process
        The session process.
    conn : Connection
        This end of the pipe.
    session_id : int
        The record's id.
    channels : list of str
    max_amplitude : list of float
        Program amplitude of each channel, A.
    triggerable : list of str
        Channels a button (the ``trigger`` command) can trigger.
    drives : dict
        What drives each functional channel, in words.
    outcome : dict or None
        ``status``, ``how``, ``reason`` and ``duration_s`` once ended.
    error : str or None
        The latest refused command's reason (or why the process ended unexpectedly).
    """

    def __init__(self, process: Any, conn: Connection, started: Mapping[str, Any], *,
                 kill_after: float = KILL_AFTER, buffer: int = 1500,
                 keep_events: int = 1000) -> None:
        self.process = process
        self.conn = conn
        self.session_id = int(started["session_id"])
        self.channels: list[str] = list(started["channels"])
        self.max_amplitude = [float(a) for a in started["max_amplitude"]]
        self.triggerable: list[str] = list(started["triggerable"])
        self.drives: dict[str, str] = dict(started["drives"])
        self.kill_after = float(kill_after)
        self.outcome: dict[str, Any] | None = None
        self.error: str | None = None
        self.ended_at: float | None = None
        self.stop_requested: float | None = None
        self._status: dict[str, Any] = {}
        self._statuses: deque[dict[str, Any]] = deque(maxlen=int(buffer))
        self._events: deque[dict[str, Any]] = deque(maxlen=int(keep_events))
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True,
                                        name=f"nmes-supervisor-{self.session_id}")
        self._thread.start()

    # ------------------------------------------------------------------ state
    @property
    def ended(self) -> bool:
        """True once the session process has ended (``outcome`` says how)."""
        return self._ended.is_set()

    def status(self) -> dict[str, Any]:
        """The latest status (empty before the first window): ``seq``, ``t``, ``state``,
        ``program_time``, ``phase``, ``contraction``, ``n_contractions``, ``contracting``,
        ``remaining``, ``paused``, ``selected``, ``levels`` and ``amplitude`` (A, in the
        order of :attr:`channels`), ``force``, ``emg``, ``force_label``."""
        with self._lock:
            return dict(self._status)

    def statuses(self, since: int = -1) -> list[dict[str, Any]]:
        """The kept statuses numbered above ``since``, oldest first."""
        with self._lock:
            if since >= self._status.get("seq", -1):
                return []
            return [s for s in self._statuses if s["seq"] > since]

    def events(self, kinds: Collection[str] | None = None,
               last: int | None = None) -> list[dict[str, Any]]:
        """The kept session events (``t``, ``kind`` and the event's data), oldest first;
        only those of ``kinds`` when given, only the ``last`` ones when given."""
        with self._lock:
            evs = list(self._events)
        if kinds is not None:
            evs = [e for e in evs if e["kind"] in kinds]
        return evs[-last:] if last else evs

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the session process has ended; True when it has."""
        return self._ended.wait(timeout)

    # ------------------------------------------------------------------ commands
    def check(self, command: Command | str, *args: Any) -> tuple[Command, tuple[Any, ...]]:
        """Check a command against this session (CommandError naming what is wrong)."""
        return check_command(command, args, channels=self.channels,
                             triggerable=self.triggerable)

    def send(self, command: Command | str, *args: Any, by: str | None = None) -> None:
        """Check ``command`` and send it; the session applies it at once (the stops, the
        notes) or at its next control window.

        Raises
        ------
        CommandError
            Unknown command or a wrong argument (nothing was sent).
        NmesError
            The session has ended or its process cannot be reached.
        """
        cmd, checked = self.check(command, *args)
        if cmd in (Command.STOP, Command.EMERGENCY_STOP):
            self._halt(cmd, checked, by)
            return
        self._send(cmd, checked, by)

    def stop(self, reason: str = "stop pressed", *, by: str = "operator") -> None:
        """End the session now: output to zero (idempotent; kills the process if it has not
        ended :attr:`kill_after` s later)."""
        self._halt(Command.STOP, (reason,), by)

    def emergency_stop(self, reason: str = "emergency stop", *, by: str = "operator") -> None:
        """Zero the output now; the session is recorded as aborted (idempotent, as
        :meth:`stop`)."""
        self._halt(Command.EMERGENCY_STOP, (reason,), by)

    def _send(self, cmd: Command, args: tuple[Any, ...], by: str | None) -> None:
        if self.ended:
            raise NmesError("the session has ended")
        with self._send_lock:
            try:
                self.conn.send((cmd.value, args, by))
            except (OSError, BrokenPipeError, ValueError) as exc:
                raise NmesError(f"the session process is not reachable: {exc}") from exc

    def _halt(self, cmd: Command, args: tuple[Any, ...], by: str | None) -> None:
        if self.ended:
            return
        if self.stop_requested is None:
            self.stop_requested = time.monotonic()
            threading.Thread(target=self._kill_if_stuck, daemon=True,
                             name=f"nmes-supervisor-kill-{self.session_id}").start()
        try:
            self._send(cmd, args, by)
        except NmesError:
            self.process.kill()

    def _kill_if_stuck(self) -> None:
        if self._ended.wait(self.kill_after):
            return
        log.error("session process of session %s did not stop within %g s: killing it",
                  self.session_id, self.kill_after)
        self.process.kill()

    # ------------------------------------------------------------------ from the child
    def _read(self) -> None:
        """Reader thread: statuses and events until the session ends."""
        try:
            while True:
                msg = self.conn.recv()
                if msg[0] == "status":
                    with self._lock:
                        data = msg[1]
                        data["seq"] = next(self._seq)
                        self._status = data
                        self._statuses.append(data)
                elif msg[0] == "event":
                    with self._lock:
                        self._events.append(msg[1])
                elif msg[0] == "ended":
                    self.outcome = msg[1]
                    break
                elif msg[0] == "error":
                    self.error = str(msg[1])
        except Exception as exc:  # noqa: BLE001 - EOF, or this end closed: the pipe is gone
            if not isinstance(exc, EOFError | OSError):
                log.warning("pipe of session %s unreadable: %r", self.session_id, exc)
            if self.outcome is None:
                self.outcome = {"status": "aborted", "how": "device_error",
                                "reason": "the session process ended unexpectedly"}
                self.error = self.outcome["reason"]
        finally:
            self.process.join(timeout=5)  # only this thread joins (the exit status is read once)
            self.conn.close()
            self.ended_at = time.time()
            self._ended.set()

    def __enter__(self) -> SupervisedSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop("supervisor closed", by="server")
        self.wait(self.kill_after + 6.0)


# ---------------------------------------------------------------------- the session process
def _first_row(names: tuple[str, ...], *keys: str) -> int | None:
    for key in keys:
        for i, n in enumerate(names):
            if key in n.lower():
                return i
    return None


class _Watcher:
    """Device listener: the latest force (or angle) of the stimulated muscle and the EMG rms
    of each played window, from the virtual patient's signals."""

    def __init__(self, muscles: list[str]) -> None:
        self.muscles = muscles
        self.force: float | None = None
        self.force_label = ""
        self.emg_rms: float | None = None

    def __call__(self, event: Any) -> None:
        sig = getattr(event, "signals", None)
        if sig is None or not sig.n_samples:
            return
        names = tuple(sig.names)
        i = j = None
        for m in self.muscles:
            i = _first_row(names, f"{m}.force") if i is None else i
            j = _first_row(names, f"{m}.emg") if j is None else j
        i = _first_row(names, "force", "torque", "angle") if i is None else i
        j = _first_row(names, "emg") if j is None else j
        if i is not None:
            unit = sig.units[i] if sig.units else ""
            value = float(sig.data[i, -1])
            what = names[i].replace(".", " ").replace("_", " ")
            if unit == "rad":  # people read angles in degrees
                value, unit = math.degrees(value), "degrees"
            self.force = value
            self.force_label = f"{what} ({unit})" if unit else what
        if j is not None:
            x = np.asarray(sig.data[j], dtype=float)
            self.emg_rms = float(np.sqrt(np.mean(x * x)))


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class _Outbox:
    """Messages to the parent, sent by their own thread: the control loop only queues them.
    ``stalled(timeout)`` is True when one send has waited longer than ``timeout`` s (the
    parent stopped reading)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._busy_since: float | None = None
        self.broken = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="nmes-session-out")
        self._thread.start()

    def put(self, msg: tuple[Any, ...]) -> None:
        self._queue.put(msg)

    def stalled(self, timeout: float) -> bool:
        since = self._busy_since
        return since is not None and time.monotonic() - since > timeout

    def close(self, timeout: float) -> None:
        """Send what is queued (waiting at most ``timeout`` s), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (msg := self._queue.get()) is not None:
            if self.broken:
                continue
            self._busy_since = time.monotonic()
            try:
                self._conn.send(msg)
            except (OSError, EOFError, ValueError):  # the parent is gone
                self.broken = True
            finally:
                self._busy_since = None


def _event_doc(ev: SessionEvent) -> dict[str, Any]:
    return {"t": round(ev.t, 3), "kind": ev.kind} | ev.data()


def _child_main(conn: Connection, job: dict[str, Any]) -> None:
    """Entry point of the session process."""
    import opennmes.session._preload  # noqa: F401 - loaded already when forked from the server
    from opennmes.devices import VirtualClock, open_stimulator
    from opennmes.session._setup import start_session
    from opennmes.stim import program_from_dict
    from opennmes.store import open_store

    out = _Outbox(conn)
    parent = str(job["parent"])
    try:
        store = open_store(job["db_url"], recover=False)
    except NmesError as exc:
        out.put(("refused", str(exc)))
        out.close(KILL_AFTER)
        return
    stim = None
    try:
        program = program_from_dict(job["program"], source="prescription")
        stim = open_stimulator(job["device_url"],
                               clock=VirtualClock() if job["virtual"] else None)
        watcher = _Watcher([c.electrode.site.replace(" ", "_") for c in program.channels])
        stim.add_listener(watcher)
        runner = start_session(store, job["patient_id"], program, stim,
                               screening_acknowledged=job["acknowledged"] or None,
                               meta=job["meta"], **job["options"])
    except BaseException as exc:  # noqa: BLE001 - a refusal; nothing was recorded
        out.put(("refused", str(exc) if isinstance(exc, NmesError)
                 else f"{type(exc).__name__}: {exc}"))
        try:
            if stim is not None:
                stim.close()
        finally:
            store.close()
            out.close(KILL_AFTER)
        return
    channels = list(runner.channels)
    assert runner.writer is not None
    out.put(("started", {"session_id": runner.writer.id, "channels": channels,
                         "max_amplitude": [runner.max_amplitude[c] for c in channels],
                         "triggerable": list(runner.triggerable),
                         "drives": {c: d.describe() for c, d in runner.drives.items()}}))
    n_seen = 0
    parent_timeout = float(job["parent_timeout"])

    def forward_events(r: SessionRunner) -> None:
        nonlocal n_seen
        events = r.events
        for ev in events[n_seen:]:
            out.put(("event", _event_doc(ev)))
        n_seen = len(events)

    def hook(r: SessionRunner, t: float) -> None:
        if out.stalled(parent_timeout):
            r.stop(f"{parent} stopped responding (a message waited over {parent_timeout:g} s)",
                   by="server")
        forward_events(r)
        st = r.status()
        pos = st.position
        force = watcher.force if watcher.force is not None else st.force
        out.put(("status", {
            "t": round(t, 4), "state": st.state, "program_time": st.program_time,
            "phase": pos.phase, "contraction": pos.contraction,
            "n_contractions": pos.n_contractions, "contracting": pos.contracting,
            "remaining": pos.remaining, "paused": st.paused, "selected": st.selected,
            "levels": [st.levels[c] for c in channels],
            "amplitude": [st.amplitude[c] for c in channels],
            "force": _finite(force), "emg": _finite(watcher.emg_rms),
            "force_label": watcher.force_label or "force"}))

    runner.add_hook(hook)
    threading.Thread(target=_commands, args=(conn, runner, out, parent), daemon=True,
                     name="nmes-session-commands").start()
    outcome: dict[str, Any]
    try:
        result = runner.run()
        outcome = {"status": result.status, "how": result.how, "reason": result.reason,
                   "duration_s": round(result.duration, 2)}
    except BaseException as exc:  # noqa: BLE001 - report, the runner already stopped output
        outcome = {"status": "aborted", "how": "device_error",
                   "reason": f"{type(exc).__name__}: {exc}"}
    finally:
        try:
            stim.close()
        finally:
            store.close()
    forward_events(runner)  # the stop, and anything after the last window
    out.put(("ended", outcome))
    out.close(KILL_AFTER)
    conn.close()


def _commands(conn: Connection, runner: SessionRunner, out: _Outbox, parent: str) -> None:
    """Command thread of the session process: each command applied at once; the session
    stops when the parent goes away, emergency-stops when a command fails."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone: stop
            runner.stop(f"{parent} went away", by="server")
            return
        except Exception as exc:  # noqa: BLE001 - an unreadable message
            runner.emergency_stop(f"a command could not be read: {type(exc).__name__}: {exc}",
                                  by="server")
            return
        try:
            name, args, by = msg
            cmd = Command(name)
            apply_command(runner, cmd, *tuple(args), by=None if by is None else str(by))
        except NmesError as exc:  # refused (a wrong channel, a level above the program)
            out.put(("error", str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - a malformed command or a bug: stop now
            reason = f"command {msg!r:.80} failed: {type(exc).__name__}: {exc}"
            runner.emergency_stop(reason, by="server")
            out.put(("error", reason))
            return
        if cmd in (Command.STOP, Command.EMERGENCY_STOP):
            return
