"""The runtime guard: hard limits, advisories with acknowledgements, device profiles, streams."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from opennmes.errors import SafetyLimitError
from opennmes.safety import LimitProfile, SafetyGuard, check_program, device_profile
from opennmes.stim import Acknowledgement, Channel, Electrode, Program, PulseSchedule, Waveform


def _train(amp: float, pw: float, f: float, seconds: float = 2.0) -> PulseSchedule:
    t = np.round(np.arange(int(seconds * f)) / f * 1e6) / 1e6
    return PulseSchedule.from_arrays(t, amp, pw)


def test_safe_train_passes_and_is_remembered() -> None:
    g = SafetyGuard(device_profile("sim"), {"ch1": 45e-4})
    g.check(_train(0.05, 300e-6, 35.0))
    assert g.pulses_checked == 70


def test_small_pad_blocks_on_rms_current_density_with_message() -> None:
    """50 mA, 400 us, 50 Hz on a 2 x 2 cm pad: 2.5 mA/cm2 rms > 2 mA/cm2 (IEC 60601-2-10)."""
    g = SafetyGuard(device_profile("sim"), {"ch1": 4e-4})
    with pytest.raises(SafetyLimitError) as info:
        g.check(_train(0.05, 400e-6, 50.0))
    e = info.value
    assert e.parameter.startswith("rms current density")
    assert e.limit == pytest.approx(2.0)
    assert e.unit == "mA/cm2"
    assert "IEC 60601-2-10" in e.source
    msg = str(e)
    assert "channel 'ch1', pulse" in msg and "<= 2 mA/cm2" in msg
    # the first offending pulse is the first whose 1 s window exceeds 2 mA/cm2:
    # (n * 2 * 0.05^2 * 400e-6)^0.5 / 4 cm2 > 2 mA/cm2  <=>  n > 32
    assert "pulse 32 " in msg


def test_acknowledged_advisory_passes_but_hard_limit_cannot_be_acknowledged() -> None:
    ack = [Acknowledgement(limit="rms_current_density", reason="small motor point electrode, "
                           "skin checked every 5 min", by="J. Doe, PT")]
    g = SafetyGuard(device_profile("sim"), {"ch1": 4e-4}, ack)
    g.check(_train(0.05, 400e-6, 50.0))
    with pytest.raises(SafetyLimitError, match="cannot be acknowledged"):
        SafetyGuard(device_profile("sim"), {"ch1": 4e-4},
                    [Acknowledgement(limit="energy_per_pulse", reason="because")])
    with pytest.raises(SafetyLimitError, match="unknown limit 'rms'"):
        SafetyGuard(device_profile("sim"), {"ch1": 4e-4},
                    [Acknowledgement(limit="rms", reason="because")])


@pytest.mark.parametrize("ack, expected", [
    (Acknowledgement(limit="energy_per_pulse", reason="because"),
     ["energy per pulse into 500 ohm", "<= 300 mJ", "IEC 60601-2-10", "hard limit",
      "cannot be acknowledged"]),
    (Acknowledgement(limit="rms_current_density", reason="   "),
     ["rms current density", "<= 2 mA/cm2", "IEC 60601-2-10", "needs a reason"]),
    (Acknowledgement(limit="rms_current_density", reason="ok.", by="J. Doe"),
     ["rms current density", "needs a reason", "at least 3 words", "'ok.'"]),
    (Acknowledgement(limit="rms_current_density", reason="because", by="J. Doe"),
     ["needs a reason", "at least 3 words"]),
    (Acknowledgement(limit="rms_current_density", reason="small pen electrode, supervised"),
     ["rms current density", "needs who decided it", "by: NAME"]),
])
def test_acknowledgement_errors_name_the_limit_not_nan(ack: Acknowledgement,
                                                       expected: list[str]) -> None:
    """A refused acknowledgement has no value to show: its message names the limit, its bound
    and source (it printed 'nan mA/cm2 breaks the limit <= nan mA/cm2')."""
    with pytest.raises(SafetyLimitError) as info:
        SafetyGuard(device_profile("sim"), {"ch1": 4e-4}, [ack])
    msg = str(info.value)
    assert "nan" not in msg.lower()
    assert msg.startswith(f"acknowledgement of {ack.limit!r}: ")
    for part in expected:
        assert part in msg


def test_chunk_with_other_channels_error_has_no_nan() -> None:
    g = SafetyGuard(device_profile("sim"), {"ch1": 45e-4, "ch2": 45e-4})
    g.check(_train(0.02, 300e-6, 35.0))
    other = PulseSchedule.from_arrays([0.0], 0.02, 300e-6, channel_names=("ch2",))
    with pytest.raises(SafetyLimitError, match="same channels") as info:
        g.check(other)
    assert "nan" not in str(info.value)


def test_energy_per_pulse_hard_limit() -> None:
    """300 mJ into 500 ohm (IEC 60601-2-10:1987 cl. 51.104): 150 mA needs 26.7 ms phases."""
    base = device_profile("sim")
    wide = {"phase_width": 0.1, "charge_per_phase": 1.0}  # only the energy is judged here
    prof = LimitProfile("test", tuple(replace(x, maximum=wide[x.key]) if x.key in wide else x
                                      for x in base.limits))
    g = SafetyGuard(prof, {"ch1": 1.0})
    s = PulseSchedule.from_arrays([0.0], 0.15, 0.0070)  # 2 * 0.15^2 * 500 * 7 ms = 157.5 mJ
    g.check(s)
    with pytest.raises(SafetyLimitError, match=r"energy per pulse into 500 ohm = 315 mJ"):
        g.check(PulseSchedule.from_arrays([1.0], 0.15, 0.0140))


def test_device_profiles_narrow_ranges() -> None:
    rs2 = SafetyGuard(device_profile("rehastim2"), {"ch1": 80e-4})
    with pytest.raises(SafetyLimitError, match=r"pulse amplitude = 140 mA .*<= 130 mA"):
        rs2.check(PulseSchedule.from_arrays([0.0], 0.140, 300e-6))
    rs2.reset()
    with pytest.raises(SafetyLimitError, match=r"phase width = 10 us .*>= 20 us"):
        rs2.check(PulseSchedule.from_arrays([0.0], 0.02, 10e-6))
    rs2.reset()
    asym = PulseSchedule(t=[0.0], channel=[0], amplitude=[0.02], phase_width=[2e-4],
                         interphase_gap=[0.0], amplitude2=[0.005], phase_width2=[8e-4],
                         waveform=[int(Waveform.ASYMMETRIC_BIPHASIC)], channel_names=("ch1",))
    with pytest.raises(SafetyLimitError, match="asymmetric-biphasic.*not allowed"):
        rs2.check(asym)
    SafetyGuard(device_profile("p24"), {"ch1": 80e-4}).check(asym)
    with pytest.raises(SafetyLimitError, match=r"pulse amplitude = 151 mA"):
        SafetyGuard(device_profile("p24"), {"ch1": 80e-4}).check(
            PulseSchedule.from_arrays([0.0], 0.151, 300e-6))


def test_charge_imbalance_and_net_dc() -> None:
    g = SafetyGuard(device_profile("sim"), {"ch1": 80e-4})
    bad = PulseSchedule(t=[0.0], channel=[0], amplitude=[0.02], phase_width=[3e-4],
                        interphase_gap=[0.0], amplitude2=[0.02], phase_width2=[2e-4],
                        waveform=[int(Waveform.SYMMETRIC_BIPHASIC)], channel_names=("ch1",))
    with pytest.raises(SafetyLimitError, match="net charge of a charge-balanced pulse"):
        g.check(bad)
    mono = PulseSchedule.from_arrays([0.0], 0.02, 3e-4, waveform=Waveform.MONOPHASIC)
    with pytest.raises(SafetyLimitError, match="monophasic"):
        SafetyGuard(device_profile("sim"), {"ch1": 80e-4}).check(mono)
    SafetyGuard(device_profile("sim"), {"ch1": 80e-4},
                [Acknowledgement(limit="net_dc", reason="iontophoresis study, clinician "
                                 "unlock", by="study physician")]).check(mono)


def test_overlapping_pulses_and_order() -> None:
    g = SafetyGuard(device_profile("sim"), {"ch1": 80e-4})
    with pytest.raises(SafetyLimitError, match="pulse duration / interval"):
        g.check(PulseSchedule.from_arrays([0.0, 0.0005], 0.02, 3e-4))
    g2 = SafetyGuard(device_profile("sim"), {"ch1": 80e-4})
    g2.check(PulseSchedule.from_arrays([1.0], 0.02, 3e-4))
    with pytest.raises(SafetyLimitError, match="time order"):
        g2.check(PulseSchedule.from_arrays([0.5], 0.02, 3e-4))
    # the interval across chunk boundaries counts too
    g3 = SafetyGuard(device_profile("sim"), {"ch1": 80e-4})
    g3.check(PulseSchedule.from_arrays([0.0], 0.02, 3e-4))
    with pytest.raises(SafetyLimitError, match="pulse duration / interval"):
        g3.check(PulseSchedule.from_arrays([0.0004], 0.02, 3e-4))


def test_stream_of_chunks_refused_at_the_same_pulse_as_the_whole() -> None:
    s = _train(0.05, 400e-6, 50.0, seconds=3.0).scaled(np.linspace(0.5, 1.0, 150))
    whole = SafetyGuard(device_profile("sim"), {"ch1": 4e-4})
    with pytest.raises(SafetyLimitError) as e_whole:
        whole.check(s)
    t_whole = s.t[int(str(e_whole.value).split("pulse ")[1].split()[0])]
    stream = SafetyGuard(device_profile("sim"), {"ch1": 4e-4})
    refused_at = None
    for c in s.chunks(0.1):
        try:
            stream.check(c)
        except SafetyLimitError as exc:
            refused_at = c.t[int(str(exc).split("pulse ")[1].split()[0])]
            break
    assert refused_at == pytest.approx(t_whole)


def test_missing_electrode_area() -> None:
    with pytest.raises(SafetyLimitError, match="electrode area"):
        SafetyGuard(device_profile("sim"), {}).check(_train(0.05, 300e-6, 35.0))


def test_check_program_reports_every_violation_and_warnings() -> None:
    ch = Channel(name="vm", electrode=Electrode(area=4e-4, site="quadriceps"),
                 frequency=120.0, pulse_width=600e-6, amplitude=0.14, on=5.0, off=2.0)
    rep = check_program(Program(name="bad", channels=[ch], repetitions=2), "rehastim2")
    keys = {v.limit.key for v in rep.violations}
    assert {"amplitude", "phase_width", "rms_current_density", "power_density"} <= keys
    assert not rep.ok
    assert any("outside 20-100 Hz" in w for w in rep.warnings)
    assert any("above 500 us" in w for w in rep.warnings)
    assert any("off:on" in w for w in rep.warnings)


def test_no_acknowledgement_lifts_the_per_phase_ceilings() -> None:
    """150 mA with 4000 us phases on 0.5 cm2 (the finding of the issue "Truthful record"):
    600 uC per phase and 300 mA/cm2 peak break the hard per-phase ceilings even with every
    advisory acknowledged properly; 40 mA, 300 us on 0.5 cm2 (12 uC, 80 mA/cm2) still breaks
    the current density; 40 mA, 300 us on 2 cm2 (20 mA/cm2) passes them."""
    from opennmes.safety import check_program
    from opennmes.stim import load_program_text

    def program(amplitude: str, width: str, area: str) -> str:
        return f"""
name: per phase
channels:
  - name: ch1
    electrode: {{area: {area}, site: quadriceps}}
    frequency: 20 Hz
    pulse_width: {width}
    amplitude: {amplitude}
duration: 2 s
acknowledgements:
  - {{limit: rms_current_density, reason: 'motor point study, skin checked', by: J. Doe}}
  - {{limit: power_density, reason: 'motor point study, skin checked', by: J. Doe}}
"""
    report = check_program(load_program_text(program("150 mA", "4000 us", "0.5 cm2")), "p24")
    broken = {v.limit.key: v for v in report.violations}
    assert set(broken) == {"charge_per_phase", "peak_current_density"}
    assert broken["charge_per_phase"].value == pytest.approx(600e-6)
    assert broken["peak_current_density"].value == pytest.approx(3000.0)  # 300 mA/cm2
    said = str(broken["charge_per_phase"].error())
    assert "charge per phase = 600 uC breaks the limit <= 100 uC (hard limit, OpenNMES " \
           "judgement" in said
    assert "peak current density per phase = 300 mA/cm2 breaks the limit <= 50 mA/cm2" in \
        str(broken["peak_current_density"].error())
    report = check_program(load_program_text(program("40 mA", "300 us", "0.5 cm2")), "sim")
    assert {v.limit.key for v in report.violations} == {"peak_current_density"}
    report = check_program(load_program_text(program("40 mA", "300 us", "2 cm2")), "sim")
    assert report.ok, report.violations
