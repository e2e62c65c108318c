"""No way around the guard: whatever sequence of public calls a program on sim:// gets
(chunks scaled up or down, intensity changes, single pulses, stops and restarts), no pulse
the device delivers is above the program's amplitude (its ceiling), breaks a hard limit or an
advisory the program did not acknowledge, and a custom guard can only add checks.

The finding of the issue "Truthful record": a program of 5 mA on 1 cm2 delivered 270 pulses
at 80 mA through ``set_intensity`` on sim://, and ``configure(program, guard=<no-op>)`` let
sim:// deliver 1000 mA.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opennmes.devices import VirtualClock, open_stimulator
from opennmes.errors import NmesError, SafetyLimitError
from opennmes.safety import SafetyGuard
from opennmes.stim import Program, PulseSchedule, load_program_text

SMALL = """
name: small electrode
channels:
  - name: ch1
    electrode: {area: 1 cm2, site: quadriceps}
    frequency: 40 Hz
    pulse_width: 300 us
    amplitude: 5 mA
    ramp_up: 0.25 s
    on: 0.5 s
    ramp_down: 0.25 s
    off: 0.5 s
repetitions: 4
"""


def _breaks(program: Program, delivered: PulseSchedule) -> list[str]:
    """Limits the delivered pulses break, judged by a fresh guard of the device profile with
    the program's ceilings and acknowledgements, over the whole record at once."""
    from opennmes.devices import open_stimulator as _open

    with _open("sim://") as probe:
        profile = probe.safety_profile()
    guard = SafetyGuard.for_program(program, profile)
    return [str(v.error()) for v in guard.evaluate(delivered)]


calls = st.lists(st.one_of(
    st.tuples(st.just("deliver"), st.floats(0.0, 20.0)),          # chunk scale factor
    st.tuples(st.just("set_intensity"), st.floats(0.0, 0.2)),     # A, up to 40 x the ceiling
    st.tuples(st.just("single_pulse"), st.floats(0.0, 0.2)),      # A
    st.tuples(st.just("stop_start"), st.just(0.0)),
), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls)
def test_no_sequence_of_public_calls_gets_past_the_ceiling(ops: list[tuple[str, float]]) -> None:
    program = load_program_text(SMALL)
    plan = program.expand()
    k = 0  # next window (0.1 s) of the plan
    with open_stimulator("sim://", clock=VirtualClock()) as stim:
        stim.configure(program)
        stim.start()
        for op, x in ops:
            try:
                if op == "deliver":
                    if stim.state != "running":
                        stim.start()
                        k = 0
                    chunk = plan.window(k / 10, (k + 1) / 10).scaled(x)
                    k += 1
                    stim.deliver(chunk, until=k / 10)
                elif op == "set_intensity":
                    stim.set_intensity("ch1", x)
                elif op == "single_pulse":
                    if stim.state == "running":
                        stim.stop()
                    stim.single_pulse("ch1", x, 300e-6)
                else:
                    stim.stop()
                    stim.start()
                    k = 0
            except NmesError:
                pass  # refused: the device stopped or nothing changed
        delivered = stim.delivered()
        singles = stim.single_pulses()
    assert not len(delivered) or float(delivered.amplitude.max()) <= 0.005 * (1 + 1e-9)
    assert not len(singles) or float(singles.amplitude.max()) <= 0.005 * (1 + 1e-9)
    assert _breaks(program, delivered) == []


def test_the_findings_set_intensity_and_a_no_op_guard() -> None:
    program = load_program_text(SMALL)
    plan = program.expand()

    class NoOp:
        def check(self, chunk: Any) -> None:
            pass

    with open_stimulator("sim://", clock=VirtualClock()) as stim:
        stim.configure(program, guard=NoOp())
        stim.start()
        stim.deliver(plan.window(0, 0.5), until=0.5)
        with pytest.raises(SafetyLimitError, match=r"set_intensity\('ch1'\): intensity = 80 mA"
                                                   r" is outside 0 to 5 mA \(the program's "
                                                   r"amplitude for 'ch1', its ceiling\)"):
            stim.set_intensity("ch1", 0.080)
        stim.set_intensity("ch1", 0.004)  # below the ceiling: fine
        # a no-op guard adds nothing and removes nothing: 1000 mA is still refused
        with pytest.raises(SafetyLimitError, match="pulse amplitude"):
            stim.deliver(plan.window(0.5, 1.0).scaled(200.0), until=1.0)
        assert stim.state == "stopped"
        delivered = stim.delivered()
    assert float(np.max(delivered.amplitude)) <= 0.005 * (1 + 1e-9)


def test_a_custom_guard_adds_checks() -> None:
    program = load_program_text(SMALL)

    class NoMoreThanOneChunk:
        def __init__(self) -> None:
            self.n = 0

        def check(self, chunk: Any) -> None:
            self.n += 1
            if self.n > 1:
                raise SafetyLimitError("chunks", self.n, 1, "", "test guard")

    with open_stimulator("sim://", clock=VirtualClock()) as stim:
        stim.configure(program, guard=NoMoreThanOneChunk())
        stim.start()
        plan = program.expand()
        stim.deliver(plan.window(0, 0.1), until=0.1)
        with pytest.raises(SafetyLimitError, match="test guard"):
            stim.deliver(plan.window(0.1, 0.2), until=0.2)


def test_a_program_whose_worst_case_breaks_a_limit_is_refused_at_configure() -> None:
    """The device checks the whole program at every pulse's full amplitude before it is armed
    (a direct configure checked nothing until the first chunk)."""
    text = SMALL.replace("amplitude: 5 mA", "amplitude: 14 mA")  # 2.2 mA/cm2 rms on 1 cm2
    with open_stimulator("sim://", clock=VirtualClock()) as stim:
        with pytest.raises(SafetyLimitError, match="rms current density"):
            stim.configure(load_program_text(text))
        assert stim.state == "open"
