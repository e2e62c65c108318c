"""Figure of a program: amplitude envelope per channel and a zoom on single pulses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opennmes.schedule import PulseSchedule, Waveform
from opennmes.stim import Program

__all__ = ["plot_program", "pulse_waveform"]


def pulse_waveform(s: PulseSchedule, i: int, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    """Current of pulse ``i`` sampled at ``sfreq`` Hz, in (s from onset, A)."""
    pw1, gap, pw2 = s.phase_width[i], s.interphase_gap[i], s.phase_width2[i]
    total = pw1 + gap + pw2
    t = np.arange(-0.1 * total, 1.1 * total, 1.0 / sfreq)
    cur = np.zeros_like(t)
    if s.waveform[i] == Waveform.SINE_CYCLE:
        inside = (t >= 0) & (t < total)
        cur[inside] = s.amplitude[i] * np.sin(np.pi * t[inside] / pw1)
        return t, cur
    cur[(t >= 0) & (t < pw1)] = s.amplitude[i]
    second = (t >= pw1 + gap) & (t < total)
    cur[second] = -s.amplitude2[i]
    return t, cur


def plot_program(program: Program, schedule: PulseSchedule, path: str | Path) -> None:
    """Write a PNG: top, amplitude of every pulse over time per channel; bottom, the shape of
    the first full-amplitude pulse of each channel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6.5), constrained_layout=True)
    dt = max(0.01, schedule.duration / 4000.0)
    n_bins = int(np.ceil(schedule.duration / dt)) + 1
    edges = np.arange(n_bins) * dt
    for i, name in enumerate(schedule.channel_names):
        m = schedule.channel == i
        if not m.any():
            continue
        env = np.zeros(n_bins)  # largest amplitude in each bin, zero where no pulse
        np.maximum.at(env, (schedule.t[m] / dt).astype(np.int64), schedule.amplitude[m])
        ax1.plot(edges, env * 1e3, lw=0.8, label=name)
        idx = np.flatnonzero(m)
        j = int(idx[np.argmax(schedule.amplitude[idx])])
        pw = schedule.phase_width[j] + schedule.interphase_gap[j] + schedule.phase_width2[j]
        t, cur = pulse_waveform(schedule, j, sfreq=200.0 / pw)
        ax2.plot(t * 1e6, cur * 1e3, lw=1.2, label=name)
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("amplitude (mA)")
    ax1.set_title(f"{program.name}: envelope")
    ax1.legend(loc="upper right", fontsize=8)
    ax2.axhline(0, color="0.6", lw=0.5)
    ax2.set_xlabel("time from pulse onset (us)")
    ax2.set_ylabel("current (mA)")
    ax2.set_title("single pulses at full amplitude")
    ax2.legend(loc="upper right", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
