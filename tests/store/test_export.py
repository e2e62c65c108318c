"""Export to the folder format and import back, losslessly; bad folders import nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from opennmes.errors import StoreError
from opennmes.signals import Signals
from opennmes.store import (
    FORMAT_NAME,
    SessionRecord,
    Store,
    export_session,
    import_session,
    open_store,
)

from .conftest import emg_block, pulse_block


def _record(store: Store, program_doc: dict, *, patient: str = "P1") -> int:
    store.add_patient(patient, year_of_birth=1949, sex="female", height=1.58, mass=62.0,
                      contraindications=[{"factor": "broken_skin", "site": "left quadriceps"}],
                      clinician="pt.anna", notes="TKA left, week 8")
    store.save_program({**program_doc, "v": 1}, "tka")
    pv = store.save_program(program_doc, "tka")  # version 2
    w = store.begin_session(patient, pv.id, "rehastim2:///dev/ttyUSB0",
                            meta={"seed": 3, "note": "ü"}, device_info={"serial": "X1"})
    for k in range(15):
        w.write_signals(emg_block(k), "emg")
        w.write_signals(Signals(np.sin(np.arange(10) + k)[None, :] * 0.3, 100.0, ("t",),
                                ("rad",), k * 0.1), "knee angle", dtype="float32")
    for k in range(3):
        w.write_pulses(pulse_block(k * 0.5, 0.5))
    w.log_event("start", 0.0, {"program": "tka"})
    w.log_event("comfort", 1.4, {"score": 7, "nested": {"list": [1.0, None, "x"]}})
    w.set_dose({"charge_per_phase": {"quad_l": 6e-06}, "contractions": 3})
    w.finish("completed")
    return w.id


def _assert_same(a: SessionRecord, b: SessionRecord) -> None:
    ia, ib = a.info, b.info
    for field in ("uid", "patient_id", "program_name", "program_version", "device_url",
                  "status", "started_at", "ended_at", "end_reason", "heartbeat_at", "meta",
                  "software_version", "pulse_channels", "streams"):
        assert getattr(ia, field) == getattr(ib, field), field
    assert a.program.document == b.program.document
    assert a.program.content_hash == b.program.content_hash
    assert a.events == b.events
    assert a.dose == b.dose
    assert a.device_info == b.device_info
    assert a.patient.contraindications == b.patient.contraindications
    assert (a.patient.height, a.patient.mass, a.patient.notes) == (
        b.patient.height, b.patient.mass, b.patient.notes)
    assert a.pulses.channel_names == b.pulses.channel_names
    for col in ("t", "channel", "amplitude", "phase_width", "interphase_gap", "amplitude2",
                "phase_width2", "waveform"):
        x, y = getattr(a.pulses, col), getattr(b.pulses, col)
        assert x.dtype == y.dtype and np.array_equal(x, y), col
    assert a.streams.keys() == b.streams.keys()
    for name in a.streams:
        sa_, sb = a.streams[name], b.streams[name]
        assert (sa_.sfreq, sa_.t0, sa_.names, sa_.units) == (sb.sfreq, sb.t0, sb.names, sb.units)
        assert np.array_equal(sa_.data.view(np.uint64), sb.data.view(np.uint64)), name


def test_round_trip_is_lossless(store: Store, other_url: str, program_doc: dict,
                                tmp_path: Path) -> None:
    sid = _record(store, program_doc)
    folder = export_session(store, sid, tmp_path / "export")
    with open_store(other_url) as target:
        new_id = import_session(target, folder)
        _assert_same(store.load_session(sid), target.load_session(new_id))
        assert target.get_program("tka").version == 2  # original version number kept
        assert target.verify_session(new_id, decode=True) == []
        # export of the import gives the same files' content again
        again = export_session(target, new_id, tmp_path / "again")
        for name in ("program.json", "dose.json"):
            assert (again / name).read_text() == (folder / name).read_text()
    # and into the same store's copy elsewhere: already there
    with pytest.raises(StoreError, match="already in .* as session"):
        import_session(store, folder)


def test_folder_format_is_as_documented(store: Store, program_doc: dict,
                                        tmp_path: Path) -> None:
    sid = _record(store, program_doc)
    folder = export_session(store, sid, tmp_path / "out")
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert names == ["dose.json", "events.parquet", "program.json", "pulses.parquet",
                     "session.json", "streams/00-emg.parquet", "streams/01-knee_angle.parquet"]
    doc = json.loads((folder / "session.json").read_text())
    assert (doc["format"], doc["format_version"]) == (FORMAT_NAME, 1)
    assert doc["session"]["status"] == "finished" and doc["session"]["n_pulses"] == 108
    assert doc["patient"]["id"] == "P1" and doc["device"]["info"] == {"serial": "X1"}
    assert doc["program"]["version"] == 2
    emg = pq.read_table(folder / "streams/00-emg.parquet")
    assert emg.column_names == ["t", "emg1", "emg2", "emg3", "emg4"]
    assert emg.num_rows == 3000 and emg.column("t").to_numpy()[1] == 1 / 2000
    meta = json.loads(emg.schema.metadata[b"opennmes"])
    assert (meta["sfreq"], meta["units"]) == (2000.0, ["V"] * 4)
    knee = pq.read_table(folder / "streams/01-knee_angle.parquet")
    assert knee.column_names == ["t", "t_"] and str(knee.schema.field("t_").type) == "float"
    pulses = pq.read_table(folder / "pulses.parquet").to_pandas()
    assert list(pulses.columns) == ["t", "channel", "amplitude", "phase_width",
                                    "interphase_gap", "amplitude2", "phase_width2", "waveform"]
    assert set(pulses["channel"]) == {"quad_l", "quad_r"}
    assert set(pulses["waveform"]) == {"symmetric-biphasic"}
    events = pq.read_table(folder / "events.parquet").to_pylist()
    assert events[1]["kind"] == "comfort" and json.loads(events[1]["data"])["score"] == 7


def test_bad_exports_and_imports_write_nothing(store: Store, other_url: str, program_doc: dict,
                                               tmp_path: Path) -> None:
    sid = _record(store, program_doc)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(StoreError, match="exists and is not empty"):
        export_session(store, sid, tmp_path / "full")
    running = store.begin_session("P1", store.get_program("tka").id, "sim://")
    with pytest.raises(StoreError, match="still running"):
        export_session(store, running.id, tmp_path / "r")
    assert not (tmp_path / "r").exists()
    running.finish()
    folder = export_session(store, sid, tmp_path / "ok")
    with open_store(other_url) as target:
        before = target.info()
        with pytest.raises(StoreError, match="session.json is missing"):
            import_session(target, tmp_path / "nowhere")
        doc = json.loads((folder / "program.json").read_text())
        doc["train"]["on"] = 99.0
        (folder / "program.json").write_text(json.dumps(doc))
        with pytest.raises(StoreError, match="does not match the content hash"):
            import_session(target, folder)
        assert target.info() == before
        assert target.list_patients() == []


def test_import_keeps_an_existing_patient(store: Store, other_url: str, program_doc: dict,
                                          tmp_path: Path) -> None:
    sid = _record(store, program_doc)
    folder = export_session(store, sid, tmp_path / "e")
    with open_store(other_url) as target:
        target.add_patient("P1", mass=64.0)
        target.save_program({"other": True}, "tka")  # version 1 and 2 taken differently
        target.save_program({"other": 2}, "tka")
        new_id = import_session(target, folder)
        assert target.get_patient("P1").mass == 64.0
        rec = target.load_session(new_id)
        assert rec.program.version == 3 and rec.program.document == program_doc
