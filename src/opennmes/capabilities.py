"""What each stimulator can play, declared once per device.

A :class:`DeviceCapabilities` names a device's amplitude range and current step, its
phase-width range and step, its period grid and rate range, its channel count and the
waveforms it delivers, with the documents they come from. It is a base module so that both
sides read the same declaration: ``devices`` plays by it (the drivers' range and step checks,
``Stimulator.quantize``, the channel map) and ``safety`` derives each device's limit profile
from it (:meth:`opennmes.safety.LimitProfile.for_device`), without either importing the other.

Sources refer to ``shared/reference/stimulator-protocols.md`` (SP) with the original documents
it cites.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from opennmes.errors import NmesError
from opennmes.schedule import Waveform

__all__ = ["DeviceCapabilities", "DEVICE_CAPABILITIES", "device_capabilities"]


def _range(name: str, value: tuple[float, float] | None) -> None:
    if value is None:
        return
    lo, hi = value
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        raise NmesError(f"{name} = {value!r} must be two finite numbers 0 <= low < high")


@dataclass(frozen=True)
class DeviceCapabilities:
    """What one stimulator can play. Values are SI.

    Parameters
    ----------
    name : str
        The device's name, also the name of its safety profile (``device_profile(name)``).
    label : str
        Human name for messages, e.g. ``"RehaStim 2"``.
    channels : int
        Number of output channels.
    amplitude_range : tuple of float, or None
        ``(lowest, highest)`` first-phase amplitude in A the device sets (0 is off); None when
        the device adds no bound of its own (the hard limits of OpenNMES apply).
    amplitude_step : float
        Current resolution in A (0: continuous). Amplitudes between steps are refused, not
        rounded: ``Stimulator.quantize`` puts a schedule on this step first.
    phase_width_range : tuple of float, or None
        ``(shortest, longest)`` phase width in s; None when the device adds no bound.
    phase_width_step : float
        Phase-width resolution in s (``1e-6``: whole microseconds; 0: continuous).
    frequency_range : tuple of float, or None
        ``(lowest, highest)`` pulse rate of a channel in Hz; None when the device adds no
        bound.
    period_grid : tuple of float, or None
        ``(first, step)`` in s: the periods the device can run are ``first + n * step``; None
        when any period on the schedule's microsecond grid is possible.
    pulse_rate_max : float or None
        Highest instantaneous pulse rate on a channel in Hz (inside doublets); None when the
        device adds no bound.
    waveforms : frozenset of int
        :class:`~opennmes.schedule.Waveform` ids the device delivers.
    source : str
        Where the values come from.
    """

    name: str
    label: str
    channels: int
    amplitude_range: tuple[float, float] | None
    amplitude_step: float
    phase_width_range: tuple[float, float] | None
    phase_width_step: float
    frequency_range: tuple[float, float] | None
    period_grid: tuple[float, float] | None
    pulse_rate_max: float | None
    waveforms: frozenset[int]
    source: str

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise NmesError(f"{self.name}: channels = {self.channels} must be >= 1")
        for key in ("amplitude_step", "phase_width_step"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v >= 0):
                raise NmesError(f"{self.name}: {key} = {v!r} must be finite and >= 0")
        _range(f"{self.name}: amplitude_range", self.amplitude_range)
        _range(f"{self.name}: phase_width_range", self.phase_width_range)
        _range(f"{self.name}: frequency_range", self.frequency_range)
        if self.period_grid is not None:
            first, step = self.period_grid
            if not (math.isfinite(first) and first >= 0 and math.isfinite(step) and step > 0):
                raise NmesError(f"{self.name}: period_grid = {self.period_grid!r} must be "
                                "(first >= 0, step > 0) in s")
        if self.pulse_rate_max is not None and not self.pulse_rate_max > 0:
            raise NmesError(f"{self.name}: pulse_rate_max = {self.pulse_rate_max!r} must be > 0")
        known = {int(w) for w in Waveform}
        if not self.waveforms or not set(self.waveforms) <= known:
            raise NmesError(f"{self.name}: waveforms {sorted(self.waveforms)} must be a "
                            f"non-empty subset of {sorted(known)}")

    @property
    def amplitude_max(self) -> float | None:
        """Highest amplitude in A the device sets (None: no bound of its own)."""
        return None if self.amplitude_range is None else self.amplitude_range[1]

    def nearest_periods(self, period: float) -> tuple[float, float]:
        """The grid periods (s) just below and just above ``period`` (for a message that
        says what to choose instead); ``(period, period)`` without a grid."""
        if self.period_grid is None:
            return period, period
        first, step = self.period_grid
        n = max(math.floor((period - first) / step + 1e-9), 0)
        return first + n * step, first + (n + 1) * step


_ALL_WAVEFORMS = frozenset(int(w) for w in Waveform)

_SIM = DeviceCapabilities(
    name="sim", label="sim://", channels=8,
    amplitude_range=None, amplitude_step=0.0,
    phase_width_range=None, phase_width_step=0.0,
    frequency_range=None, period_grid=None, pulse_rate_max=None,
    waveforms=_ALL_WAVEFORMS,
    source="simulated stimulator: the hard limits of OpenNMES",
)

_REHASTIM2 = DeviceCapabilities(
    name="rehastim2", label="RehaStim 2", channels=8,
    amplitude_range=(0.0, 0.130), amplitude_step=1e-3,
    phase_width_range=(20e-6, 500e-6), phase_width_step=1e-6,
    # main interval t1 = 1 ms + n x 0.5 ms, n <= 2048, and >= 8 ms (firmware); low-frequency
    # channels run at t1 x 2..8 (PDF InitChannelListMode)
    frequency_range=(1.0 / (8 * 1.025), 125.0), period_grid=(1e-3, 0.5e-3),
    pulse_rate_max=1 / 1.5e-3,
    waveforms=frozenset({int(Waveform.SYMMETRIC_BIPHASIC)}),
    source="Hasomed ScienceMode2 protocol v1.24: 0-130 mA, 20-500 us, biphasic charge-balanced "
           "pulses, doublet interval t2 >= 1.5 ms; SP §1-2",
)

_P24 = DeviceCapabilities(
    name="p24", label="P24", channels=8,
    amplitude_range=(0.0, 0.150), amplitude_step=0.5e-3,
    phase_width_range=(0.0, 4095e-6), phase_width_step=1e-6,
    # mid-level periods: multiples of 0.25 ms (smpt_ml_definitions_data_types.h)
    frequency_range=(0.5, 2000.0), period_grid=(0.0, 0.25e-3),
    pulse_rate_max=2000.0,
    waveforms=frozenset({int(Waveform.MONOPHASIC), int(Waveform.SYMMETRIC_BIPHASIC),
                         int(Waveform.ASYMMETRIC_BIPHASIC)}),
    source="ScienceMode4 (P24): +-150 mA in 0.5 mA steps, 0-4095 us per point, 0.5-2000 Hz; "
           "SP §1, §3",
)

DEVICE_CAPABILITIES: dict[str, DeviceCapabilities] = {c.name: c for c in (_SIM, _REHASTIM2, _P24)}
"""The capabilities of every supported device, by name (``sim``, ``rehastim2``, ``p24``)."""


def device_capabilities(name: str) -> DeviceCapabilities:
    """The capabilities of a device: ``sim``, ``rehastim2`` or ``p24``."""
    try:
        return DEVICE_CAPABILITIES[name]
    except KeyError:
        raise NmesError(f"unknown device {name!r}; known: {sorted(DEVICE_CAPABILITIES)}") \
            from None
