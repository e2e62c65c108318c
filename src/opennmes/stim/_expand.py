"""Expansion of a Program into its PulseSchedule.

Times are built on the schedule's whole-microsecond grid: each pulse onset is its exact value,
computed from its index (never by summing periods), rounded by the schedule's one rule
(:func:`opennmes.schedule.round_us`, nearest microsecond), so a 60-minute program is still exact
to the microsecond at its end.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np

from opennmes.schedule import COLUMNS, US_PER_S, PulseSchedule, round_us, to_us

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.stim._program import Channel, Modulation, Program

__all__ = ["expand_program", "phase_lengths", "train_offsets", "pulse_counts", "size_problem"]

#: Longest modulation sweep whose pulses pulse_counts walks one by one to count them exactly.
_SWEEP_WALK = 100_000


def _grid(freq: float, window_us: int) -> np.ndarray:
    """Whole-microsecond onsets k/freq in [0, window)."""
    n = int(math.ceil(window_us * freq / US_PER_S)) + 1
    t = round_us(np.arange(n, dtype=np.float64) * (US_PER_S / freq))
    return t[t < window_us]


def _sweep_span(ch: Channel, window_us: int) -> float:
    """The stretch of a modulated train that repeats, in s: the modulation period, or the
    whole window when the modulations have different periods (at most the window)."""
    mods = ch.train.modulation or []
    period = min(m.period for m in mods)
    if abs(max(m.period for m in mods) - period) > 1e-12:
        period = window_us / US_PER_S  # different periods: the whole window pulse by pulse
    return min(period, window_us / US_PER_S)


def _sweep(ch: Channel, span: float) -> tuple[list[float], list[float], list[float]]:
    """Onsets (s), amplitude factors and widths of a modulated train over ``[0, span)``."""
    mods: dict[str, Modulation] = {m.parameter: m for m in ch.train.modulation or []}

    def value(m_key: str, base: float, t: float) -> float:
        m = mods.get(m_key)
        if m is None:
            return base
        x = (t % m.period) / m.period
        tri = 2 * x if x < 0.5 else 2 * (1 - x)
        lo, hi = float(m.low), float(m.high)
        return lo + (hi - lo) * tri

    times: list[float] = []
    amps: list[float] = []
    pws: list[float] = []
    t = 0.0
    while t < span:
        times.append(t)
        amps.append(value("amplitude", 1.0, t))
        pws.append(value("pulse_width", ch.pulse_width_s, t))
        t += 1.0 / value("frequency", ch.frequency, t)
    return times, amps, pws


def _modulated(ch: Channel, window_us: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pulse onsets, amplitude factors and widths of a modulated train over one window."""
    span = _sweep_span(ch, window_us)
    times, amps, pws = _sweep(ch, span)
    t_us = to_us(times)
    a = np.asarray(amps)
    w = np.asarray(pws)
    per_us = int(to_us(span))
    if per_us < window_us:  # repeat the modulation period
        reps = int(math.ceil(window_us / per_us))
        t_us = (t_us[None, :] + per_us * np.arange(reps)[:, None]).ravel()
        a, w = np.tile(a, reps), np.tile(w, reps)
        keep = t_us < window_us
        t_us, a, w = t_us[keep], a[keep], w[keep]
    return t_us, a, w


def train_offsets(ch: Channel, window_us: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onsets (int64 us), amplitude factors and first-phase widths (s) of a channel's train
    over ``[0, window_us)``, before the envelope is applied."""
    tr = ch.train
    f = ch.frequency
    if tr.kind == "constant":
        t = _grid(f, window_us)
    elif tr.kind == "doublet":
        assert tr.doublet_interval is not None
        d = int(to_us(tr.doublet_interval))
        base = _grid(f, window_us)
        if tr.doublets == "all":
            t = np.sort(np.concatenate([base, base + d]))
        else:
            t = np.concatenate([[0], base + d])
        t = t[t < window_us]
    elif tr.kind == "variable":
        assert tr.intervals is not None
        iv = np.asarray(tr.intervals, dtype=np.float64)
        n_rep = int(math.ceil(window_us / (iv.sum() * US_PER_S))) + 1
        cum = np.concatenate([[0.0], np.cumsum(np.tile(iv, n_rep))])
        t = to_us(cum)
        t = t[t < window_us]
    elif tr.kind == "burst":
        assert tr.burst_frequency is not None
        fb = tr.burst_frequency
        if tr.pulses_per_burst is not None:
            n_in = tr.pulses_per_burst
        else:
            assert tr.burst_duty is not None
            n_in = max(1, int(math.floor(tr.burst_duty * f / fb + 1e-9)))
        n_b = int(math.ceil(window_us * fb / US_PER_S)) + 1
        start = np.arange(n_b, dtype=np.float64)[:, None] / fb
        inner = np.arange(n_in, dtype=np.float64)[None, :] / f
        t = to_us((start + inner).ravel())
        t = t[t < window_us]
    else:  # modulated
        return _modulated(ch, window_us)
    return t, np.ones(t.shape[0]), np.full(t.shape[0], ch.pulse_width_s)


def _envelope(ch: Channel, t_us: np.ndarray) -> np.ndarray:
    """Amplitude factor of the on/off envelope at offsets within one contraction."""
    t = t_us / US_PER_S
    up, on, down = ch.ramp_up, ch.on or 0.0, ch.ramp_down
    f = np.ones(t.shape[0])
    with np.errstate(over="ignore", divide="ignore"):
        f = _ramps(f, t, up, on, down)
    return np.clip(f, 0.0, 1.0)


def _ramps(f: np.ndarray, t: np.ndarray, up: float, on: float, down: float) -> np.ndarray:
    if up > 0:
        f = np.minimum(f, t / up)
    if down > 0:
        f = np.minimum(f, (up + on + down - t) / down)
    return f


def _channel_starts(program: Program, channels: list[Channel]) -> list[float]:
    """Offset of each channel from the phase start, in s (timing mode plus own delay)."""
    mode = program.timing.mode
    out = []
    acc = 0.0
    for k, ch in enumerate(channels):
        if mode == "alternating":
            base = acc
            acc += ch.active_time
        elif mode == "sequenced":
            assert program.timing.offset is not None
            base = k * program.timing.offset
        else:
            base = 0.0
        out.append(base + ch.delay)
    return out


def phase_lengths(program: Program) -> list[float]:
    """Length of each phase in s: its duration, or the time its repetitions take (including
    the rest after the last contraction)."""
    out = []
    for ph, chans in zip(program.phase_list(), program.phase_channels(), strict=True):
        if ph.duration is not None:
            out.append(ph.duration)
            continue
        assert ph.repetitions is not None
        starts = _channel_starts(program, chans)
        out.append(max(s + ph.repetitions * (c.cycle_time or 0.0)
                       for s, c in zip(starts, chans, strict=True)))
    return out


def _expand_channel(
    ch: Channel, start_s: float, length_s: float, repetitions: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onsets (us, from the channel start), amplitudes (A) and widths (s) within one phase."""
    length_us = int(to_us(length_s - start_s))
    if length_us <= 0:
        empty = np.empty(0)
        return empty.astype(np.int64), empty, empty
    if ch.on is None:  # continuous
        t, a, w = train_offsets(ch, length_us)
        return t, a * ch.amplitude, w
    active_us = int(to_us(ch.active_time))
    cycle = ch.cycle_time
    assert cycle is not None
    t, a, w = train_offsets(ch, active_us)
    env = _envelope(ch, t)
    keep = env > 0
    t, a, w = t[keep], a[keep] * env[keep], w[keep]
    if repetitions is None:  # only whole contractions that fit in the phase
        n = int(math.floor((length_us - active_us) / (cycle * US_PER_S) + 1e-9)) + 1
        n = max(n, 0)
    else:
        n = repetitions
    starts = round_us(np.arange(n) * cycle * US_PER_S)
    tt = (starts[:, None] + t[None, :]).ravel()
    return tt, np.tile(a, n) * ch.amplitude, np.tile(w, n)


def _grid_count(freq: float, window_us: int) -> int:
    """At least as many onsets as ``_grid(freq, window_us)`` has: k with rint(k / freq) (in
    us) before the window's end, with a margin for floating-point rounding."""
    if window_us <= 0:
        return 0
    return int(math.floor((window_us - 0.5) * freq / US_PER_S + 1e-6)) + 1


def _window_count(ch: Channel, window_us: int) -> int:
    """At least as many pulses as ``train_offsets(ch, window_us)`` gives, from the train's
    rates alone (nothing is allocated)."""
    if window_us <= 0:
        return 0
    tr = ch.train
    if tr.kind == "constant":
        return _grid_count(ch.frequency, window_us)
    if tr.kind == "doublet":
        return _grid_count(ch.frequency, window_us) * (2 if tr.doublets == "all" else 1) + 1
    if tr.kind == "variable":
        assert tr.intervals is not None
        iv = tr.intervals
        cycles, rest = divmod(window_us / US_PER_S, sum(iv))
        offsets = itertools.accumulate(iv[:-1], initial=0.0)
        partial = sum(1 for x in offsets if x < rest + 1e-6)
        return int(cycles) * len(iv) + partial + 1
    if tr.kind == "burst":
        assert tr.burst_frequency is not None
        if tr.pulses_per_burst is not None:
            n_in = tr.pulses_per_burst
        else:
            assert tr.burst_duty is not None
            n_in = max(1, int(math.floor(tr.burst_duty * ch.frequency / tr.burst_frequency
                                         + 1e-9)))
        return _grid_count(tr.burst_frequency, window_us) * n_in
    # modulated: one sweep is walked (as the expansion does) when it is short; a long one
    # counts its highest frequency throughout
    span = _sweep_span(ch, window_us)
    per_us = max(1, int(to_us(span)))
    f_max = ch.frequency
    for m in tr.modulation or []:
        if m.parameter == "frequency":
            f_max = max(float(m.low), float(m.high))
    per_sweep = _grid_count(f_max, per_us) + 1
    if per_sweep <= _SWEEP_WALK:
        per_sweep = len(_sweep(ch, span)[0])
    return (math.ceil(window_us / per_us) if per_us < window_us else 1) * per_sweep


def pulse_counts(program: Program) -> dict[str, int]:
    """Pulses of each channel in ``program``'s expansion, counted from the trains' rates and
    the envelopes without expanding anything: an upper bound, above the true count by at
    most a few pulses per contraction (ramp pulses of zero amplitude, rounding; for a
    modulated train, the sweep's highest frequency counts for the whole sweep).

    Returns
    -------
    dict
        Channel name -> pulse count over all phases.
    """
    out = dict.fromkeys(program.channel_names, 0)
    for ph, chans, length in zip(program.phase_list(), program.phase_channels(),
                                 phase_lengths(program), strict=True):
        for ch, start in zip(chans, _channel_starts(program, chans), strict=True):
            window_us = int(to_us(length - start))
            if window_us <= 0:
                continue
            if ch.on is None:
                out[ch.name] += _window_count(ch, window_us)
                continue
            cycle = ch.cycle_time
            assert cycle is not None
            active_us = int(to_us(ch.active_time))
            if ph.repetitions is not None:
                n = ph.repetitions
            else:
                n = max(int(math.floor((window_us - active_us) / (cycle * US_PER_S) + 1e-9)) + 1, 0)
            out[ch.name] += n * _window_count(ch, active_us)
    return out


def size_problem(program: Program) -> str | None:
    """Why ``program`` is too long or has too many pulses to expand (see
    ``MAX_PROGRAM_DURATION`` and ``MAX_PROGRAM_PULSES``), or None. Nothing is expanded."""
    from opennmes.stim._program import (
        MAX_PROGRAM_DURATION,
        MAX_PROGRAM_PULSES,
        PROGRAM_LIMITS_SOURCE,
    )

    total = float(sum(phase_lengths(program)))
    if not total <= MAX_PROGRAM_DURATION:
        if program.repetitions is not None:
            what = f" (repetitions = {program.repetitions})"
        elif program.phases is not None:
            what = f" ({len(program.phases)} phases)"
        else:
            what = ""
        return (f"program duration = {total:.4g} s{what} breaks the limit <= "
                f"{MAX_PROGRAM_DURATION:g} s ({MAX_PROGRAM_DURATION / 3600:g} h, the longest "
                f"program; MAX_PROGRAM_DURATION, {PROGRAM_LIMITS_SOURCE}); a program is one "
                f"session: give fewer repetitions or shorter phases, and run longer use as "
                f"several sessions")
    counts = pulse_counts(program)
    n = sum(counts.values())
    if n > MAX_PROGRAM_PULSES:
        worst = max(counts, key=lambda k: counts[k])
        share = f"channel {worst!r} has {counts[worst]:,}" if len(counts) > 1 else (
            f"channel {worst!r}")
        return (f"pulse count = {n:,} breaks the limit <= {MAX_PROGRAM_PULSES:,} pulses per "
                f"program (MAX_PROGRAM_PULSES, {PROGRAM_LIMITS_SOURCE}), counted before "
                f"expansion; {share}: lower the frequency, shorten the program or split it "
                f"into sessions")
    return None


def expand_program(program: Program) -> PulseSchedule:
    """Every pulse of ``program``, sorted by time then channel.

    Parameters
    ----------
    program : Program

    Returns
    -------
    PulseSchedule
        One row per pulse; onsets on whole microseconds.

    Raises
    ------
    ProgramError
        When the program is longer or has more pulses than one program may have (checked
        before anything is allocated; a validated Program never is).
    """
    problem = size_problem(program)
    if problem is not None:
        from opennmes.errors import ProgramError

        raise ProgramError(problem)
    names = program.channel_names
    index = {n: i for i, n in enumerate(names)}
    cols: dict[str, list[np.ndarray]] = {("t_us" if k == "t" else k): [] for k in COLUMNS}
    phase_start = 0.0
    for ph, chans, length in zip(program.phase_list(), program.phase_channels(),
                                 phase_lengths(program), strict=True):
        starts = _channel_starts(program, chans)
        for ch, start in zip(chans, starts, strict=True):
            t, a, w = _expand_channel(ch, start, length, ph.repetitions)
            n = t.shape[0]
            r_amp, r_w = ch.second_phase
            cols["t_us"].append(t + int(to_us(phase_start + start)))
            cols["channel"].append(np.full(n, index[ch.name], dtype=np.int16))
            cols["amplitude"].append(a)
            cols["phase_width"].append(w)
            cols["interphase_gap"].append(np.full(n, ch.interphase_gap))
            cols["amplitude2"].append(a * r_amp)
            cols["phase_width2"].append(w * (r_w / ch.pulse_width_s))
            cols["waveform"].append(np.full(n, ch.waveform_id, dtype=np.int8))
        phase_start += length
    if not cols["t_us"]:
        return PulseSchedule.empty(names)
    t_us = np.concatenate(cols.pop("t_us"))
    channel = np.concatenate(cols.pop("channel"))
    order = np.argsort(t_us * 32 + channel, kind="stable")
    t = t_us[order] / US_PER_S
    del t_us
    out = {"channel": channel[order]}
    del channel
    for k in list(cols):  # one column at a time, to keep memory low
        out[k] = np.concatenate(cols.pop(k))[order]
    return PulseSchedule(
        t=t,
        channel=out["channel"],
        amplitude=out["amplitude"],
        phase_width=out["phase_width"],
        interphase_gap=out["interphase_gap"],
        amplitude2=out["amplitude2"],
        phase_width2=out["phase_width2"],
        waveform=out["waveform"],
        channel_names=names,
    )
