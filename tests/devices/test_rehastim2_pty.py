"""End to end through pyserial and a real pseudo-terminal into the RehaStim 2 emulator."""

from __future__ import annotations

import time

import numpy as np
import pytest

from opennmes.devices import open_stimulator
from opennmes.devices.sciencemode2 import RehaStim2Emulator
from opennmes.devices.sciencemode2._emulator import SLOT
from opennmes.errors import DeviceError, ProgramError
from opennmes.stim import Program, load_program_text

from .conftest import RS2_PROGRAM, diff, nonzero


def test_program_starts_updates_stops_and_record_equals_schedule(
        rs2_program: Program, rs2_emulator: RehaStim2Emulator) -> None:
    names = rs2_program.channel_names
    with open_stimulator(f"rehastim2://{rs2_emulator.port}") as stim:
        stim.configure(rs2_program)
        stim.start()
        sched = stim.quantize(rs2_program.expand())
        for i in range(12):
            # the last window reaches one period past the end: output is zero before stop()
            stim.deliver(sched.window(i / 10, (i + 1) / 10), until=(i + 1) / 10 + (i == 11) / 25)
        stim.stop()
        delivered = stim.delivered()
        commands = stim._plan.commands  # type: ignore[attr-defined]
    assert rs2_emulator.output_is_zero
    record = rs2_emulator.record.schedule(names, {0: 0, 1: 1})
    expected = nonzero(sched)
    # the host's record of what it commanded equals what the device did, to the nanosecond
    assert record.equals(delivered, atol_t=1e-9, atol_a=1e-12), diff(record, delivered)
    # and equals the schedule: same pulses and shapes; each channel in its 1.5 ms slot
    assert len(record) == len(expected) == 44
    np.testing.assert_array_equal(record.channel, expected.channel)
    np.testing.assert_allclose(record.amplitude, expected.amplitude, atol=1e-12)
    np.testing.assert_allclose(record.phase_width, expected.phase_width, atol=1e-12)
    np.testing.assert_allclose(record.t - expected.t, expected.channel * SLOT, atol=2e-6)
    assert commands >= 8  # the ramps were streamed as updates
    assert rs2_emulator.starts == 1


def test_single_pulse_and_wrong_mode(rs2_program: Program,
                                     rs2_emulator: RehaStim2Emulator) -> None:
    with open_stimulator(f"rehastim2://{rs2_emulator.port}") as stim:
        stim.single_pulse("ch3", 0.015, 200e-6)
        stim.configure(rs2_program)
        # on a configured channel a single pulse is bounded by the program's amplitude
        from opennmes.errors import SafetyLimitError

        with pytest.raises(SafetyLimitError, match=r"single_pulse\('ham'\): intensity = 20 mA "
                                                   r"is outside 0 to 12 mA"):
            stim.single_pulse("ham", 0.020, 300e-6)
        stim.single_pulse("ham", 0.010, 300e-6)
        assert stim.get_stimulation_mode() == 0  # type: ignore[attr-defined]
        singles = stim.single_pulses()
    rec = rs2_emulator.single_record.schedule()
    assert list(rec.channel) == [2, 1]
    np.testing.assert_allclose(rec.amplitude, [0.015, 0.010])
    np.testing.assert_allclose(rec.phase_width, [200e-6, 300e-6])
    assert len(singles) == 2


def test_guard_refuses_before_the_device_sees_the_chunk(
        rs2_program: Program, rs2_emulator: RehaStim2Emulator) -> None:
    from opennmes.errors import SafetyLimitError

    with open_stimulator(f"rehastim2://{rs2_emulator.port}") as stim:
        stim.configure(rs2_program)
        stim.start()
        sched = stim.quantize(rs2_program.expand()).window(0, 0.2)
        with pytest.raises(SafetyLimitError):
            stim.deliver(sched.scaled(10.0))  # 300 mA
        assert stim.state == "stopped"
    assert len(rs2_emulator.record) == 0 and rs2_emulator.output_is_zero


@pytest.mark.parametrize(("change", "match"), [
    (("25 Hz", "35 Hz", 1), "t1 = 1 ms \\+ n x 0.5 ms.*Nearest"),
    (("frequency: 25 Hz\n    pulse_width: 200", "frequency: 20 Hz\n    pulse_width: 200", 1),
     "one main rate"),
    (("interphase_gap: 100 us", "interphase_gap: 0 us", 1), "fixed 100 us gap"),
])
def test_programs_the_device_cannot_represent_are_refused(
        rs2_emulator: RehaStim2Emulator, change: tuple[str, str, int], match: str) -> None:
    prog = load_program_text(RS2_PROGRAM.replace(*change))
    with open_stimulator(f"rehastim2://{rs2_emulator.port}") as stim:
        with pytest.raises(ProgramError, match=match):
            stim.configure(prog)


def test_low_frequency_channel_and_unquantized_amplitudes(
        rs2_emulator: RehaStim2Emulator) -> None:
    prog = load_program_text(RS2_PROGRAM.replace(
        "frequency: 25 Hz\n    pulse_width: 200", "frequency: 12.5 Hz\n    pulse_width: 200"
    ).replace("amplitude: 30 mA", "amplitude: 31 mA"))
    with open_stimulator(f"rehastim2://{rs2_emulator.port}") as stim:
        stim.configure(prog)  # 12.5 Hz = 25 Hz with low-frequency factor 1
        stim.start()
        raw = prog.expand()
        with pytest.raises(ProgramError, match="whole mA"):
            stim.deliver(raw.window(0, 0.4))  # the ramp gives fractions of a mA
    with open_stimulator(f"rehastim2://{rs2_emulator.port}") as stim:
        stim.configure(prog)
        stim.start()
        sched = stim.quantize(raw).window(0, 0.6)
        stim.deliver(sched, until=0.6)
        time.sleep(0.01)  # stop mid-period: the 12.5 Hz channel's 80 ms period ends at 0.56 s
        stim.stop()
        delivered = stim.delivered()
    rec = rs2_emulator.record.schedule(prog.channel_names, {0: 0, 1: 1})
    assert rec.equals(delivered, atol_t=1e-9, atol_a=1e-12)
    ham = rec.for_channel("ham")
    np.testing.assert_allclose(np.diff(ham.t), 0.080, atol=1e-9)


def test_no_device_on_the_port_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(DeviceError, match="cannot open serial port"):
        open_stimulator("rehastim2:///dev/does-not-exist")


def test_doublets_map_onto_the_inter_pulse_interval(rs2_emulator: RehaStim2Emulator) -> None:
    """'doublets: all' at 20 Hz with 10 ms between the pulses of a doublet: t2 code 17."""
    train = "    train: {kind: doublet, doublet_interval: 10 ms, doublets: all}\n"
    prog = load_program_text(RS2_PROGRAM.replace("frequency: 25 Hz", "frequency: 20 Hz")
                             .replace("    amplitude: 12 mA\n", "    amplitude: 12 mA\n" + train))
    with open_stimulator(f"rehastim2://{rs2_emulator.port}") as stim:
        stim.configure(prog)
        stim.start()
        sched = stim.quantize(prog.expand())
        for i in range(6):
            stim.deliver(sched.window(i / 10, (i + 1) / 10), until=(i + 1) / 10)
        stim.finish()
        delivered = stim.delivered()
    record = rs2_emulator.record.schedule(prog.channel_names, {0: 0, 1: 1})
    assert record.equals(delivered, atol_t=1e-9, atol_a=1e-12), diff(record, delivered)
    ham = record.for_channel("ham")
    np.testing.assert_allclose(ham.t[:4], [0.0015, 0.0115, 0.0515, 0.0615], atol=1e-9)
    expected = nonzero(sched).window(0, 0.6)
    assert len(record) == len(expected)


def test_a_driver_left_open_warns_and_stops_the_device(
        rs2_program: Program, rs2_emulator: RehaStim2Emulator) -> None:
    import gc

    stim = open_stimulator(f"rehastim2://{rs2_emulator.port}")
    stim.configure(rs2_program)
    stim.start()
    stim.deliver(stim.quantize(rs2_program.expand()).window(0, 0.2), until=0.2)
    assert not rs2_emulator.output_is_zero
    with pytest.warns(ResourceWarning, match="left open"):
        del stim
        gc.collect()
    time.sleep(0.1)
    assert rs2_emulator.output_is_zero
