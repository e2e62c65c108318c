"""End to end through pyserial and a real pseudo-terminal into the P24 emulator."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.devices import open_stimulator
from opennmes.devices.sciencemode4 import P24Emulator
from opennmes.errors import ProgramError
from opennmes.stim import Program, Waveform, load_program_text

from .conftest import P24_PROGRAM, diff, nonzero


def test_program_starts_updates_stops_and_record_equals_schedule(
        p24_program: Program, p24_emulator: P24Emulator) -> None:
    """Per-channel periods (20, 40, 25 Hz), doublets at every period, an initial doublet
    (variable-frequency train), an asymmetric pulse and a streamed ramp, all exact."""
    names = p24_program.channel_names
    with open_stimulator(f"p24://{p24_emulator.port}") as stim:
        stim.configure(p24_program, channel_map={"quad": 0, "ham": 1, "ta": 5})
        stim.start()
        sched = stim.quantize(p24_program.expand())
        for i in range(12):
            # the last window reaches one period past the end: output is zero before stop()
            stim.deliver(sched.window(i / 10, (i + 1) / 10), until=(i + 1) / 10 + (i == 11) / 20)
        stim.stop()
        delivered = stim.delivered()
        commands = stim._plan.commands  # type: ignore[attr-defined]
    assert p24_emulator.output_is_zero
    record = p24_emulator.record.schedule(names, {0: 0, 1: 1, 5: 2})
    expected = nonzero(sched)
    assert record.equals(delivered, atol_t=1e-9, atol_a=1e-12), diff(record, delivered)
    assert record.equals(expected, atol_t=1e-9, atol_a=1e-12), diff(record, expected)
    assert len(record) > 100 and commands > 10
    ta = record.for_channel("ta")
    assert set(ta.waveform.tolist()) == {int(Waveform.ASYMMETRIC_BIPHASIC)}
    np.testing.assert_allclose(ta.t[:3], [0.0, 0.008, 0.048], atol=1e-9)  # doublet, then 25 Hz
    quad = record.for_channel("quad")
    np.testing.assert_allclose(quad.t[:4], [0.0, 0.006, 0.05, 0.056], atol=1e-9)


def test_single_pulse_uses_the_low_level(p24_program: Program,
                                         p24_emulator: P24Emulator) -> None:
    with open_stimulator(f"p24://{p24_emulator.port}") as stim:
        stim.single_pulse("ch6", 0.0205, 250e-6)
        stim.configure(p24_program)
        stim.start()  # leaves the low level, enters the mid level
        stim.deliver(stim.quantize(p24_program.expand()).window(0, 0.1))
        stim.stop()
    rec = p24_emulator.single_record.schedule()
    assert list(rec.channel) == [5]
    np.testing.assert_allclose([rec.amplitude[0], rec.phase_width[0]], [0.0205, 250e-6])
    assert len(p24_emulator.record) > 0


def test_frequency_off_the_quarter_millisecond_grid_is_refused(
        p24_emulator: P24Emulator) -> None:
    prog = load_program_text(P24_PROGRAM.replace("frequency: 40 Hz", "frequency: 30 Hz"))
    with open_stimulator(f"p24://{p24_emulator.port}") as stim:
        with pytest.raises(ProgramError, match="multiples of 0.25 ms.*Nearest"):
            stim.configure(prog)


def test_sine_carrier_is_refused(p24_emulator: P24Emulator) -> None:
    prog = load_program_text("""
name: russian
channels:
  - name: quad
    electrode: {area: 50 cm2, site: quadriceps}
    waveform: sine
    frequency: 2500 Hz
    amplitude: 20 mA
    train: {kind: burst, burst_frequency: 50 Hz, burst_duty: 50 %}
duration: 1 s
""")
    with open_stimulator(f"p24://{p24_emulator.port}") as stim:
        with pytest.raises(ProgramError, match="sine"):
            stim.configure(prog)
