"""The EMG pipeline: streaming equals offline, filters match SciPy, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal as sps

from opennmes.errors import SignalError
from opennmes.sensing import EmgPipeline, MovingRms, envelope, mvc_reference, normalize_mvc
from opennmes.signals import Signals


def _chunked(pipe: EmgPipeline, x: np.ndarray, size: int) -> np.ndarray:
    return np.concatenate([pipe.process_array(x[:, i:i + size])
                           for i in range(0, x.shape[1], size)], axis=1)


@pytest.mark.parametrize("kind", ["linear", "rms", "none"])
@pytest.mark.parametrize("size", [1, 7, 64])
def test_streaming_equals_offline(delsys: Signals, kind: str, size: int) -> None:
    """Reference notes §1.1 test idea: chunks of 1, 7, 64 samples equal one shot to 1e-12."""
    x = delsys.pick(["Delt_ant", "Biceps", "Trap_inf"]).data[:, :3000]
    kw = dict(envelope=kind, notch=(50.0,))
    whole = EmgPipeline(2000.0, 3, **kw).process_array(x)  # type: ignore[arg-type]
    parts = _chunked(EmgPipeline(2000.0, 3, **kw), x, size)  # type: ignore[arg-type]
    scale = np.max(np.abs(whole))
    assert np.max(np.abs(whole - parts)) <= 1e-12 * scale


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=12))
def test_streaming_any_chunking(sizes: list[int]) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, sum(sizes)))
    whole = EmgPipeline(1000.0, 2, band=(20.0, 400.0), envelope="rms",
                        rms_window=0.05).process_array(x)
    pipe = EmgPipeline(1000.0, 2, band=(20.0, 400.0), envelope="rms", rms_window=0.05)
    out, i = [], 0
    for s in sizes:
        out.append(pipe.process_array(x[:, i:i + s]))
        i += s
    np.testing.assert_allclose(np.concatenate(out, axis=1), whole, rtol=0, atol=1e-12)


def test_bandpass_matches_scipy_and_rejects_out_of_band() -> None:
    """4th-order Butterworth 20-450 Hz (De Luca et al. 2010) as in scipy; a 5 Hz sine (movement
    artefact band) is attenuated by > 40 dB, a 100 Hz sine passes within 0.5 dB."""
    fs = 2000.0
    t = np.arange(int(4 * fs)) / fs
    pipe = EmgPipeline(fs, 1, envelope="none")
    lo = np.sin(2 * np.pi * 5 * t)[None, :]
    mid = np.sin(2 * np.pi * 100 * t)[None, :]
    y_lo = pipe.filter(lo)
    pipe.reset()
    y_mid = pipe.filter(mid)
    tail = slice(int(fs), None)
    assert 20 * np.log10(np.std(y_lo[0, tail]) / np.std(lo[0, tail])) < -40
    assert abs(20 * np.log10(np.std(y_mid[0, tail]) / np.std(mid[0, tail]))) < 0.5
    sos = sps.butter(4, [20, 450], "bandpass", fs=fs, output="sos")
    zi = sps.sosfilt_zi(sos)[:, None, :] * mid[None, :, 0, None]
    pipe.reset()
    np.testing.assert_allclose(pipe.filter(mid), sps.sosfilt(sos, mid, zi=zi)[0], atol=1e-12)


def test_notch_removes_mains() -> None:
    fs = 1000.0
    t = np.arange(int(5 * fs)) / fs
    x = np.sin(2 * np.pi * 50 * t)[None, :]
    y = EmgPipeline(fs, 1, band=None, notch=(50.0,), envelope="none").filter(x)
    assert np.std(y[0, int(2 * fs):]) < 0.01 * np.std(x)


def test_rms_of_sine() -> None:
    """RMS of a unit sine over whole periods is 1/sqrt(2)."""
    fs = 1000.0
    x = np.sin(2 * np.pi * 50 * np.arange(1000) / fs)[None, :]
    r = MovingRms(100, 1)(x)
    assert r[0, -1] == pytest.approx(1 / np.sqrt(2), rel=1e-9)


def test_linear_envelope_of_sine() -> None:
    """The envelope of a rectified sine of amplitude A settles at its mean 2A/pi."""
    fs = 2000.0
    x = 3.0 * np.sin(2 * np.pi * 100 * np.arange(int(3 * fs)) / fs)
    env = envelope(Signals(x[None, :], fs, ("EMG",), ("V",)), cutoff=3.0)
    assert np.mean(env["EMG"][-1000:]) == pytest.approx(2 * 3.0 / np.pi, rel=0.01)


def test_delsys_envelope_contrast(delsys: Signals) -> None:
    """data/README: Delt_ant envelope 95th/5th percentile ratio about 166."""
    env = envelope(delsys.pick(["Delt_ant"]))["Delt_ant"][400:]
    ratio = np.percentile(env, 95) / np.percentile(env, 5)
    assert 100 < ratio < 250


def test_mvc_normalisation(delsys: Signals) -> None:
    env = envelope(delsys.pick(["Delt_ant", "Biceps"]))
    ref = mvc_reference(env, 0.5)
    assert np.all(ref > 0) and np.all(ref < env.data.max(axis=1))
    norm = normalize_mvc(env, ref)
    assert norm.units == ("1", "1")
    # the best 0.5 s average of a normalised envelope is exactly 1 (100 % MVC)
    np.testing.assert_allclose(mvc_reference(norm, 0.5), [1.0, 1.0], rtol=1e-9)
    pipe = EmgPipeline(2000.0, 2, mvc=ref)
    np.testing.assert_allclose(pipe.process(delsys.pick(["Delt_ant", "Biceps"])).data,
                               norm.data, rtol=1e-12)


def test_sampling_rate_too_low() -> None:
    with pytest.raises(SignalError, match=r"sampling rate 500 Hz is too low for the 20-450 Hz "
                                          r"band-pass.*Nyquist frequency sfreq/2 = 250 Hz"):
        EmgPipeline(500.0, 1)


def test_bad_options() -> None:
    with pytest.raises(SignalError, match="unknown envelope 'peak'"):
        EmgPipeline(2000.0, 1, envelope="peak")
    with pytest.raises(SignalError, match="mvc must hold 2 positive values"):
        EmgPipeline(2000.0, 2, mvc=[1.0, 0.0])
    with pytest.raises(SignalError, match=r"expected a chunk of shape \(2, n_samples\)"):
        EmgPipeline(2000.0, 2).process_array(np.zeros((3, 10)))
