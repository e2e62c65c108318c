"""Shared fixtures: programs that each device can play, and running emulators."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from opennmes.devices.sciencemode2 import RehaStim2Emulator
from opennmes.devices.sciencemode4 import P24Emulator
from opennmes.stim import Program, PulseSchedule, load_program_text

# emulators run on a thread of the test process: hand the interpreter lock over every 0.5 ms
# (default 5 ms) so the emulated device reads its bytes when they arrive, as hardware does
sys.setswitchinterval(0.0005)

RS2_PROGRAM = """
name: rehastim2 test
channels:
  - name: quad
    electrode: {area: 50 cm2, site: quadriceps, side: right}
    frequency: 25 Hz
    pulse_width: 300 us
    interphase_gap: 100 us
    amplitude: 30 mA
    ramp_up: 200 ms
    on: 300 ms
    ramp_down: 100 ms
    off: 200 ms
  - name: ham
    electrode: {area: 50 cm2, site: hamstrings, side: right}
    frequency: 25 Hz
    pulse_width: 200 us
    interphase_gap: 100 us
    amplitude: 12 mA
duration: 1.2 s
"""

P24_PROGRAM = """
name: p24 test
channels:
  - name: quad
    electrode: {area: 50 cm2, site: quadriceps, side: right}
    frequency: 20 Hz
    pulse_width: 300 us
    interphase_gap: 50 us
    amplitude: 30 mA
    train: {kind: doublet, doublet_interval: 6 ms, doublets: all}
  - name: ham
    electrode: {area: 50 cm2, site: hamstrings, side: right}
    frequency: 40 Hz
    pulse_width: 200 us
    amplitude: 20 mA
    ramp_up: 200 ms
    on: 400 ms
    ramp_down: 100 ms
    off: 100 ms
  - name: ta
    electrode: {area: 25 cm2, site: tibialis anterior, side: right}
    waveform: asymmetric-biphasic
    asymmetry: 4
    frequency: 25 Hz
    pulse_width: 200 us
    amplitude: 20 mA
    train: {kind: doublet, doublet_interval: 8 ms, doublets: initial}
duration: 1.2 s
"""


@pytest.fixture
def rs2_program() -> Program:
    return load_program_text(RS2_PROGRAM)


@pytest.fixture
def p24_program() -> Program:
    return load_program_text(P24_PROGRAM)


@pytest.fixture
def rs2_emulator() -> Iterator[RehaStim2Emulator]:
    with RehaStim2Emulator() as emu:
        yield emu


@pytest.fixture
def p24_emulator() -> Iterator[P24Emulator]:
    with P24Emulator() as emu:
        yield emu


def nonzero(s: PulseSchedule) -> PulseSchedule:
    return s.take(np.flatnonzero((s.amplitude > 0) | (s.amplitude2 > 0)))


def diff(a: PulseSchedule, b: PulseSchedule) -> str:
    """Rows that differ between two schedules (for assertion messages)."""
    x, y = a.to_pandas(), b.to_pandas()
    x["t"], y["t"] = x["t"].round(7), y["t"].round(7)
    m = x.merge(y, how="outer", on=["t", "channel"], indicator=True, suffixes=("_a", "_b"))
    bad = m[(m["_merge"] != "both") | ((m["amplitude_a"] - m["amplitude_b"]).abs() > 1e-9)]
    return bad[["t", "channel", "amplitude_a", "amplitude_b", "_merge"]].to_string()


TOL_T = 0.001
"""s: the host's t = 0 is within half the start command's round trip of the device's."""


def match(s: PulseSchedule, channel: int, t: float, amplitude: float | None = None
          ) -> int | None:
    """Index of a pulse of ``s`` on ``channel`` within TOL_T of ``t`` (with ``amplitude``)."""
    m = (s.channel == channel) & (np.abs(s.t - t) < TOL_T)
    if amplitude is not None:
        m &= np.abs(s.amplitude - amplitude) < 1e-9
    idx = np.flatnonzero(m)
    return int(idx[0]) if idx.size else None


def check_record(delivered: PulseSchedule, unconfirmed: PulseSchedule,
                 played: PulseSchedule) -> None:
    """The host's record tells the truth about what the emulator played: every pulse recorded
    as delivered was played at that amplitude, and every pulse played is either recorded so
    or among the unconfirmed candidates at the amplitude it was played at."""
    for j in range(len(delivered)):
        c, t, a = int(delivered.channel[j]), float(delivered.t[j]), float(delivered.amplitude[j])
        assert match(played, c, t, a) is not None, \
            f"recorded as delivered, not played so: {delivered.take([j]).to_pandas()}"
    for k in range(len(played)):
        c, t, a = int(played.channel[k]), float(played.t[k]), float(played.amplitude[k])
        assert match(delivered, c, t, a) is not None or \
            match(unconfirmed, c, t, a) is not None, \
            f"played, neither recorded nor flagged: {played.take([k]).to_pandas()}"


def stream(stim: Any, prog: Program, windows: int, *, after: Any = None,
           tail: float = 0.0) -> None:
    """Configure, start and play ``prog`` on ``stim`` in 0.1 s windows (the last one ``tail``
    s longer), calling ``after(i)`` after window ``i``."""
    stim.configure(prog)
    stim.start()
    sched = stim.quantize(prog.expand())
    for i in range(windows):
        stim.deliver(sched.window(i / 10, (i + 1) / 10),
                     until=(i + 1) / 10 + (tail if i == windows - 1 else 0.0))
        if after is not None:
            after(i)
