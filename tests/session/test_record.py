"""A recorded session: checks before anything is written, the stored record (events,
delivered pulses, signals, dose), and bad input that writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opennmes.devices import VirtualClock, open_stimulator
from opennmes.errors import ContraindicationError, SafetyLimitError, StoreError
from opennmes.physiology import get_preset
from opennmes.report.session_report import contraction_peaks, write_session_report
from opennmes.session import ScriptedOperator, start_session
from opennmes.store import Store, open_store

from .conftest import RELAXED, backend, make_program


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(f"sqlite:///{tmp_path / 'sessions.db'}")
    s.add_patient("P1")
    s.add_patient("P-pacer", contraindications=[{"factor": "pacemaker", "site": None}])
    yield s
    s.close()


def _nothing_written(store: Store) -> None:
    info = store.info()
    assert info["sessions"] == 0 and info["program_versions"] == 0 and info["events"] == 0


def test_recorded_session_on_a_virtual_patient(store: Store, tmp_path: Path) -> None:
    prog = make_program(reps=3, on=2.0, off=3.0, amplitude="60 mA")
    patient = get_preset("post-surgery").isometric()
    with open_stimulator("sim://?sfreq=100&emg=0", clock=VirtualClock(), patient=patient,
                         seed=3) as stim:
        runner = start_session(store, "P1", prog, stim, chunk=0.05, step=2e-3)
        runner.add_hook(ScriptedOperator.titrate(["quad"], {"quad": 0.05}, 2e-3, 0.0, 0.1))
        runner.add_hook(ScriptedOperator([(4.0, "rate_comfort", (6,))]))
        res = runner.run()
    assert res.status == "finished" and res.session_id is not None
    rec = store.load_session(res.session_id)
    assert rec.info.status == "finished" and rec.info.end_reason.startswith("completed")
    assert rec.pulses.equals(res.delivered, atol_t=1e-9, atol_a=1e-12)
    kinds = [e.kind for e in rec.events]
    assert kinds[0] == "start" and kinds[-1] == "stop" and "comfort" in kinds
    assert kinds.count("intensity") == 25
    assert rec.dose is not None and rec.dose["complete"] is True
    ch = rec.dose["channels"][0]
    assert ch["pulses"] == len(res.delivered) and ch["contractions"] == 3
    assert ch["max_level"] == pytest.approx(0.05)
    sig = rec.streams["patient"]
    assert sig.sfreq == 100.0 and sig.n_samples == pytest.approx(res.duration * 100, abs=2)
    force = sig["quadriceps.force"]
    assert force.max() > 1.0  # the virtual quadriceps contracted
    peaks = contraction_peaks(rec)
    assert len(peaks) == 3
    assert store.verify_session(res.session_id, decode=True) == []
    html = write_session_report(rec, tmp_path / "r.html").read_text()
    for part in ("Amplitude and force", "Fatigue", "Dose delivered", "Events", "Comfort rated 6",
                 "data:image/png;base64,"):
        assert part in html


def test_unknown_patient_writes_nothing(store: Store) -> None:
    with backend("sim") as (stim, _):
        with pytest.raises(StoreError, match="unknown patient 'nobody'"):
            start_session(store, "nobody", make_program(), stim)
    _nothing_written(store)


def test_contraindication_blocks_before_anything_is_written(store: Store) -> None:
    with backend("sim") as (stim, _):
        with pytest.raises(ContraindicationError, match="pacemaker"):
            start_session(store, "P-pacer", make_program(), stim)
        assert stim.state == "open"  # never configured, never started
    _nothing_written(store)


def test_screening_block_lifted_by_a_recorded_decision(store: Store) -> None:
    with backend("sim") as (stim, _):
        runner = start_session(store, "P-pacer", make_program(), stim,
                               screening_acknowledged={"pacemaker": "cardiology cleared "
                                                                    "lower-limb NMES"})
        res = runner.run()
    info = store.get_session(res.session_id)  # type: ignore[arg-type]
    assert any("acknowledged" in s for s in info.meta["screening"])


def test_program_failing_the_device_guard_writes_nothing(store: Store) -> None:
    """600 us phases pass the sim profile but not the RehaStim 2's 500 us maximum."""
    prog = make_program(pulse_width="600 us")
    with backend("rehastim2") as (stim, emu):
        with pytest.raises(SafetyLimitError, match="phase"):
            start_session(store, "P1", prog, stim)
        assert emu.record.schedule().t.size == 0
    _nothing_written(store)
    with backend("sim") as (stim, _):  # the same program is fine on sim://
        start_session(store, "P1", prog, stim).run()


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")


def test_delivered_pulses_written_while_running(store: Store) -> None:
    """The record holds the acknowledged pulses in time order, in several chunks."""
    prog = make_program(reps=2, on=1.0)
    with backend("rehastim2") as (stim, _):
        runner = start_session(store, "P1", prog, stim, stall_margin=RELAXED)
        for _ in range(20):
            runner.increase()
        res = runner.run()
    rec = store.load_session(res.session_id)  # type: ignore[arg-type]
    assert len(rec.pulses) == len(res.delivered) > 0
    np.testing.assert_allclose(rec.pulses.t, res.delivered.t)


def test_a_device_that_does_not_start_leaves_an_aborted_record(store: Store) -> None:
    """The device refuses to start: nothing was delivered, and the record says so at once
    (aborted, the reason in a device_error event and the stop) rather than staying running
    until a later open marks it interrupted."""
    from opennmes.errors import DeviceError

    with backend("sim") as (stim, _):
        runner = start_session(store, "P1", make_program(), stim)

        def refuse() -> None:
            raise DeviceError("no answer to the start command")

        stim._start = refuse  # type: ignore[method-assign]
        res = runner.run()
    assert res.status == "aborted" and res.how == "device_error"
    assert res.reason == "the device did not start: no answer to the start command"
    assert len(res.delivered) == 0
    info = store.get_session(res.session_id)  # type: ignore[arg-type]
    assert info.status == "aborted" and "did not start" in (info.end_reason or "")
    kinds = [e.kind for e in store.load_session(res.session_id).events]  # type: ignore[arg-type]
    assert kinds == ["device_error", "stop"]


def test_the_programs_acknowledgements_are_kept_with_the_session(store: Store) -> None:
    """An advisory lifted in the program is recorded with the session: limit, reason, who."""
    from opennmes.stim import load_program_text

    from .conftest import program_text

    text = program_text(amplitude="60 mA").replace("area: 50 cm2", "area: 2 cm2") + (
        "acknowledgements:\n  - {limit: rms_current_density, reason: 'motor point electrode, "
        "skin checked every 5 min', by: J. Doe PT}\n")
    prog = load_program_text(text)
    with backend("sim") as (stim, _):
        res = start_session(store, "P1", prog, stim).run()
    info = store.get_session(res.session_id)  # type: ignore[arg-type]
    assert info.meta["acknowledgements"] == [
        {"limit": "rms_current_density", "reason": "motor point electrode, skin checked every "
         "5 min", "by": "J. Doe PT"}]
    assert res.status == "finished" and len(res.delivered) == 0  # intensity stayed at 0 mA


@pytest.mark.parametrize("kind", ["rehastim2", "p24"])
def test_a_device_that_freezes_ends_the_session_and_the_record_holds_what_it_confirmed(
        store: Store, kind: str) -> None:
    """The emulated device hangs 1.5 s into a continuous program: the session ends aborted
    with the device's silence as the reason, at zero output; the stored pulses and the dose
    are what the device confirmed, and the pulses it did not are counted in an event."""
    prog = make_program(reps=1, on=6.0, off=1.0, amplitude="20 mA", frequency="40 Hz",
                        ramp=0.0)
    frozen: list[float] = []

    def freeze(runner: object, t: float) -> None:
        if t >= 1.5 and not frozen:
            frozen.append(t)
            emu.freeze(1.0)

    with backend(kind) as (stim, emu):
        runner = start_session(store, "P1", prog, stim, chunk=0.05, step=2e-3,
                               stall_margin=RELAXED)
        runner.add_hook(ScriptedOperator.titrate(["quad"], {"quad": 0.02}, 2e-3, 0.0, 0.05))
        runner.add_hook(freeze)
        res = runner.run()
        emu_zero = emu.output_is_zero
    assert res.status == "aborted" and res.how == "device_error", (res.how, res.reason)
    assert "stopped answering" in res.reason
    assert emu_zero
    rec = store.load_session(res.session_id)
    assert rec.info.status == "aborted"
    assert rec.pulses.equals(res.delivered, atol_t=1e-9, atol_a=1e-12)
    assert rec.dose["channels"][0]["pulses"] == len(res.delivered) > 0
    unconf = [e for e in rec.events if e.kind == "unconfirmed"]
    assert len(unconf) == 1 and unconf[0].data["pulses"]["quad"] == len(res.unconfirmed) > 0
    # nothing counts as delivered after the device's last confirmation, and the pulses sent
    # after it are unconfirmed; a period before it whose update the pty may have delayed (a
    # loaded machine) can be unconfirmed too, so the event's first pulse may be earlier
    after = unconf[0].data["after"]
    assert res.delivered.t.max() <= after + 1e-9
    assert res.unconfirmed.t.max() > after and unconf[0].data["end"] > after
    # the device's last confirmation is before the freeze; nothing after it counts
    assert res.delivered.t.max() < frozen[0] + 0.05
