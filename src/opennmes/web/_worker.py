"""A live session in its own process, so that page rendering never delays its control loop.

The web process asks a fork server (started once, with the session, device and physiology
modules preloaded and the virtual patient's kernels loaded) for a child per session. The child
opens the store and the device, runs :func:`opennmes.session.start_session` (every check
before anything is recorded) and plays the runner. It reports over a pipe: ``started`` (or
``refused`` with the reason), one ``status`` per control window (levels, delivered amplitude,
force, EMG rms, program position) and ``ended``. A thread in the child waits for commands
(``increase``, ``decrease``, ``pause``, ``resume``, ``rate_comfort``, ``trigger``,
``end_burst``, ``stop``) and hands them to the runner at once: ``stop`` zeroes the output from
that thread, whatever the loop is doing. The functional channels' ``trigger`` and ``loop``
events are forwarded as ``event`` messages as they happen. When the web process goes away the
pipe closes and the child stops the session.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import threading
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

__all__ = ["spawn", "PRELOAD", "COMMANDS", "FORWARDED"]

log = logging.getLogger(__name__)

PRELOAD = ["opennmes.web._preload"]
COMMANDS = ("increase", "decrease", "pause", "resume", "rate_comfort", "trigger", "end_burst",
            "stop")
FORWARDED = ("trigger", "loop")
"""Session event kinds sent to the web process as they happen (functional channels)."""

_CTX: Any = None
_CTX_LOCK = threading.Lock()


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


def spawn(db_url: str, patient_id: str, program: Mapping[str, Any], device_url: str,
          meta: Mapping[str, Any], options: Mapping[str, Any]) -> tuple[Any, Connection]:
    """Start a session process; returns (process, parent end of the pipe).

    Parameters
    ----------
    db_url : str
        Database URL (with its password) of the store the session is recorded in.
    patient_id : str
    program : mapping
        The program as a file dict (``Program.to_file_dict()``).
    device_url : str
    meta : mapping
        Plain JSON kept with the session.
    options : mapping
        SessionRunner options (e.g. ``stall_margin`` in s).
    """
    ctx = _context()
    parent, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child_main, name="nmes-session",
                       args=(child, db_url, patient_id, dict(program), device_url, dict(meta),
                             dict(options)), daemon=True)
    proc.start()
    child.close()
    return proc, parent


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
            self.force = float(sig.data[i, -1])
            unit = sig.units[i] if sig.units else ""
            self.force_label = f"{names[i]} ({unit})" if unit else names[i]
        if j is not None:
            x = np.asarray(sig.data[j], dtype=float)
            self.emg_rms = float(np.sqrt(np.mean(x * x)))


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _child_main(conn: Connection, db_url: str, patient_id: str, program_doc: dict[str, Any],
                device_url: str, meta: dict[str, Any], options: dict[str, Any]) -> None:
    """Entry point of the session process."""
    import opennmes.web._preload  # noqa: F401 - loaded already when forked from the server
    from opennmes.devices import open_stimulator
    from opennmes.errors import NmesError
    from opennmes.session import start_session
    from opennmes.stim import program_from_dict
    from opennmes.store import open_store

    send_lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> None:
        with send_lock:
            try:
                conn.send(msg)
            except (OSError, EOFError, BrokenPipeError):
                pass

    try:
        store = open_store(db_url, recover=False)
    except NmesError as exc:
        send(("refused", f"{exc}"))
        return
    stim = None
    try:
        program = program_from_dict(program_doc, source="prescription")
        stim = open_stimulator(device_url)
        watcher = _Watcher([c.electrode.site.replace(" ", "_") for c in program.channels])
        stim.add_listener(watcher)
        runner = start_session(store, patient_id, program, stim, meta=meta, **options)
    except NmesError as exc:
        send(("refused", str(exc)))
        if stim is not None:
            stim.close()
        store.close()
        return
    channels = list(runner.channels)
    assert runner.writer is not None
    send(("started", {"session_id": runner.writer.id, "channels": channels,
                      "max_amplitude": [runner.max_amplitude[c] for c in channels],
                      "triggerable": list(runner.triggerable),
                      "drives": {c: d.describe() for c, d in runner.drives.items()}}))
    n_seen = 0

    def hook(r: Any, t: float) -> None:
        nonlocal n_seen
        if r.drives:
            events = r.events
            for ev in events[n_seen:]:
                if ev.kind in FORWARDED:
                    send(("event", {"t": round(ev.t, 3), "kind": ev.kind} | ev.data()))
            n_seen = len(events)
        st = r.status()
        pos = st.position
        force = watcher.force if watcher.force is not None else st.force
        send(("status", {
            "t": round(t, 4), "state": st.state, "program_time": st.program_time,
            "phase": pos.phase, "contraction": pos.contraction,
            "n_contractions": pos.n_contractions, "contracting": pos.contracting,
            "remaining": pos.remaining, "paused": st.paused, "selected": st.selected,
            "levels": [st.levels[c] for c in channels],
            "amplitude": [st.amplitude[c] for c in channels],
            "force": _finite(force), "emg": _finite(watcher.emg_rms),
            "force_label": watcher.force_label or "force"}))

    runner.add_hook(hook)

    def commands() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the web process is gone: stop
                runner.stop("the web server went away", by="server")
                return
            name, args, by = msg[0], tuple(msg[1]), str(msg[2])
            try:
                if name == "stop":
                    runner.stop(*args, by=by)
                    return
                if name in COMMANDS:
                    getattr(runner, name)(*args, by=by)
            except NmesError as exc:
                send(("error", str(exc)))

    threading.Thread(target=commands, daemon=True, name="nmes-session-commands").start()
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
    send(("ended", outcome))
    conn.close()
