"""Exact conversion between period patterns (pulses in SI units) and ScienceMode4 points.

A P24 mid-level channel plays a pattern of up to 16 points (duration 10-4095 us, current
-150..150 mA in 0.5 mA steps) once per period. Biphasic pulses become (+I1, w1), optional
(0, gap), (-I2, w2); onsets later in the period and doublets/triplets become zero-current
points. Nothing is rounded: a pattern that does not fit raises ProgramError.
"""

from __future__ import annotations

from opennmes.capabilities import DEVICE_CAPABILITIES
from opennmes.devices._plan import Pattern, Pulse
from opennmes.devices.sciencemode4._protocol import MAX_POINTS, Point
from opennmes.errors import ProgramError
from opennmes.schedule import Waveform, exact_us

__all__ = ["pattern_to_points", "points_to_pulses", "MIN_DURATION_US", "MAX_DURATION_US"]

MIN_DURATION_US = 10   # smpt_definitions_data_types.h: "Every value < 10 = 10 us"
MAX_DURATION_US = 4095
_CAPS = DEVICE_CAPABILITIES["p24"]


def _us(x: float, what: str) -> int:
    n = exact_us(x)
    if n is None:
        raise ProgramError(f"{what} {x * 1e6:.6g} us is not a whole microsecond (P24 point "
                           "duration)")
    return n


def _segment(points: list[Point], us: int, ma: float, what: str) -> None:
    if us == 0:
        return
    if us < MIN_DURATION_US:
        raise ProgramError(f"{what} {us} us is shorter than the P24's 10 us point minimum")
    while us > 0:
        piece = min(us, MAX_DURATION_US)
        if 0 < us - piece < MIN_DURATION_US:
            piece -= MIN_DURATION_US
        assert _CAPS.amplitude_max is not None
        if abs(ma) > _CAPS.amplitude_max * 1e3:
            raise ProgramError(f"{what}: {abs(ma):g} mA exceeds the P24's "
                               f"{_CAPS.amplitude_max * 1e3:g} mA per point")
        try:
            points.append(Point.from_ma(piece, ma))
        except Exception:
            raise ProgramError(f"{what}: {ma:.6g} mA is not a multiple of the P24's 0.5 mA "
                               "step; round the chunk with stim.quantize(chunk)") from None
        us -= piece


def pattern_to_points(pattern: Pattern) -> tuple[Point, ...]:
    """Points for one period pattern; an empty pattern is one 10 us point at 0 mA."""
    if not pattern:
        return (Point.from_ma(MIN_DURATION_US, 0.0),)
    pts: list[Point] = []
    cursor = 0
    for q in pattern:
        if q.waveform == Waveform.SINE_CYCLE:
            raise ProgramError("sine cycles are not rectangular points; the P24 plays "
                               "rectangular phases only (use sim:// for sine carriers)")
        onset = _us(q.dt, "pulse onset")
        if onset < cursor:
            raise ProgramError("pulses of one period overlap")
        _segment(pts, onset - cursor, 0.0, "pause before a pulse")
        w1 = _us(q.phase_width, "phase width")
        _segment(pts, w1, q.amplitude * 1e3, "first phase")
        cursor = onset + w1
        if q.waveform != Waveform.MONOPHASIC:
            gap = _us(q.interphase_gap, "interphase gap")
            _segment(pts, gap, 0.0, "interphase gap")
            w2 = _us(q.phase_width2, "second phase width")
            _segment(pts, w2, -q.amplitude2 * 1e3, "second phase")
            cursor += gap + w2
    if len(pts) > MAX_POINTS:
        raise ProgramError(f"the period's pulses need {len(pts)} points; a P24 channel plays "
                           f"at most {MAX_POINTS} per period (fewer pulses per period or "
                           "shorter pauses)")
    return tuple(pts)


def points_to_pulses(points: tuple[Point, ...]) -> list[Pulse]:
    """Pulses of a point pattern (the emulator's record); the inverse of pattern_to_points."""
    segs: list[list[float]] = []  # [duration us, current mA]
    for pt in points:
        if segs and segs[-1][1] == pt.current_ma:
            segs[-1][0] += pt.duration_us
        else:
            segs.append([float(max(pt.duration_us, MIN_DURATION_US)), pt.current_ma])
    out: list[Pulse] = []
    t, i, n = 0.0, 0, len(segs)
    while i < n:
        d, a = segs[i]
        if a == 0:
            t += d
            i += 1
            continue
        onset, a1, w1 = t, a, d
        t += d
        i += 1
        gap = 0.0
        if i + 1 < n and segs[i][1] == 0 and segs[i + 1][1] * a1 < 0:
            gap = segs[i][0]
            t += gap
            i += 1
        if i < n and segs[i][1] * a1 < 0:
            w2, a2 = segs[i]
            t += w2
            i += 1
            wf = Waveform.SYMMETRIC_BIPHASIC if (abs(a2) == abs(a1) and w2 == w1) else \
                Waveform.ASYMMETRIC_BIPHASIC
            out.append(Pulse(onset / 1e6, abs(a1) / 1e3, w1 / 1e6, gap / 1e6,
                             abs(a2) / 1e3, w2 / 1e6, int(wf)))
        else:
            out.append(Pulse(onset / 1e6, abs(a1) / 1e3, w1 / 1e6, 0.0, 0.0, 0.0,
                             int(Waveform.MONOPHASIC)))
    return out
