"""The schedule's grid and its one rounding rule (``opennmes.schedule``)."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.errors import ProgramError
from opennmes.schedule import (
    COLUMNS,
    US_PER_S,
    PulseSchedule,
    Waveform,
    exact_steps,
    exact_us,
    quantize_amplitude,
    round_us,
    to_us,
)


def test_columns_are_the_schedules_fields_in_order() -> None:
    s = PulseSchedule.from_arrays([0.0], [0.01], [300e-6])
    assert list(COLUMNS) == ["t", "channel", "amplitude", "phase_width", "interphase_gap",
                             "amplitude2", "phase_width2", "waveform"]
    assert list(s.to_pandas().columns) == list(COLUMNS)


@pytest.mark.parametrize(("seconds", "us"), [
    (0.0, 0), (1e-6, 1), (28571.428e-6, 28571), (28571.6e-6, 28572), (3600.0, 3_600_000_000),
    (2.5e-6, 2), (3.5e-6, 4),  # ties go to the even microsecond
])
def test_to_us_is_the_nearest_whole_microsecond(seconds: float, us: int) -> None:
    assert int(to_us(seconds)) == us
    assert to_us(np.array([seconds])).dtype == np.int64


def test_round_us_takes_microseconds_and_agrees_with_to_us() -> None:
    k = np.arange(1000)
    np.testing.assert_array_equal(round_us(k * (US_PER_S / 35.0)), to_us(k / 35.0))
    assert round_us(7812.5).item() == 7812 and round_us(7813.5).item() == 7814


def test_exact_us_reads_only_values_on_the_grid() -> None:
    assert exact_us(300e-6) == 300
    assert exact_us(0.1 + 0.2 - 0.3 + 20e-6) == 20  # float noise is on the grid
    assert exact_us(300.4e-6) is None
    assert exact_us(300.0005e-6) == 300 and exact_us(300.002e-6) is None


def test_expansion_uses_the_grid() -> None:
    from opennmes.stim import Channel, Electrode, Program

    ch = Channel(name="q", electrode=Electrode(area=50e-4, site="quadriceps"),
                 frequency=35.0, pulse_width=300e-6, amplitude=0.02)
    s = Program(name="p", channels=[ch], duration=2.0).expand()
    np.testing.assert_array_equal(s.t, to_us(np.arange(len(s)) / 35.0) / US_PER_S)


@pytest.mark.parametrize(("step", "value", "nearest", "down"), [
    (1e-3, 0.0124, 0.012, 0.012), (1e-3, 0.0126, 0.013, 0.012), (1e-3, 0.0125, 0.012, 0.012),
    (1e-3, 0.0135, 0.014, 0.013), (0.5e-3, 0.01274, 0.0125, 0.0125),
    (0.5e-3, 0.01276, 0.013, 0.0125), (1e-3, 0.040, 0.040, 0.040),
])
def test_quantize_amplitude_nearest_step_ties_to_even(step: float, value: float,
                                                      nearest: float, down: float) -> None:
    assert float(quantize_amplitude(value, step)) == nearest
    assert float(quantize_amplitude(value, step, down=True)) == down


def test_quantize_amplitude_continuous_and_bad_steps() -> None:
    a = np.array([0.0123456, 0.02])
    np.testing.assert_array_equal(quantize_amplitude(a, 0.0), a)
    for bad in (-1e-3, float("nan"), float("inf")):
        with pytest.raises(ProgramError, match="amplitude step"):
            quantize_amplitude(a, bad)


def test_exact_steps() -> None:
    assert exact_steps(0.130, 1e-3) == 130
    assert exact_steps(0.0125, 0.5e-3) == 25
    assert exact_steps(0.01225, 0.5e-3) is None
    assert exact_steps(0.0105, 1e-3) is None
    with pytest.raises(ProgramError, match="step > 0"):
        exact_steps(0.01, 0.0)


def test_schedule_quantize_rounds_both_phases_and_nothing_else() -> None:
    s = PulseSchedule.from_arrays([0.0, 0.02, 0.04], [0.01249, 0.0126, 0.0], 300e-6,
                                  interphase_gap=100e-6)
    q = s.quantize(1e-3)
    np.testing.assert_array_equal(q.amplitude, [0.012, 0.013, 0.0])
    np.testing.assert_array_equal(q.amplitude2, q.amplitude)
    for k in ("t", "phase_width", "interphase_gap", "phase_width2", "channel", "waveform"):
        np.testing.assert_array_equal(getattr(q, k), getattr(s, k))
    assert s.quantize(0.0) is s
    mono = PulseSchedule.from_arrays([0.0], [0.01274], 300e-6, waveform=Waveform.MONOPHASIC)
    assert mono.quantize(0.5e-3).amplitude2[0] == 0.0
