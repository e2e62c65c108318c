"""Export a session to a folder of Parquet and JSON files, and import it back losslessly.

The folder format (version 1) is documented in ``docs/store.md``::

    session.json        what the session was (uid, status, times, patient, device, program
                        reference, stream list); format name and version
    program.json        the program document exactly as stored
    events.parquet      seq, t [s], kind, data (JSON text)
    pulses.parquet      one row per pulse (PulseSchedule.to_pandas columns, SI units)
    dose.json           the dose summary (absent when none was set)
    streams/NN-name.parquet   t [s] then one column per channel, in the channel's unit
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from opennmes.errors import StoreError
from opennmes.signals import Signals
from opennmes.stim import PulseSchedule
from opennmes.store import _codec
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
from opennmes.store._records import SESSION_STATUSES

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.store._store import Store

__all__ = ["export_session", "import_session", "FORMAT_NAME", "FORMAT_VERSION"]

log = logging.getLogger(__name__)

FORMAT_NAME = "opennmes-session"
FORMAT_VERSION = 1
_PULSE_CHUNK = 20_000
_DTYPE_NAMES = {"<f8": "float64", "<f4": "float32"}


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def _dump(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                    encoding="utf-8")


def export_session(store: Store, session_id: int, folder: str | Path) -> Path:
    """Write a finished session to ``folder`` (created; must not exist or be empty).

    Returns the folder. Every value is written at full precision: importing the folder into
    any store gives back the same program, events, pulses, streams and dose.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from opennmes import __version__

    out = Path(folder)
    rec = store.load_session(session_id)
    info = rec.info
    if info.status == "running":
        raise StoreError(f"session {session_id} is still running; export it once it is "
                         "finished (or marked interrupted)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(f"export folder {out} exists and is not empty; choose a new folder")
    try:
        (out / "streams").mkdir(parents=True, exist_ok=True)
        streams_doc = []
        for k, st in enumerate(info.streams):
            sig = rec.streams[st.name]
            fname = f"streams/{k:02d}-{re.sub(r'[^A-Za-z0-9._-]', '_', st.name)}.parquet"
            np_dtype = np.float32 if st.dtype == "<f4" else np.float64
            cols = {"t": pa.array(sig.t)}
            for i, ch in enumerate(sig.names):
                cols[ch if ch != "t" else "t_"] = pa.array(sig.data[i].astype(np_dtype))
            meta = {"name": st.name, "file": fname, "sfreq": st.sfreq, "t0": st.t0,
                    "channel_names": list(st.channel_names), "units": list(st.units),
                    "dtype": _DTYPE_NAMES[st.dtype], "n_samples": st.n_samples}
            table = pa.table(cols).replace_schema_metadata(
                {"opennmes": json.dumps(meta)})
            pq.write_table(table, out / fname, compression="zstd")
            streams_doc.append(meta)
        events = pa.table({
            "seq": pa.array([e.seq for e in rec.events], pa.int64()),
            "t": pa.array([e.t for e in rec.events], pa.float64()),
            "kind": pa.array([e.kind for e in rec.events], pa.string()),
            "data": pa.array([json.dumps(e.data, ensure_ascii=False) for e in rec.events],
                             pa.string()),
        })
        pq.write_table(events, out / "events.parquet")
        rec.pulses.to_pandas().to_parquet(out / "pulses.parquet", index=False)
        _dump(out / "program.json", rec.program.document)
        if rec.dose is not None:
            _dump(out / "dose.json", rec.dose)
        p = rec.patient
        _dump(out / "session.json", {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "exported_by": f"opennmes {__version__}", "exported_at": _iso(utcnow()),
            "session": {
                "uid": info.uid, "status": info.status, "started_at": _iso(info.started_at),
                "ended_at": _iso(info.ended_at), "end_reason": info.end_reason,
                "heartbeat_at": _iso(info.heartbeat_at), "meta": info.meta,
                "software_version": info.software_version,
                "pulse_channels": list(info.pulse_channels) if info.pulse_channels is not None
                else None,
                "n_pulses": len(rec.pulses), "n_events": len(rec.events),
                "has_dose": rec.dose is not None,
            },
            "patient": {"id": p.id, "year_of_birth": p.year_of_birth, "sex": p.sex,
                        "height": p.height, "mass": p.mass,
                        "contraindications": list(p.contraindications),
                        "clinician": p.clinician, "notes": p.notes,
                        "created_at": _iso(p.created_at)},
            "device": {"url": info.device_url, "info": rec.device_info},
            "program": {"name": rec.program.name, "version": rec.program.version,
                        "content_hash": rec.program.content_hash, "file": "program.json"},
            "streams": streams_doc,
        })
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    log.info("exported session %d to %s", session_id, out)
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StoreError(f"{path} is missing; is this an exported session folder?") from exc
    except ValueError as exc:
        raise StoreError(f"{path} is not valid JSON: {exc}") from exc


def import_session(store: Store, folder: str | Path) -> int:
    """Import a folder written by :func:`export_session`; returns the new session id.

    Everything is checked and read first and written in one transaction: on any error,
    nothing is written. The patient is created when absent (an existing patient of that id
    is kept as it is); the program is matched by name and content hash (added as a version
    when absent, with its original version number when free). A session whose uid is already
    in the store is refused.
    """
    import pyarrow.parquet as pq

    from opennmes.store._records import check_json

    store._writable("import a session")

    src = Path(folder)
    doc = _read_json(src / "session.json")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise StoreError(f"{src / 'session.json'} is not an OpenNMES session export "
                         f"(format {FORMAT_NAME!r} expected)")
    if doc.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"{src}: export format version {doc.get('format_version')!r} is not "
                         f"supported (this OpenNMES reads version {FORMAT_VERSION})")
    try:
        ses, pat, dev, prog = doc["session"], doc["patient"], doc["device"], doc["program"]
        if ses["status"] not in SESSION_STATUSES or ses["status"] == "running":
            raise StoreError(f"{src}: session status {ses['status']!r} cannot be imported")
        existing = store.find_session(ses["uid"])
        if existing is not None:
            raise StoreError(f"session {ses['uid']} is already in {store.url} as session "
                             f"{existing}; nothing was imported")
        document = check_json(_read_json(src / prog.get("file", "program.json")),
                              "program.json")
        from opennmes.store._store import _check_patient, _content_hash

        if _content_hash(document) != prog["content_hash"]:
            raise StoreError(f"{src / 'program.json'} does not match the content hash in "
                             "session.json; the export was changed")
        _check_patient(pat["id"], pat["year_of_birth"], pat["sex"], pat["height"],
                       pat["mass"], pat["contraindications"])
        dose = _read_json(src / "dose.json") if ses.get("has_dose") else None
        names = tuple(ses["pulse_channels"] or ())
        import pandas as pd

        table = pd.read_parquet(src / "pulses.parquet")
        pulses = PulseSchedule.from_pandas(table, names) if len(table) \
            else PulseSchedule.empty(names)
        ev = pq.read_table(src / "events.parquet").to_pydict()
        events = [{"seq": int(s), "t": float(t), "kind": k, "data": json.loads(d)}
                  for s, t, k, d in zip(ev["seq"], ev["t"], ev["kind"], ev["data"], strict=True)]
        streams: list[tuple[dict[str, Any], Signals]] = []
        for meta in doc["streams"]:
            table = pq.read_table(src / meta["file"])
            data = np.vstack([table.column(i + 1).to_numpy().astype(np.float64)
                              for i in range(len(meta["channel_names"]))]) \
                if meta["n_samples"] else np.empty((len(meta["channel_names"]), 0))
            if data.shape[1] != meta["n_samples"]:
                raise StoreError(f"{src / meta['file']} holds {data.shape[1]} samples, "
                                 f"session.json says {meta['n_samples']}")
            streams.append((meta, Signals(data, meta["sfreq"], tuple(meta["channel_names"]),
                                          tuple(meta["units"]), meta["t0"])))
        if len(pulses) != ses["n_pulses"] or len(events) != ses["n_events"]:
            raise StoreError(f"{src}: pulse or event files do not match session.json counts")
    except (KeyError, TypeError) as exc:
        raise StoreError(f"{src / 'session.json'} lacks or misstates {exc}; the export is "
                         "damaged") from exc
    except OSError as exc:
        raise StoreError(f"cannot read the export in {src}: {exc}") from exc
    try:
        with store.engine.begin() as conn:
            sid = _write_all(conn, ses, pat, dev, prog, document, dose, pulses, events,
                             streams)
    except SQLAlchemyError as exc:
        raise StoreError(f"importing {src} into {store.url} failed: "
                         f"{getattr(exc, 'orig', exc)}; nothing was imported") from exc
    log.info("imported %s as session %d", src, sid)
    return sid


def _write_all(conn: sa.Connection, ses: dict[str, Any], pat: dict[str, Any],
               dev: dict[str, Any], prog: dict[str, Any], document: Any,
               dose: Any, pulses: PulseSchedule, events: list[dict[str, Any]],
               streams: list[tuple[dict[str, Any], Signals]]) -> int:
    now = utcnow()
    if conn.execute(sa.select(PatientRow.id).where(PatientRow.id == pat["id"])).first() is None:
        conn.execute(sa.insert(PatientRow).values(
            id=pat["id"], year_of_birth=pat["year_of_birth"], sex=pat["sex"],
            height=pat["height"], mass=pat["mass"],
            contraindications=pat["contraindications"], clinician=pat["clinician"],
            notes=pat["notes"], created_at=_from_iso(pat["created_at"]) or now))
    prog_id = conn.execute(sa.select(ProgramRow.id).where(ProgramRow.name == prog["name"])
                           ).scalar()
    if prog_id is None:
        prog_id = conn.execute(sa.insert(ProgramRow).values(name=prog["name"], created_at=now)
                               ).inserted_primary_key[0]  # type: ignore[index]
    pv_id = conn.execute(sa.select(ProgramVersionRow.id).where(
        ProgramVersionRow.program_id == prog_id,
        ProgramVersionRow.content_hash == prog["content_hash"])).scalar()
    if pv_id is None:
        taken = set(conn.execute(sa.select(ProgramVersionRow.version).where(
            ProgramVersionRow.program_id == prog_id)).scalars())
        version = prog["version"] if prog["version"] not in taken \
            else max(taken, default=0) + 1
        pv_id = conn.execute(sa.insert(ProgramVersionRow).values(
            program_id=prog_id, version=version, content_hash=prog["content_hash"],
            document=document, created_at=now)).inserted_primary_key[0]  # type: ignore[index]
    dev_id = conn.execute(sa.select(DeviceRow.id).where(DeviceRow.url == dev["url"])).scalar()
    if dev_id is None:
        dev_id = conn.execute(sa.insert(DeviceRow).values(
            url=dev["url"], kind=dev["url"].split(":", 1)[0], info=dev["info"],
            created_at=now)).inserted_primary_key[0]  # type: ignore[index]
    sid = conn.execute(sa.insert(SessionRow).values(
        uid=ses["uid"], patient_id=pat["id"], program_version_id=pv_id, device_id=dev_id,
        status=ses["status"], started_at=_from_iso(ses["started_at"]),
        ended_at=_from_iso(ses["ended_at"]), end_reason=ses["end_reason"],
        heartbeat_at=_from_iso(ses["heartbeat_at"]), host="imported", pid=0,
        pulse_channels=ses["pulse_channels"], meta=ses["meta"],
        software_version=ses["software_version"])).inserted_primary_key[0]  # type: ignore[index]
    if events:
        conn.execute(sa.insert(EventRow), [{"session_id": sid, **e} for e in events])
    rows = []
    for k, a in enumerate(range(0, len(pulses), _PULSE_CHUNK)):
        part = pulses.take(slice(a, a + _PULSE_CHUNK))
        rows.append({"session_id": sid, "seq": k, "t_first": float(part.t[0]),
                     "t_last": float(part.t[-1]), "n": len(part),
                     "codec": _codec.PULSE_CODEC, "data": _codec.encode_pulses(part)})
    if rows:
        conn.execute(sa.insert(PulseChunkRow), rows)
    for meta, sig in streams:
        dtype = "<f4" if meta["dtype"] == "float32" else "<f8"
        step = max(1, int(round(sig.sfreq)))
        n_chunks = -(-sig.n_samples // step)
        st_id = conn.execute(sa.insert(StreamRow).values(
            session_id=sid, name=meta["name"], sfreq=sig.sfreq, t0=sig.t0,
            channel_names=list(sig.names), units=list(sig.units), dtype=dtype,
            n_samples=sig.n_samples, n_chunks=n_chunks)).inserted_primary_key[0]  # type: ignore[index]
        chunks = [{"stream_id": st_id, "seq": k, "i0": a, "n": min(step, sig.n_samples - a),
                   "codec": _codec.SIGNAL_CODEC,
                   "data": _codec.encode_samples(sig.data[:, a:a + step], dtype)}
                  for k, a in enumerate(range(0, sig.n_samples, step))]
        for b in range(0, len(chunks), 500):
            conn.execute(sa.insert(StreamChunkRow), chunks[b:b + 500])
    if dose is not None:
        conn.execute(sa.insert(DoseRow).values(session_id=sid, summary=dose, updated_at=now))
    return int(sid)
