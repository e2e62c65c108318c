"""Safety: dose arithmetic, limit profiles with sources, contraindication screening and the
runtime guard that every pulse passes."""

from opennmes.safety._dose import (
    RMS_WINDOW,
    channel_areas,
    energy_per_pulse,
    net_charge,
    phase_charges,
    shannon_k,
    sliding_rms_current,
    squared_current_time,
)
from opennmes.safety._guard import SafetyGuard, Violation
from opennmes.safety._limits import (
    BASE_PROFILE,
    DEVICE_PROFILES,
    LOAD_OHM,
    Limit,
    LimitProfile,
    device_profile,
)
from opennmes.safety._report import ChannelDose, CheckReport, check_program, dose_summary
from opennmes.safety._screening import (
    FACTORS,
    SITES,
    ElectrodeSite,
    Finding,
    PatientFactor,
    ScreeningResult,
    screen,
)

__all__ = [
    "RMS_WINDOW", "LOAD_OHM",
    "phase_charges", "net_charge", "squared_current_time", "energy_per_pulse",
    "sliding_rms_current", "channel_areas", "shannon_k",
    "Limit", "LimitProfile", "BASE_PROFILE", "DEVICE_PROFILES", "device_profile",
    "SafetyGuard", "Violation",
    "ChannelDose", "CheckReport", "check_program", "dose_summary",
    "SITES", "FACTORS", "PatientFactor", "ElectrodeSite", "Finding", "ScreeningResult", "screen",
]
