"""Dose arithmetic against the worked examples of the reference.

CPS §4.2 (clinical-protocols-and-safety.md, formulas after S14 Enraf-Nonius): quadriceps NMES,
symmetric biphasic, 100 mA, 300 us per phase, 50 Hz, 500 ohm. MNM §5.2
(muscle-and-nerve-models.md): 50 mA, 400 us, 50 Hz on 45 cm2 and on a 2 x 2 cm pad.
"""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.safety import (
    energy_per_pulse,
    net_charge,
    phase_charges,
    shannon_k,
    sliding_rms_current,
)
from opennmes.stim import PulseSchedule, Waveform


def _train(amp: float, pw: float, f: float, seconds: float = 3.0) -> PulseSchedule:
    t = np.arange(int(seconds * f)) / f
    return PulseSchedule.from_arrays(np.round(t * 1e6) / 1e6, amp, pw)


# (area cm2, J mA/cm2 rms, power density W/cm2, Shannon k) from the CPS §4.2 table
CPS_TABLE = [
    (45.0, 0.38, 0.003, 1.30),
    (25.0, 0.69, 0.006, 1.56),
    (8.0, 2.2, 0.019, 2.05),
    (4.9, 3.5, 0.031, 2.26),
]


@pytest.mark.parametrize(("area_cm2", "j", "p", "k"), CPS_TABLE)
def test_cps_worked_example(area_cm2: float, j: float, p: float, k: float) -> None:
    s = _train(0.100, 300e-6, 50.0)
    q1, q2 = phase_charges(s)
    assert q1[0] * 1e6 == pytest.approx(30.0)  # 30 uC per phase
    assert np.all(net_charge(s) == 0)
    rms = sliding_rms_current(s)[-1]
    assert rms * 1e3 == pytest.approx(17.3, abs=0.05)  # 17.3 mA during ON
    area = area_cm2 * 1e-4
    assert rms / area * 0.1 == pytest.approx(j, rel=0.03)  # mA/cm2
    assert rms**2 * 500 / area * 1e-4 == pytest.approx(p, rel=0.12)  # W/cm2 (table rounds)
    assert energy_per_pulse(s, 500.0)[0] * 1e3 == pytest.approx(3.0)  # 3 mJ per pulse
    assert float(shannon_k(q1[0], area)) == pytest.approx(k, abs=0.01)


def test_half_lifted_pad_in_cps_table() -> None:
    """A 45 cm2 pad with half its area lifted (22 cm2): 0.8 mA/cm2, 0.007 W/cm2, k = 1.61."""
    s = _train(0.100, 300e-6, 50.0)
    rms = sliding_rms_current(s)[-1]
    assert rms / 22e-4 * 0.1 == pytest.approx(0.8, abs=0.02)
    assert rms**2 * 500 / 22e-4 * 1e-4 == pytest.approx(0.007, abs=0.0005)
    assert float(shannon_k(30e-6, 22e-4)) == pytest.approx(1.61, abs=0.01)


def test_mnm_worked_example_small_pad() -> None:
    """MNM §5.2: Q = 20 uC, D = 0.44 uC/cm2, k = 0.95, J_peak = 1.11 mA/cm2, I_rms = 10 mA,
    0.22 mA/cm2 rms on 45 cm2; on a 2 x 2 cm pad J_peak = 12.5 and J_rms = 2.5 mA/cm2."""
    s = _train(0.050, 400e-6, 50.0)
    q1, _ = phase_charges(s)
    assert q1[0] * 1e6 == pytest.approx(20.0)
    assert q1[0] * 1e6 / 45.0 == pytest.approx(0.44, abs=0.005)
    assert float(shannon_k(q1[0], 45e-4)) == pytest.approx(0.95, abs=0.01)
    assert 50.0 / 45.0 == pytest.approx(1.11, abs=0.005)
    rms = sliding_rms_current(s)[-1]
    assert rms * 1e3 == pytest.approx(10.0, abs=0.01)
    assert rms / 45e-4 * 0.1 == pytest.approx(0.22, abs=0.005)
    assert 50.0 / 4.0 == pytest.approx(12.5)
    assert rms / 4e-4 * 0.1 == pytest.approx(2.5, abs=0.01)


def test_rms_formula_for_monophasic_and_sine() -> None:
    """I_rms = I * sqrt(t_phase * f) (one phase); a sine cycle has half the mean square."""
    mono = PulseSchedule.from_arrays(np.arange(100) / 50, 0.05, 400e-6,
                                     waveform=Waveform.MONOPHASIC)
    assert sliding_rms_current(mono)[-1] == pytest.approx(0.05 * np.sqrt(400e-6 * 50), rel=1e-6)
    assert net_charge(mono)[0] == pytest.approx(20e-6)
    t = np.round(np.arange(2500) / 2500 * 1e6) / 1e6
    sine = PulseSchedule.from_arrays(t, 0.1, 200e-6, waveform=Waveform.SINE_CYCLE)
    # a continuous 2500 Hz sine of 100 mA peak has rms 100/sqrt(2) mA
    assert sliding_rms_current(sine)[-1] == pytest.approx(0.1 / np.sqrt(2), rel=1e-3)
    q1, q2 = phase_charges(sine)
    assert q1[0] == pytest.approx(0.1 * 200e-6 * 2 / np.pi)
    assert q1[0] == q2[0]


def test_sliding_rms_is_the_same_in_chunks() -> None:
    s = _train(0.05, 300e-6, 35.0, seconds=5.0).scaled(np.linspace(0.1, 1.0, 175))
    whole = sliding_rms_current(s)
    parts = []
    history = None
    for c in s.chunks(0.37):
        parts.append(sliding_rms_current(c, history=history))
        history = c if history is None else PulseSchedule.concat([history, c])
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-12)
