"""The Stimulator lifecycle, the registry and sim:// (virtual clock, injected patient)."""

from __future__ import annotations

import gc
import time
from typing import Any

import numpy as np
import pytest

from opennmes.devices import (
    KNOWN_USB_IDS,
    SCHEMES,
    DeviceState,
    Played,
    Stimulator,
    Stopped,
    VirtualClock,
    list_ports,
    open_stimulator,
)
from opennmes.errors import DeviceError, ProgramError, SafetyLimitError
from opennmes.signals import Signals
from opennmes.stim import Program, PulseSchedule, load_program_text

from .conftest import RS2_PROGRAM


def test_unknown_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(DeviceError, match="unknown stimulator URL scheme 'usb'.*sim://.*"
                                          "rehastim2://.*p24://"):
        open_stimulator("usb://dev/x")
    assert set(SCHEMES) == {"sim", "rehastim2", "p24"}


def test_hardware_needs_a_port_and_refuses_a_virtual_clock() -> None:
    with pytest.raises(DeviceError, match="give the serial port"):
        open_stimulator("rehastim2://")
    with pytest.raises(DeviceError, match="virtual clock is only for sim://"):
        open_stimulator("p24:///dev/ttyACM0", clock=VirtualClock())


def test_known_usb_ids_and_port_listing() -> None:
    assert KNOWN_USB_IDS[(0x0483, 0x5740)] == "p24"  # STM32 VCP of the P24 (reference §1)
    assert KNOWN_USB_IDS[(0x0403, 0x6001)] == "rehastim2"  # FTDI (PDF §2.1)
    assert isinstance(list_ports(), list)


def test_lifecycle_is_idempotent_and_ends_at_zero(rs2_program: Program) -> None:
    clock = VirtualClock()
    stim = open_stimulator("sim://", clock=clock)
    with pytest.raises(DeviceError, match="cannot deliver while open"):
        stim.deliver(rs2_program.expand())
    stim.configure(rs2_program)
    stim.start()
    stim.deliver(rs2_program.expand().window(0, 0.5), until=0.5)
    stim.stop()
    stim.stop()
    assert stim.state == "stopped"
    assert [type(e) for e in stim.events() if isinstance(e, Stopped)] == [Stopped]
    stim.close()
    stim.close()
    assert stim.state == "closed" and stim.state is DeviceState.CLOSED


def test_leaving_a_stimulator_open_warns() -> None:
    stim = open_stimulator("sim://", clock=VirtualClock())
    with pytest.warns(ResourceWarning, match="left open"):
        del stim
        gc.collect()


def test_virtual_clock_runs_faster_than_real_time_and_delivers_exactly(
        rs2_program: Program, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a virtual clock nothing waits for real time (no real sleep at all, asserted on the
    calls, not on a wall-clock figure), the clock ends exactly where the program does and
    every pulse is delivered."""
    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(seconds)

    clock = VirtualClock()
    sched = rs2_program.expand()
    with open_stimulator("sim://", clock=clock) as stim:
        stim.configure(rs2_program)
        stim.start()
        monkeypatch.setattr(time, "sleep", sleep)
        for i in range(12):
            stim.deliver(sched.window(i / 10, (i + 1) / 10), until=(i + 1) / 10)
        monkeypatch.setattr(time, "sleep", real_sleep)
        delivered = stim.delivered()
    assert [s for s in slept if s > 0] == []
    assert clock.now() == pytest.approx(1.2)
    assert delivered.equals(sched)


def test_guard_stops_the_output_and_raises(rs2_program: Program) -> None:
    with open_stimulator("sim://", clock=VirtualClock()) as stim:
        stim.configure(rs2_program)
        stim.start()
        with pytest.raises(SafetyLimitError, match="amplitude"):
            stim.deliver(rs2_program.expand().window(0, 0.5).scaled(20.0), until=0.5)
        assert stim.state == "stopped"
        assert len(stim.delivered()) == 0


def test_chunks_out_of_order_are_refused(rs2_program: Program) -> None:
    sched = rs2_program.expand()
    with open_stimulator("sim://", clock=VirtualClock()) as stim:
        stim.configure(rs2_program)
        stim.start()
        stim.deliver(sched.window(0.5, 0.6), until=0.6)
        with pytest.raises((ProgramError, SafetyLimitError)):
            stim.deliver(sched.window(0.0, 0.1), until=0.7)


class FakeStream:
    """A patient stream that records what it was given and returns one force channel."""

    def __init__(self, sfreq: float) -> None:
        self.sfreq = sfreq
        self.calls: list[tuple[int, float]] = []
        self.t = 0.0

    def advance(self, chunk: PulseSchedule, until: float) -> Signals:
        self.calls.append((len(chunk), until))
        n = int(round((until - self.t) * self.sfreq))
        sig = Signals(np.full((1, n), float(len(chunk))), self.sfreq, ("force",), ("N",),
                      self.t)
        self.t = until
        return sig


class FakePatient:
    def __init__(self) -> None:
        self.stream: FakeStream | None = None

    def start(self, *, sfreq: float, seed: int | None = None, **kw: Any) -> FakeStream:
        self.stream = FakeStream(sfreq)
        return self.stream


def test_injected_patient_gets_every_chunk_and_signals_stream(rs2_program: Program) -> None:
    patient = FakePatient()
    seen: list[Played] = []
    sched = rs2_program.expand()
    with open_stimulator("sim://", clock=VirtualClock(), patient=patient, sfreq=100.0) as stim:
        stim.add_listener(lambda e: seen.append(e) if isinstance(e, Played) else None)
        stim.configure(rs2_program)
        stim.start()
        for i in range(4):
            stim.deliver(sched.window(i / 10, (i + 1) / 10), until=(i + 1) / 10)
        sig = stim.signals()  # type: ignore[attr-defined]
    assert patient.stream is not None
    assert [u for _, u in patient.stream.calls] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert sum(n for n, _ in patient.stream.calls) == len(sched.window(0, 0.4))
    assert sig.data.shape == (1, 40) and len(seen) == 4
    assert seen[1].pulses.t.min() >= 0.1 and seen[1].signals.t0 == pytest.approx(0.1)


def test_preset_patient_responds_with_force_angle_and_emg() -> None:
    prog = load_program_text(RS2_PROGRAM.replace("name: quad", "name: right quadriceps"))
    with open_stimulator("sim://healthy-adult?sfreq=500&seed=3", clock=VirtualClock()) as stim:
        stim.configure(prog)
        stim.start()
        sched = prog.expand()
        for i in range(6):
            stim.deliver(sched.window(i / 10, (i + 1) / 10), until=(i + 1) / 10)
        sig = stim.signals()  # type: ignore[attr-defined]
    names = list(sig.names)
    assert any(n.endswith(".angle") for n in names) and any(n.endswith(".emg") for n in names)
    force = sig.data[names.index("quadriceps.force")]
    assert sig.data.shape[1] == 300 and force.max() > 1.0  # newtons, during the contraction


def test_patient_needs_a_sampling_rate() -> None:
    with pytest.raises(DeviceError, match="sampling rate"):
        open_stimulator("sim://healthy-adult")


def test_set_intensity_holds_until_the_stream_changes(rs2_program: Program) -> None:
    sched = rs2_program.expand()
    with open_stimulator("sim://", clock=VirtualClock()) as stim:
        stim.configure(rs2_program)
        stim.start()
        stim.deliver(sched.window(0, 0.3), until=0.3)
        stim.set_intensity("ham", 0.005)
        stim.deliver(sched.window(0.3, 0.6), until=0.6)
        ham = stim.delivered().for_channel("ham")
    np.testing.assert_allclose(ham.amplitude[ham.t < 0.3], 0.012)
    np.testing.assert_allclose(ham.amplitude[ham.t >= 0.3], 0.005)


def test_single_pulses_pass_the_guard(rs2_program: Program) -> None:
    with open_stimulator("sim://", clock=VirtualClock()) as stim:
        with pytest.raises(SafetyLimitError, match="amplitude"):
            stim.single_pulse("ch1", 0.5, 300e-6)  # 500 mA
        stim.single_pulse("ch2", 0.010, 300e-6)
        stim.configure(rs2_program)
        stim.single_pulse("ham", 0.012, 200e-6)
        singles = stim.single_pulses()
    assert list(singles.channel) == [1, 1] and len(singles) == 2
    np.testing.assert_allclose(singles.amplitude, [0.010, 0.012])


def test_sim_runs_in_real_time_with_the_real_clock(rs2_program: Program) -> None:
    sched = rs2_program.expand()
    with open_stimulator("sim://") as stim:
        stim.configure(rs2_program)
        stim.start()
        t = time.monotonic()
        for i in range(3):
            stim.deliver(sched.window(i / 10, (i + 1) / 10), until=(i + 1) / 10)
        elapsed = time.monotonic() - t
        stim.finish()
    # a real clock can only be late, never early: 0.3 s of pulses take at least about 0.3 s
    # (no upper bound: a loaded machine may take longer)
    assert elapsed > 0.29


def test_a_backend_that_misses_a_hook_cannot_be_constructed() -> None:
    """Stimulator is an ABC: a missing hook fails at construction, not at the first pulse."""

    class Half(Stimulator):
        kind = "half"

        def _open(self) -> None:
            pass

    with pytest.raises(TypeError, match="abstract.*_deliver"):
        Half("half://")
    from opennmes.devices.sciencemode2._driver import RehaStim2
    from opennmes.devices.sciencemode4._driver import P24
    from opennmes.devices.sim._sim import SimStimulator

    for cls in (SimStimulator, RehaStim2, P24):  # every real backend has all its hooks
        assert cls.__abstractmethods__ == frozenset()
