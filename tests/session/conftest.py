"""Stimulators for the session tests: the byte-level RehaStim 2 and P24 emulators over a pty,
and ``sim://`` (virtual clock unless a test needs real time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from opennmes.devices import Stimulator, VirtualClock, open_stimulator
from opennmes.stim import Program, load_program_text

BACKENDS = ("rehastim2", "p24", "sim")

RELAXED = 1.0
"""Watchdog stall margin (s) for real-time tests that are not about the watchdog: the widest
the runner allows. A loaded machine (the suite must pass with 4 CPU hogs beside it on 2
cores) has scheduling hiccups far longer than the default 60 ms margin, which would
(correctly) stop those sessions early and test nothing."""


def program_text(*, reps: int = 1, on: float = 0.5, off: float = 0.5, ramp: float = 0.25,
                 amplitude: str = "20 mA", pulse_width: str = "300 us",
                 site: str = "quadriceps", frequency: str = "40 Hz", name: str = "test") -> str:
    """A one-channel cyclic program every backend can play (40 Hz: RehaStim 2 grid; 100 us
    gap: RehaStim 2 fixed gap)."""
    return f"""
name: {name}
channels:
  - name: quad
    electrode: {{area: 50 cm2, site: {site}, side: right}}
    frequency: {frequency}
    pulse_width: {pulse_width}
    interphase_gap: 100 us
    amplitude: {amplitude}
    ramp_up: {ramp} s
    on: {on} s
    ramp_down: {ramp} s
    off: {off} s
repetitions: {reps}
"""


def make_program(**kw: Any) -> Program:
    return load_program_text(program_text(**kw))


@contextmanager
def backend(kind: str, *, virtual: bool = True) -> Iterator[tuple[Stimulator, Any]]:
    """(opened stimulator, emulator or None); closed afterwards."""
    if kind == "sim":
        with open_stimulator("sim://", clock=VirtualClock() if virtual else None) as stim:
            yield stim, None
        return
    if kind == "rehastim2":
        from opennmes.devices.sciencemode2 import RehaStim2Emulator as Emu
    else:
        from opennmes.devices.sciencemode4 import P24Emulator as Emu  # type: ignore[assignment]
    with Emu() as emu:
        with open_stimulator(f"{kind}://{emu.port}") as stim:
            yield stim, emu


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)
