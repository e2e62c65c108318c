"""realtime(): raises scheduling where permitted, keeps the collector out, always restores."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading

import pytest

from opennmes.devices import _realtime as rt
from opennmes.devices import realtime
from opennmes.devices._realtime import device_thread, ordinary_priority

linux = pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="Linux scheduling API")


def _sched(tid: int = 0) -> tuple[int, int, int]:
    return (os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority,
            os.getpriority(os.PRIO_PROCESS, tid))


def _may_fifo() -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, OSError):
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


def _snapshot() -> tuple[object, ...]:
    return (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled(),
            sys.getswitchinterval())


@linux
def test_everything_is_restored_after_the_block() -> None:
    before_sched, before_gc = _sched(), _snapshot()
    with realtime(priority=5, gc_threshold=12_345, switch_interval=0.001) as state:
        assert gc.get_threshold()[0] == 12_345
        assert sys.getswitchinterval() == pytest.approx(0.001)
        assert state.gc_frozen > 0 and gc.get_freeze_count() > 0
        if state.scheduling == "fifo":
            assert _sched()[:2] == (os.SCHED_FIFO, 5)
        elif state.scheduling == "nice":
            assert _sched()[2] == -10
    assert _sched() == before_sched
    assert _snapshot() == before_gc


class _Parked:
    """A thread that waits until released; optionally marked as a device thread."""

    def __init__(self, device: bool) -> None:
        self.go, self.ready = threading.Event(), threading.Event()
        self.tid = 0
        self.device = device
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        assert self.ready.wait(5.0)

    def _run(self) -> None:
        self.tid = threading.get_native_id()
        if self.device:
            with device_thread():
                self.ready.set()
                self.go.wait(5.0)
        else:
            self.ready.set()
            self.go.wait(5.0)

    def release(self) -> None:
        self.go.set()
        self.thread.join()


@linux
@pytest.mark.parametrize("scope", ["device", "process"])
def test_threads_are_raised_by_scope_then_restored(scope: str) -> None:
    if not _may_fifo():
        pytest.skip("SCHED_FIFO is not permitted here (covered by the degradation tests)")
    dev, other = _Parked(device=True), _Parked(device=False)
    inside: _Parked | None = None
    try:
        before = {t: _sched(t) for t in (dev.tid, other.tid)}
        with realtime(priority=7, scope=scope) as state:
            assert state.scheduling == "fifo"
            assert _sched()[:2] == (os.SCHED_FIFO, 7)
            assert _sched(dev.tid)[:2] == (os.SCHED_FIFO, 7)
            if scope == "process":
                assert _sched(other.tid)[:2] == (os.SCHED_FIFO, 7)
            else:  # e.g. a web server thread in the same process keeps its priority
                assert _sched(other.tid) == before[other.tid]
            inside = _Parked(device=False)
            assert _sched(inside.tid)[:2] == (os.SCHED_FIFO, 7)  # inherited from its creator
        assert {t: _sched(t) for t in (dev.tid, other.tid)} == before
        assert _sched(inside.tid)[0] == os.SCHED_OTHER  # started inside: back to default
    finally:
        for t in (dev, other, inside):
            if t is not None:
                t.release()


@linux
def test_a_higher_priority_is_never_lowered() -> None:
    if not _may_fifo():
        pytest.skip("SCHED_FIFO is not permitted here")
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(30))
    try:
        with realtime(priority=10):
            assert _sched()[:2] == (os.SCHED_FIFO, 30)
        assert _sched()[:2] == (os.SCHED_FIFO, 30)
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


@linux
def test_restored_when_the_block_raises() -> None:
    before_sched, before_gc = _sched(), _snapshot()
    with pytest.raises(KeyError), realtime():
        raise KeyError("boom")
    assert _sched() == before_sched
    assert _snapshot() == before_gc


def test_nothing_permitted_degrades_to_default_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse, raising=False)
    monkeypatch.setattr(os, "setpriority", refuse, raising=False)
    before_gc = _snapshot()
    ran = False
    with caplog.at_level(logging.WARNING, logger=rt.__name__), realtime() as state:
        ran = True
        assert state.scheduling == "default" and state.threads == 0
        assert gc.get_freeze_count() > 0  # the collector hints need no permission
    assert ran
    assert any("SCHED_FIFO 10 not permitted" in n for n in state.notes)
    assert any("nice -10 not permitted" in n for n in state.notes)
    assert "not permitted" in caplog.text
    assert _snapshot() == before_gc


@linux
def test_falls_back_to_nice_when_fifo_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.sched_setscheduler

    def no_fifo(tid: int, policy: int, param: os.sched_param) -> None:
        if policy == os.SCHED_FIFO:
            raise PermissionError(1, "Operation not permitted")
        real(tid, policy, param)

    monkeypatch.setattr(os, "sched_setscheduler", no_fifo)
    before = _sched()
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -1)
        os.setpriority(os.PRIO_PROCESS, 0, before[2])
    except OSError:
        pytest.skip("negative nice values are not permitted here")
    with realtime(nice=-5) as state:
        assert state.scheduling == "nice" and state.priority == -5
        assert _sched()[2] == -5
    assert _sched() == before


def test_a_missing_scheduling_api_degrades(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("sched_getscheduler", "sched_setscheduler", "SCHED_FIFO"):
        monkeypatch.delattr(os, name, raising=False)
    with realtime() as state:
        assert state.scheduling == "default"


def test_an_earlier_freeze_is_left_alone() -> None:
    gc.freeze()
    try:
        n = gc.get_freeze_count()
        with realtime(priority=0, nice=0) as state:
            assert state.gc_frozen == 0
            assert any("already frozen" in m for m in state.notes)
        assert gc.get_freeze_count() == n
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("kw, word", [({"nice": 5}, "nice = 5"), ({"priority": -1}, "priority"),
                                      ({"gc_threshold": 0}, "gc_threshold"),
                                      ({"scope": "all"}, "scope"),
                                      ({"switch_interval": 1.0}, "switch_interval")])
def test_invalid_arguments_raise_before_changing_anything(kw: dict[str, float],
                                                          word: str) -> None:
    before = _snapshot()
    with pytest.raises(ValueError, match=word), realtime(**kw):  # type: ignore[arg-type]
        pass
    assert _snapshot() == before


@linux
def test_driver_and_emulator_threads_are_device_threads() -> None:
    from opennmes.devices import open_stimulator
    from opennmes.devices.sciencemode4 import P24Emulator

    if not _may_fifo():
        pytest.skip("SCHED_FIFO is not permitted here")
    with P24Emulator() as emu, open_stimulator(f"p24://{emu.port}") as stim:
        names = {"p24 emulator", f"serial {emu.port}", f"keep-alive {emu.port}"}
        threads = [t for t in threading.enumerate() if t.name in names]
        assert len(threads) == 3
        tids = [t.native_id for t in threads]
        assert all(t in rt._DEVICE_THREADS for t in tids)
        with realtime(priority=6):
            assert all(_sched(t)[:2] == (os.SCHED_FIFO, 6) for t in tids if t is not None)
            assert stim.state == "open"
        assert all(_sched(t)[0] == os.SCHED_OTHER for t in tids if t is not None)
    assert not set(tids) & rt._DEVICE_THREADS


@linux
def test_a_background_thread_can_step_down_from_the_inherited_priority() -> None:
    if not _may_fifo():
        pytest.skip("SCHED_FIFO is not permitted here")
    seen: dict[str, object] = {}

    def recorder() -> None:
        seen["inherited"] = _sched()[0]
        seen["changed"] = ordinary_priority()
        seen["now"] = _sched()[0]
        seen["again"] = ordinary_priority()

    with realtime(priority=4):
        th = threading.Thread(target=recorder)
        th.start()
        th.join()
    assert seen == {"inherited": os.SCHED_FIFO, "changed": True, "now": os.SCHED_OTHER,
                    "again": False}


def test_stepping_down_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getscheduler", raising=False)
    assert ordinary_priority() is False
