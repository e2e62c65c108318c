"""Property tests of the safety invariants (hypothesis).

1. For any program that passes the check, every pulse of its expansion is within every hard
   limit and charge-balanced where the waveform promises it, judged by an independent
   pulse-by-pulse reference written here (not the guard's vectorised code); and any program the
   check refuses really breaks a limit by that reference.
2. Any byte string fed to the program loader gives a Program or a ProgramError.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from opennmes.errors import ProgramError
from opennmes.safety import check_program
from opennmes.stim import Channel, Electrode, Program, load_program_bytes, program_from_dict

SINE_POWER = 0.5


def reference_violations(program: Program) -> set[str]:
    """Limits broken by the expansion, judged pulse by pulse with plain Python."""
    s = program.expand()
    areas = [c.electrode.area_m2 for c in program.channels]
    acks = {a.limit for a in program.acknowledgements}
    out: set[str] = set()
    history: dict[int, list[tuple[float, float]]] = {}
    last: dict[int, tuple[float, float]] = {}
    for i in range(len(s)):
        a1, w1, gap = float(s.amplitude[i]), float(s.phase_width[i]), float(s.interphase_gap[i])
        a2, w2, wf = float(s.amplitude2[i]), float(s.phase_width2[i]), int(s.waveform[i])
        ch, t = int(s.channel[i]), float(s.t[i])
        if max(a1, a2) > 0.150 * (1 + 1e-9):
            out.add("amplitude")
        if max(w1, w2) > 4095e-6 * (1 + 1e-9):
            out.add("phase_width")
        sq = a1 * a1 * w1 + a2 * a2 * w2
        if wf == 3:
            sq *= SINE_POWER
        if sq * 500.0 > 0.300 * (1 + 1e-9):
            out.add("energy_per_pulse")
        q1, q2 = a1 * w1, a2 * w2
        if max(q1, q2) * (2 / math.pi if wf == 3 else 1.0) > 100e-6 * (1 + 1e-9):
            out.add("charge_per_phase")
        if max(a1, a2) / areas[ch] > 500.0 * (1 + 1e-9):
            out.add("peak_current_density")
        if wf == 0:
            if q1 > 0 and "net_dc" not in acks:
                out.add("net_dc")
        elif q1 > 0 and abs(q1 - q2) / q1 > 0.01 * (1 + 1e-9):
            out.add("charge_imbalance")
        if ch in last:
            t0, d0 = last[ch]
            if t - t0 <= 0 or (d0 - 1e-9) / (t - t0) > 1 + 1e-9:
                out.add("pulse_overlap")
            if t - t0 <= 0 or 1 / (t - t0) > 10_000 * (1 + 1e-9):
                out.add("pulse_rate")
        last[ch] = (t, w1 + gap + w2)
        h = [x for x in history.get(ch, []) if x[0] >= t - 1.0 + 2e-6] + [(t, sq)]
        history[ch] = h
        rms = math.sqrt(sum(x[1] for x in h) / 1.0)
        if rms / areas[ch] > 20.0 * (1 + 1e-9) and "rms_current_density" not in acks:
            out.add("rms_current_density")
        if rms * rms * 500 / areas[ch] > 2500.0 * (1 + 1e-9) and "power_density" not in acks:
            out.add("power_density")
    return out


@st.composite
def programs(draw: st.DrawFn) -> Program:
    n = draw(st.integers(1, 3))
    chans = []
    for k in range(n):
        wf = draw(st.sampled_from(["symmetric-biphasic", "asymmetric-biphasic", "monophasic"]))
        freq = draw(st.floats(1.0, 400.0))
        on = draw(st.one_of(st.none(), st.floats(0.2, 2.0)))
        env: dict[str, float | None] = {"on": on}
        if on is not None:
            env.update(ramp_up=draw(st.floats(0, 1.0)), ramp_down=draw(st.floats(0, 1.0)),
                       off=draw(st.floats(0, 1.0)))
        try:
            chans.append(Channel(
                name=f"c{k}",
                electrode=Electrode(area=draw(st.floats(1.0, 100.0)) * 1e-4, site="quadriceps"),
                waveform=wf,
                frequency=freq,
                pulse_width=draw(st.floats(20.0, 6000.0)) * 1e-6,
                asymmetry=draw(st.floats(1.5, 6.0)) if wf == "asymmetric-biphasic" else None,
                amplitude=draw(st.floats(0.0, 200.0)) * 1e-3,
                **env,
            ))
        except ValueError:
            assume(False)
    acks = draw(st.lists(st.sampled_from(["rms_current_density", "power_density", "net_dc"]),
                         unique=True, max_size=2))
    try:
        return Program(name="p", channels=chans, duration=draw(st.floats(0.5, 3.0)),
                       acknowledgements=[{"limit": a, "reason": "study protocol, supervised",
                                          "by": "study physician"}
                                         for a in acks])
    except ValueError:
        assume(False)
        raise


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
@given(programs())
def test_check_agrees_with_the_pulse_by_pulse_reference(program: Program) -> None:
    report = check_program(program, "sim")
    ref = reference_violations(program)
    got = {v.limit.key for v in report.violations}
    assert got == ref
    if report.ok:
        s = report.schedule
        assert np.all(np.maximum(s.amplitude, s.amplitude2) <= 0.150 + 1e-12)
        balanced = s.waveform != 0
        q1 = s.amplitude * s.phase_width
        q2 = s.amplitude2 * s.phase_width2
        assert np.all(np.abs(q1 - q2)[balanced] <= 0.01 * q1[balanced] + 1e-15)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_program_or_a_program_error(data: bytes) -> None:
    try:
        p = load_program_bytes(data, source="fuzz.yaml")
    except ProgramError:
        return
    assert isinstance(p, Program)


_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
              st.text(max_size=12), st.sampled_from(["35 Hz", "300 us", "40 mA", "80 cm2",
                                                     "-1 s", "1e400 Hz", "nan mA"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)

_FIELDS = ["electrode", "waveform", "frequency", "pulse_width", "amplitude", "ramp_up", "on",
           "ramp_down", "off", "train", "asymmetry", "interphase_gap", "delay", "name"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_FIELDS), _values, st.booleans())
def test_any_field_value_gives_a_program_or_a_program_error(field: str, value: object,
                                                            top: bool) -> None:
    ch = {"name": "q", "electrode": {"area": "80 cm2", "site": "quadriceps"},
          "frequency": "35 Hz", "pulse_width": "300 us", "amplitude": "40 mA",
          "on": "5 s", "off": "10 s"}
    doc: dict[str, object] = {"name": "fuzz", "channels": [ch], "repetitions": 2}
    if top:
        doc[field] = value
    else:
        ch[field] = value
    try:
        p = program_from_dict(doc, source="fuzz.yaml")
    except ProgramError:
        return
    assert isinstance(p, Program)
    p.expand()
