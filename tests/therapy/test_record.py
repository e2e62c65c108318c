"""TherapyRecord: prescriptions, outcomes, adherence and progression saved in the store's
database; refusals save nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
import sqlalchemy as sa

from opennmes.errors import ContraindicationError, StoreError
from opennmes.stim import PulseSchedule
from opennmes.store import Store
from opennmes.therapy import (
    OutcomeError,
    PrescriptionError,
    Schedule,
    SessionSummary,
    TherapyRecord,
    adherence,
    get_protocol,
    review_progression,
    summarise_session,
)
from opennmes.therapy import _tables as T

TODAY = dt.datetime.now(dt.UTC).date()


def _count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def _play(store: Store, rx_program_version: int, patient: str, names: tuple[str, ...],
          amplitude: float, comfort: float | None, contractions: int = 3,
          status: str = "finished") -> int:
    """Record a short session: ``contractions`` 1 s trains at 50 Hz, 2 s apart."""
    w = store.begin_session(patient, rx_program_version, "sim://")
    t = np.concatenate([k * 3.0 + np.arange(0, 1.0, 0.02) for k in range(contractions)])
    parts = [PulseSchedule.from_arrays(np.round(t + 1e-3 * c, 6), amplitude, 300e-6, channel=c,
                                       channel_names=names) for c in range(len(names))]
    w.write_pulses(PulseSchedule.concat(parts))
    w.log_event("intensity", 1.0, {"channel": names[0], "amplitude": amplitude})
    if comfort is not None:  # as opennmes.session.ComfortRating writes it
        w.log_event("comfort", 9.0, {"score": comfort, "by": "patient"})
    if status != "finished":
        w.log_event("skin_check", 9.5, {"ok": False, "channel": names[0], "note": "redness"})
    w.finish("completed" if status == "finished" else "patient stopped",
             status="finished" if status == "finished" else "aborted")
    return w.id


def test_tables_are_in_the_stores_one_schema(store: Store, record: TherapyRecord) -> None:
    """The therapy tables are on the store's metadata and made by its one migration history
    (open_store); building a record changes nothing."""
    from opennmes.store import metadata

    for table in (T.prescriptions, T.adjustments, T.outcomes):
        assert metadata.tables[table.name] is table
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"therapy_prescriptions", "therapy_adjustments", "therapy_outcomes",
            "patients"} <= names
    assert "therapy_alembic_version" not in names  # no second history
    TherapyRecord(store)  # idempotent
    assert set(sa.inspect(store.engine).get_table_names()) == names


def test_prescribe_saves_program_and_prescription(store: Store, record: TherapyRecord) -> None:
    store.add_patient("P1", contraindications=[{"factor": "metal_implant", "site": None}])
    rx = record.prescribe("P1", "total-knee-arthroplasty", side="right", start_date=TODAY,
                          max_amplitude=0.080, by="pt1")
    assert rx.status == "active" and rx.patient_id == "P1"
    assert rx.ceilings == {"quadriceps": pytest.approx(0.080)}
    assert rx.targets == {"quadriceps": None}
    assert any("metal implants are not a contraindication" in f for f in rx.findings)
    prog = record.program(rx.id)
    assert prog.channels[0].amplitude == pytest.approx(0.080)
    assert prog.channels[0].electrode.side == "right"
    assert store.get_program(rx.program_name).id == rx.program_version_id
    assert [p.id for p in record.list_prescriptions("P1")] == [rx.id]
    assert record.check_session_allowed(rx.id) == 2  # 2 a day, none done
    with pytest.raises(PrescriptionError, match="starts on"):
        record.check_session_allowed(rx.id, dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    with pytest.raises(PrescriptionError, match="ask the therapist to renew it"):
        record.check_session_allowed(rx.id, dt.datetime.now(dt.UTC) + dt.timedelta(weeks=7))
    ended = record.end_prescription(rx.id, "discharged", by="pt1")
    assert ended.status == "ended" and ended.end_reason == "discharged (by pt1)"
    with pytest.raises(PrescriptionError, match="has ended"):
        record.check_session_allowed(rx.id)


def test_refused_prescription_saves_nothing(store: Store, record: TherapyRecord) -> None:
    store.add_patient("P2", contraindications=[{"factor": "dvt", "site": "right calf"}])
    n_programs = len(store.list_programs())
    with pytest.raises(ContraindicationError, match=r"(?s)refused by the contraindication "
                       r"screening; nothing was saved.*dvt: over or near the thrombosis"):
        record.prescribe("P2", "acl-reconstruction", side="right", start_date=TODAY)
    with pytest.raises(PrescriptionError, match="breaks safety limits; nothing was saved"):
        record.prescribe("P2", "acl-reconstruction", side="left", start_date=TODAY,
                         electrodes={"quadriceps": {"area": "4 cm2"}})
    with pytest.raises(StoreError, match="unknown patient 'nobody'"):
        record.prescribe("nobody", "acl-reconstruction", side="left", start_date=TODAY)
    assert _count(store, T.prescriptions) == 0
    assert len(store.list_programs()) == n_programs


def test_outcomes_are_validated_saved_and_judged(store: Store, record: TherapyRecord) -> None:
    store.add_patient("P3")
    d0 = TODAY - dt.timedelta(days=28)
    record.record_outcome("P3", "tug", 14.0, measured_on=d0, population="knee-oa")
    record.record_outcome("P3", "tug", "12.5 s", measured_on=TODAY)
    record.record_outcome("P3", "rom", "90 deg", measured_on=d0, side="right")
    record.record_outcome("P3", "rom", "105 deg", measured_on=TODAY, side="right")
    with pytest.raises(OutcomeError, match=r"Timed Up and Go = 400 s is outside the valid "
                                           r"range 1 s \.\. 300 s"):
        record.record_outcome("P3", "tug", 400.0, measured_on=TODAY)
    with pytest.raises(OutcomeError, match="in the future"):
        record.record_outcome("P3", "tug", 10.0, measured_on=TODAY + dt.timedelta(days=9))
    with pytest.raises(OutcomeError, match="no published threshold for population 'icu'"):
        record.record_outcome("P3", "tug", 10.0, measured_on=TODAY, population="icu")
    with pytest.raises(StoreError, match="unknown patient"):
        record.record_outcome("P9", "tug", 10.0, measured_on=TODAY)
    assert _count(store, T.outcomes) == 4  # nothing from the refused entries
    tug = record.outcome_history("P3", "tug")
    assert tug.latest is not None and tug.latest.status == "improved"  # -1.5 s >= 1.14 s
    rom = record.outcome_history("P3", "rom", side="right")
    assert rom.latest is not None and rom.latest.status == "improved"  # 15 deg >= MDC 10
    assert {(h.instrument.key, h.side) for h in record.outcome_histories("P3")} == {
        ("tug", None), ("rom", "right")}
    first = record.list_outcomes("P3", "tug")[0]
    record.delete_outcome(first.id or 0)
    assert len(record.list_outcomes("P3", "tug")) == 1


def test_adherence_and_progression_from_recorded_sessions(store: Store,
                                                          record: TherapyRecord) -> None:
    """Three finished sessions at the target with comfort 7 raise the TKA target by 5 mA
    (rule: 2 sessions >= 90 % and comfort >= 5); the aborted one counts as partial."""
    store.add_patient("P4")
    rx = record.prescribe("P4", "total-knee-arthroplasty", side="right", start_date=TODAY,
                          max_amplitude=0.080, target_amplitude=0.040)
    names = ("quadriceps",)
    for amp in (0.038, 0.040, 0.041):
        _play(store, rx.program_version_id, "P4", names, amp, comfort=7)
    _play(store, rx.program_version_id, "P4", names, 0.020, comfort=3, status="aborted")
    sums = record.session_summaries(rx.id)
    assert [s.status for s in sums] == ["finished"] * 3 + ["aborted"]
    assert sums[0].contractions == 3 and sums[0].reached["quadriceps"] == pytest.approx(0.038)
    assert sums[0].comfort == 7
    assert sums[3].notes == ("skin check failed (quadriceps): redness",)
    adh = record.adherence(rx.id, as_of=TODAY)
    assert (adh.done, adh.partial, adh.expected) == (3, 1, 2)  # 14/week: 2 a day
    assert adh.mean_reached == pytest.approx(np.mean([0.95, 1.0, 1.025]))
    assert adh.contractions == 4 * 3
    # 2 a day (TKA): the dose cap refuses a further session today
    with pytest.raises(PrescriptionError, match=r"today's dose is done: 3 of 2 session\(s\) "
                                                r"a day"):
        record.check_session_allowed(rx.id)
    assert adh.weeks[0].done == 3 and adh.weeks[0].partial == 1
    assert record.review_progression(rx.id, as_of=TODAY) == []  # the aborted one holds it
    for amp in (0.039, 0.040):
        _play(store, rx.program_version_id, "P4", names, amp, comfort=6)
    adj = record.apply_progression(rx.id, as_of=TODAY, by="pt1")
    assert [(a.parameter, a.channel, a.old, a.new) for a in adj] == [
        ("amplitude", "quadriceps", pytest.approx(0.040), pytest.approx(0.045))]
    assert "2 sessions (#5, #6) reached >= 90% of 40 mA with comfort >= 5/10" in adj[0].reason
    rx2 = record.get_prescription(rx.id)
    assert rx2.targets["quadriceps"] == pytest.approx(0.045)
    saved = record.adjustments(rx.id)
    assert [(a.parameter, a.new, a.by) for a in saved] == [("amplitude", pytest.approx(0.045),
                                                            "pt1")]
    # the sessions before the change do not count again
    assert record.review_progression(rx.id, as_of=TODAY) == []


def test_weekly_progression_makes_a_new_program_version(store: Store,
                                                        record: TherapyRecord) -> None:
    """Shoulder subluxation: +15 min a week up to 60 (30-60 min/day, S25)."""
    store.add_patient("P5")
    start = TODAY - dt.timedelta(days=15)
    rx = record.prescribe("P5", "stroke-shoulder-subluxation", side="left", start_date=start)
    assert rx.state["minutes"] == 30
    adj = record.apply_progression(rx.id, as_of=TODAY)
    assert [(a.parameter, a.old, a.new) for a in adj] == [("minutes", 30, 60)]
    rx2 = record.get_prescription(rx.id)
    assert rx2.program_version_id != rx.program_version_id
    assert record.program(rx.id).duration_s == pytest.approx(3600)
    assert store.get_program(rx.program_name).version == 2


def _summary(i: int, day: dt.date, status: str, amp: float, comfort: float | None
             ) -> SessionSummary:
    t = dt.datetime.combine(day, dt.time(9, 0), tzinfo=dt.UTC) + dt.timedelta(minutes=i)
    return SessionSummary(i, t, status, 900.0, {"quadriceps": amp}, comfort, 15, 1)


def test_adherence_over_weeks_pure() -> None:
    """3 sessions a week prescribed for 6 weeks; week 1 all done, week 2 one done and one
    aborted: 4 of 6 expected by day 14."""
    d0 = dt.date(2026, 1, 5)
    sched = Schedule(1, 3, 6, d0)
    ss = [_summary(1, d0, "finished", 0.05, 6), _summary(2, d0 + dt.timedelta(days=2),
                                                          "finished", 0.05, 6),
          _summary(3, d0 + dt.timedelta(days=4), "finished", 0.055, 7),
          _summary(4, d0 + dt.timedelta(days=8), "finished", 0.05, 5),
          _summary(5, d0 + dt.timedelta(days=10), "aborted", 0.02, 2),
          _summary(6, d0 - dt.timedelta(days=3), "finished", 0.05, 5)]  # before the start
    a = adherence(sched, ss, {"quadriceps": 0.05}, d0 + dt.timedelta(days=13))
    assert (a.expected, a.done, a.partial) == (6, 4, 1)
    assert a.contractions == 5 * 15
    assert a.weeks_on_target == 0  # week 2 (complete on day 13) missed 2 sessions
    assert a.streak_days == 0  # nothing on day 12 or 13
    assert adherence(sched, ss, {}, d0 + dt.timedelta(days=8)).weeks_on_target == 1
    b = adherence(sched, ss, {"quadriceps": 0.05}, d0 + dt.timedelta(days=2))
    assert b.streak_days == 1 and b.weeks_on_target == 0
    assert adherence(sched, ss, {}, d0 + dt.timedelta(days=3)).streak_days == 1  # yesterday
    assert a.rate == pytest.approx(4 / 6)
    assert [(w.week, w.prescribed, w.done, w.partial) for w in a.weeks] == [
        (1, 3, 3, 0), (2, 3, 1, 1)]
    assert a.mean_reached == pytest.approx((1 + 1 + 1.1 + 1) / 4)
    assert a.mean_comfort == pytest.approx((6 + 6 + 7 + 5 + 2) / 5)
    assert a.minutes == pytest.approx(5 * 15)


def test_first_session_sets_the_tolerance_baseline() -> None:
    proto = get_protocol("total-knee-arthroplasty")
    state = {"targets": {"quadriceps": None}, "ceilings": {"quadriceps": 0.1},
             "base": {}, "changed": {}}
    d0 = dt.date(2026, 1, 5)
    adj = review_progression(proto, state, [_summary(1, d0, "finished", 0.032, 4)], d0, d0)
    assert [(a.old, a.new) for a in adj] == [(None, pytest.approx(0.032))]
    # the baseline is the level felt, not the highest one played: 32 mA reached at the end
    # of a contraction, 28 mA held without discomfort
    felt = replace(_summary(1, d0, "finished", 0.032, 4), tolerated={"quadriceps": 0.028})
    assert felt.felt("quadriceps") == 0.028
    adj = review_progression(proto, state, [felt], d0, d0)
    assert [(a.old, a.new) for a in adj] == [(None, pytest.approx(0.028))]
    # never beyond the ceiling
    state = {"targets": {"quadriceps": 0.098}, "ceilings": {"quadriceps": 0.1}, "base": {},
             "changed": {}}
    ss = [_summary(i, d0, "finished", 0.1, 8) for i in range(3)]
    adj = review_progression(proto, state, ss, d0, d0)
    assert [a.new for a in adj] == [pytest.approx(0.1)]
    # low comfort holds it back
    ss = [_summary(i, d0, "finished", 0.1, 3) for i in range(3)]
    assert review_progression(proto, state, ss, d0, d0) == []


def test_sessions_linked_by_meta_count(store: Store, record: TherapyRecord) -> None:
    """A session that played a copy of the program under another name still counts when its
    meta names the prescription (as the web app starts them)."""
    store.add_patient("P6")
    rx = record.prescribe("P6", "patellofemoral-pain", side="left", start_date=TODAY)
    other = store.save_program(record.program(rx.id).to_file_dict(), "copy").id
    w = store.begin_session("P6", other, "sim://", meta={"prescription_id": rx.id})
    w.finish()
    w = store.begin_session("P6", other, "sim://", meta={"prescription_id": rx.id + 1})
    w.finish()
    assert [s.status for s in record.session_summaries(rx.id)] == ["finished"]


def test_tables_match_the_revision(store: Store, record: TherapyRecord) -> None:
    """Alembic's comparison finds no difference between ``_tables`` and the store's revisions
    that made them, foreign keys included (the whole database is compared in
    ``tests/store/test_engine.py``)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from opennmes.store import metadata

    def ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
             ) -> bool:
        if type_ == "table":
            return bool(name and name.startswith("therapy_"))
        return True

    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "include_object": ours})
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_summary_reads_the_runner_dose_record(store: Store, record: TherapyRecord) -> None:
    """With the session runner's dose record (``opennmes.session.session_dose``) the summary
    takes its peak amplitude, contractions (trains of at least half the planned contraction),
    charge and output time; without it they come from the pulses."""
    from dataclasses import asdict

    from opennmes.session import DOSE_FORMAT, session_dose

    store.add_patient("P9")
    rx = record.prescribe("P9", "patellofemoral-pain", side="left", start_date=TODAY)
    sid = _play(store, rx.program_version_id, "P9", ("quadriceps",), 0.050, comfort=6)
    plain = summarise_session(store.load_session(sid))
    assert plain.contractions == 3
    assert plain.charge == pytest.approx(150 * 0.050 * 300e-6)  # 3 trains x 50 pulses
    assert plain.stim_time == pytest.approx(3.0, abs=0.01)
    # a second session whose runner wrote its dose: one train is too short to count
    w = store.begin_session("P9", rx.program_version_id, "sim://")
    t = np.concatenate([np.arange(0, 9.0, 0.025), 20 + np.arange(0, 1.0, 0.025)])
    pulses = PulseSchedule.from_arrays(np.round(t, 6), 0.060, 300e-6,
                                       channel_names=("quadriceps",))
    w.write_pulses(pulses)
    recs = session_dose(pulses, {"quadriceps": 45e-4}, {"quadriceps": 0.025},
                        {"quadriceps": 10.0}, {"quadriceps": 0.060}, {"quadriceps": 0.060})
    w.set_dose({"format": DOSE_FORMAT, "complete": True,
                "channels": [asdict(r) for r in recs]})
    w.finish()
    s = summarise_session(store.load_session(w.id))
    assert s.contractions == 1  # the 1 s train is under half of the planned 10 s
    assert s.reached == {"quadriceps": pytest.approx(0.060)}
    assert s.tolerated == {"quadriceps": pytest.approx(0.060)}  # 9 s held: felt
    assert plain.tolerated is None and plain.felt("quadriceps") == plain.reached["quadriceps"]
    assert s.charge == pytest.approx(len(t) * 0.060 * 300e-6)


def test_triggered_minutes_progress_without_a_new_program(store: Store,
                                                          record: TherapyRecord) -> None:
    """Drop foot: the time of use builds up weekly (+15 min, up to 120); the session program
    (bursts only when the heel switch asks) lasts the prescribed minutes, so each step is a
    new program version with the new duration and the same burst."""
    store.add_patient("P10")
    rx = record.prescribe("P10", "drop-foot-fes", side="left",
                          start_date=TODAY - dt.timedelta(days=14))
    assert rx.state["minutes"] == 30
    adj = record.apply_progression(rx.id, as_of=TODAY)
    assert [(a.parameter, a.old, a.new) for a in adj] == [("minutes", 30, 60)]
    rx2 = record.get_prescription(rx.id)
    assert rx2.state["minutes"] == 60 and rx2.program_version_id != rx.program_version_id
    from opennmes.stim import program_from_dict

    old = program_from_dict(store.get_program_version(rx.program_version_id).document)
    new = program_from_dict(store.get_program_version(rx2.program_version_id).document)
    assert (old.duration_s, new.duration_s) == (30 * 60.0, 60 * 60.0)
    assert new.channels == old.channels


def test_a_session_is_done_only_when_its_dose_was_given(store: Store,
                                                          record: TherapyRecord) -> None:
    """Two sessions stopped on purpose after 1 of 3 contractions are partial, not done (the
    finding: they made the patient's page say "all of today's sessions"); the one that gave
    its 3 contractions is done; the therapist's test run is recorded but does not count. The
    session record keeps the plan and the share delivered."""
    from opennmes.devices import VirtualClock, open_stimulator
    from opennmes.session import ScriptedOperator, start_session
    from opennmes.stim import load_program_text

    store.add_patient("P7")
    rx = record.prescribe("P7", "total-knee-arthroplasty", side="right", start_date=TODAY,
                          max_amplitude=0.080, target_amplitude=0.040)
    prog = load_program_text("""
name: short
channels:
  - name: quadriceps
    electrode: {area: 50 cm2, site: quadriceps, side: right}
    frequency: 40 Hz
    pulse_width: 300 us
    amplitude: 40 mA
    ramp_up: 0.5 s
    on: 1 s
    ramp_down: 0.5 s
    off: 2 s
repetitions: 3
""")
    for stop_at, test in ((2.5, False), (None, False), (2.5, False), (None, True)):
        meta = {"prescription_id": rx.id} | ({"test_run": True} if test else {})
        with open_stimulator("sim://", clock=VirtualClock()) as stim:
            runner = start_session(store, "P7", prog, stim, meta=meta, chunk=0.05)
            runner.add_hook(ScriptedOperator.titrate(["quadriceps"], {"quadriceps": 0.04},
                                                     0.04, 0.0, 0.05))
            if stop_at is not None:
                runner.add_hook(ScriptedOperator([(stop_at, "stop", ())]))
            res = runner.run()
        assert res.status == "finished"  # stopped on purpose or completed: both "finished"
    sums = [s for s in record.session_summaries(rx.id)]
    assert [s.share for s in sums] == [pytest.approx(1 / 3), 1.0, pytest.approx(1 / 3)]
    assert [s.completed for s in sums] == [False, True, False]
    assert [s.partial for s in sums] == [True, False, True]
    dose = store.load_session(sums[1].session_id).dose
    assert dose["planned"] == {"quadriceps": {"contractions": 3,
                                              "stim_time": pytest.approx(6.0, abs=0.1)}}
    adh = record.adherence(rx.id, as_of=TODAY)
    assert (adh.done, adh.partial) == (1, 2)  # the therapist's test run is kept apart
    assert len(store.list_sessions(patient_id="P7")) == 4
    # one done of the two a day: another session is allowed today
    assert record.check_session_allowed(rx.id) == 1
