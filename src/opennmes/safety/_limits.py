"""Limit profiles with their sources.

Three severities:

``hard``
    No setting lifts it (e.g. 300 mJ per pulse into 500 ohm, amplitude beyond any supported
    device, charge imbalance of a waveform that promises balance).
``advisory``
    Blocks unless the program carries an explicit acknowledgement with a reason (rms current
    density above 2 mA/cm^2, average power density above 0.25 W/cm^2, monophasic / net-DC
    waveforms).
``warning``
    Reported, never blocks (ranges outside typical NMES practice).

Device profiles narrow the hard limits to what the device can deliver; each is derived from
the device's declared :class:`~opennmes.capabilities.DeviceCapabilities` (its amplitude range,
phase-width range, highest pulse rate and waveforms, with their sources), never written twice.
Values are SI; each limit carries its display unit and the factor from SI to it. Sources refer
to ``shared/reference/clinical-protocols-and-safety.md`` (CPS) and ``stimulator-protocols.md``
(SP) with the original documents they cite.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from opennmes.capabilities import DEVICE_CAPABILITIES, DeviceCapabilities
from opennmes.errors import NmesError
from opennmes.schedule import Waveform

__all__ = ["Limit", "LimitProfile", "BASE_PROFILE", "device_profile", "DEVICE_PROFILES",
           "LOAD_OHM"]

Severity = Literal["hard", "advisory", "warning"]

LOAD_OHM = 500.0
"""Reference load for energy and power limits, in ohms (IEC 60601-2-10; FDA PMS guidance)."""


@dataclass(frozen=True)
class Limit:
    """One limit on a per-pulse quantity.

    Parameters
    ----------
    key : str
        Identifier, also used by acknowledgements (e.g. ``rms_current_density``).
    parameter : str
        Human name used in messages.
    maximum : float or None
        Upper bound in SI units (inclusive).
    minimum : float or None
        Lower bound in SI units (inclusive).
    unit : str
        Display unit.
    scale : float
        Factor from SI to the display unit.
    severity : {"hard", "advisory", "warning"}
    source : str
        Where the value comes from.
    hint : str
        What to change when the limit is broken.
    """

    key: str
    parameter: str
    maximum: float | None
    unit: str
    scale: float
    severity: Severity
    source: str
    minimum: float | None = None
    hint: str = ""


_IEC_ENERGY = ("IEC 60601-2-10:1987 cl. 51.104, as quoted by BIOPAC; CPS §4.1")
_DEVICES = "largest range of the supported devices: P24 (ScienceMode4) +-150 mA, 0-4095 us; SP §1"

_BASE_LIMITS: tuple[Limit, ...] = (
    Limit("amplitude", "pulse amplitude", 0.150, "mA", 1e3, "hard", _DEVICES,
          hint="lower the amplitude"),
    Limit("phase_width", "phase width", 4095e-6, "us", 1e6, "hard", _DEVICES,
          hint="shorten the pulse"),
    Limit("energy_per_pulse", "energy per pulse into 500 ohm", 0.300, "mJ", 1e3, "hard",
          _IEC_ENERGY, hint="lower the amplitude or the pulse width"),
    Limit("charge_imbalance", "net charge of a charge-balanced pulse (share of phase charge)",
          0.01, "%", 1e2, "hard",
          "charge balance of biphasic waveforms, CPS §4.6 item 5; 1 % is the OpenNMES "
          "tolerance for rounding", hint="make both phases carry the same charge"),
    Limit("pulse_rate", "instantaneous pulse rate on a channel", 10_000.0, "Hz", 1.0, "hard",
          "medium-frequency carriers studied up to 10 kHz, CPS §2.6",
          hint="lengthen the interval between pulses"),
    Limit("pulse_overlap", "pulse duration / interval to the next pulse", 1.0, "", 1.0, "hard",
          "a channel cannot deliver two pulses at once",
          hint="shorten the pulses or lengthen the interval"),
    Limit("charge_per_phase", "charge per phase", 100e-6, "uC", 1e6, "hard",
          "OpenNMES judgement: no standard sets a number for surface NMES (the FDA asks for "
          "the maximum phase charge to be stated, CPS §4.3); 100 uC is 1.5 x the largest "
          "phase of a RehaStim 2 (130 mA x 500 us = 65 uC, SP §1) and 2.5 x the largest of "
          "the protocol library (100 mA x 400 us = 40 uC, CPS §2)",
          hint="lower the amplitude or shorten the phase"),
    Limit("peak_current_density", "peak current density per phase", 500.0, "mA/cm2", 0.1,
          "hard",
          "OpenNMES judgement: current density is the binding constraint on small or peeling "
          "electrodes (CPS §4.2); 50 mA/cm2 is about 4 x the peak (11.5 mA/cm2) at which a "
          "typical train (300 us symmetric biphasic, 50 Hz) reaches the 2 mA/cm2 rms advisory "
          "of IEC 60601-2-10 (CPS §4.1-4.2), i.e. 100 mA on a 2 cm2 motor-point electrode; "
          "the protocol library peaks at 3.1 mA/cm2",
          hint="use a larger electrode or lower the amplitude"),
    Limit("net_dc", "net charge per pulse of a monophasic waveform", 0.0, "uC", 1e6,
          "advisory", "monophasic or DC modes need an explicit clinician unlock, CPS §4.6 item 5",
          hint="use a biphasic waveform, or acknowledge 'net_dc' with a reason"),
    Limit("rms_current_density", "rms current density (1 s window)", 20.0, "mA/cm2", 0.1,
          "advisory",
          "IEC 60601-2-10 IFU: electrodes above 2 mA/cm2 need the operator's special "
          "attention; CPS §4.1-4.2",
          hint="use a larger electrode or lower the amplitude, or acknowledge "
               "'rms_current_density' with a reason"),
    Limit("power_density", "average power density into 500 ohm (1 s window)", 2500.0, "W/cm2",
          1e-4, "advisory", "FDA powered muscle stimulator 510(k) guidance (1999): < 0.25 W/cm2;"
          " CPS §4.3", hint="use a larger electrode or lower the amplitude, or acknowledge "
                           "'power_density' with a reason"),
)


@dataclass(frozen=True)
class LimitProfile:
    """A named set of limits plus the waveforms a device can deliver.

    Parameters
    ----------
    name : str
    limits : tuple of Limit
    waveforms : frozenset of int
        :class:`~opennmes.stim.Waveform` ids allowed.
    source : str
        Where the device ranges come from.
    """

    name: str
    limits: tuple[Limit, ...]
    waveforms: frozenset[int] = field(default_factory=lambda: frozenset(int(w) for w in Waveform))
    source: str = ""

    def get(self, key: str) -> Limit:
        """The limit with this key."""
        for lim in self.limits:
            if lim.key == key:
                return lim
        raise KeyError(f"no limit {key!r} in profile {self.name!r}; "
                       f"keys: {[x.key for x in self.limits]}")

    def narrowed(self, name: str, source: str, *, waveforms: frozenset[int] | None = None,
                 **bounds: tuple[float | None, float | None]) -> LimitProfile:
        """A stricter profile: ``key=(minimum, maximum)`` replaces a hard limit's bounds only
        where it is stricter."""
        new = []
        for lim in self.limits:
            if lim.key in bounds:
                lo, hi = bounds[lim.key]
                mx = lim.maximum if hi is None or (lim.maximum is not None and lim.maximum < hi) \
                    else hi
                mn = lim.minimum if lo is None or (lim.minimum is not None and lim.minimum > lo) \
                    else lo
                lim = replace(lim, maximum=mx, minimum=mn, source=f"{name}: {source}")
            new.append(lim)
        unknown = set(bounds) - {x.key for x in self.limits}
        if unknown:
            raise KeyError(f"unknown limit keys {sorted(unknown)}")
        wf = self.waveforms if waveforms is None else self.waveforms & waveforms
        return LimitProfile(name, tuple(new), wf, source)

    def for_device(self, capabilities: DeviceCapabilities) -> LimitProfile:
        """This profile narrowed to what a device can deliver, named after it.

        The device's amplitude maximum, phase-width range and highest pulse rate narrow the
        hard limits of the same keys (an amplitude of 0 is off, never a minimum; a bound the
        device does not declare leaves the limit as it is), its waveforms narrow the allowed
        waveforms, and its source becomes the source of every narrowed limit.
        """
        caps = capabilities
        bounds: dict[str, tuple[float | None, float | None]] = {}
        if caps.amplitude_range is not None:
            bounds["amplitude"] = (None, caps.amplitude_range[1])
        if caps.phase_width_range is not None:
            lo, hi = caps.phase_width_range
            bounds["phase_width"] = (lo if lo > 0 else None, hi)
        if caps.pulse_rate_max is not None:
            bounds["pulse_rate"] = (None, caps.pulse_rate_max)
        return self.narrowed(caps.name, caps.source, waveforms=caps.waveforms, **bounds)


BASE_PROFILE = LimitProfile("base", _BASE_LIMITS, source="hard limits of OpenNMES")

DEVICE_PROFILES: dict[str, LimitProfile] = {
    name: BASE_PROFILE.for_device(caps) for name, caps in DEVICE_CAPABILITIES.items()
}
"""The limit profile of every supported device, derived from its capabilities."""


def device_profile(name: str) -> LimitProfile:
    """The limit profile of a device: ``sim``, ``rehastim2`` or ``p24``."""
    try:
        return DEVICE_PROFILES[name]
    except KeyError:
        raise NmesError(f"unknown device profile {name!r}; known: {sorted(DEVICE_PROFILES)}") \
            from None
