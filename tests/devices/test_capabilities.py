"""Each device declares what it can play once (``opennmes.capabilities``); its driver plays by
that declaration, its safety profile is derived from it, and the declaration agrees with the
device's codec."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opennmes.capabilities import DEVICE_CAPABILITIES, DeviceCapabilities, device_capabilities
from opennmes.devices import open_stimulator
from opennmes.devices._emulator import PtyEmulator
from opennmes.devices.sciencemode2 import RehaStim2
from opennmes.devices.sciencemode2 import protocol as p2
from opennmes.devices.sciencemode4 import P24
from opennmes.devices.sciencemode4 import protocol as p4
from opennmes.devices.sim import SimStimulator
from opennmes.errors import NmesError, ProtocolError
from opennmes.safety import BASE_PROFILE, DEVICE_PROFILES, device_profile
from opennmes.schedule import PulseSchedule, Waveform

DRIVERS = {"sim": SimStimulator, "rehastim2": RehaStim2, "p24": P24}


def test_every_driver_declares_its_capabilities_once() -> None:
    assert set(DRIVERS) == set(DEVICE_CAPABILITIES) == set(DEVICE_PROFILES)
    for kind, cls in DRIVERS.items():
        caps = cls.capabilities
        assert caps is device_capabilities(kind) and caps.name == cls.kind == kind
        for old in ("amplitude_step", "n_channels"):  # nothing declared beside it
            assert not hasattr(cls, old)


def test_unknown_device_lists_the_known_ones() -> None:
    with pytest.raises(NmesError, match=r"unknown device 'x'.*p24.*rehastim2.*sim"):
        device_capabilities("x")


@pytest.mark.parametrize("kind", sorted(DEVICE_CAPABILITIES))
def test_safety_profile_is_derived_from_the_capabilities(kind: str) -> None:
    caps = DEVICE_CAPABILITIES[kind]
    prof = device_profile(kind)
    assert prof.name == kind and prof.waveforms == caps.waveforms
    amp, width, rate = prof.get("amplitude"), prof.get("phase_width"), prof.get("pulse_rate")
    if caps.amplitude_range is not None:
        assert amp.maximum == caps.amplitude_range[1] and amp.source == f"{kind}: {caps.source}"
    if caps.phase_width_range is not None:
        lo, hi = caps.phase_width_range
        assert (width.minimum, width.maximum) == (lo if lo > 0 else None, hi)
    if caps.pulse_rate_max is not None:
        assert rate.maximum == caps.pulse_rate_max
    assert BASE_PROFILE.for_device(caps) == prof


def test_sim_adds_no_bound_to_the_hard_limits() -> None:
    sim = device_profile("sim")
    assert [lim for lim in sim.limits] == list(BASE_PROFILE.limits)


def test_the_hard_limits_are_the_largest_range_of_the_devices() -> None:
    """``BASE_PROFILE`` cites "the largest range of the supported devices": it stays so."""
    amps = [c.amplitude_range[1] for c in DEVICE_CAPABILITIES.values() if c.amplitude_range]
    widths = [c.phase_width_range[1] for c in DEVICE_CAPABILITIES.values()
              if c.phase_width_range]
    assert BASE_PROFILE.get("amplitude").maximum == max(amps)
    assert BASE_PROFILE.get("phase_width").maximum == max(widths)


def test_published_values() -> None:
    """The values with their sources (SP §1-3); a change here is a change of a citation."""
    rs2, p24 = DEVICE_CAPABILITIES["rehastim2"], DEVICE_CAPABILITIES["p24"]
    assert rs2.amplitude_range == (0.0, 0.130) and rs2.amplitude_step == 1e-3
    assert rs2.phase_width_range == (20e-6, 500e-6)
    assert "0-130 mA, 20-500 us" in rs2.source
    assert p24.amplitude_range == (0.0, 0.150) and p24.amplitude_step == 0.5e-3
    assert p24.phase_width_range == (0.0, 4095e-6) and "0.5 mA steps" in p24.source


def test_rehastim2_period_grid_agrees_with_the_codec() -> None:
    caps = DEVICE_CAPABILITIES["rehastim2"]
    assert caps.period_grid is not None and caps.frequency_range is not None
    first, step = caps.period_grid
    for n in (14, 15, 100, 2048):  # 8 ms (the firmware minimum) ... 1025 ms
        t1 = first + n * step
        assert p2.t1_from_code(p2.t1_code(t1)) == pytest.approx(t1)
    with pytest.raises(ProtocolError):
        p2.t1_code(first + 14.5 * step)
    assert 1.0 / caps.frequency_range[1] == first + 14 * step  # 125 Hz, t1 = 8 ms
    assert caps.frequency_range[0] == pytest.approx(1.0 / (8 * p2.t1_from_code(2048)))
    assert caps.nearest_periods(1 / 35.0) == pytest.approx((28.5e-3, 29e-3))


def test_p24_grid_and_step_agree_with_the_codec() -> None:
    caps = DEVICE_CAPABILITIES["p24"]
    assert caps.period_grid is not None
    step = caps.period_grid[1]
    for n in (2, 3, 80, 4000):
        p4.period_code(n * step)
    with pytest.raises(ProtocolError):
        p4.period_code(2.5 * step)
    assert caps.frequency_range is not None and caps.frequency_range[1] == caps.pulse_rate_max
    for ma in (0.0, 0.5, 149.5, 150.0):
        p4.Point.from_ma(300, ma)
    with pytest.raises(ProtocolError):
        p4.Point.from_ma(300, 0.25)
    assert caps.amplitude_range is not None
    p4.Point.from_ma(4095, -caps.amplitude_range[1] * 1e3).encode()
    assert PtyEmulator.n_channels == caps.channels


@pytest.mark.parametrize("kind", ["sim", "rehastim2", "p24"])
def test_quantize_uses_the_declared_step(kind: str) -> None:
    caps = DEVICE_CAPABILITIES[kind]
    s = PulseSchedule.from_arrays([0.0, 0.03], [0.01274, 0.0201], 300e-6,
                                  interphase_gap=100e-6)
    if kind == "sim":
        with open_stimulator("sim://") as stim:
            q = stim.quantize(s)
    else:  # never opened: quantize needs no device
        q = DRIVERS[kind](f"{kind}:///dev/null", "/dev/null").quantize(s)
    np.testing.assert_array_equal(q.amplitude, s.quantize(caps.amplitude_step).amplitude)
    if caps.amplitude_step:
        k = q.amplitude / caps.amplitude_step
        np.testing.assert_allclose(k, np.round(k), atol=1e-9)


def test_capabilities_are_validated() -> None:
    good = dict(name="x", label="X", channels=2, amplitude_range=(0.0, 0.1), amplitude_step=1e-3,
                phase_width_range=(10e-6, 1e-3), phase_width_step=1e-6,
                frequency_range=(1.0, 100.0), period_grid=(0.0, 1e-3), pulse_rate_max=100.0,
                waveforms=frozenset({int(Waveform.SYMMETRIC_BIPHASIC)}), source="test")
    DeviceCapabilities(**good)  # type: ignore[arg-type]
    for key, bad in [("channels", 0), ("amplitude_step", -1.0), ("amplitude_range", (0.1, 0.0)),
                     ("phase_width_range", (0.0, math.inf)), ("period_grid", (0.0, 0.0)),
                     ("pulse_rate_max", 0.0), ("waveforms", frozenset({9}))]:
        with pytest.raises(NmesError, match=key):
            DeviceCapabilities(**{**good, key: bad})  # type: ignore[arg-type]
