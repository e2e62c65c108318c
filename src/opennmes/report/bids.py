"""Recorded sessions for research tools: a BIDS dataset (EMG datatype, BIDS 1.11) and MNE Raw.

:func:`write_bids` writes one or more sessions of a store as a BIDS dataset::

    dataset_description.json, README.md, participants.tsv/.json
    sub-<P>/sub-<P>_sessions.tsv/.json
    sub-<P>/ses-<N>/emg/
        sub-<P>_ses-<N>_task-nmes[_recording-<R>]_emg.edf/.json, _channels.tsv
            the EMG channels of each recorded stream (EDF+, 16 bit, in uV)
        sub-<P>_ses-<N>_task-nmes_recording-<R>_physio.tsv.gz/.json
            every other recorded channel (force, torque, model states), SI units
        sub-<P>_ses-<N>_task-nmes_events.tsv/.json
            one row per stimulation burst or contraction of each channel (onset, duration,
            channel, amplitude, width, frequency, pulses) and one per session event
    sub-<P>/ses-<N>/motion/   (where a stream has joint angles, angular velocities, ...)
        sub-<P>_ses-<N>_task-nmes_tracksys-<R>_motion.tsv/.json, _channels.tsv, _events.tsv
    stimuli/sub-<P>_ses-<N>_pulses.tsv/.json
            every delivered pulse, linked from the events (``stim_file``, ``burst``)

Participants are known by their pseudonymous OpenNMES id only (``sub-`` + its letters and
digits); names, notes and clinicians are never written. Data are SI (EMG in microvolts, the
EDF convention); every column's unit is stated in its sidecar.

:func:`stimulation_bursts` is the one burst table both exports use; :func:`session_to_raw`
gives a recorded stream as an ``mne.io.RawArray`` with the bursts and session events as
annotations.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import math
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.errors import StoreError
from opennmes.schedule import WAVEFORM_NAMES
from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    import mne
    import pandas as pd

    from opennmes.store import SessionRecord, Store

__all__ = ["write_bids", "stimulation_bursts", "session_to_raw", "BIDS_VERSION", "TASK",
           "BURST_COLUMNS"]

log = logging.getLogger(__name__)

BIDS_VERSION = "1.11.1"
"""The BIDS version the datasets declare (the first with the EMG datatype is 1.11.0)."""
TASK = "nmes"
"""The task label of every exported session (its program's name is the ``TaskName``)."""
BURST_COLUMNS = ("onset", "duration", "channel", "amplitude", "width", "frequency", "n_pulses")
"""Columns of :func:`stimulation_bursts` (s, s, name, A, s, Hz, count)."""

_WAVEFORM_BY_ID = {int(v): k for k, v in WAVEFORM_NAMES.items()}
_MOTION_TYPES = {"rad": "JNTANG", "rad/s": "GYRO", "m/s^2": "ACCEL", "m/s2": "ACCEL",
                 "m": "POS", "m/s": "VEL"}
"""BIDS motion channel type by SI unit: joint angle, angular velocity (GYRO for a sensor axis;
MISC for a joint's velocity), acceleration, position, velocity."""
_MOTION_COUNTS = ("ACCEL", "ANGACCEL", "GYRO", "JNTANG", "LATENCY", "MAGN", "MISC", "ORNT",
                  "POS", "VEL")
_EDF_RECORDS = (1.0, 0.5, 0.25, 0.2, 0.1, 0.05, 0.02, 0.01, 2.0, 5.0, 10.0)


def _periods(record: SessionRecord) -> dict[str, float]:
    """Pulse period (s) of each channel: the program's frequency, else the median interval."""
    from opennmes.stim import Program

    out: dict[str, float] = {}
    try:
        prog = Program.model_validate(record.program.document)
        out = {c.name: 1.0 / c.frequency for c in prog.channels if c.frequency}
    except ValueError:  # a program saved by another version: fall back on the pulses
        pass
    p = record.pulses
    for i, name in enumerate(p.channel_names):
        if name not in out:
            d = np.diff(p.t[p.channel == i])
            out[name] = float(np.median(d[d > 0])) if (d > 0).any() else 0.02
    return out


def stimulation_bursts(record: SessionRecord) -> pd.DataFrame:
    """One row per pulse train (contraction or triggered burst) of each channel.

    Trains are split where pulses of a channel are more than ``max(3 periods, 0.25 s)``
    apart (:func:`opennmes.session.channel_trains`, the dose record's rule). Columns
    :data:`BURST_COLUMNS`: ``onset`` (first pulse, session time s), ``duration`` (to one
    period after the last pulse, s), ``channel``, ``amplitude`` (largest first-phase current,
    A), ``width`` (largest first-phase width, s), ``frequency`` (pulses per second within the
    train, Hz, to 9 significant digits; the program's rate for a single pulse) and
    ``n_pulses``; plus ``pulses``, the
    row numbers of its pulses in ``record.pulses``. Sorted by onset.
    """
    import pandas as pd

    from opennmes.session import channel_trains

    p = record.pulses
    periods = _periods(record)
    rows: list[dict[str, Any]] = []
    for i, name in enumerate(p.channel_names):
        idx = np.flatnonzero(p.channel == i)
        t = p.t[idx]
        period = periods[name]
        for a, b in channel_trains(t, period):
            sel = idx[(t >= a - 1e-9) & (t <= b - period + 1e-9)]
            n = int(sel.size)
            span = float(p.t[sel[-1]] - p.t[sel[0]])
            rows.append({
                "onset": a, "duration": b - a, "channel": name,
                "amplitude": float(p.amplitude[sel].max()),
                "width": float(p.phase_width[sel].max()),
                # onsets lie on a microsecond grid: 9 significant digits, not float noise
                "frequency": float(f"{(n - 1) / span if n > 1 and span > 0 else 1 / period:.9g}"),
                "n_pulses": n, "pulses": sel})
    table = pd.DataFrame(rows, columns=[*BURST_COLUMNS, "pulses"])
    return table.sort_values("onset", kind="stable").reset_index(drop=True)


def _rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in table.to_dict("records")]


# ----------------------------------------------------------------------------- MNE


def _emg_stream(record: SessionRecord, stream: str | None) -> tuple[str, Signals]:
    from opennmes.sensing import emg_channels

    if stream is not None:
        if stream not in record.streams:
            raise StoreError(f"session {record.info.id} has no stream {stream!r}; streams: "
                             f"{sorted(record.streams) or 'none'}")
        return stream, record.streams[stream]
    if not record.streams:
        raise StoreError(f"session {record.info.id} recorded no signals; there is nothing "
                         "to put in an MNE Raw")
    for name, sig in record.streams.items():
        if emg_channels(sig):
            return name, sig
    name = next(iter(record.streams))
    return name, record.streams[name]


def session_to_raw(record: SessionRecord, stream: str | None = None) -> mne.io.RawArray:
    """One recorded stream of a session as an MNE Raw, the stimulation as annotations.

    Parameters
    ----------
    record : SessionRecord
    stream : str, optional
        The stream to convert; default the first with EMG channels, else the first.

    Each burst of :func:`stimulation_bursts` is an annotation ``stim/<channel>`` with its
    amplitude (A), width (s), frequency (Hz) and pulse count in the annotation's ``extras``;
    each session event is ``event/<kind>`` of zero duration. Onsets are relative to the first
    sample, as MNE counts them; samples are SI (:func:`opennmes.sensing.signals_to_raw`), so
    :func:`opennmes.sensing.raw_to_signals` gives the stream back.
    """
    import mne

    from opennmes.sensing import signals_to_raw

    _, sig = _emg_stream(record, stream)
    bursts = stimulation_bursts(record)
    onset = [*bursts["onset"], *(e.t for e in record.events)]
    duration = [*bursts["duration"], *(0.0 for _ in record.events)]
    desc = [*(f"stim/{c}" for c in bursts["channel"]),
            *(f"event/{e.kind}" for e in record.events)]
    extras: list[dict[str, Any]] = [
        {"amplitude": float(r["amplitude"]), "width": float(r["width"]),
         "frequency": float(r["frequency"]), "n_pulses": int(r["n_pulses"])}
        for r in _rows(bursts)] + [{} for _ in record.events]
    t_first = round(sig.t0 * sig.sfreq) / sig.sfreq
    keep = [k for k, o in enumerate(onset) if o - t_first >= 0]
    ann = mne.Annotations([onset[k] - t_first for k in keep], [duration[k] for k in keep],
                          [desc[k] for k in keep], extras=[extras[k] for k in keep])
    return signals_to_raw(sig, annotations=ann)


# ----------------------------------------------------------------------------- BIDS


def _label(text: str) -> str:
    """A BIDS label: the letters and digits of ``text`` (``"demo-post-tka"`` ->
    ``"demoposttka"``)."""
    return re.sub(r"[^A-Za-z0-9]", "", text)


def _num(value: float) -> str:
    """A TSV number at full precision (``n/a`` for a missing one)."""
    return "n/a" if value is None or not math.isfinite(value) else repr(float(value))


def _tsv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    def cell(v: Any) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return _num(v)
        return str(v).replace("\t", " ").replace("\n", " ") or "n/a"

    lines = ["\t".join(columns)] + ["\t".join(cell(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                    encoding="utf-8")


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(f"BIDS folder {out} exists and is not empty; choose a new folder")


def write_bids(store: Store, session_ids: Sequence[int], folder: str | Path) -> Path:
    """Write the sessions ``session_ids`` of ``store`` as one BIDS dataset in ``folder``.

    ``folder`` is created; it must not exist or must be empty. Every session is read and
    checked first (known, finished or ended, with pulses or signals recorded); on any error
    nothing is left behind. Returns the folder.
    """
    from opennmes import __version__

    out = Path(folder)
    if not session_ids:
        raise StoreError("no session to export")
    _check_out(out)
    records = []
    for sid in session_ids:
        rec = store.load_session(sid)
        if rec.info.status == "running":
            raise StoreError(f"session {sid} is still running; export it once it is finished "
                             "(or marked interrupted)")
        if not len(rec.pulses) and not any(s.n_samples for s in rec.streams.values()):
            raise StoreError(f"session {sid} recorded no pulses and no signals; there is "
                             "nothing to export")
        records.append(rec)
    subjects = _subject_labels([r.patient.id for r in records])
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        _json(out / "dataset_description.json", {
            "Name": "OpenNMES stimulation sessions", "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "OpenNMES", "Version": __version__,
                             "Description": "nmes sessions export --format bids"}]})
        (out / "README.md").write_text(_readme(records), encoding="utf-8")
        _participants(out, records, subjects)
        for pid in dict.fromkeys(r.patient.id for r in records):
            _sessions_table(out, [r for r in records if r.patient.id == pid], subjects[pid])
        for rec in records:
            _write_session(out, rec, subjects[rec.patient.id])
    except BaseException:
        if made:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    log.info("wrote BIDS dataset of sessions %s to %s", list(session_ids), out)
    return out


def _subject_labels(patient_ids: Sequence[str]) -> dict[str, str]:
    """Pseudonymous id -> BIDS subject label, distinct even where two ids share their letters
    and digits (a number is appended)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for pid in dict.fromkeys(patient_ids):
        base = _label(pid) or "patient"
        label, k = base, 1
        while label in taken:
            k += 1
            label = f"{base}{k}"
        taken.add(label)
        out[pid] = label
    return out


def _readme(records: Sequence[SessionRecord]) -> str:
    return (
        "# OpenNMES stimulation sessions\n\n"
        f"{len(records)} neuromuscular electrical stimulation session(s) recorded with "
        "OpenNMES and exported by `nmes sessions export --format bids`.\n\n"
        "- `emg/*_emg.edf`: recorded EMG (EDF+, microvolts); `*_physio.tsv.gz`: every other "
        "recorded signal (force, joint angle, model states), SI units given in the sidecar.\n"
        "- `emg/*_events.tsv`: one row per stimulation burst or contraction of a channel "
        "(`trial_type` = `stimulation`) and one per session event (pause, intensity, "
        "comfort, stop, ...). Onsets are session time in seconds.\n"
        "- `stimuli/*_pulses.tsv`: every delivered pulse (SI units), linked from the events "
        "by `stim_file` and the `burst` number.\n\n"
        "Participants are known by pseudonymous ids only.\n")


def _participants(out: Path, records: Sequence[SessionRecord], subjects: dict[str, str]
                  ) -> None:
    sex = {"female": "F", "male": "M", "other": "O"}
    rows = []
    for pid, label in subjects.items():
        rec = next(r for r in records if r.patient.id == pid)
        p = rec.patient
        year = min(r.info.started_at.year for r in records if r.patient.id == pid)
        rows.append([f"sub-{label}", pid, "homo sapiens",
                     year - p.year_of_birth if p.year_of_birth else None,
                     sex.get(p.sex or "", None), p.height, p.mass])
    _tsv(out / "participants.tsv", ["participant_id", "opennmes_id", "species", "age", "sex",
                                    "height", "weight"], rows)
    _json(out / "participants.json", {
        "participant_id": {"Description": "BIDS subject label: the letters and digits of the "
                           "pseudonymous OpenNMES patient id"},
        "opennmes_id": {"Description": "Pseudonymous patient id in the OpenNMES record (no "
                        "name; the key to the clinic's records is kept outside OpenNMES)"},
        "species": {"Description": "Species of the participant"},
        "age": {"Description": "Age at the first exported session (year of the session "
                "minus year of birth)", "Units": "year"},
        "sex": {"Description": "Sex", "Levels": {"F": "female", "M": "male", "O": "other"}},
        "height": {"Description": "Body height", "Units": "m"},
        "weight": {"Description": "Body mass", "Units": "kg"},
    })


def _sessions_table(out: Path, records: Sequence[SessionRecord], label: str) -> None:
    (out / f"sub-{label}").mkdir(exist_ok=True)
    rows = [[f"ses-{r.info.id}",
             r.info.started_at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(
                 timespec="seconds"),
             r.info.uid, f"{r.program.name} v{r.program.version}", r.info.device_url,
             r.info.status, r.info.end_reason] for r in records]
    base = out / f"sub-{label}" / f"sub-{label}_sessions"
    _tsv(base.with_suffix(".tsv"), ["session_id", "acq_time", "opennmes_uid", "program",
                                    "device", "status", "end_reason"], rows)
    _json(base.with_suffix(".json"), {
        "acq_time": {"Description": "Start of the session (UTC)"},
        "opennmes_uid": {"Description": "Unique id of the session in the OpenNMES record"},
        "program": {"Description": "Stimulation program name and version"},
        "device": {"Description": "Stimulator URL (sim:// is the simulated stimulator)"},
        "status": {"Description": "How the session ended",
                   "Levels": {"finished": "ran to its end", "aborted": "stopped early",
                              "interrupted": "the recording process ended unexpectedly"}},
        "end_reason": {"Description": "Why the session ended, in words"},
    })


def _write_session(out: Path, rec: SessionRecord, subject: str) -> None:
    from opennmes.sensing import emg_channels

    ses = f"ses-{rec.info.id}"
    folder = out / f"sub-{subject}" / ses / "emg"
    folder.mkdir(parents=True)
    stem = f"sub-{subject}_{ses}_task-{TASK}"
    emg_streams = [n for n, s in rec.streams.items() if emg_channels(s) and s.n_samples]
    labels = _subject_labels(list(rec.streams))  # distinct recording labels
    for name, sig in rec.streams.items():
        if not sig.n_samples:
            continue
        emg = emg_channels(sig)
        rec_part = f"_recording-{labels[name]}"
        if emg:
            edf_stem = stem + (rec_part if len(emg_streams) > 1 else "")
            _write_emg(folder, edf_stem, rec, name, sig.pick(emg))
        motion = [n for n, u in zip(sig.names, sig.units, strict=True)
                  if n not in emg and u in _MOTION_TYPES]
        if motion:
            _write_motion(out / f"sub-{subject}" / ses / "motion",
                          f"{stem}_tracksys-{labels[name]}", rec, name, sig.pick(motion))
        rest = [n for n in sig.names if n not in emg and n not in motion]
        if rest:
            _write_physio(folder, stem + rec_part, rec, name, sig.pick(rest))
    stimuli = out / "stimuli"
    stimuli.mkdir(exist_ok=True)
    pulse_file = f"sub-{subject}_{ses}_pulses.tsv"
    bursts = stimulation_bursts(rec)
    _write_pulses(stimuli / pulse_file, rec, bursts)
    _write_events(folder / f"{stem}_events", rec, bursts, pulse_file)
    motion_dir = out / f"sub-{subject}" / ses / "motion"
    if motion_dir.is_dir():  # the same events beside the motion recordings
        _write_events(motion_dir / f"{stem}_events", rec, bursts, pulse_file)


def _edf_labels(names: Sequence[str]) -> list[str]:
    """EDF labels (16 characters at most, distinct) for channel names; ``channels.tsv`` uses
    the same, the full name is in its description."""
    out: list[str] = []
    for n in names:
        label, k = n[:16], 1
        while label in out:
            k += 1
            label = f"{n[:16 - len(str(k)) - 1]}~{k}"
        out.append(label)
    return out


def _edf_record(sfreq: float) -> float:
    for d in _EDF_RECORDS:
        if abs(sfreq * d - round(sfreq * d)) < 1e-6 and round(sfreq * d) >= 1:
            return d
    raise StoreError(f"a stream's sampling rate {sfreq!r} Hz gives no whole number of "
                     "samples in any EDF data record of 0.01-10 s; it cannot be written as "
                     "EDF")


def _write_emg(folder: Path, stem: str, rec: SessionRecord, stream: str, sig: Signals) -> None:
    import pyedflib

    record_s = _edf_record(sig.sfreq)
    n_rec = int(round(sig.sfreq * record_s))
    pad = (-sig.n_samples) % n_rec
    headers: list[dict[str, Any]] = []
    data, units = [], []
    labels = _edf_labels(sig.names)
    for i, unit in enumerate(sig.units):
        x = sig.data[i]
        if unit == "V":
            x, dim, bids_unit = x * 1e6, "uV", "uV"
        else:
            dim, bids_unit = unit[:8], unit
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        top = _edf_limit(peak)
        headers.append({"label": labels[i], "dimension": dim, "sample_frequency": sig.sfreq,
                        "physical_max": top, "physical_min": -top, "digital_max": 32767,
                        "digital_min": -32768, "transducer": "", "prefilter": ""})
        data.append(np.concatenate([x, np.zeros(pad)]))
        units.append(bids_unit)
    path = folder / f"{stem}_emg.edf"
    w = pyedflib.EdfWriter(str(path), len(headers), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        if record_s != 1.0:
            w.setDatarecordDuration(record_s)
        w.setSignalHeaders(headers)
        start = rec.info.started_at.astimezone(dt.UTC) + dt.timedelta(seconds=sig.t0)
        w.setStartdatetime(start.replace(tzinfo=None))
        w.setEquipment(rec.info.device_url[:80])
        w.writeSamples(data)
    finally:
        w.close()
    _tsv(folder / f"{stem}_channels.tsv",
         ["name", "type", "units", "description", "sampling_frequency", "placement_description",
          "status"],
         [[lab, "EMG", u, f"EMG channel {n!r} of the recorded stream {stream!r}", sig.sfreq,
           f"sensor named {stream!r} at recording; placement not recorded", "good"]
          for lab, n, u in zip(labels, sig.names, units, strict=True)])
    device = rec.device_info.get("kind") if isinstance(rec.device_info, dict) else None
    _json(folder / f"{stem}_emg.json", {
        "TaskName": rec.program.name, "SamplingFrequency": sig.sfreq,
        "PowerLineFrequency": "n/a", "SoftwareFilters": "n/a", "HardwareFilters": "n/a",
        "EMGReference": "n/a", "EMGPlacementScheme": "Other",
        "EMGPlacementSchemeDescription": f"EMG sensors of the stream {stream!r}; their "
        "placement is not part of the OpenNMES record. Stimulation electrodes: "
        + _electrodes(rec),
        "EMGChannelCount": len(sig.names), "RecordingType": "continuous",
        "RecordingDuration": sig.n_samples / sig.sfreq,
        "Manufacturer": device or "n/a",
        "SoftwareVersions": f"OpenNMES {rec.info.software_version}",
        "TaskDescription": _task_description(rec),
    })


def _task_description(rec: SessionRecord) -> str:
    return (f"Neuromuscular electrical stimulation with the program {rec.program.name!r} "
            f"(version {rec.program.version}) on {rec.info.device_url}; stimulation "
            f"electrodes: {_electrodes(rec)}")


def _edf_limit(peak: float) -> float:
    """A physical maximum that the 8 characters of the EDF header hold exactly (>= peak)."""
    if peak <= 0 or not math.isfinite(peak):
        return 1.0
    digits = 10 ** math.floor(math.log10(peak))
    top = math.ceil(peak / digits * 100) * digits / 100  # 3 significant digits, rounded up
    return float(f"{top:.6g}") if len(f"{top:.6g}") <= 8 else float(math.ceil(top))


def _electrodes(rec: SessionRecord) -> str:
    chans = rec.program.document.get("channels", []) if isinstance(
        rec.program.document, dict) else []
    parts = []
    for c in chans:
        e = c.get("electrode", {}) if isinstance(c, dict) else {}
        where = " ".join(str(e[k]) for k in ("side", "site") if e.get(k))
        parts.append(f"{c.get('name')}: {where or 'site not given'}")
    return "; ".join(parts) or "none"


def _write_physio(folder: Path, stem: str, rec: SessionRecord, stream: str, sig: Signals
                  ) -> None:
    cols = list(sig.names)
    # no file name and no time in the gzip header: reproducible, nothing leaked
    with open(folder / f"{stem}_physio.tsv.gz", "wb") as fobj, \
            gzip.GzipFile(filename="", mode="wb", fileobj=fobj, mtime=0) as raw, \
            io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as f:
        np.savetxt(f, sig.data.T, delimiter="\t", fmt="%.9g")
    doc: dict[str, Any] = {"TaskName": rec.program.name, "PhysioType": "generic",
                           "TaskDescription": _task_description(rec),
                           "SamplingFrequency": sig.sfreq, "StartTime": sig.t0,
                           "Columns": cols}
    for n, u in zip(sig.names, sig.units, strict=True):
        doc[n] = {"Description": f"{n} of the recorded stream {stream!r}", "Units": u}
    _json(folder / f"{stem}_physio.json", doc)


def _write_motion(folder: Path, stem: str, rec: SessionRecord, stream: str, sig: Signals
                  ) -> None:
    """Joint angles and velocities, accelerations, positions: the BIDS motion datatype (one
    tracking system per recorded stream; the tracked point is the name before the last dot,
    the component the trailing x, y or z of the name, else n/a)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{stem}_motion.tsv").open("w", encoding="utf-8", newline="\n") as f:
        np.savetxt(f, sig.data.T, delimiter="\t", fmt="%.9g")
    rows = []
    for n, u in zip(sig.names, sig.units, strict=True):
        m = re.search(r"[._ -]([xyzXYZ])$", n)
        point = n.rsplit(".", 1)[0] if "." in n else stream
        kind = _MOTION_TYPES[u] if m or u != "rad/s" else "MISC"
        rows.append([n, m.group(1).lower() if m else None, kind, point, u,
                     f"{n} of the recorded stream {stream!r}"])
    _tsv(folder / f"{stem}_channels.tsv",
         ["name", "component", "type", "tracked_point", "units", "description"], rows)
    counts = {f"{k}ChannelCount": sum(r[2] == k for r in rows) for k in _MOTION_COUNTS}
    _json(folder / f"{stem}_motion.json", {
        "TaskName": rec.program.name, "TaskDescription": _task_description(rec),
        "SamplingFrequency": sig.sfreq, "RecordingDuration": sig.duration,
        "TrackingSystemName": stream, "Manufacturer": "n/a",
        "SoftwareVersions": f"OpenNMES {rec.info.software_version}",
        "MotionChannelCount": len(rows), "TrackedPointsCount": len({r[3] for r in rows}),
        "MissingValues": "n/a", **counts})


def _write_pulses(path: Path, rec: SessionRecord, bursts: pd.DataFrame) -> None:
    p = rec.pulses
    burst_of = np.full(len(p), -1, dtype=np.int64)
    for k, rows in enumerate(bursts["pulses"]):
        burst_of[rows] = k
    rows_out = [[float(p.t[k]), p.channel_names[int(p.channel[k])], float(p.amplitude[k]),
                 float(p.phase_width[k]), float(p.interphase_gap[k]), float(p.amplitude2[k]),
                 float(p.phase_width2[k]), _WAVEFORM_BY_ID.get(int(p.waveform[k]),
                                                               str(int(p.waveform[k]))),
                 int(burst_of[k])] for k in range(len(p))]
    _tsv(path, ["onset", "channel", "amplitude", "phase_width", "interphase_gap", "amplitude2",
                "phase_width2", "waveform", "burst"], rows_out)
    _json(path.with_suffix(".json"), {
        "onset": {"Description": "Onset of the first phase, session time", "Units": "s"},
        "channel": {"Description": "Stimulation channel"},
        "amplitude": {"Description": "Peak current of the first phase", "Units": "A"},
        "phase_width": {"Description": "Width of the first phase", "Units": "s"},
        "interphase_gap": {"Description": "Gap between the phases", "Units": "s"},
        "amplitude2": {"Description": "Peak current of the second (balancing) phase",
                       "Units": "A"},
        "phase_width2": {"Description": "Width of the second phase", "Units": "s"},
        "waveform": {"Description": "Pulse shape", "Levels": {k: k for k in WAVEFORM_NAMES}},
        "burst": {"Description": "Row number (0 = first row) of this pulse's burst among the "
                  "stimulation rows of the session's events.tsv"},
    })


def _write_events(base: Path, rec: SessionRecord, bursts: pd.DataFrame, pulse_file: str
                  ) -> None:
    rows: list[list[Any]] = [
        [float(b["onset"]), float(b["duration"]), "stimulation", b["channel"],
         float(b["amplitude"]), float(b["width"]), float(b["frequency"]), int(b["n_pulses"]),
         k, pulse_file, None]
        for k, b in enumerate(_rows(bursts))]
    for e in rec.events:
        detail = json.dumps(e.data, ensure_ascii=False, sort_keys=True) if e.data else None
        ch = e.data.get("channel") if isinstance(e.data.get("channel"), str) else None
        rows.append([float(e.t), 0.0, e.kind, ch, None, None, None, None, None, None, detail])
    rows.sort(key=lambda r: r[0])
    _tsv(base.with_suffix(".tsv"),
         ["onset", "duration", "trial_type", "channel", "amplitude", "width", "frequency",
          "n_pulses", "burst", "stim_file", "detail"], rows)
    kinds = sorted({e.kind for e in rec.events})
    _json(base.with_suffix(".json"), {
        "StimulusPresentation": {"SoftwareName": "OpenNMES",
                                 "SoftwareVersion": rec.info.software_version},
        "onset": {"Description": "Session time of the first pulse of a burst, or of the "
                  "event", "Units": "s"},
        "duration": {"Description": "From the first pulse to one period after the last "
                     "(0 for session events)", "Units": "s"},
        "trial_type": {"Description": "stimulation: one pulse train (contraction or "
                       "triggered burst) of one channel; otherwise the session event's kind",
                       "Levels": {"stimulation": "a stimulation burst or contraction",
                                  **{k: f"session event {k!r}" for k in kinds}}},
        "channel": {"Description": "Stimulation channel"},
        "amplitude": {"Description": "Largest first-phase current of the burst", "Units": "A"},
        "width": {"Description": "Largest first-phase width of the burst", "Units": "s"},
        "frequency": {"Description": "Pulse rate within the burst", "Units": "Hz"},
        "n_pulses": {"Description": "Pulses delivered in the burst"},
        "burst": {"Description": "Burst number, the `burst` column of the pulse table"},
        "stim_file": {"Description": "The session's pulse table (every delivered pulse, SI "
                      "units), relative to /stimuli"},
        "detail": {"Description": "The session event's data as recorded (JSON, SI units)"},
    })
