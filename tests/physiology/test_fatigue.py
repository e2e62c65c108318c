"""Fatigue, recovery and frequency behaviour of the Ding models, and accuracy of the kernels
against a tight adaptive solution (reference sections 4 and 6.4)."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.physiology import default_parameters, reference_solution, simulate_train


def _bickel(n_trains: int = 180, doublet: bool = False) -> np.ndarray:
    """Six pulses at 70-ms ISI (first ISI 5 ms for VFT), one train per second."""
    isi = np.array([0.0, 0.005, 0.075, 0.145, 0.215, 0.285]) if doublet else np.arange(6) * 0.07
    return (np.arange(n_trains)[:, None] + isi[None, :]).ravel()


def _train_peaks(f: np.ndarray, sfreq: float, n_trains: int) -> np.ndarray:
    per = int(sfreq)
    return f[: n_trains * per].reshape(n_trains, per).max(axis=1)


def test_bickel_like_fatigue_protocol_derived_values() -> None:
    """Section 6.4 [D]: 180 trains of 6 pulses at 70 ms; peak force 202.56 -> 93.96 N,
    A = 966.8 N/s, tau1 = 0.158 s, Km = 0.200 after 180 s."""
    p = default_parameters("ding2003", fatigue=True)
    res = simulate_train(p, _bickel(), t_end=180.0, sfreq=2000.0)
    peaks = _train_peaks(res["force"], 2000.0, 180)
    np.testing.assert_allclose(peaks[[0, 29, 59, 89, 119, 149, 179]],
                               [202.6, 180.9, 146.2, 121.0, 106.1, 98.1, 94.0], atol=0.1)
    assert peaks[0] == pytest.approx(202.56, abs=0.02)
    assert peaks[-1] == pytest.approx(93.96, abs=0.1)
    assert res["A"][-1] == pytest.approx(966.8, abs=1.0)
    assert res["tau1"][-1] == pytest.approx(0.158, abs=0.001)
    assert res["Km"][-1] == pytest.approx(0.200, abs=0.001)


def test_fatigue_decline_bickel_2004() -> None:
    """Bickel et al. 2004 (J Rehabil Res Dev 41:33): isometric quadriceps torque fell 44 %
    over 180 contractions in able-bodied subjects. With the published Ding parameters the
    model falls 53.6 % (section 6.4): the same order, asserted as a +-15-point band."""
    p = default_parameters("ding2003", fatigue=True)
    f = simulate_train(p, _bickel(), t_end=180.0, sfreq=1000.0)["force"]
    peaks = _train_peaks(f, 1000.0, 180)
    decline = 1.0 - peaks[-1] / peaks[0]
    assert abs(decline - 0.44) < 0.15


def test_recovery_at_rest_follows_tau_fat() -> None:
    """Ding 2000/2003: A, Km and tau1 recover exponentially with tau_fat = 127 s at rest."""
    p = default_parameters("ding2003", fatigue=True)
    pulses = _bickel()
    res = simulate_train(p, pulses, t_end=180.0 + 127.0 + 400.0, sfreq=100.0)
    a = res["A"]
    i0 = int(round(181.0 * 100))  # 0.715 s after the last pulse: CN and F have decayed
    i1 = i0 + 127 * 100
    deficit0 = p.a_rest - a[i0]
    assert deficit0 > 1500.0
    assert p.a_rest - a[i1] == pytest.approx(deficit0 * np.exp(-1.0), rel=1e-4)
    for key, rest in (("Km", p.km_rest), ("tau1", p.tau1_rest)):
        d0 = res[key][i0] - rest
        assert res[key][i1] - rest == pytest.approx(d0 * np.exp(-1.0), rel=1e-4)
    # a test train after 400 s more of rest gives nearly the fresh peak again
    test = np.concatenate([pulses, 707.0 + np.arange(6) * 0.07])
    f = simulate_train(p, test, t_end=708.0, sfreq=1000.0)["force"]
    assert f[707000:].max() / f[:1000].max() > 0.93


def test_frequency_effect_on_fatigue() -> None:
    """Reference section 4 ("frequency effect"): 300-ms trains once per second for 180 s;
    higher frequency gives more force but a faster relative decline (qualitative, no
    published number is asserted)."""
    p = default_parameters("ding2003", fatigue=True)
    decl = {}
    fresh = {}
    for hz in (20.0, 40.0, 80.0):
        one = np.arange(0.0, 0.3, 1.0 / hz)
        pulses = (np.arange(180)[:, None] + one[None, :]).ravel()
        f = simulate_train(p, pulses, t_end=180.0, sfreq=1000.0)["force"]
        peaks = _train_peaks(f, 1000.0, 180)
        fresh[hz] = peaks[0]
        decl[hz] = 1.0 - peaks[-1] / peaks[0]
    assert fresh[20.0] < fresh[40.0] < fresh[80.0]
    assert decl[20.0] < decl[40.0] < decl[80.0]


def test_single_twitch_and_force_frequency() -> None:
    """Section 6.4 [D]: twitch peak 99.475 N at 78.4 ms, FTI 13.207 N s over 0.5 s; peak
    force of 1-s trains by frequency."""
    p = default_parameters("ding2003")
    f = simulate_train(p, [0.0], t_end=0.5, sfreq=10000.0)["force"]
    assert f.max() == pytest.approx(99.475, abs=0.002)
    assert np.argmax(f) / 10000.0 == pytest.approx(0.0784, abs=0.0002)
    assert np.trapezoid(f, dx=1e-4) == pytest.approx(13.207, abs=0.002)
    table = {1: 99.47, 5: 108.45, 10: 166.02, 12.5: 191.58, 20: 235.71, 30: 263.75,
             33: 269.30, 40: 279.40, 50: 289.44, 80: 305.39, 100: 310.93}
    for hz, peak in table.items():
        pt = np.arange(0.0, 1.0 - 1e-12, 1.0 / hz)
        f = simulate_train(p, pt, t_end=1.2, sfreq=5000.0)["force"]
        assert f.max() == pytest.approx(peak, abs=0.02), hz


def test_vft_cft_ratio() -> None:
    """Section 6.4 [D]: VFT/CFT force-time integral over 1 s is 0.880 in fresh muscle."""
    p = default_parameters("ding2003", fatigue=True)
    cft = simulate_train(p, _bickel(1), t_end=1.0, sfreq=10000.0)["force"]
    vft = simulate_train(p, _bickel(1, doublet=True), t_end=1.0, sfreq=10000.0)["force"]
    assert np.trapezoid(vft) / np.trapezoid(cft) == pytest.approx(0.880, abs=0.002)


def test_vft_cft_ratio_after_fatigue() -> None:
    """Section 6.4 [D]: after the 180-train CFT protocol a VFT test train gives 0.90 of the
    CFT train's force-time integral (the ratio rises with fatigue; the Ding model does not
    reach Bickel 2004's +18 %)."""
    p = default_parameters("ding2003", fatigue=True)
    base = _bickel()
    fti = []
    for test in (_bickel(1), _bickel(1, doublet=True)):
        f = simulate_train(p, np.concatenate([base, 180.0 + test]), t_end=181.0,
                           sfreq=5000.0)["force"]
        fti.append(np.trapezoid(f[180 * 5000:]))
    assert fti[1] / fti[0] == pytest.approx(0.90, abs=0.005)
    assert fti[1] / fti[0] < 1.18  # Bickel 2004's +18 % is not reproduced (section 6.4)


def test_accuracy_against_adaptive_solution_60s_irregular() -> None:
    """Force within 0.1 % of a tight DOP853 solution (rtol 1e-10, pulse breakpoints) over a
    60-s program with irregular pulse intervals, fatigue on."""
    rng = np.random.default_rng(7)
    pulses = []
    t = 0.0
    while t < 60.0:
        if t % 8.0 < 4.0:
            pulses.append(t)
            t += rng.uniform(0.005, 0.09)
        else:
            t += 0.25
    pt = np.round(np.asarray(pulses), 6)
    p = default_parameters("ding2003", fatigue=True)
    sfreq = 1000.0
    te = np.arange(60001) / sfreq
    ref = reference_solution(p, pt, te)
    res = simulate_train(p, pt, t_end=60.0, sfreq=sfreq)
    f, fr = res["force"], ref[1]
    assert np.max(np.abs(f - fr)) / fr.max() < 1e-3
    big = fr > 0.01 * fr.max()
    assert np.max(np.abs(f[big] - fr[big]) / fr[big]) < 1e-3
    np.testing.assert_allclose(res["A"], ref[2], rtol=1e-5)
