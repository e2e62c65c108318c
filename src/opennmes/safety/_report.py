"""Program checks and dose summaries, as used by ``nmes program check`` and ``show``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from opennmes.safety._dose import (
    RMS_WINDOW,
    channel_areas,
    energy_per_pulse,
    net_charge,
    phase_charges,
    shannon_k,
    sliding_rms_current,
)
from opennmes.safety._guard import SafetyGuard, Violation
from opennmes.safety._limits import LOAD_OHM, LimitProfile, device_profile
from opennmes.safety._screening import (
    ElectrodeSite,
    PatientFactor,
    ScreeningResult,
    screen,
)
from opennmes.schedule import PulseSchedule
from opennmes.stim import Program

__all__ = ["ChannelDose", "dose_summary", "CheckReport", "check_program"]


@dataclass(frozen=True)
class ChannelDose:
    """Dose figures of one channel (SI units; see the ``*_display`` helpers in the CLI).

    Attributes
    ----------
    channel : str
    pulses : int
    stim_time : float
        Time with pulses at least every second, in s (sum of 1 s windows holding pulses).
    max_charge_per_phase : float
        C.
    total_charge : float
        Sum of first-phase charges, C.
    max_net_charge : float
        Largest net charge of one pulse, C.
    peak_current_density : float
        Largest peak current / area, A/m^2.
    max_rms_current : float
        Largest 1 s-window rms current, A.
    max_rms_current_density : float
        A/m^2.
    max_power_density : float
        W/m^2 into 500 ohm.
    max_energy_500 : float
        Largest energy of one pulse into 500 ohm, J.
    max_energy_1k : float
        Largest energy of one pulse into 1 kohm, J.
    shannon_k : float
        Largest Shannon k (informational).
    area : float
        Electrode area, m^2.
    """

    channel: str
    pulses: int
    stim_time: float
    max_charge_per_phase: float
    total_charge: float
    max_net_charge: float
    peak_current_density: float
    max_rms_current: float
    max_rms_current_density: float
    max_power_density: float
    max_energy_500: float
    max_energy_1k: float
    shannon_k: float
    area: float


def dose_summary(schedule: PulseSchedule, areas: Mapping[str, float]) -> list[ChannelDose]:
    """Per-channel dose figures of a schedule (electrode areas in m^2 by channel name)."""
    out = []
    if len(schedule):
        area = channel_areas(schedule, areas)
        rms = sliding_rms_current(schedule, RMS_WINDOW)
        q1, _ = phase_charges(schedule)
        net = np.abs(net_charge(schedule))
        e500 = energy_per_pulse(schedule, LOAD_OHM)
        k = shannon_k(q1, area)
    for i, name in enumerate(schedule.channel_names):
        if len(schedule) == 0 or not (schedule.channel == i).any():
            out.append(ChannelDose(name, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                                   float("-inf"), float(areas.get(name, float("nan")))))
            continue
        m = schedule.channel == i
        secs = np.unique(np.floor(schedule.t[m]).astype(np.int64))
        out.append(ChannelDose(
            channel=name,
            pulses=int(m.sum()),
            stim_time=float(secs.shape[0]),
            max_charge_per_phase=float(q1[m].max()),
            total_charge=float(q1[m].sum()),
            max_net_charge=float(net[m].max()),
            peak_current_density=float((np.maximum(schedule.amplitude[m],
                                                   schedule.amplitude2[m]) / area[m]).max()),
            max_rms_current=float(rms[m].max()),
            max_rms_current_density=float((rms[m] / area[m]).max()),
            max_power_density=float((rms[m] ** 2 * LOAD_OHM / area[m]).max()),
            max_energy_500=float(e500[m].max()),
            max_energy_1k=float(e500[m].max() * 1000.0 / LOAD_OHM),
            shannon_k=float(k[m].max()),
            area=float(areas[name]),
        ))
    return out


@dataclass
class CheckReport:
    """Result of :func:`check_program`."""

    program: Program
    schedule: PulseSchedule
    profile: LimitProfile
    violations: list[Violation] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    screening: ScreeningResult | None = None
    dose: list[ChannelDose] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing blocks the program."""
        return not self.violations and not (self.screening and self.screening.blocked)

    def errors(self) -> list[str]:
        """One line per blocking problem."""
        lines = [str(v) for v in self.violations]
        if self.screening:
            lines += [str(f) for f in self.screening.blocks]
        return lines


def _range_warnings(program: Program) -> list[str]:
    """Advice from the suggested validation ranges of CPS §2.7 (never blocking)."""
    src = "suggested NMES ranges, clinical-protocols-and-safety §2.7"
    out = []
    for ph, chans in zip(program.phase_list(), program.phase_channels(), strict=True):
        tag = "" if ph.name == "main" else f" in phase {ph.name!r}"
        for c in chans:
            contracting = c.on is not None and c.waveform != "sine"
            if contracting and c.train.kind == "constant" and not 20 <= c.frequency <= 100:
                out.append(f"channel {c.name!r}{tag}: frequency {c.frequency:g} Hz is outside "
                           f"20-100 Hz for NMES contractions ({src})")
            if c.waveform != "sine" and c.pulse_width_s > 500e-6:
                out.append(f"channel {c.name!r}{tag}: phase width {c.pulse_width_s * 1e6:.0f} us"
                           f" is above 500 us: discomfort, charge density rises ({src})")
            if contracting and c.off < c.active_time and c.off > 0:
                out.append(f"channel {c.name!r}{tag}: off:on = {c.off / c.active_time:.2f} is "
                           f"below 1; strength protocols rest at least as long as they "
                           f"contract ({src})")
    return out


def check_program(
    program: Program,
    profile: LimitProfile | str = "sim",
    *,
    factors: Iterable[PatientFactor] | None = None,
    screening_acknowledged: Mapping[str, str] | None = None,
) -> CheckReport:
    """Expand a program and check it against a profile (and a patient, if given).

    Parameters
    ----------
    program : Program
    profile : LimitProfile or str
        A profile or a device name (``sim``, ``rehastim2``, ``p24``).
    factors : iterable of PatientFactor, optional
        Patient factors for contraindication screening. The site rules (anterior neck, head,
        transthoracic, near the thorax) apply whatever the patient: without factors the
        electrodes are still screened, exactly as ``nmes run`` screens them.
    screening_acknowledged : mapping, optional
        Recorded decisions that lift liftable screening blocks.

    Returns
    -------
    CheckReport
        ``report.ok`` is False when a hard or unacknowledged advisory limit is broken or the
        screening blocks.
    """
    prof = device_profile(profile) if isinstance(profile, str) else profile
    schedule = program.expand()
    guard = SafetyGuard.for_program(program, prof)
    report = CheckReport(program, schedule, prof)
    report.violations = guard.evaluate(schedule)
    report.acknowledged = [f"{k}: {v}" for k, v in guard.acknowledged.items()]
    report.warnings = _range_warnings(program)
    areas = {c.name: c.electrode.area_m2 for c in program.channels}
    report.dose = dose_summary(schedule, areas)
    for d in report.dose:
        if d.shannon_k >= 1.85:
            report.warnings.append(
                f"channel {d.channel!r}: Shannon k = {d.shannon_k:.2f} >= 1.85 (informational"
                f" for surface electrodes; Shannon 1992)")
    sites = [ElectrodeSite(c.name, c.electrode.site, c.electrode.side) for c in program.channels]
    report.screening = screen(factors or (), sites, screening_acknowledged)
    report.warnings += [str(f) for f in report.screening.warnings]
    return report
