"""Real-time hints for the stimulation process: scheduling priority, collector pauses, and
how often the interpreter lock changes hands.

A stimulation host streams a window every 10-40 ms and must wake on time to do it. On a
loaded machine three things delay it (measured in ``bench/diagnose_realtime.py``; figures in
``bench/RESULTS.md``):

* the kernel runs other processes first: a thread woken from ``sleep`` waits for a CPU;
* the interpreter lock: a woken thread waits until the thread holding it lets go, by default
  after up to 5 ms (``sys.getswitchinterval``);
* the cyclic garbage collector stops every thread while it runs.

:func:`realtime` addresses all three for the duration of a ``with`` block and restores the
previous state afterwards. It never raises for lack of permission: it logs what it could not
do and carries on (a session on a laptop without privileges still runs, with the default
timing).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["RealtimeState", "realtime", "device_thread", "ordinary_priority"]

log = logging.getLogger(__name__)

_PRIORITY_MAX = 98
"""Highest SCHED_FIFO priority we use: 99 is left to the kernel's own watchdog threads."""

_DEVICE_THREADS: set[int] = set()
_DEVICE_LOCK = threading.Lock()


@contextlib.contextmanager
def device_thread() -> Iterator[None]:
    """Mark the calling thread as part of the stimulation path while the block runs.

    Serial readers, keep-alive threads and emulator threads wrap their loop in it, so that
    :func:`realtime` (scope ``"device"``) raises them with the loop that waits for them: a
    loop on SCHED_FIFO that waits for an acknowledgement read by a default-priority thread
    is only as fast as that thread.
    """
    tid = threading.get_native_id()
    with _DEVICE_LOCK:
        _DEVICE_THREADS.add(tid)
    try:
        yield
    finally:
        with _DEVICE_LOCK:
            _DEVICE_THREADS.discard(tid)


def ordinary_priority() -> bool:
    """Put the calling thread back on the default scheduling if it inherited a real-time one.

    Call it first thing in a thread that a real-time thread starts but that must not compete
    with the stimulation path (a recorder writing to a database, a report builder). Returns
    True if the scheduling was changed; never raises.
    """
    rt = {getattr(os, "SCHED_FIFO", -1), getattr(os, "SCHED_RR", -1)}
    try:
        if os.sched_getscheduler(0) not in rt:
            return False
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError) as exc:
        log.debug("ordinary_priority: scheduling left unchanged (%s)", exc)
        return False
    return True


@dataclass
class RealtimeState:
    """What :func:`realtime` did (and will undo).

    Attributes
    ----------
    scheduling : str
        ``"fifo"`` (SCHED_FIFO at ``priority``), ``"nice"`` (raised with a negative nice
        value), or ``"default"`` (nothing permitted or asked for).
    priority : int
        SCHED_FIFO priority, or the nice value, that was applied (0 for ``"default"``).
    threads : int
        Threads of the process whose scheduling was raised.
    gc_frozen : int
        Objects moved to the collector's permanent generation at entry.
    notes : list of str
        What could not be done, and why.
    """

    scheduling: str = "default"
    priority: int = 0
    threads: int = 0
    gc_frozen: int = 0
    notes: list[str] = field(default_factory=list)


def _threads() -> list[int]:
    """Kernel thread ids of this process (Linux); only the caller's (0) elsewhere."""
    try:
        return sorted(int(t) for t in os.listdir("/proc/self/task"))
    except OSError:
        return [0]


def _get_sched(tid: int) -> tuple[int, int, int] | None:
    """(policy, rt priority, nice) of thread ``tid``, or None if it cannot be read."""
    try:
        policy = os.sched_getscheduler(tid)
        prio = os.sched_getparam(tid).sched_priority
        nice = os.getpriority(os.PRIO_PROCESS, tid)  # Linux: per thread
    except (AttributeError, OSError):
        return None
    return policy, prio, nice


def _set_sched(tid: int, policy: int, prio: int, nice: int) -> None:
    os.sched_setscheduler(tid, policy, os.sched_param(prio))
    if policy == getattr(os, "SCHED_OTHER", 0):
        os.setpriority(os.PRIO_PROCESS, tid, nice)


def _raise_threads(state: RealtimeState, priority: int, nice: int, scope: str,
                   saved: dict[int, tuple[int, int, int]]) -> None:
    alive = _threads()
    if scope == "process":
        tids = alive
    else:
        with _DEVICE_LOCK:
            mine = {threading.get_native_id()} | _DEVICE_THREADS
        tids = [t for t in alive if t in mine] or [0]
    for tid in tids:
        s = _get_sched(tid)
        if s is not None:
            saved[tid] = s
    fifo = getattr(os, "SCHED_FIFO", None)
    if priority > 0 and fifo is not None:
        if not 1 <= priority <= _PRIORITY_MAX:
            state.notes.append(f"priority = {priority} is outside 1 to {_PRIORITY_MAX} "
                               "(SCHED_FIFO); not used")
        else:
            done = 0
            rt = {fifo, getattr(os, "SCHED_RR", fifo)}
            for tid, (policy, prio, _) in saved.items():
                try:
                    os.sched_setscheduler(tid, fifo, os.sched_param(
                        max(priority, prio) if policy in rt else priority))
                    done += 1
                except OSError as exc:
                    if done == 0:
                        state.notes.append(f"SCHED_FIFO {priority} not permitted ({exc}); "
                                           "grant CAP_SYS_NICE or an rtprio limit "
                                           "(/etc/security/limits.conf)")
                        break
            if done:
                state.scheduling, state.priority, state.threads = "fifo", priority, done
                return
    if nice < 0:
        done = 0
        for tid, (_, _, old) in saved.items():
            try:
                os.setpriority(os.PRIO_PROCESS, tid, min(old, nice))
                done += 1
            except OSError as exc:
                if done == 0:
                    state.notes.append(f"nice {nice} not permitted ({exc})")
                    break
        if done:
            state.scheduling, state.priority, state.threads = "nice", nice, done


def _restore_threads(state: RealtimeState, saved: dict[int, tuple[int, int, int]],
                     before: set[int]) -> None:
    """Put the raised threads back. Threads started inside the block that still carry the
    raised scheduling (inherited from their creator) get the state the calling thread had
    at entry; threads the block did not touch are left alone."""
    me = threading.get_native_id()
    base = saved.get(me) or saved.get(0) or next(iter(saved.values()), None)
    for tid in _threads():
        if tid in saved:
            s: tuple[int, int, int] | None = saved[tid]
        elif tid not in before and _carries(state, tid):
            s = base
        else:
            continue
        if s is None:
            continue
        try:
            _set_sched(tid, *s)
        except OSError as exc:  # e.g. the thread ended meanwhile
            log.debug("could not restore the scheduling of thread %d: %s", tid, exc)
    if 0 in saved:  # no thread list (not Linux): the caller only
        try:
            _set_sched(0, *saved[0])
        except OSError as exc:
            log.debug("could not restore the scheduling of this thread: %s", exc)


def _carries(state: RealtimeState, tid: int) -> bool:
    """True if thread ``tid`` has the scheduling this block applied."""
    s = _get_sched(tid)
    if s is None:
        return False
    if state.scheduling == "fifo":
        return s[0] == getattr(os, "SCHED_FIFO", -1) and s[1] == state.priority
    return state.scheduling == "nice" and s[2] == state.priority


@contextlib.contextmanager
def realtime(priority: int = 10, *, nice: int = -10, scope: str = "device",
             freeze_gc: bool = True,
             gc_threshold: int | None = 50_000,
             switch_interval: float | None = 0.0005) -> Iterator[RealtimeState]:
    """Run a ``with`` block with real-time hints; everything is restored at exit.

    Parameters
    ----------
    priority : int
        SCHED_FIFO priority (1-98) for the threads of ``scope``; 0 skips SCHED_FIFO.
        Threads started inside the block inherit it from the thread that starts them.
        A thread already on a higher real-time priority keeps it.
    nice : int
        Nice value (-20 to 0) used when SCHED_FIFO is not permitted or not asked for;
        0 skips it. Never lowers a thread's priority.
    scope : {"device", "process"}
        ``"device"``: the calling thread and the threads of the stimulation path (serial
        readers, keep-alives, emulators: see :func:`device_thread`), so that a web server
        or recorder in the same process keeps its default priority. ``"process"``: every
        thread of the process.
    freeze_gc : bool
        ``gc.freeze()`` at entry: the objects alive then (modules, the program, the plan)
        are never scanned again by the collector inside the block (``gc.unfreeze()`` at
        exit).
    gc_threshold : int or None
        Allocations between young-generation collections inside the block (CPython's
        default 700); fewer collections, and so fewer full ones, while the block allocates.
        None keeps the thresholds.
    switch_interval : float or None
        ``sys.setswitchinterval`` inside the block, s: how soon a woken thread (the serial
        reader, an acknowledgement) gets the interpreter lock from a busy one (CPython's
        default 0.005 s). None keeps it.

    Yields
    ------
    RealtimeState
        What was applied; ``notes`` says what was not permitted.

    Notes
    -----
    Never raises for lack of permission or support (other operating systems, containers
    without ``CAP_SYS_NICE``): it logs a warning and runs the block with the default timing.
    Invalid arguments (e.g. ``nice`` > 0) raise ValueError before anything changes.
    """
    if not -20 <= nice <= 0:
        raise ValueError(f"nice = {nice!r} must be within -20 to 0 (0: leave it)")
    if priority < 0:
        raise ValueError(f"priority = {priority!r} must be >= 0 (0: no SCHED_FIFO)")
    if gc_threshold is not None and gc_threshold < 1:
        raise ValueError(f"gc_threshold = {gc_threshold!r} must be >= 1 allocations")
    if scope not in ("device", "process"):
        raise ValueError(f"scope = {scope!r} must be 'device' or 'process'")
    if switch_interval is not None and not 1e-6 <= switch_interval <= 0.1:
        raise ValueError(f"switch_interval = {switch_interval!r} s must be within 1e-6 to "
                         "0.1 s")
    state = RealtimeState()
    saved: dict[int, tuple[int, int, int]] = {}
    old_thresholds = gc.get_threshold()
    old_switch = sys.getswitchinterval()
    froze = False
    before = set(_threads())
    try:
        try:
            _raise_threads(state, priority, nice, scope, saved)
        except Exception as exc:  # never let a hint stop a session
            state.notes.append(f"scheduling left unchanged ({type(exc).__name__}: {exc})")
        if freeze_gc and gc.get_freeze_count():
            # unfreeze() cannot be partial: leave someone else's freeze as it is
            state.notes.append("objects were already frozen (gc.freeze); left as they are")
        elif freeze_gc:
            gc.collect()
            gc.freeze()
            froze = True
            state.gc_frozen = gc.get_freeze_count()
        if gc_threshold is not None:
            gc.set_threshold(gc_threshold, *old_thresholds[1:])
        if switch_interval is not None:
            sys.setswitchinterval(switch_interval)
        for note in state.notes:
            log.warning("real-time hints: %s", note)
        log.info("real-time hints: scheduling %s %d on %d threads, %d objects frozen, "
                 "gc threshold %s, switch interval %.4g s", state.scheduling, state.priority,
                 state.threads, state.gc_frozen, gc.get_threshold()[0],
                 sys.getswitchinterval())
        yield state
    finally:
        sys.setswitchinterval(old_switch)
        gc.set_threshold(*old_thresholds)
        if froze:
            gc.unfreeze()
        if saved:
            try:
                _restore_threads(state, saved, before)
            except Exception as exc:
                log.warning("real-time hints: could not restore scheduling (%s)", exc)
