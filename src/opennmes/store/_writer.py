"""SessionWriter: the live record of one session, committed at least every second.

Writes are buffered in memory and encoded into compressed chunks; a committer thread writes
everything waiting in one transaction every ``flush_interval`` seconds (0.5 s by default),
whether or not more data arrives, and updates the session's heartbeat. Writers therefore never
wait for database I/O, and a crash (even ``kill -9``) loses at most ``flush_interval`` plus one
thread tick and one commit time, below one second; the next :func:`open_store` marks the
session interrupted with what was committed kept.
"""

from __future__ import annotations

import atexit
import datetime as dt
import errno
import logging
import math
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from opennmes.errors import StoreError
from opennmes.signals import Signals
from opennmes.stim import PulseSchedule
from opennmes.store import _codec
from opennmes.store._models import (
    DoseRow,
    EventRow,
    PulseChunkRow,
    SessionRow,
    StreamChunkRow,
    StreamRow,
    utcnow,
)
from opennmes.store._records import check_finite, plain

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.store._store import Store

__all__ = ["SessionWriter"]

log = logging.getLogger(__name__)

_DTYPES = {"float64": "<f8", "float32": "<f4"}
_MAX_PENDING_BYTES = 16 * 1024 * 1024
_PULSE_CHUNK = 20_000  # pulses per stored chunk at most
_OPEN: weakref.WeakSet[SessionWriter] = weakref.WeakSet()  # committed at interpreter exit


@dataclass
class _Stream:
    id: int
    name: str
    sfreq: float
    t0: float
    names: tuple[str, ...]
    units: tuple[str, ...]
    dtype: str
    chunk_samples: int
    n_committed: int = 0
    n_chunks_committed: int = 0
    n_total: int = 0  # committed + pending + buffered
    n_chunks_total: int = 0
    buffer: list[np.ndarray] = field(default_factory=list)
    n_buffered: int = 0


class SessionWriter:
    """Records one session; made by :meth:`Store.begin_session`.

    Times ``t`` are session times in seconds (0 = start of the session). Use it as a context
    manager: leaving the block by an exception finishes the session as ``aborted`` with the
    exception as reason.

    Attributes
    ----------
    id : int
        Session id in the store.
    uid : str
        Globally unique id (kept by export and import).
    started_at : datetime
        UTC wall-clock time of the start.
    """

    def __init__(self, store: Store, session_id: int, uid: str, started_at: dt.datetime, *,
                 flush_interval: float, chunk_duration: float):
        self._store = store
        self.id = session_id
        self.uid = uid
        self.started_at = started_at
        self._flush_interval = flush_interval
        self._chunk_duration = chunk_duration
        self._lock = threading.RLock()
        self._streams: dict[str, _Stream] = {}
        self._pulse_names: tuple[str, ...] | None = None
        self._pulse_names_dirty = False
        self._pulse_buffer: list[PulseSchedule] = []
        self._pulse_seq = 0
        self._last_pulse_t = -math.inf
        self._pending_chunks: list[dict[str, Any]] = []
        self._pending_pulses: list[dict[str, Any]] = []
        self._pending_events: list[dict[str, Any]] = []
        self._pending_bytes = 0
        self._event_seq = 0
        self._dose: dict[str, Any] | None = None
        self._last_commit = time.monotonic()
        self._closed = False
        self._error: BaseException | None = None
        self._disk_full = False
        self._commit_lock = threading.Lock()
        self._stopping = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._tick, name=f"nmes-store-{session_id}",
                                        daemon=True)
        self._thread.start()
        _OPEN.add(self)

    # ------------------------------------------------------------------ public API
    @property
    def finished(self) -> bool:
        """True once :meth:`finish` ran."""
        return self._closed

    def log_event(self, kind: str, t: float, data: Mapping[str, Any] | None = None) -> None:
        """Record an event (``kind`` e.g. "start", "intensity", "pause", "fault") at ``t`` s."""
        if not kind or len(kind) > 64:
            raise StoreError(f"event kind {kind!r} must be 1 to 64 characters")
        tt = check_finite("event t", t, "s")
        doc = plain(data, f"data of event {kind!r}")
        with self._lock:
            self._check_open()
            self._pending_events.append({"session_id": self.id, "seq": self._event_seq,
                                         "t": tt, "kind": kind, "data": doc})
            self._event_seq += 1
        self._maybe_commit()

    def write_pulses(self, schedule: PulseSchedule) -> None:
        """Record delivered pulses (onsets in session seconds, not before earlier ones)."""
        if len(schedule) == 0:
            return
        with self._lock:
            self._check_open()
            if self._pulse_names is None:
                self._pulse_names = schedule.channel_names
                self._pulse_names_dirty = True
            elif schedule.channel_names != self._pulse_names:
                raise StoreError(f"pulse channels {schedule.channel_names} differ from the "
                                 f"session's {self._pulse_names}; keep one channel list")
            if schedule.t[0] < self._last_pulse_t:
                raise StoreError(f"pulses at t = {float(schedule.t[0])!r} s come before the "
                                 f"last recorded pulse at {self._last_pulse_t!r} s; write "
                                 "pulses in time order")
            self._last_pulse_t = float(schedule.t[-1])
            self._pulse_buffer.append(schedule)
            span = self._last_pulse_t - float(self._pulse_buffer[0].t[0])
            if span >= self._chunk_duration or sum(map(len, self._pulse_buffer)) >= _PULSE_CHUNK:
                self._cut_pulses()
        self._maybe_commit()

    def write_signals(self, signals: Signals, stream: str | None = None, *,
                      dtype: Literal["float64", "float32"] = "float64") -> None:
        """Append samples to a stream.

        Parameters
        ----------
        signals : Signals
            The next samples; ``signals.t0`` (s, session time) must continue the stream
            (within half a sample).
        stream : str, optional
            Stream name; by default the channel names joined with ``+``.
        dtype : {"float64", "float32"}
            Storage precision, fixed by the first write (float64 is lossless).
        """
        name = stream or "+".join(signals.names)
        if dtype not in _DTYPES:
            raise StoreError(f"dtype = {dtype!r} must be one of {sorted(_DTYPES)}")
        with self._lock:
            self._check_open()
            st = self._streams.get(name)
            if st is None:
                st = self._new_stream(name, signals, _DTYPES[dtype])
            else:
                self._check_continues(st, signals, _DTYPES[dtype])
            if signals.n_samples:
                st.buffer.append(signals.data)
                st.n_buffered += signals.n_samples
                st.n_total += signals.n_samples
                if st.n_buffered >= st.chunk_samples:
                    self._cut_stream(st, whole_chunks_only=True)
        self._maybe_commit()

    def set_dose(self, summary: Mapping[str, Any]) -> None:
        """Set (or replace) the session's dose summary, a plain JSON mapping."""
        doc = plain(summary, "dose summary")
        with self._lock:
            self._check_open()
            self._dose = doc
        self._maybe_commit()

    def flush(self) -> None:
        """Commit everything written so far (blocks until it is committed)."""
        with self._lock:
            self._raise_background_error()
            if self._closed:
                return
        self._commit()

    def finish(self, reason: str = "completed", *,
               status: Literal["finished", "aborted"] = "finished") -> None:
        """Commit what is left and close the session with ``status`` and ``reason``."""
        if status not in ("finished", "aborted"):
            raise StoreError(f"status = {status!r} must be 'finished' or 'aborted'")
        with self._lock:
            self._check_open()
            self._stopping = True
        self._wake.set()
        self._thread.join(timeout=30.0)
        try:
            self._commit(final=(status, reason))
            self._error = None
        except StoreError as exc:
            if self._disk_full:
                self._finish_disk_full(reason, exc)
            self._stopping = False  # keep committing in the background; the caller may retry
            self._thread = threading.Thread(target=self._tick, daemon=True,
                                            name=f"nmes-store-{self.id}")
            self._thread.start()
            raise
        self._closed = True
        _OPEN.discard(self)
        log.info("session %d %s: %s", self.id, status, reason)

    def _finish_disk_full(self, reason: str, exc: StoreError) -> None:
        """The disk is full: what waits in memory cannot be stored. Store at least how the
        session ended (a small update that may still fit), as ``aborted`` with the reason
        saying so, and close; raise StoreError saying what was lost. Returns only when even
        that could not be stored (the session then stays open for a retry)."""
        note = "recording failed: the disk is full"
        final = reason if "disk is full" in reason else f"{reason}; {note}"
        final += "; what was recorded after the last commit is lost"
        with self._commit_lock:
            try:
                self._write_batch([], [], [], None, {}, False, ("aborted", final[:2000]))
            except (SQLAlchemyError, OSError) as again:
                log.error("session %d: could not store its end either: %s", self.id, again)
                return
            with self._lock:
                self._pending_chunks, self._pending_pulses, self._pending_events = [], [], []
                self._pulse_buffer, self._dose, self._pending_bytes = [], None, 0
                for st in self._streams.values():
                    st.buffer, st.n_buffered = [], 0
        self._closed = True
        self._error = None
        _OPEN.discard(self)
        log.error("session %d aborted: %s", self.id, final)
        raise StoreError(f"session {self.id} ended as aborted: the disk is full; its end is "
                         "stored, what was recorded after the last commit is lost") from exc

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if self._closed:
            return
        if exc is None:
            self.finish("completed")
        else:
            self.finish(f"error: {type(exc).__name__}: {exc}", status="aborted")

    def __repr__(self) -> str:
        state = "finished" if self._closed else "running"
        return f"SessionWriter(id={self.id}, {state})"

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed or self._stopping:
            raise StoreError(f"session {self.id} is finished; begin a new session to record")

    def _raise_background_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise StoreError(f"recording session {self.id} failed: {err}") from err

    def _new_stream(self, name: str, signals: Signals, dtype: str) -> _Stream:
        if len(name) > 128:
            raise StoreError(f"stream name {name[:40]!r}... is longer than 128 characters; "
                             "pass a short stream= name")
        row = StreamRow(session_id=self.id, name=name, sfreq=signals.sfreq,
                        t0=check_finite("signals t0", signals.t0, "s"),
                        channel_names=list(signals.names), units=list(signals.units),
                        dtype=dtype, n_samples=0, n_chunks=0)
        try:
            with self._store._orm() as s:
                s.add(row)
                s.commit()
        except SQLAlchemyError as exc:
            raise StoreError(f"could not create stream {name!r}: {exc}") from exc
        st = _Stream(id=row.id, name=name, sfreq=signals.sfreq, t0=signals.t0,
                     names=signals.names, units=signals.units, dtype=dtype,
                     chunk_samples=max(1, int(round(self._chunk_duration * signals.sfreq))))
        self._streams[name] = st
        return st

    def _check_continues(self, st: _Stream, signals: Signals, dtype: str) -> None:
        if signals.names != st.names or signals.units != st.units:
            raise StoreError(f"stream {st.name!r} has channels {st.names} in {st.units}; got "
                             f"{signals.names} in {signals.units}")
        if signals.sfreq != st.sfreq:
            raise StoreError(f"stream {st.name!r} is sampled at {st.sfreq:g} Hz; got "
                             f"{signals.sfreq:g} Hz")
        if dtype != st.dtype:
            raise StoreError(f"stream {st.name!r} is stored as {st.dtype}; got dtype {dtype}")
        expected = st.t0 + st.n_total / st.sfreq
        if abs(signals.t0 - expected) > 0.5 / st.sfreq:
            raise StoreError(f"stream {st.name!r}: samples start at t0 = {signals.t0!r} s but "
                             f"the stream continues at {expected!r} s; streams must be "
                             "gap-free (fill missing samples, e.g. with NaN)")

    def _cut_stream(self, st: _Stream, whole_chunks_only: bool) -> None:
        """Encode buffered samples into pending chunks of at most ``chunk_samples``."""
        if not st.n_buffered:
            return
        data = st.buffer[0] if len(st.buffer) == 1 else np.hstack(st.buffer)
        n_cut = (st.n_buffered // st.chunk_samples) * st.chunk_samples if whole_chunks_only \
            else st.n_buffered
        i0 = st.n_total - st.n_buffered
        for a in range(0, n_cut, st.chunk_samples):
            b = min(a + st.chunk_samples, n_cut)
            blob = _codec.encode_samples(data[:, a:b], st.dtype)
            self._pending_chunks.append({"stream_id": st.id, "seq": st.n_chunks_total,
                                         "i0": i0 + a, "n": b - a,
                                         "codec": _codec.SIGNAL_CODEC, "data": blob})
            st.n_chunks_total += 1
            self._pending_bytes += len(blob)
        rest = data[:, n_cut:]
        st.buffer = [rest] if rest.shape[1] else []
        st.n_buffered = int(rest.shape[1])

    def _cut_pulses(self) -> None:
        if not self._pulse_buffer:
            return
        names = self._pulse_names or ()
        parts = self._pulse_buffer
        joined = parts[0] if len(parts) == 1 else PulseSchedule(
            **{k: np.concatenate([getattr(p, k) for p in parts])
               for k in ("t", "channel", "amplitude", "phase_width", "interphase_gap",
                         "amplitude2", "phase_width2", "waveform")},
            channel_names=names)
        for a in range(0, len(joined), _PULSE_CHUNK):
            part = joined.take(slice(a, a + _PULSE_CHUNK))
            blob = _codec.encode_pulses(part)
            self._pending_pulses.append({"session_id": self.id, "seq": self._pulse_seq,
                                         "t_first": float(part.t[0]),
                                         "t_last": float(part.t[-1]), "n": len(part),
                                         "codec": _codec.PULSE_CODEC, "data": blob})
            self._pulse_seq += 1
            self._pending_bytes += len(blob)
        self._pulse_buffer = []

    def _maybe_commit(self) -> None:
        """Wake the committer when much is waiting; commit here when far too much is.

        Reports (once) a failed background commit; what was written is kept for the retry.
        """
        self._raise_background_error()
        if self._pending_bytes >= 4 * _MAX_PENDING_BYTES:
            self._commit()  # back-pressure: the caller outruns the database
        elif self._pending_bytes >= _MAX_PENDING_BYTES:
            self._wake.set()

    def _commit(self, final: tuple[str, str] | None = None) -> None:
        """Cut every buffer and commit all pending rows in one transaction.

        Buffers are swapped out under the buffer lock, then written without it, so writers
        are only held up while chunks are encoded, never by database I/O.
        """
        with self._commit_lock:
            with self._lock:
                for st in self._streams.values():
                    self._cut_stream(st, whole_chunks_only=False)
                self._cut_pulses()
                chunks, pulses, events = (self._pending_chunks, self._pending_pulses,
                                          self._pending_events)
                dose, names_dirty, n_bytes = self._dose, self._pulse_names_dirty, \
                    self._pending_bytes
                heads = {st.id: (st.n_total, st.n_chunks_total)
                         for st in self._streams.values()
                         if st.n_chunks_total != st.n_chunks_committed}
                self._pending_chunks, self._pending_pulses, self._pending_events = [], [], []
                self._dose, self._pulse_names_dirty, self._pending_bytes = None, False, 0
            try:
                self._write_batch(chunks, pulses, events, dose, heads, names_dirty, final)
            except (SQLAlchemyError, OSError) as exc:
                with self._lock:  # keep everything for the next attempt, in order
                    self._pending_chunks = chunks + self._pending_chunks
                    self._pending_pulses = pulses + self._pending_pulses
                    self._pending_events = events + self._pending_events
                    if self._dose is None:
                        self._dose = dose
                    self._pulse_names_dirty |= names_dirty
                    self._pending_bytes += n_bytes
                why, self._disk_full = _write_failure(exc)
                raise StoreError(f"committing session {self.id} to {self._store.url} failed: "
                                 f"{why}; the record up to the previous commit is kept and "
                                 "this commit will be retried") from exc
            with self._lock:
                for st in self._streams.values():
                    if st.id in heads:
                        st.n_committed, st.n_chunks_committed = heads[st.id]
                self._last_commit = time.monotonic()

    def _write_batch(self, chunks: list[dict[str, Any]], pulses: list[dict[str, Any]],
                     events: list[dict[str, Any]], dose: dict[str, Any] | None,
                     heads: dict[int, tuple[int, int]], names_dirty: bool,
                     final: tuple[str, str] | None) -> None:
        now = utcnow()
        values: dict[str, Any] = {"heartbeat_at": now}
        if names_dirty:
            values["pulse_channels"] = list(self._pulse_names or ())
        if final is not None:
            values.update(status=final[0], end_reason=final[1], ended_at=now)
        with self._store.engine.begin() as conn:
            if chunks:
                conn.execute(sa.insert(StreamChunkRow), chunks)
            if pulses:
                conn.execute(sa.insert(PulseChunkRow), pulses)
            if events:
                conn.execute(sa.insert(EventRow), events)
            for stream_id, (n_samples, n_chunks) in heads.items():
                conn.execute(sa.update(StreamRow).where(StreamRow.id == stream_id)
                             .values(n_samples=n_samples, n_chunks=n_chunks))
            if dose is not None:
                done = conn.execute(sa.update(DoseRow).where(DoseRow.session_id == self.id)
                                    .values(summary=dose, updated_at=now))
                if not done.rowcount:
                    conn.execute(sa.insert(DoseRow).values(session_id=self.id, summary=dose,
                                                           updated_at=now))
            status = conn.execute(sa.select(SessionRow.status)
                                  .where(SessionRow.id == self.id)).scalar()
            if status != "running" and final is None:
                log.warning("session %d was marked %s while still recording; it is running "
                            "again", self.id, status)
                values.update(status="running", ended_at=None, end_reason=None)
            conn.execute(sa.update(SessionRow).where(SessionRow.id == self.id)
                         .values(**values))

    def _tick(self) -> None:
        """Committer thread: commits (and beats the heartbeat) every ``flush_interval``."""
        period = self._flush_interval / 4
        while True:
            self._wake.wait(period)
            self._wake.clear()
            if self._stopping:
                return
            due = time.monotonic() - self._last_commit >= self._flush_interval
            if due or self._pending_bytes >= _MAX_PENDING_BYTES:
                try:
                    self._commit()
                except StoreError as exc:  # reported to the next caller; retried next tick
                    log.error("%s", exc)
                    self._error = exc

    def _exit(self) -> None:
        """At interpreter exit: commit what is buffered and mark the session interrupted."""
        if self._closed:
            return
        self._stopping = True
        try:
            self._commit(final=("interrupted", "interrupted: the process exited without "
                                "finishing the session; the record up to the exit is kept"))
            self._closed = True
        except StoreError as exc:
            log.error("%s", exc)


def _write_failure(exc: BaseException) -> tuple[str, bool]:
    """What a failed write says, and whether the disk (or the database's volume) is full:
    ``ENOSPC`` from the operating system, SQLite's ``SQLITE_FULL`` ("database or disk is
    full"), PostgreSQL's "No space left on device"."""
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    full = (isinstance(orig, OSError) and orig.errno == errno.ENOSPC) \
        or "disk is full" in text.lower() or "no space left" in text.lower()
    return (f"the disk is full ({text})" if full else text), full


def _exit_all() -> None:
    for writer in list(_OPEN):
        writer._exit()


atexit.register(_exit_all)
