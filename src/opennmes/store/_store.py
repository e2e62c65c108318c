"""The Store: patients, programs, sessions and their recovery, over one SQLAlchemy engine."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session as OrmSession

from opennmes.errors import StoreError
from opennmes.signals import Signals
from opennmes.stim import PulseSchedule
from opennmes.store import _codec
from opennmes.store._engine import (
    check_revision,
    current_revision,
    make_engine,
    mask_url,
    read_only,
    resolve_url,
    upgrade_schema,
)
from opennmes.store._models import (
    DeviceRow,
    DoseRow,
    EventRow,
    PatientRow,
    ProgramRow,
    ProgramVersionRow,
    PulseChunkRow,
    SessionRow,
    StreamChunkRow,
    StreamRow,
    utcnow,
)
from opennmes.store._records import (
    SESSION_STATUSES,
    Event,
    Patient,
    ProgramVersion,
    SessionInfo,
    SessionRecord,
    StreamInfo,
    as_utc,
    check_json,
    plain,
)

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.store._writer import SessionWriter

__all__ = ["Store", "open_store", "migrate", "STALE_AFTER", "check_contraindication"]

log = logging.getLogger(__name__)

STALE_AFTER = 10.0  # s without a heartbeat before a running session counts as interrupted
_PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SEXES = ("female", "male", "other")
_HOW_TO_LIST = ("list them with `nmes db patients` (or Store.list_patients()); "
                "add one with `nmes db add-patient` (or Store.add_patient())")


def open_store(url: str | None = None, *, recover: bool = True) -> Store:
    """Open (and create or migrate) the session store.

    Parameters
    ----------
    url : str, optional
        ``sqlite:///path/file.db`` or ``postgresql://user:password@host:port/db``. When None:
        the ``NMES_DB_URL`` environment variable, else ``opennmes.db`` in the user's data
        directory (``platformdirs.user_data_dir("opennmes")``).
    recover : bool
        Mark sessions left running by a process that is gone as ``interrupted`` (see
        :meth:`Store.recover_interrupted`).

    A SQLite file that cannot be written (read-only file, folder or file system) is opened
    read-only (:attr:`Store.read_only` says why): it is neither migrated nor recovered, and
    every method that writes raises StoreError.

    Raises
    ------
    StoreError
        The URL is malformed or unsupported, the database cannot be reached, its schema
        is newer than this version of OpenNMES, or it is read-only and its schema is older.
        Nothing is written in these cases.
    """
    chosen, source = resolve_url(url)
    engine = make_engine(chosen, source=source)
    try:
        upgrade_schema(engine)
        store = Store(engine)
        store._schema_checked = True  # at the newest revision now (else upgrade_schema raised)
        if recover and store.read_only is None:
            store.recover_interrupted()
    except BaseException:
        engine.dispose()
        raise
    return store


def migrate(url: str | None = None) -> tuple[str | None, str]:
    """Create or migrate the database at ``url`` (resolved as in :func:`open_store`).

    Returns the schema revision before (None: empty database) and after.
    """
    chosen, source = resolve_url(url)
    engine = make_engine(chosen, source=source)
    try:
        return upgrade_schema(engine)
    finally:
        engine.dispose()


def _content_hash(document: Mapping[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (zombies count as gone)."""
    if os.name == "nt":  # os.kill would terminate the process there: rely on heartbeats
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Store:
    """Patients, programs and session records in one database.

    Create it with :func:`open_store`. Methods return plain value objects
    (:class:`Patient`, :class:`ProgramVersion`, :class:`SessionInfo`, :class:`SessionRecord`)
    and raise :class:`StoreError` with a message that says what to do.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._schema_checked = False

    # ------------------------------------------------------------------ basics
    @property
    def url(self) -> str:
        """The database URL with its password hidden."""
        return mask_url(self.engine.url)

    @property
    def read_only(self) -> str | None:
        """Why the database was opened read-only (None: it is writable)."""
        return read_only(self.engine)

    def check_schema(self) -> None:
        """Raise StoreError unless the database is at this OpenNMES's newest schema revision.

        :func:`open_store` and ``nmes db upgrade`` migrate the database; code that uses the
        tables of other packages in it (the therapy record) calls this instead of migrating,
        so the schema changes only by migration. The message says whether the database is
        empty, older (and how to upgrade it) or written by a newer OpenNMES. Once the check
        has passed it is not repeated for this store.
        """
        if not self._schema_checked:
            check_revision(self.engine)
            self._schema_checked = True

    def _writable(self, what: str) -> None:
        """Raise StoreError when the database is read-only (before anything is tried)."""
        ro = self.read_only
        if ro is not None:
            raise StoreError(f"cannot {what}: the database {self.url} was opened read-only "
                             f"({ro}); nothing was written")

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def _orm(self) -> OrmSession:
        return OrmSession(self.engine, expire_on_commit=False)

    def info(self) -> dict[str, Any]:
        """Backend, URL, schema revision and row counts."""
        out: dict[str, Any] = {"url": self.url, "backend": self.backend,
                               "revision": current_revision(self.engine)}
        with self._orm() as s:
            for label, model in (("patients", PatientRow), ("programs", ProgramRow),
                                 ("program_versions", ProgramVersionRow),
                                 ("sessions", SessionRow), ("events", EventRow),
                                 ("stream_chunks", StreamChunkRow),
                                 ("pulse_chunks", PulseChunkRow)):
                out[label] = s.scalar(sa.select(sa.func.count()).select_from(model)) or 0
        return out

    # ------------------------------------------------------------------ patients
    def add_patient(
        self,
        patient_id: str | None = None,
        *,
        year_of_birth: int | None = None,
        sex: str | None = None,
        height: float | None = None,
        mass: float | None = None,
        contraindications: Sequence[Mapping[str, Any]] = (),
        clinician: str | None = None,
        notes: str | None = None,
    ) -> Patient:
        """Add a patient under a pseudonymous id.

        Parameters
        ----------
        patient_id : str, optional
            1 to 64 characters from ``A-Z a-z 0-9 . _ -``; a random ``P-xxxxxxxx`` when None.
            Never a name.
        year_of_birth : int, optional
        sex : {"female", "male", "other"}, optional
        height : float, optional
            Body height in metres (0.3 to 2.5).
        mass : float, optional
            Body mass in kilograms (1 to 400).
        contraindications : sequence of mapping
            Each ``{"factor": name, "site": site or None}``: a factor of
            ``opennmes.safety.FACTORS`` and sites of ``opennmes.safety.SITES``, each optionally
            after ``left`` or ``right`` (``"left quadriceps"``), several separated by commas.
            Unknown names are refused here (StoreError listing the known ones), so the record
            never holds a factor that screening would reject when prescribing.
        clinician : str, optional
            User name of the owning clinician.
        notes : str, optional
        """
        self._writable("add a patient")
        pid = patient_id if patient_id is not None else f"P-{uuid.uuid4().hex[:8]}"
        fields = _check_patient(pid, year_of_birth, sex, height, mass, contraindications)
        row = PatientRow(id=pid, clinician=clinician, notes=notes, created_at=utcnow(),
                         **fields)
        with self._orm() as s:
            s.add(row)
            try:
                s.commit()
            except IntegrityError as exc:
                raise StoreError(f"a patient with id {pid!r} exists already; choose another "
                                 "id or leave it out to get a new one") from exc
        return _patient(row)

    def get_patient(self, patient_id: str) -> Patient:
        """The patient with this id; StoreError (saying how to find ids) when unknown."""
        with self._orm() as s:
            row = s.get(PatientRow, patient_id)
            if row is None:
                raise StoreError(f"unknown patient {patient_id!r} in {self.url}; {_HOW_TO_LIST}")
            return _patient(row)

    def list_patients(self, clinician: str | None = None) -> list[Patient]:
        """All patients (of one clinician when given), by id."""
        q = sa.select(PatientRow).order_by(PatientRow.id)
        if clinician is not None:
            q = q.where(PatientRow.clinician == clinician)
        with self._orm() as s:
            return [_patient(r) for r in s.scalars(q)]

    def update_patient(self, patient_id: str, **changes: Any) -> Patient:
        """Change some fields of a patient (same names and units as :meth:`add_patient`)."""
        allowed = {"year_of_birth", "sex", "height", "mass", "contraindications", "clinician",
                   "notes"}
        bad = sorted(set(changes) - allowed)
        if bad:
            raise StoreError(f"cannot change patient fields {bad}; allowed: {sorted(allowed)}")
        self._writable("change a patient")
        with self._orm() as s:
            row = s.get(PatientRow, patient_id)
            if row is None:
                raise StoreError(f"unknown patient {patient_id!r} in {self.url}; {_HOW_TO_LIST}")
            current = _patient(row)
            merged = {k: getattr(current, k) for k in allowed} | changes
            fields = _check_patient(patient_id, merged["year_of_birth"], merged["sex"],
                                    merged["height"], merged["mass"],
                                    merged["contraindications"])
            for k, v in fields.items():
                setattr(row, k, v)
            row.clinician, row.notes = merged["clinician"], merged["notes"]
            s.commit()
            return _patient(row)

    # ------------------------------------------------------------------ programs
    def save_program(self, document: Mapping[str, Any], name: str) -> ProgramVersion:
        """Save a program document under ``name``; returns its (possibly existing) version.

        Versions are immutable: a document whose content (SHA-256 of its canonical JSON) is
        already a version of ``name`` returns that version; any other content becomes a new
        version ``n + 1``. Sessions point at the exact version they played.
        """
        if not name or not name.strip() or len(name) > 200:
            raise StoreError(f"program name {name!r} must be 1 to 200 characters")
        self._writable("save a program")
        doc = plain(document, f"program {name!r}")
        digest = _content_hash(doc)
        for _attempt in range(3):
            with self._orm() as s:
                prog = s.scalar(sa.select(ProgramRow).where(ProgramRow.name == name))
                if prog is None:
                    prog = ProgramRow(name=name, created_at=utcnow())
                    s.add(prog)
                    s.flush()
                else:
                    same = s.scalar(sa.select(ProgramVersionRow).where(
                        ProgramVersionRow.program_id == prog.id,
                        ProgramVersionRow.content_hash == digest))
                    if same is not None:
                        return _program(same, name)
                last = s.scalar(sa.select(sa.func.max(ProgramVersionRow.version)).where(
                    ProgramVersionRow.program_id == prog.id)) or 0
                row = ProgramVersionRow(program_id=prog.id, version=last + 1,
                                        content_hash=digest, document=doc,
                                        created_at=utcnow())
                s.add(row)
                try:
                    s.commit()
                except IntegrityError:  # saved at the same moment by another process
                    s.rollback()
                    continue
                return _program(row, name)
        raise StoreError(f"could not save program {name!r}: concurrent writers kept "
                         "changing it; try again")

    def get_program(self, name: str, version: int | None = None) -> ProgramVersion:
        """A version of the named program (the newest when ``version`` is None)."""
        with self._orm() as s:
            q = (sa.select(ProgramVersionRow).join(ProgramRow)
                 .where(ProgramRow.name == name))
            q = (q.where(ProgramVersionRow.version == version) if version is not None
                 else q.order_by(ProgramVersionRow.version.desc()).limit(1))
            row = s.scalar(q)
            if row is None:
                names = s.scalars(sa.select(ProgramRow.name).order_by(ProgramRow.name)).all()
                what = f"program {name!r}" + (f" version {version}" if version else "")
                raise StoreError(f"unknown {what}; saved programs: {list(names)}")
            return _program(row, name)

    def get_program_version(self, version_id: int) -> ProgramVersion:
        """A program version by its id."""
        with self._orm() as s:
            row = s.get(ProgramVersionRow, version_id)
            if row is None:
                raise StoreError(f"unknown program version id {version_id}; save the program "
                                 "with Store.save_program() and use the id it returns")
            name = s.scalar(sa.select(ProgramRow.name).where(ProgramRow.id == row.program_id))
            return _program(row, str(name))

    def list_programs(self) -> list[ProgramVersion]:
        """Every saved version of every program, by name then version."""
        with self._orm() as s:
            rows = s.execute(sa.select(ProgramVersionRow, ProgramRow.name).join(ProgramRow)
                             .order_by(ProgramRow.name, ProgramVersionRow.version)).all()
            return [_program(r, n) for r, n in rows]

    # ------------------------------------------------------------------ sessions
    def _device_id(self, url: str, info: Any, now: Any) -> int:
        """Id of the device row for ``url``, created on first sight. Two sessions starting
        at once on a new device both get the one row (the loser of the insert re-reads)."""
        for _ in range(2):
            with self._orm() as s:
                dev_id = s.scalar(sa.select(DeviceRow.id).where(DeviceRow.url == url))
                if dev_id is not None:
                    return int(dev_id)
                try:
                    row = DeviceRow(url=url, kind=url.split(":", 1)[0], info=info,
                                    created_at=now)
                    s.add(row)
                    s.commit()
                    return int(row.id)
                except sa.exc.IntegrityError:
                    s.rollback()
        raise StoreError(f"could not record the device {url!r}")

    def begin_session(
        self,
        patient_id: str,
        program_version_id: int,
        device_url: str,
        *,
        meta: Mapping[str, Any] | None = None,
        device_info: Mapping[str, Any] | None = None,
        flush_interval: float = 0.5,
        chunk_duration: float = 1.0,
    ) -> SessionWriter:
        """Start recording a session; returns its :class:`SessionWriter`.

        Parameters
        ----------
        patient_id : str
            An existing patient (unknown ids raise StoreError and write nothing).
        program_version_id : int
            :attr:`ProgramVersion.id` of the program being played.
        device_url : str
            The URL the stimulator was opened with, e.g. ``"sim://"``.
        meta : mapping, optional
            Plain JSON about the session (operator, seed, guard profile, ...).
        device_info : mapping, optional
            Plain JSON about the device (firmware, serial number); stored on first sight.
        flush_interval : float
            Longest time, in seconds, between commits of what was written (0 < x <= 1).
        chunk_duration : float
            Longest stretch of signal per stored chunk, in seconds.
        """
        from opennmes import __version__
        from opennmes.store._writer import SessionWriter

        self._writable("record a session")
        if not 0.0 < flush_interval <= 1.0:
            raise StoreError(f"flush_interval = {flush_interval!r} s must be in (0, 1] s: a "
                             "crash may lose at most one second of record")
        if not 0.0 < chunk_duration <= 60.0:
            raise StoreError(f"chunk_duration = {chunk_duration!r} s must be in (0, 60] s")
        meta_doc = plain(meta, "session meta")
        info_doc = plain(device_info, "device_info")
        if not device_url:
            raise StoreError("device_url must name the stimulator, e.g. 'sim://'")
        now = utcnow()
        with self._orm() as s:
            if s.get(PatientRow, patient_id) is None:
                raise StoreError(f"unknown patient {patient_id!r} in {self.url}; nothing was "
                                 f"recorded; {_HOW_TO_LIST}")
            if s.get(ProgramVersionRow, program_version_id) is None:
                raise StoreError(f"unknown program version id {program_version_id!r}; nothing "
                                 "was recorded; save the program with Store.save_program() "
                                 "and pass the id it returns")
        device_id = self._device_id(device_url, info_doc, now)
        with self._orm() as s:
            row = SessionRow(uid=str(uuid.uuid4()), patient_id=patient_id,
                             program_version_id=program_version_id, device_id=device_id,
                             status="running", started_at=now, heartbeat_at=now,
                             host=socket.gethostname()[:255], pid=os.getpid(),
                             meta=meta_doc, software_version=__version__)
            s.add(row)
            try:
                s.commit()
            except IntegrityError as exc:
                raise StoreError(f"could not begin the session: {exc.orig}; nothing was "
                                 "recorded") from exc
            log.info("session %d (%s) started for patient %s", row.id, row.uid, patient_id)
            return SessionWriter(self, row.id, row.uid, as_utc(row.started_at),
                                 flush_interval=flush_interval, chunk_duration=chunk_duration)

    def list_sessions(self, patient_id: str | None = None, status: str | None = None,
                      limit: int | None = None) -> list[SessionInfo]:
        """Sessions, newest first (filtered by patient and status when given)."""
        if status is not None and status not in SESSION_STATUSES:
            raise StoreError(f"unknown session status {status!r}; one of {SESSION_STATUSES}")
        q = _session_query().order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
        if patient_id is not None:
            q = q.where(SessionRow.patient_id == patient_id)
        if status is not None:
            q = q.where(SessionRow.status == status)
        if limit is not None:
            q = q.limit(limit)
        with self._orm() as s:
            rows = s.execute(q).all()
            streams = _streams_by_session(s, [r[0].id for r in rows])
            return [_session_info(tuple(r), streams.get(r[0].id, ())) for r in rows]

    def get_session(self, session_id: int) -> SessionInfo:
        """What a session was and how it ended, without the bulk data."""
        with self._orm() as s:
            row = s.execute(_session_query().where(SessionRow.id == session_id)).first()
            if row is None:
                raise StoreError(f"unknown session id {session_id!r}; list sessions with "
                                 "`nmes db sessions` (or Store.list_sessions())")
            streams = _streams_by_session(s, [session_id])
            return _session_info(tuple(row), streams.get(session_id, ()))

    def find_session(self, uid: str) -> int | None:
        """The id of the session with this uid (None when absent)."""
        with self._orm() as s:
            return s.scalar(sa.select(SessionRow.id).where(SessionRow.uid == uid))

    def load_session(self, session_id: int) -> SessionRecord:
        """Everything recorded for a session: program, events, pulses, streams and dose."""
        info = self.get_session(session_id)
        with self._orm() as s:
            events = [Event(seq=e.seq, t=e.t, kind=e.kind, data=e.data) for e in s.scalars(
                sa.select(EventRow).where(EventRow.session_id == session_id)
                .order_by(EventRow.seq))]
            names = info.pulse_channels or ()
            parts = [_codec.decode_pulses(c.data, c.n, names) for c in s.scalars(
                sa.select(PulseChunkRow).where(PulseChunkRow.session_id == session_id)
                .order_by(PulseChunkRow.seq))]
            pulses = _join_pulses(parts, names)
            streams: dict[str, Signals] = {}
            for st in s.scalars(sa.select(StreamRow).where(StreamRow.session_id == session_id)
                                .order_by(StreamRow.id)):
                streams[st.name] = _load_stream(s, st)
            dose = s.get(DoseRow, session_id)
            dev = s.scalar(sa.select(DeviceRow.info).join(
                SessionRow, SessionRow.device_id == DeviceRow.id).where(
                SessionRow.id == session_id))
        return SessionRecord(info=info, program=self.get_program_version(info.program_version_id),
                             events=events, pulses=pulses, streams=streams,
                             dose=dose.summary if dose is not None else None,
                             patient=self.get_patient(info.patient_id),
                             device_info=dict(dev or {}))

    def load_stream(self, session_id: int, name: str, tmin: float | None = None,
                    tmax: float | None = None) -> Signals:
        """Samples of one stream with ``tmin <= t < tmax`` (session seconds; None: no bound).

        Only the chunks holding them are read: cheap for plotting a window of a long session
        or following a session that is still recording.
        """
        with self._orm() as s:
            st = s.scalar(sa.select(StreamRow).where(StreamRow.session_id == session_id,
                                                     StreamRow.name == name))
            if st is None:
                names = s.scalars(sa.select(StreamRow.name).where(
                    StreamRow.session_id == session_id).order_by(StreamRow.id)).all()
                raise StoreError(f"session {session_id} has no stream {name!r}; its streams: "
                                 f"{list(names)}")
            i_lo = 0 if tmin is None else int(np.ceil((tmin - st.t0) * st.sfreq - 1e-9))
            i_hi = None if tmax is None else int(np.ceil((tmax - st.t0) * st.sfreq - 1e-9))
            return _load_stream(s, st, i_lo, i_hi)

    def load_pulses(self, session_id: int, tmin: float | None = None,
                    tmax: float | None = None) -> PulseSchedule:
        """Delivered pulses with onset ``tmin <= t < tmax`` (session seconds; None: no bound)."""
        info = self.get_session(session_id)
        names = info.pulse_channels or ()
        q = sa.select(PulseChunkRow).where(PulseChunkRow.session_id == session_id)
        if tmin is not None:
            q = q.where(PulseChunkRow.t_last >= tmin)
        if tmax is not None:
            q = q.where(PulseChunkRow.t_first < tmax)
        with self._orm() as s:
            parts = [_codec.decode_pulses(c.data, c.n, names)
                     for c in s.scalars(q.order_by(PulseChunkRow.seq))]
        pulses = _join_pulses(parts, names)
        if tmin is None and tmax is None:
            return pulses
        return pulses.window(-np.inf if tmin is None else tmin,
                             np.inf if tmax is None else tmax)

    # ------------------------------------------------------------------ recovery and checks
    def recover_interrupted(self, stale_after: float = STALE_AFTER) -> list[int]:
        """Mark sessions whose recording process is gone as ``interrupted``.

        A running session counts as gone when its process (same host) no longer exists, or
        when its heartbeat (updated at every commit, at least every second) is older than
        ``stale_after`` seconds. What was recorded is kept; ``ended_at`` is the last heartbeat.
        Called by :func:`open_store`. Returns the ids marked.
        """
        self._writable("mark interrupted sessions")
        host, now = socket.gethostname()[:255], utcnow()
        marked: list[int] = []
        with self._orm() as s:
            for row in s.scalars(sa.select(SessionRow).where(SessionRow.status == "running")):
                beat = as_utc(row.heartbeat_at)
                stale = (now - beat).total_seconds() > stale_after
                dead = row.host == host and row.pid != os.getpid() and not _pid_alive(row.pid)
                if not (stale or dead):
                    continue
                why = "its process ended" if dead else f"no heartbeat for {stale_after:g} s"
                row.status = "interrupted"
                row.ended_at = beat
                row.end_reason = (f"interrupted: {why} before the session was finished (found "
                                  f"on open at {now.isoformat(timespec='seconds')}); the record "
                                  "up to the last commit is kept")
                marked.append(row.id)
            s.commit()
        for sid in marked:
            log.warning("session %d was left running; marked interrupted", sid)
        return marked

    def verify_session(self, session_id: int, *, decode: bool = False) -> list[str]:
        """Problems found in a session's record (an empty list: consistent).

        Checks that stream chunks are numbered without gaps, follow each other sample by
        sample and add up to the stream's length, that pulse chunks are numbered and in time
        order, and (``decode=True``) that every chunk decodes to its declared size.
        """
        problems: list[str] = []
        info = self.get_session(session_id)
        with self._orm() as s:
            for st in s.scalars(sa.select(StreamRow).where(StreamRow.session_id == session_id)):
                chunks = s.execute(sa.select(StreamChunkRow.seq, StreamChunkRow.i0,
                                             StreamChunkRow.n, StreamChunkRow.id)
                                   .where(StreamChunkRow.stream_id == st.id)
                                   .order_by(StreamChunkRow.seq)).all()
                expect = 0
                for k, (seq, i0, n, cid) in enumerate(chunks):
                    if seq != k:
                        problems.append(f"stream {st.name!r}: chunk {k} numbered {seq}")
                    if i0 != expect:
                        problems.append(f"stream {st.name!r}: chunk {seq} starts at sample "
                                        f"{i0}, expected {expect}")
                    expect = i0 + n
                    if decode:
                        blob = s.scalar(sa.select(StreamChunkRow.data)
                                        .where(StreamChunkRow.id == cid))
                        try:
                            _codec.decode_samples(blob or b"", st.dtype,
                                                  len(st.channel_names), n)
                        except StoreError as exc:
                            problems.append(f"stream {st.name!r} chunk {seq}: {exc}")
                if expect != st.n_samples or len(chunks) != st.n_chunks:
                    problems.append(f"stream {st.name!r}: {len(chunks)} chunks with {expect} "
                                    f"samples, header says {st.n_chunks} and {st.n_samples}")
            prev = -np.inf
            pchunks = s.scalars(sa.select(PulseChunkRow).where(
                PulseChunkRow.session_id == session_id).order_by(PulseChunkRow.seq)).all()
            for k, c in enumerate(pchunks):
                if c.seq != k:
                    problems.append(f"pulse chunk {k} numbered {c.seq}")
                if c.t_first < prev or c.t_last < c.t_first:
                    problems.append(f"pulse chunk {c.seq} out of time order")
                prev = c.t_last
                if decode:
                    try:
                        _codec.decode_pulses(c.data, c.n, info.pulse_channels or ())
                    except Exception as exc:  # noqa: BLE001 - reported, not raised
                        problems.append(f"pulse chunk {c.seq}: {exc}")
        return problems


# ---------------------------------------------------------------------- helpers
def _check_patient(pid: str, year_of_birth: int | None, sex: str | None, height: float | None,
                   mass: float | None, contraindications: Sequence[Mapping[str, Any]]
                   ) -> dict[str, Any]:
    if not isinstance(pid, str) or not _PATIENT_ID.match(pid):
        raise StoreError(f"patient id {pid!r} must be 1 to 64 characters from A-Z a-z 0-9 . _ - "
                         "(a pseudonym, never a name)")
    this_year = dt.datetime.now(dt.UTC).year
    if year_of_birth is not None and not 1900 <= int(year_of_birth) <= this_year:
        raise StoreError(f"year_of_birth = {year_of_birth} must be within 1900..{this_year}")
    if sex is not None and sex not in _SEXES:
        raise StoreError(f"sex = {sex!r} must be one of {_SEXES} or left out")
    for name, value, lo, hi, unit in (("height", height, 0.3, 2.5, "m"),
                                      ("mass", mass, 1.0, 400.0, "kg")):
        if value is not None and not (lo <= float(value) <= hi):
            raise StoreError(f"{name} = {value!r} {unit} is outside {lo:g}..{hi:g} {unit}; "
                             f"give the {name} in {unit}")
    factors: list[dict[str, Any]] = []
    if isinstance(contraindications, (str, Mapping)):
        raise StoreError("contraindications must be a list of {'factor': ..., 'site': ...}")
    for i, item in enumerate(contraindications):
        if not isinstance(item, Mapping) or not isinstance(item.get("factor"), str) \
                or not item["factor"].strip():
            raise StoreError(f"contraindications[{i}] = {item!r} must be a mapping with a "
                             "non-empty 'factor' name and an optional 'site'")
        extra = set(item) - {"factor", "site"}
        if extra:
            raise StoreError(f"contraindications[{i}] has unknown keys {sorted(extra)}; "
                             "allowed: factor, site")
        site = item.get("site")
        if site is not None and not isinstance(site, str):
            raise StoreError(f"contraindications[{i}].site = {site!r} must be a string or None")
        try:
            factors.append(check_contraindication(item["factor"], site))
        except StoreError as exc:
            raise StoreError(f"contraindications[{i}]: {exc}") from None
    return {"year_of_birth": None if year_of_birth is None else int(year_of_birth), "sex": sex,
            "height": None if height is None else float(height),
            "mass": None if mass is None else float(mass),
            "contraindications": check_json(factors, "contraindications")}


def check_contraindication(factor: str, site: str | None = None) -> dict[str, Any]:
    """A screening factor as the record keeps it, checked against the names screening knows.

    Parameters
    ----------
    factor : str
        A key of ``opennmes.safety.FACTORS``, e.g. ``"metal_implant"``.
    site : str, optional
        Body sites of ``opennmes.safety.SITES``, each optionally after ``left`` or ``right``,
        several separated by commas: ``"left quadriceps, right calf"``.

    Returns
    -------
    dict
        ``{"factor": factor, "site": normalised sites or None}``.

    Raises
    ------
    StoreError
        An unknown factor or site; the message lists the known ones.
    """
    from opennmes.safety import FACTORS, SITES

    key = factor.strip()
    if key not in FACTORS:
        raise StoreError(f"unknown factor {factor!r}; known factors: "
                         f"{', '.join(sorted(FACTORS))}")
    sites = tuple(" ".join(p.lower().split()) for p in (site or "").split(",") if p.strip())
    for one in sites:
        side, _, rest = one.partition(" ")
        if one not in SITES and not (side in ("left", "right") and rest in SITES):
            raise StoreError(f"{key}: unknown body site {one!r}; give one of "
                             + ", ".join(sorted(SITES)) + ", optionally after 'left ' or "
                             "'right ' (e.g. 'left quadriceps'); separate several sites with "
                             "commas")
    return {"factor": key, "site": ", ".join(sites) or None}


def _patient(row: PatientRow) -> Patient:
    return Patient(id=row.id, year_of_birth=row.year_of_birth, sex=row.sex, height=row.height,
                   mass=row.mass, contraindications=tuple(dict(c) for c in row.contraindications),
                   clinician=row.clinician, notes=row.notes, created_at=as_utc(row.created_at))


def _program(row: ProgramVersionRow, name: str) -> ProgramVersion:
    return ProgramVersion(id=row.id, name=name, version=row.version,
                          content_hash=row.content_hash, document=row.document,
                          created_at=as_utc(row.created_at))


def _session_query() -> Any:  # a Select of (SessionRow, program name, version, device url)
    return (sa.select(SessionRow, ProgramRow.name, ProgramVersionRow.version, DeviceRow.url)
            .join(ProgramVersionRow, SessionRow.program_version_id == ProgramVersionRow.id)
            .join(ProgramRow, ProgramVersionRow.program_id == ProgramRow.id)
            .join(DeviceRow, SessionRow.device_id == DeviceRow.id))


def _stream_info(st: StreamRow) -> StreamInfo:
    return StreamInfo(name=st.name, sfreq=st.sfreq, t0=st.t0,
                      channel_names=tuple(st.channel_names), units=tuple(st.units),
                      dtype=st.dtype, n_samples=int(st.n_samples))


def _streams_by_session(s: OrmSession, ids: list[int]) -> dict[int, tuple[StreamInfo, ...]]:
    out: dict[int, list[StreamInfo]] = {}
    if ids:
        for st in s.scalars(sa.select(StreamRow).where(StreamRow.session_id.in_(ids))
                            .order_by(StreamRow.id)):
            out.setdefault(st.session_id, []).append(_stream_info(st))
    return {k: tuple(v) for k, v in out.items()}


def _session_info(joined: tuple[Any, ...], streams: tuple[StreamInfo, ...]) -> SessionInfo:
    row, program_name, version, device_url = joined
    return SessionInfo(
        id=row.id, uid=row.uid, patient_id=row.patient_id,
        program_version_id=row.program_version_id, program_name=program_name,
        program_version=version, device_url=device_url, status=row.status,
        started_at=as_utc(row.started_at),
        ended_at=as_utc(row.ended_at) if row.ended_at is not None else None,
        end_reason=row.end_reason, heartbeat_at=as_utc(row.heartbeat_at), meta=row.meta,
        software_version=row.software_version,
        pulse_channels=tuple(row.pulse_channels) if row.pulse_channels is not None else None,
        streams=streams)


def _load_stream(s: OrmSession, st: StreamRow, i_lo: int = 0, i_hi: int | None = None
                 ) -> Signals:
    """Samples ``i_lo .. i_hi - 1`` of a stream, reading only the chunks that hold them.

    Chunks committed after ``st`` was read (a session still recording) are ignored.
    """
    n_total = int(st.n_samples)
    i_hi = n_total if i_hi is None else min(i_hi, n_total)
    i_lo = min(max(0, i_lo), i_hi)
    n_ch = len(st.channel_names)
    data = np.empty((n_ch, i_hi - i_lo), dtype=np.float64)
    pos = None
    if i_hi > i_lo:
        rows = s.execute(sa.select(StreamChunkRow.i0, StreamChunkRow.n, StreamChunkRow.data)
                         .where(StreamChunkRow.stream_id == st.id,
                                StreamChunkRow.i0 < i_hi,
                                StreamChunkRow.i0 + StreamChunkRow.n > i_lo)
                         .order_by(StreamChunkRow.seq))
        for i0, n, blob in rows:
            if (pos is None and i0 > i_lo) or (pos is not None and i0 != pos):
                raise StoreError(f"stream {st.name!r} is inconsistent at sample {i0}; run "
                                 "Store.verify_session() for details")
            block = _codec.decode_samples(blob, st.dtype, n_ch, n)
            a, b = max(i0, i_lo), min(i0 + n, i_hi)
            data[:, a - i_lo:b - i_lo] = block[:, a - i0:b - i0]
            pos = i0 + n
        if pos is None or pos < i_hi:
            raise StoreError(f"stream {st.name!r} holds samples up to {pos or i_lo}, its "
                             f"header says {n_total}; run Store.verify_session() for details")
    return Signals(data, st.sfreq, tuple(st.channel_names), tuple(st.units),
                   st.t0 + i_lo / st.sfreq if i_lo else st.t0)


def _join_pulses(parts: list[PulseSchedule], names: Sequence[str]) -> PulseSchedule:
    if not parts:
        return PulseSchedule.empty(names)
    if len(parts) == 1:
        return parts[0]
    cols = {k: np.concatenate([getattr(p, k) for p in parts])
            for k in ("t", "channel", "amplitude", "phase_width", "interphase_gap",
                      "amplitude2", "phase_width2", "waveform")}
    return PulseSchedule(**cols, channel_names=tuple(names))


def wrap_db_error(exc: SQLAlchemyError, what: str) -> StoreError:
    """A StoreError for a failed database operation (message names what and why)."""
    orig = getattr(exc, "orig", None) or exc
    return StoreError(f"{what} failed: {str(orig).strip().splitlines()[0]}")
