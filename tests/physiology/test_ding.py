"""Ding-family models against the published and independent values of the reference file
(shared/reference/muscle-and-nerve-models.md, sections 1 and 6)."""

from __future__ import annotations

import numpy as np
import pytest

from opennmes.errors import ModelError
from opennmes.physiology import (
    DING_STATES,
    cn_closed_form,
    default_parameters,
    ding2007_a_factor,
    ding_derivative,
    hmed2018_lambda,
    reference_solution,
    simulate_train,
)
from opennmes.physiology._reference import cocofest_rk4

P1 = np.linspace(0.0, 1.0, 34)

# Section 6.3, cocofest tests/shard1/test_ivp.py (rounded to 10 significant figures)
DING2003 = [0, 56.30834295, 107.8731797, 148.1748551, 178.7303592, 201.6499608, 218.7710425,
            231.5405878, 241.0591465, 248.1529498, 253.4393115, 257.3786585, 260.3142,
            262.5017158, 264.1318144, 265.3465352, 266.2517237, 266.9262542, 267.4289024,
            267.803467, 268.0825859, 268.2905804, 268.4455742, 268.5610729, 268.6471404,
            268.7112764, 268.7590695, 268.794684, 268.8212233, 268.8409999, 268.8557371,
            268.866719, 268.8749025, 268.8810007]
DING2003_FAT = [0, 56.30597485, 107.8587339, 148.1414605, 178.6794576, 201.5904544,
                218.7163285, 231.5056501, 241.0584435, 248.1991603, 253.5427634, 257.5472233,
                260.5534658, 262.8153013, 264.5217314, 265.8135437, 266.7956504, 267.5462607,
                268.1237012, 268.5714889, 268.9221053, 269.1998054, 269.422709, 269.6043586,
                269.7548799, 269.8818477, 269.9909304, 270.0863722, 270.1713522, 270.2482526,
                270.3188593, 270.3845121, 270.4462161, 270.5047261]
DING2003_CONVERGED = [0, 56.3375, 107.8953, 148.1916, 178.7430, 201.6596, 218.7784, 231.5463,
                      241.0636, 248.1564, 253.4421, 257.3810, 260.3161, 262.5033, 264.1332,
                      265.3478, 266.2529, 266.9273, 267.4299, 267.8044, 268.0835, 268.2915,
                      268.4465, 268.5619, 268.6480, 268.7121, 268.7599, 268.7955, 268.8221,
                      268.8418, 268.8566, 268.8675, 268.8757, 268.8818]
DING2007 = [0, 22.77561749, 42.34758582, 57.93428248, 70.69670613, 81.51629756, 90.95988237,
            99.38659446, 107.0267183, 114.0311192, 120.5015551, 126.5092178, 132.1060835,
            137.3318726, 142.2183291, 146.7918626, 151.0751888, 155.088358, 158.8494088,
            162.3747899, 165.6796408, 168.777984, 171.682862, 174.4064397, 176.9600842,
            179.3544295, 181.5994321, 183.7044188, 185.6781292, 187.5287546, 189.2639735,
            190.8909844, 192.4165362, 193.8469563]
DING2007_FAT = [0, 22.77555656, 42.34881707, 57.94206838, 70.71989889, 81.56613721, 91.0489904,
                99.52831256, 107.2347072, 114.3191159, 120.883216, 126.9980079, 132.7151897,
                138.0741327, 143.1061727, 147.8372622, 152.2896222, 156.4827795, 160.4342298,
                164.1598677, 167.6742745, 170.9909168, 174.1222884, 177.0800168, 179.8749463,
                182.5172061, 185.0162665, 187.3809888, 189.6196687, 191.7400755, 193.7494879,
                195.6547266, 197.4621844, 199.1778543]
HMED2018 = [0, 2.931941488, 10.34384994, 21.55591371, 35.42243036, 50.98451041, 67.50362134,
            84.40784059, 101.2503362, 117.6844508, 133.4478945, 148.3508564, 162.2656011,
            175.1166837, 186.8716412, 197.5322886, 207.1267996, 215.7027141, 223.3209475,
            230.0508091, 235.9659816, 241.1413794, 245.6507776, 249.5650981, 252.951239,
            255.871341, 258.3823967, 260.5361191, 262.3790043, 263.9525276, 265.2934317,
            266.4340708, 267.4027821, 268.2242678]
HMED2018_FAT = [0, 2.931932242, 10.34364564, 21.55471495, 35.41846373, 50.97500547,
                67.48513663, 84.37683465, 101.2038356, 117.6206714, 133.3667093, 148.2540544,
                162.1569282, 175.0016927, 186.7573972, 197.4269849, 207.0393355, 215.6422788,
                223.2966413, 230.0713235, 236.0393489, 241.274793, 245.8504799, 249.836328,
                253.2982286, 256.2973514, 258.8897815, 261.1264082, 263.0529971, 264.7103921,
                266.1348019, 267.3581398, 268.4083892, 269.3099754]
P4 = [0, 91.4120125, 121.2908411, 130.6487885, 133.6325306, 134.6350124, 135.0183874,
      135.2065215, 135.3318198, 135.435806, 135.5315562]
P5 = [0, 6.811659796, 17.83609865, 29.5573692, 41.04200578, 52.06499585, 62.53249683,
      72.3912873, 81.60255369, 90.13179437, 97.94429264, 105.0030625, 111.2682236, 116.6974535,
      121.2474221, 124.8761829, 127.5464618, 129.2296779, 129.9103743, 129.5905671,
      128.2933969, 130.2820796, 135.6267675, 141.8935126, 148.180108, 154.2400456,
      159.9608343, 165.2734212, 170.124912, 174.4678253, 178.2551989, 181.438335, 183.9660804,
      185.785266]

FIX_B_RTOL = 2e-3  # section 6.3: integrator-independent tolerance


# ----------------------------------------------------------------------------- 6.1 analytic CN
def test_analytic_cn_fixture() -> None:
    """Section 6.1: CN for pulses at 0 and 0.05 s (Ding 2003, R0 = 1.143), exact values."""
    p = default_parameters("ding2003", r0_from="rest")
    cn = cn_closed_form([0.02, 0.06, 0.10], [0.0, 0.05], p)
    np.testing.assert_allclose(cn, [0.36787944117, 0.456186310, 0.241311048], atol=1e-9)
    # the compiled kernel's CN output is the same closed form
    res = simulate_train(p, [0.0, 0.05], t_end=0.1, sfreq=100.0)
    np.testing.assert_allclose(res["CN"][[2, 6, 10]], [0.36787944117, 0.456186310,
                                                       0.241311048], atol=1e-9)


# ----------------------------------------------------------------------------- 6.2 derivatives
@pytest.mark.parametrize(
    ("model", "state", "kwargs", "expected", "decimals"),
    [
        ("ding2003", [5, 100, 3009, 0.050957, 0.103], {},
         [-219.4399, 2037.0703, -40, 0.0021, 0.0019], 4),
        ("ding2007", [5, 100, 4920, 0.050957, 0.103], {"pw": 0.0002},
         [-417.9, -490.5, -40.0, 2.1759e-3, 2.1677e-3], 1),
        ("hmed2018", [5, 100, 3009, 0.050957, 0.103], {"amps": [0.030, 0.050]},
         [-241, 2037.07, -40, 0.0021, 1.9e-3], 0),
    ],
)
def test_cocofest_derivative_fixtures(model: str, state: list[float], kwargs: dict,
                                      expected: list[float], decimals: int) -> None:
    """Section 6.2: right-hand sides at t = 0.11 s, stimuli [0, 0.1] (cocofest, R0 from
    Km_rest)."""
    p = default_parameters(model, fatigue=True, r0_from="rest")
    lam = None
    g = 1.0
    if "pw" in kwargs:
        g = float(ding2007_a_factor(p, kwargs["pw"]))
    if "amps" in kwargs:
        lam = hmed2018_lambda(p, kwargs["amps"])
    d = ding_derivative(0.11, state, [0.0, 0.1], p, lam=lam, g=g)
    np.testing.assert_allclose(d[:3], expected[:3], atol=0.6 * 10.0 ** -decimals)
    # tau1 and Km derivatives, given to 2 significant digits (4 for Ding 2007)
    np.testing.assert_allclose(d[3:], expected[3:], rtol=0.03 if decimals != 1 else 5e-4)


def test_scalar_subfunction_fixtures() -> None:
    """Section 6.2 scalar fixtures (Ding 2003 / 2007 / Hmed 2018 sub-functions)."""
    p03 = default_parameters("ding2003")
    p07 = default_parameters("ding2007")
    ph = default_parameters("hmed2018")
    assert np.exp((0.09 - 0.1) / p03.tau_c) == pytest.approx(0.6065306597126332, rel=1e-14)
    assert np.exp((0.09 - 0.1) / p07.tau_c) == pytest.approx(0.4028903215291327, rel=1e-14)
    # CN sum with r0 = 1.05 at t = 0.11 for pulses [0, 0.1]: via the derivative with CN = 0
    for p, expected in ((p03, 0.6108217697230208), (p07, 0.4029379914553837)):
        q = p.replace(r0_from="rest", km_rest=0.01, r0_offset=1.04)  # R0 = 1.05
        d = ding_derivative(0.11, [0.0, 0.0, p.a_rest, p.tau1_rest, 0.01], [0.0, 0.1], q)
        assert d[0] * p.tau_c == pytest.approx(expected, rel=1e-12)
    lam = hmed2018_lambda(ph, [0.030, 0.050])
    q = ph.replace(r0_from="rest", km_rest=0.01)
    d = ding_derivative(0.11, [0.0, 0.0, 3009, 0.050957, 0.01], [0.0, 0.1], q, lam=lam)
    assert d[0] * ph.tau_c == pytest.approx(0.1798732, abs=1e-7)
    # dF/dt(CN=5, F=100, A=3009, tau1=0.050957, Km=0.103)
    d = ding_derivative(0.11, [5, 100, 3009, 0.050957, 0.103], [], p03)
    assert d[1] == pytest.approx(2037.0703505791284, rel=1e-13)
    d = ding_derivative(0.11, [5, 100, 3009, 0.050957, 0.103], [], p07.replace(tau2=0.001))
    assert d[1] == pytest.approx(1022.8492662547173, rel=1e-13)
    assert 4920 * ding2007_a_factor(p07, 0.0002) == pytest.approx(1464.4646488, abs=1e-6)
    assert hmed2018_lambda(ph, 0.030) == pytest.approx(0.0799499, abs=1e-7)
    assert hmed2018_lambda(ph, 0.050) == pytest.approx(0.295922, abs=1e-6)


def test_hmed_threshold_value() -> None:
    """Section 1.5: lambda > 0 needs I > 17.03 mA; below it the model refuses the pulse."""
    ph = default_parameters("hmed2018")
    assert hmed2018_lambda(ph, 0.01704) > 0
    with pytest.raises(ModelError, match=r"17\.03 mA"):
        hmed2018_lambda(ph, 0.0170)


# ----------------------------------------------------------------------------- 6.3 integration
def _p1(model: str, fatigue: bool, **kw: object) -> np.ndarray:
    res = simulate_train(model, P1, t_end=1.0, sfreq=33.0, fatigue=fatigue,
                         params={"r0_from": "rest"}, **kw)  # type: ignore[arg-type]
    return res["force"]


@pytest.mark.parametrize(
    ("model", "fatigue", "expected", "kw"),
    [
        ("ding2003", False, DING2003, {}),
        ("ding2003", True, DING2003_FAT, {}),
        ("ding2007", False, DING2007,
         {"pulse_widths": np.append(np.linspace(0.0002, 0.0006, 33), 0.0006)}),
        ("ding2007", True, DING2007_FAT,
         {"pulse_widths": np.append(np.linspace(0.0002, 0.0006, 33), 0.0006)}),
        ("hmed2018", False, HMED2018,
         {"amplitudes": np.append(np.linspace(0.020, 0.130, 33), 0.130)}),
        ("hmed2018", True, HMED2018_FAT,
         {"amplitudes": np.append(np.linspace(0.020, 0.130, 33), 0.130)}),
    ],
)
def test_cocofest_time_integration_fixtures(model: str, fatigue: bool, expected: list[float],
                                            kw: dict) -> None:
    """Section 6.3 protocols P1-P3: F at t = k/33 s within the FIX-B tolerance (2e-3 rel)."""
    f = _p1(model, fatigue, **kw)
    exp = np.asarray(expected)
    np.testing.assert_allclose(f[1:], exp[1:], rtol=FIX_B_RTOL)
    assert f[0] == 0.0


def test_converged_reference_ding2003() -> None:
    """Section 6.3: the converged DOP853 solution (4 decimals) is matched to 1e-3 N."""
    np.testing.assert_allclose(_p1("ding2003", False), DING2003_CONVERGED, atol=1e-3)


def test_converged_reference_ding2007() -> None:
    """Section 6.3: converged Ding 2007 values at k = 1, 2, 3, 4, 33."""
    pw = np.append(np.linspace(0.0002, 0.0006, 33), 0.0006)
    f = _p1("ding2007", False, pulse_widths=pw)
    np.testing.assert_allclose(f[[1, 2, 3, 4, 33]],
                               [22.8017, 42.3672, 57.9497, 70.7098, 193.8673], atol=1e-3)


def test_r0_option_changes_fatigue_fixture() -> None:
    """Section 1.2: final P1 force 270.5047 N with R0 from Km_rest, 270.5512 N from the state."""
    rest = simulate_train("ding2003", P1, t_end=1.0, sfreq=33.0, fatigue=True,
                          params={"r0_from": "rest"})["force"][-1]
    state = simulate_train("ding2003", P1, t_end=1.0, sfreq=33.0, fatigue=True,
                           params={"r0_from": "state"})["force"][-1]
    assert rest == pytest.approx(270.5047, abs=0.005)
    assert state == pytest.approx(270.5512, abs=0.005)


def test_p4_single_10hz_train() -> None:
    """Section 6.3 P4: ding2003 with fatigue, pulses 0..0.9 s at 10 Hz.

    cocofest integrates P4 with 10-ms RK4 steps (10 intervals), which is 0.4 % off the exact
    solution; the kernel matches the adaptive reference to 1e-5 and P4 to 5e-3.
    """
    pt = np.arange(10) / 10
    p = default_parameters("ding2003", fatigue=True, r0_from="rest")
    f = simulate_train(p, pt, t_end=1.0, sfreq=10.0)["force"]
    np.testing.assert_allclose(f[1:], P4[1:], rtol=5e-3)
    ref = reference_solution(p, pt, np.arange(11) / 10)[1]
    np.testing.assert_allclose(f, ref, rtol=1e-5)


def test_p5_doublets() -> None:
    """Section 6.3 P5: doublet trains (5-ms pairs every 100 ms), F every 5 ms to 0.165 s."""
    base = np.arange(10) / 10
    pulses = np.sort(np.concatenate([base, base + 0.005]))
    f = simulate_train("ding2003", pulses, t_end=0.165, sfreq=200.0, fatigue=True,
                       params={"r0_from": "rest"})["force"]
    np.testing.assert_allclose(f[1:], P5[1:], rtol=FIX_B_RTOL)


def test_clean_triplet_values() -> None:
    """Section 6.3: a clean triplet (t, t+5, t+10 ms) gives F(0.01) = 17.836099,
    F(0.015) = 29.843831, F(0.165) = 205.484769 N (not cocofest's contaminated fixture)."""
    base = np.arange(10) / 10
    pulses = np.sort(np.concatenate([base, base + 0.005, base + 0.010]))
    f = simulate_train("ding2003", pulses, t_end=0.165, sfreq=200.0, fatigue=True,
                       params={"r0_from": "rest"})["force"]
    np.testing.assert_allclose(f[[2, 3, 33]], [17.836099, 29.843831, 205.484769],
                               rtol=FIX_B_RTOL)


@pytest.mark.parametrize(
    ("model", "fatigue", "expected", "kind"),
    [("ding2003", False, DING2003, None), ("ding2003", True, DING2003_FAT, None),
     ("ding2007", False, DING2007, "pw"), ("ding2007", True, DING2007_FAT, "pw"),
     ("hmed2018", False, HMED2018, "amp"), ("hmed2018", True, HMED2018_FAT, "amp")],
)
def test_cocofest_discretisation_reproduces_fixtures_exactly(
        model: str, fatigue: bool, expected: list[float], kind: str | None) -> None:
    """Section 6.3 (FIX-A): with cocofest's discretisation (33 intervals, 10 RK4 sub-steps,
    truncation 10, R0 from Km_rest) every listed value is reproduced to its 10 digits."""
    p = default_parameters(model, fatigue=fatigue, r0_from="rest")
    lam = g = None
    if kind == "pw":
        g = ding2007_a_factor(p, np.append(np.linspace(0.0002, 0.0006, 33), 0.0006))
    if kind == "amp":
        lam = hmed2018_lambda(p, np.append(np.linspace(0.020, 0.130, 33), 0.130))
    f = cocofest_rk4(p, P1, t_end=1.0, n_shooting=33, lam=lam, g=g)[1]
    np.testing.assert_allclose(f, expected, rtol=0, atol=1e-7)


def test_cocofest_discretisation_p4_p5() -> None:
    """Section 6.3 P4 (truncation 20) and P5 (doublets, 200 intervals), FIX-A."""
    p = default_parameters("ding2003", fatigue=True, r0_from="rest")
    f4 = cocofest_rk4(p, np.arange(10) / 10, t_end=1.0, n_shooting=10, truncation=20)[1]
    np.testing.assert_allclose(f4, P4, rtol=0, atol=1e-7)
    base = np.arange(10) / 10
    f5 = cocofest_rk4(p, np.sort(np.concatenate([base, base + 0.005])), t_end=1.0,
                      n_shooting=200)[1][:34]
    np.testing.assert_allclose(f5, P5, rtol=0, atol=1e-7)


# ----------------------------------------------------------------------------- properties
def test_force_scales_linearly_with_a() -> None:
    """Section 1.1: without fatigue F is exactly linear in A."""
    pt = np.arange(0, 1, 1 / 30)
    f1 = simulate_train("ding2003", pt, t_end=1.5, sfreq=1000.0)["force"]
    f2 = simulate_train("ding2003", pt, t_end=1.5, sfreq=1000.0,
                        params={"a_rest": 2 * 3009.0})["force"]
    np.testing.assert_allclose(f2, 2 * f1, rtol=1e-12, atol=1e-12)


def test_ding2007_peak_force_by_pulse_width() -> None:
    """Section 1.4 [D]: Ding 2007, 30 Hz 1-s train: peak F by pulse duration."""
    pt = np.arange(0, 1, 1 / 30)
    for pd, peak in ((150e-6, 19.33), (200e-6, 63.00), (300e-6, 122.84), (400e-6, 158.59),
                     (500e-6, 179.95), (600e-6, 192.71)):
        f = simulate_train("ding2007", pt, t_end=1.2, sfreq=2000.0, pulse_widths=pd)["force"]
        assert f.max() == pytest.approx(peak, abs=0.02)


def test_hmed2018_peak_force_by_amplitude() -> None:
    """Section 1.5 [D]: Hmed 2018, 30 Hz 1-s train: peak F by intensity."""
    pt = np.arange(0, 1, 1 / 30)
    for i_ma, peak in ((20, 13.8), (30, 68.8), (50, 171.8), (80, 244.2), (130, 265.9)):
        f = simulate_train("hmed2018", pt, t_end=1.2, sfreq=2000.0,
                           amplitudes=i_ma * 1e-3)["force"]
        assert f.max() == pytest.approx(peak, abs=0.06)


# ----------------------------------------------------------------------------- errors
def test_bad_inputs_name_the_value() -> None:
    with pytest.raises(ModelError, match=r"pulse_times\[2\] = 0.05 s is earlier"):
        simulate_train("ding2003", [0.0, 0.1, 0.05], t_end=1, sfreq=100)
    with pytest.raises(ModelError, match=r"pulse_times\[0\] = -0.1 s is negative"):
        simulate_train("ding2003", [-0.1, 0.1], t_end=1, sfreq=100)
    with pytest.raises(ModelError, match=r"pulse_times\[1\] = nan"):
        simulate_train("ding2003", [0.0, np.nan], t_end=1, sfreq=100)
    with pytest.raises(ModelError, match=r"100 us is not above the ding2007 threshold"):
        simulate_train("ding2007", [0.0, 0.1], t_end=1, sfreq=100, pulse_widths=100e-6)
    with pytest.raises(ModelError, match=r"unknown force model 'ding2099'.*ding2003"):
        simulate_train("ding2099", [0.0], t_end=1, sfreq=100)
    with pytest.raises(ModelError, match="needs the pulse widths"):
        simulate_train("ding2007", [0.0], t_end=1, sfreq=100)
    with pytest.raises(ModelError, match=r"unknown parameter\(s\) \['tau3'\]"):
        simulate_train("ding2003", [0.0], t_end=1, sfreq=100, params={"tau3": 1.0})
    with pytest.raises(ModelError, match="tau_c"):
        default_parameters("ding2003").replace(tau_c=-1.0)


def test_uncertain_choices_are_named_options() -> None:
    """Reference section 7: tau2 (60 vs 100 ms), the Ding 2007 parameter set and where R0
    takes Km from are options, with the values the reference lists."""
    from opennmes.physiology import DING2003_TAU2

    assert default_parameters("ding2003").tau2 == 0.060
    assert default_parameters("ding2003", tau2=DING2003_TAU2["pmc9936668"]).tau2 == 0.100
    alt = default_parameters("ding2007", parameter_set="bioptim")
    assert (alt.a_rest, alt.pd0, alt.pdt, alt.km_rest) == (1500.0, 86e-6, 138e-6, 0.18)
    assert alt.km_rest + alt.r0_offset == pytest.approx(5.0)  # R0 = 5 in that set
    with pytest.raises(ModelError, match="unknown Ding 2007 parameter set"):
        default_parameters("ding2007", parameter_set="x")
    assert default_parameters("ding2003").r0_from == "state"  # the paper's choice
    pt = np.arange(0, 1, 1 / 30)
    last = simulate_train("ding2007", pt, t_end=1.0, sfreq=100.0, pulse_widths=300e-6)
    per = simulate_train("ding2007", pt, t_end=1.0, sfreq=100.0, pulse_widths=300e-6,
                         params={"pd_effect": "per_pulse"})
    assert per["force"].max() != pytest.approx(last["force"].max(), rel=1e-3)
    assert default_parameters("ding2003-fatigue").fatigue


def test_the_derivative_takes_and_returns_the_named_state_order() -> None:
    """DING_STATES names the order of ding_derivative (tau1 before Km, as in Ding et al.
    2000): at the rest values with a force F, each fatigue state moves by its own alpha x F."""
    p = default_parameters("ding2003", fatigue=True)
    assert DING_STATES == ("CN", "F", "A", "tau1", "Km")
    rest = {"CN": 0.0, "F": 50.0, "A": p.a_rest, "tau1": p.tau1_rest, "Km": p.km_rest}
    d = dict(zip(DING_STATES, ding_derivative(0.0, [rest[k] for k in DING_STATES], [], p),
                 strict=True))
    assert d["A"] == pytest.approx(p.alpha_a * 50.0)
    assert d["tau1"] == pytest.approx(p.alpha_tau1 * 50.0)
    assert d["Km"] == pytest.approx(p.alpha_km * 50.0)
    assert d["F"] == pytest.approx(-50.0 / p.tau1_rest)
