"""Volitional EMG during stimulation: real EMG (Delsys) plus a simulated pulse train with known
pulse times. Each method's figure is asserted (reference notes §1.4.6 recipe: r(env) >= 0.9).

Measured on this fixture (Delt_ant, Trap_inf, Gd_dent; 25 Hz; M-wave 8x EMG SD, +-30 %
modulation; spike 40x SD): r(env) raw 0.06; blank 20 ms 0.987; comb 0.984; template 0.988;
NLMS per-phase 0.991. The prototype of the reference notes on another channel: blank 20 ms 0.94,
comb 0.954, template 0.966, NLMS 0.976.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opennmes.errors import SignalError
from opennmes.sensing import (
    ARTEFACT_METHODS,
    ArtefactSuppressor,
    PlaybackSource,
    contaminate,
    iter_chunks,
    locked_residual,
    suppress_artefacts,
    suppression_quality,
)
from opennmes.signals import Signals
from opennmes.stim import PulseSchedule

log = logging.getLogger(__name__)

MUSCLES = ["Delt_ant", "Trap_inf", "Gd_dent"]
RNG = np.random.default_rng(7)
TRAINS = {
    "25 Hz": np.arange(0.2, 5.75, 0.04),
    "33 Hz (non-integer period)": np.arange(0.2, 5.75, 1 / 33),
    "jittered 22-28 Hz": 0.2 + np.cumsum(RNG.uniform(0.036, 0.045, 130)),
}
# lower bounds a little under the measured figures (see the module docstring)
FLOOR = {"blank": 0.95, "comb": 0.95, "template": 0.95, "nlms": 0.96}


@pytest.fixture(scope="module")
def clean(delsys: Signals) -> Signals:
    return delsys.pick(MUSCLES)


@pytest.mark.parametrize("train", list(TRAINS))
def test_each_method_recovers_the_envelope(clean: Signals, train: str) -> None:
    pulses = TRAINS[train]
    dirty = contaminate(clean, pulses, mwave_gain=8.0, spike_gain=40.0, modulation=0.3)
    raw = suppression_quality(clean, dirty)
    assert raw["r_envelope"] < 0.3  # the contamination really hides the EMG
    figures = {}
    for method in ARTEFACT_METHODS:
        q = suppression_quality(clean, suppress_artefacts(dirty, pulses, method))
        figures[method] = q["r_envelope"]
        log.info("%s %s: r(env) = %.3f, residual power = %.2f", train, method,
                 q["r_envelope"], q["residual_power"])
        assert q["r_envelope"] >= 0.9, (train, method, q)
        assert q["r_envelope"] >= FLOOR[method], (train, method, q)
        assert q["residual_power"] < 1.1
    # the adaptive per-phase predictor is at least as good as the plain two-cycle comb
    assert figures["nlms"] >= figures["comb"] - 0.01


def test_nlms_residual_beats_comb(clean: Signals) -> None:
    """A two-cycle difference doubles the noise (residual ~1x clean power); averaging epochs
    (template, NLMS) lowers it (§1.4: noise gain sqrt(1 + 1/K))."""
    pulses = TRAINS["25 Hz"]
    dirty = contaminate(clean, pulses, mwave_gain=8.0, spike_gain=40.0, modulation=0.3)
    res = {m: suppression_quality(clean, suppress_artefacts(dirty, pulses, m))["residual_power"]
           for m in ("comb", "template", "nlms")}
    assert 0.8 < res["comb"] < 1.1
    assert res["template"] < 0.4 and res["nlms"] < 0.4


def test_pulse_schedule_input_and_streaming_equals_offline(clean: Signals) -> None:
    times = TRAINS["33 Hz (non-integer period)"]
    sched = PulseSchedule.from_arrays(times, 0.02, 300e-6)
    dirty = contaminate(clean, times, mwave_gain=8.0, spike_gain=40.0)
    whole = suppress_artefacts(dirty, sched, "nlms")
    f = ArtefactSuppressor(clean.sfreq, 3, "nlms", blank=0.002)
    f_whole = suppress_artefacts(dirty, sched, "nlms", blank=0.002)
    parts = []
    for chunk in iter_chunks(PlaybackSource(dirty, 0.0173)):
        # pulses are announced just before their chunk, as a session runner would
        t = chunk.t0
        parts.append(f.process(chunk, times[(times >= t - 0.1) & (times < t + chunk.duration)]))
    y = np.concatenate([p.data for p in parts], axis=1)
    np.testing.assert_allclose(y, f_whole.data, rtol=0, atol=1e-15)
    assert not np.allclose(whole.data, f_whole.data)  # blanking changed the first 2 ms


def test_locked_residual_without_reference(clean: Signals) -> None:
    """Pulse-locked power: near 1 when the artefact remains, near 1/n_pulses when removed."""
    pulses = TRAINS["25 Hz"]
    dirty = contaminate(clean, pulses, mwave_gain=8.0, spike_gain=40.0)
    before = locked_residual(dirty, pulses, 0.03)
    after = locked_residual(suppress_artefacts(dirty, pulses, "template"), pulses, 0.03)
    assert np.all(before > 0.8)
    assert np.all(after < 0.05)


def test_intensity_step_recovery(clean: Signals) -> None:
    """A 2x intensity step at 3.0 s: the error burst right after it (5 pulses) shrinks back to
    the pre-step level within 10-15 pulses (reference notes §1.4.6: adaptive methods should
    recover within ~10 pulses). Measured: error power vs the 2.4-2.8 s level is 15x / 7.5x
    in 3.0-3.2 s and 1.6x / 2.5x in 3.2-3.6 s for template / NLMS (mu 0.2)."""
    from opennmes.sensing import EmgPipeline

    pulses = TRAINS["25 Hz"]
    a = contaminate(clean, pulses[pulses < 3.0], mwave_gain=8.0, spike_gain=40.0)
    b = contaminate(clean, pulses[pulses >= 3.0], mwave_gain=16.0, spike_gain=80.0)
    dirty = Signals(a.data + b.data - clean.data, clean.sfreq, clean.names, clean.units)
    fs = clean.sfreq
    for method, kw in (("template", {}), ("nlms", {"mu": 0.2})):
        y = suppress_artefacts(dirty, pulses, method, **kw)  # type: ignore[arg-type]
        err = EmgPipeline(fs, 3, envelope="none").filter(y.data - clean.data)

        def power(t0: float, t1: float, err: np.ndarray = err) -> float:
            return float(np.sum(np.mean(err[:, int(t0 * fs):int(t1 * fs)] ** 2, axis=1)))

        before = power(2.4, 2.8)
        assert power(3.0, 3.2) > 5 * before, method  # the step is a real disturbance
        assert power(3.2, 3.6) < 3 * before, method  # 5-15 pulses after it
        assert power(3.8, 4.2) < 1 * before, method


def test_bad_input() -> None:
    with pytest.raises(SignalError, match="unknown artefact method 'wiener'"):
        ArtefactSuppressor(2000.0, 1, "wiener")
    with pytest.raises(SignalError, match="NLMS step mu = 3"):
        ArtefactSuppressor(2000.0, 1, "nlms", mu=3)
    with pytest.raises(SignalError, match="blank = 0.5 s must be within"):
        ArtefactSuppressor(2000.0, 1, "blank", blank=0.5)
    with pytest.raises(SignalError, match="need at least 2 whole epochs"):
        locked_residual(Signals(np.zeros((1, 100)), 1000.0, ("a",), ("V",)), [0.05], 0.02)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=8),
       st.sampled_from(ARTEFACT_METHODS))
def test_any_chunking_gives_the_same_output(sizes: list[int], method: str) -> None:
    rng = np.random.default_rng(5)
    n = sum(sizes)
    fs = 1000.0
    times = np.arange(0.013, n / fs, 1 / 37)
    sig = contaminate(Signals(rng.standard_normal((2, n)), fs, ("a", "b"), ("V", "V")), times,
                      mwave_gain=5.0, spike_gain=20.0)
    whole = suppress_artefacts(sig, times, method).data
    f = ArtefactSuppressor(fs, 2, method)
    out, i = [], 0
    for s in sizes:
        chunk = Signals(sig.data[:, i:i + s], fs, sig.names, sig.units, i / fs)
        out.append(f.process(chunk, times[(times >= i / fs) & (times < (i + s) / fs)]).data)
        i += s
    np.testing.assert_allclose(np.concatenate(out, axis=1), whole, rtol=0, atol=1e-12)


def test_late_pulses_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    fs = 1000.0
    sig = Signals(np.zeros((1, 1000)), fs, ("a",), ("V",))
    f = ArtefactSuppressor(fs, 1, "template")
    f.process(sig.crop(0.0, 0.5), [0.1])
    with caplog.at_level(logging.WARNING):
        f.process(sig.crop(0.5, 1.0), [0.3, 0.6])
    assert "1 pulse(s) announced after their samples were processed (first at t = 0.3 s)" \
        in caplog.text
