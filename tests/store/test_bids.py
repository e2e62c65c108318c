"""BIDS export of recorded sessions, checked by the official BIDS validator (the PyPI
``bids-validator-deno``, run offline), and sessions and Signals to MNE Raw and back."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from opennmes.devices import VirtualClock, open_stimulator
from opennmes.report.bids import session_to_raw, stimulation_bursts, write_bids
from opennmes.sensing import raw_to_signals, read_text, signals_to_raw
from opennmes.session import ReplaySensor, ScriptedOperator, TriggerDrive, start_session
from opennmes.signals import Signals
from opennmes.stim import Channel, Electrode, Program
from opennmes.store import SessionRecord, open_store

from ..conftest import SHARED_DATA, run_nmes

EMG = SHARED_DATA / "emg" / "bitalino_forearm_1000hz.txt"
VALIDATOR = Path(sys.executable).parent / "bids-validator-deno"


def validate(folder: Path) -> list[dict[str, object]]:
    """The issues the official validator finds in ``folder`` (it reads the schema bundled in
    the package: no network)."""
    r = subprocess.run([str(VALIDATOR), str(folder), "--format", "json"],
                       capture_output=True, text=True, timeout=300)
    assert r.stdout, r.stderr
    issues = json.loads(r.stdout)["issues"]["issues"]
    assert isinstance(issues, list)
    return issues


def errors(issues: list[dict[str, object]]) -> list[dict[str, object]]:
    return [i for i in issues if i["severity"] == "error"]


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="module")
def emg_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A functional session with EMG: the real BITalino forearm EMG replayed as a live sensor
    triggers the wrist extensors on sim:// with a virtual patient whose muscles give EMG."""
    url = f"sqlite:///{tmp_path_factory.mktemp('bids') / 'emg.db'}"
    store = open_store(url)
    store.add_patient("P-01", year_of_birth=1970, sex="male")
    emg = read_text(EMG).crop(12.0, 18.5)
    wrist = Channel(name="wrist extensors",
                    electrode=Electrode(area=36e-4, site="wrist extensors", side="left"),
                    frequency=40.0, pulse_width=300e-6, interphase_gap=100e-6,
                    amplitude=0.025, ramp_up=0.5, on=2.0, ramp_down=0.5)
    program = Program(name="EMG-triggered wrist", channels=[wrist], duration=emg.duration - 0.3)
    drive = TriggerDrive("wrist extensors", "emg", signal=emg.names[0], refractory=2.0,
                         rest=1.0)
    with open_stimulator("sim://healthy-adult?sfreq=1000&seed=0&emg=1",
                         clock=VirtualClock()) as stim:
        runner = start_session(store, "P-01", program, stim, chunk=0.02, step=2e-3,
                               sensors=[ReplaySensor(emg, "forearm")], drives=[drive])
        runner.add_hook(ScriptedOperator.titrate(["wrist extensors"],
                                                 {"wrist extensors": 0.024}, 2e-3, 0.0, 0.02))
        res = runner.run()
    assert res.status == "finished", res.reason
    assert res.session_id == 1
    store.close()
    yield url


@pytest.fixture
def emg_record(emg_db: str) -> Iterator[SessionRecord]:
    with open_store(emg_db) as s:
        yield s.load_session(1)


def test_bursts_are_the_triggered_contractions(emg_record: SessionRecord) -> None:
    b = stimulation_bursts(emg_record)
    p = emg_record.pulses
    trig = [e.t for e in emg_record.events if e.kind == "trigger"
            and e.data.get("result") == "burst"]
    assert len(b) == len(trig) >= 1
    assert int(b["n_pulses"].sum()) == len(p)
    first = b.iloc[0]
    assert first["channel"] == "wrist extensors"
    assert first["onset"] == pytest.approx(p.t[0]) and first["onset"] - trig[0] < 0.1
    assert first["frequency"] == pytest.approx(40.0, rel=1e-3)
    assert first["width"] == pytest.approx(300e-6)
    assert first["amplitude"] == pytest.approx(p.amplitude[first["pulses"]].max())
    # the dose record counts the same trains
    assert emg_record.dose["channels"][0]["trains"] == len(b)  # type: ignore[index]


def test_functional_emg_session_is_valid_bids(emg_db: str, tmp_path: Path) -> None:
    out = tmp_path / "bids"
    with open_store(emg_db) as s:
        write_bids(s, [1], out)
        rec = s.load_session(1)
    issues = validate(out)
    assert errors(issues) == []
    emg_dir = out / "sub-P01" / "ses-1" / "emg"
    edfs = sorted(emg_dir.glob("*_emg.edf"))
    # two streams with EMG: the replayed forearm sensor and the virtual patient's muscles
    assert [e.name for e in edfs] == ["sub-P01_ses-1_task-nmes_recording-forearm_emg.edf",
                                      "sub-P01_ses-1_task-nmes_recording-patient_emg.edf"]
    import mne

    raw = mne.io.read_raw_edf(edfs[1], preload=True, verbose="error")
    patient = rec.streams["patient"]
    emg_names = [n for n in patient.names if "emg" in n.lower()]
    chans = read_tsv(emg_dir / "sub-P01_ses-1_task-nmes_recording-patient_channels.tsv")
    assert raw.ch_names == [c["name"] for c in chans] == [n[:16] for n in emg_names]
    assert chans[1]["description"] == ("EMG channel 'tibialis_anterior.emg' of the recorded "
                                       "stream 'patient'")
    assert raw.info["sfreq"] == patient.sfreq == 1000.0
    x = patient.pick(emg_names).data
    got = raw.get_data()[:, :patient.n_samples]  # MNE reads uV as V: SI again
    step = np.abs(x).max(axis=1, keepdims=True) * 2 / 65535 * 1.02
    assert np.all(np.abs(got - x) <= step + 1e-12)
    side = json.loads((edfs[1].with_name(edfs[1].name.replace(".edf", ".json"))).read_text())
    assert side["SamplingFrequency"] == 1000.0 and side["EMGPlacementScheme"] == "Other"
    assert {c["units"] for c in chans} == {"uV"} and {c["type"] for c in chans} == {"EMG"}
    # events: one stimulation row per burst, linked to the pulse table
    ev = read_tsv(emg_dir / "sub-P01_ses-1_task-nmes_events.tsv")
    stim = [r for r in ev if r["trial_type"] == "stimulation"]
    bursts = stimulation_bursts(rec)
    assert len(stim) == len(bursts)
    assert float(stim[0]["amplitude"]) == bursts.iloc[0]["amplitude"]
    assert float(stim[0]["width"]) == 300e-6
    pulses = read_tsv(out / "stimuli" / stim[0]["stim_file"])
    assert len(pulses) == len(rec.pulses)
    np.testing.assert_array_equal([float(r["onset"]) for r in pulses], rec.pulses.t)
    assert sum(r["burst"] == stim[0]["burst"] for r in pulses) == int(stim[0]["n_pulses"])
    assert {r["trial_type"] for r in ev} >= {"stimulation", "trigger", "start", "stop"}
    parts = read_tsv(out / "participants.tsv")
    assert parts == [{"participant_id": "sub-P01", "opennmes_id": "P-01",
                      "species": "homo sapiens", "age": str(rec.info.started_at.year - 1970),
                      "sex": "M", "height": "n/a", "weight": "n/a"}]
    physio = emg_dir / "sub-P01_ses-1_task-nmes_recording-patient_physio.tsv.gz"
    cols = json.loads(physio.with_name(physio.name.replace(".tsv.gz", ".json")).read_text())
    with gzip.open(physio, "rt") as f:
        first = f.readline().split("\t")
    motion = read_tsv(out / "sub-P01" / "ses-1" / "motion"
                      / "sub-P01_ses-1_task-nmes_tracksys-patient_channels.tsv")
    angles = [n for n, u in zip(patient.names, patient.units, strict=True)
              if u in ("rad", "rad/s")]
    assert [c["name"] for c in motion] == angles and len(angles) == 6  # knee, ankle, wrist
    assert len(first) == len(cols["Columns"]) == len(patient.names) - len(emg_names) - 6


def test_demo_session_is_valid_bids(tmp_path: Path) -> None:
    """The session of `nmes demo` (a virtual patient without EMG: force, joint angle and
    model states), exported through the command and validated."""
    db = tmp_path / "demo.db"
    env = {"NMES_DB_URL": f"sqlite:///{db}"}
    r = run_nmes("demo", "--out", str(tmp_path / "reports"), env=env)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "bids"
    r = run_nmes("sessions", "export", "1", "--format", "bids", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert f"wrote BIDS dataset of session 1 to {out}" in r.stdout
    issues = validate(out)
    assert errors(issues) == []
    left = sorted({str(i["code"]) for i in issues})
    assert "GZIP_HEADER_FILENAME" not in left
    ev = read_tsv(out / "sub-demoposttka" / "ses-1" / "emg"
                  / "sub-demoposttka_ses-1_task-nmes_events.tsv")
    stim = [r for r in ev if r["trial_type"] == "stimulation"]
    assert len(stim) == 15  # the protocol's 15 contractions
    assert {r["frequency"] for r in stim} == {"50.0"}
    assert all(float(r["duration"]) >= 12.0 for r in stim)
    assert not list(out.rglob("*.edf"))  # no EMG recorded: motion and physio
    motion = out / "sub-demoposttka" / "ses-1" / "motion"
    chans = read_tsv(motion / "sub-demoposttka_ses-1_task-nmes_tracksys-patient_channels.tsv")
    knee = next(c for c in chans if c["name"] == "knee.angle")
    assert (knee["type"], knee["units"], knee["tracked_point"]) == ("JNTANG", "rad", "knee")
    data = np.loadtxt(motion / "sub-demoposttka_ses-1_task-nmes_tracksys-patient_motion.tsv")
    assert data.shape == (94500, len(chans))  # 945 s at 100 Hz
    assert (motion / "sub-demoposttka_ses-1_task-nmes_events.tsv").is_file()
    assert "EVENTS_TSV_MISSING" not in left
    # again with --patient, into a folder that exists: refused, one line, exit 2
    r = run_nmes("sessions", "export", "--patient", "demo-post-tka", "--format", "bids",
                 "--out", str(out), env=env)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "exists and is not empty" in r.stderr


def test_patient_export_holds_every_session(emg_db: str, tmp_path: Path) -> None:
    db = tmp_path / "two.db"
    shutil.copy(emg_db.removeprefix("sqlite:///"), db)
    url = f"sqlite:///{db}"
    with open_store(url) as s:
        folder = tmp_path / "exp"
        from opennmes.store import export_session, import_session

        export_session(s, 1, folder)
        # the same session again under a new uid: a second session of the patient
        doc = json.loads((folder / "session.json").read_text())
        doc["session"]["uid"] = "second-" + doc["session"]["uid"]
        (folder / "session.json").write_text(json.dumps(doc))
        assert import_session(s, folder) == 2
    out = tmp_path / "bids"
    r = run_nmes("sessions", "export", "--patient", "P-01", "--format", "bids", "--out",
                 str(out), "--db", url)
    assert r.returncode == 0, r.stderr
    assert "sessions 1, 2" in r.stdout
    assert errors(validate(out)) == []
    sessions = read_tsv(out / "sub-P01" / "sub-P01_sessions.tsv")
    assert [x["session_id"] for x in sessions] == ["ses-1", "ses-2"]
    assert len(read_tsv(out / "participants.tsv")) == 1


@pytest.mark.parametrize("args,message", [
    (["99"], "unknown session id 99"),
    (["--patient", "nobody"], "patient 'nobody' has no sessions"),
    ([], "give a session id or --patient"),
    (["1", "--patient", "P-01"], "give a session id or --patient, not both"),
])
def test_export_errors_are_one_line(emg_db: str, tmp_path: Path, args: list[str],
                                    message: str) -> None:
    out = tmp_path / "bids"
    r = run_nmes("sessions", "export", *args, "--format", "bids", "--out", str(out),
                 "--db", emg_db)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.strip().count("\n") == 0
    assert message in r.stderr
    assert not out.exists()


def test_an_empty_session_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with open_store(url) as s:
        s.add_patient("P2")
        pv = s.save_program({"name": "empty", "channels": []}, "empty")
        w = s.begin_session("P2", pv.id, "sim://")
        w.finish("nothing happened")
    out = tmp_path / "bids"
    r = run_nmes("sessions", "export", "1", "--format", "bids", "--out", str(out),
                 "--db", url)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "recorded no pulses and no signals" in r.stderr
    assert not out.exists()


def test_signals_round_trip_through_mne() -> None:
    rng = np.random.default_rng(0)
    sig = Signals(rng.normal(0, 1e-4, (3, 500)), 2000.0, ("emg.left", "knee.angle", "force"),
                  ("V", "rad", "N m"), t0=0.25)
    raw = signals_to_raw(sig)
    assert raw.get_channel_types() == ["emg", "misc", "misc"]
    assert raw.first_samp == 500 and raw.info["sfreq"] == 2000.0
    back = raw_to_signals(raw)
    assert back.names == sig.names and back.units == sig.units
    assert back.t0 == 0.25 and back.sfreq == 2000.0
    np.testing.assert_array_equal(back.data, sig.data)
    # a Raw made elsewhere: units from MNE's FIFF codes, t0 from its first sample
    cropped = raw.copy().crop(tmin=0.05)
    part = raw_to_signals(cropped)
    assert part.t0 == pytest.approx(0.3) and part.n_samples == 400
    assert part.units == ("V", "rad", "N m")  # the names still match: the kept units


def test_session_to_mne_and_back(emg_record: SessionRecord) -> None:
    raw = session_to_raw(emg_record)
    forearm = emg_record.streams["forearm"]
    assert raw.ch_names == list(forearm.names)  # the first stream with EMG
    back = raw_to_signals(raw)
    np.testing.assert_array_equal(back.data, forearm.data)
    assert back.units == forearm.units and back.sfreq == forearm.sfreq
    bursts = stimulation_bursts(emg_record)
    stim = [k for k, d in enumerate(raw.annotations.description) if d.startswith("stim/")]
    assert len(stim) == len(bursts)
    k = stim[0]
    assert raw.annotations.description[k] == "stim/wrist extensors"
    assert raw.annotations.onset[k] == pytest.approx(bursts.iloc[0]["onset"] - forearm.t0)
    assert raw.annotations.duration[k] == pytest.approx(bursts.iloc[0]["duration"])
    extras = raw.annotations.extras[k]
    assert extras["amplitude"] == bursts.iloc[0]["amplitude"]
    assert extras["n_pulses"] == bursts.iloc[0]["n_pulses"]
    kinds = {d for d in raw.annotations.description if d.startswith("event/")}
    assert {"event/start", "event/trigger", "event/stop"} <= kinds
    patient = session_to_raw(emg_record, "patient")
    assert "emg" in patient.get_channel_types()
