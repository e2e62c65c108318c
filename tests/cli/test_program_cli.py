"""``nmes program`` as a user runs it: a subprocess."""

from __future__ import annotations

import json

import pytest

from opennmes.stim import PulseSchedule, load_program

from ..conftest import EXAMPLES, run_nmes

QUADS = EXAMPLES / "programs" / "quadriceps.yaml"

UNSAFE = """
name: Too strong
channels:
  - name: vm
    electrode: {width: 2 cm, height: 2 cm, site: quadriceps}
    frequency: 50 Hz
    pulse_width: 400 us
    amplitude: 140 mA
    on: 5 s
    off: 10 s
repetitions: 2
"""


def test_check_safe_program_exits_zero() -> None:
    r = run_nmes("program", "check", str(QUADS))
    assert r.returncode == 0, r.stderr
    assert "OK for sim (6810 pulses, 645.0 s)" in r.stdout


def test_check_unsafe_program_one_line_per_violation(tmp_path) -> None:
    f = tmp_path / "unsafe.yaml"
    f.write_text(UNSAFE)
    r = run_nmes("program", "check", str(f), "--device", "rehastim2")
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith(str(f))]
    assert len(lines) == 3
    joined = "\n".join(lines)
    assert "pulse amplitude = 140 mA breaks the limit <= 130 mA" in joined
    assert "Hasomed ScienceMode2" in joined
    assert "rms current density" in joined and "IEC 60601-2-10" in joined
    # 140 mA * sqrt(2 * 400 us * 50 Hz) = 28 mA rms on 4 cm2 = 7 mA/cm2
    assert "worst 7 mA/cm2" in joined
    assert "rehastim2 cannot play this program exactly" in joined and "100 us gap" in joined


def test_check_tells_when_a_device_cannot_play_the_program() -> None:
    hw = EXAMPLES / "programs" / "quadriceps-hardware.yaml"
    for device in ("rehastim2", "p24"):
        ok = run_nmes("program", "check", str(hw), "--device", device)
        assert ok.returncode == 0, ok.stderr
    r = run_nmes("program", "check", str(QUADS), "--device", "p24")
    assert r.returncode == 2
    assert "P24 periods are multiples of 0.25 ms" in r.stderr and "35.0877 Hz" in r.stderr


def test_check_bad_file_names_file_field_and_fix(tmp_path) -> None:
    f = tmp_path / "typo.yaml"
    f.write_text(UNSAFE.replace("frequency: 50 Hz", "frequency: 50"))
    r = run_nmes("program", "check", str(f))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {f}: channels[0].frequency: 50 has no unit; write it with one of: Hz, kHz, pps"
    ]


def test_acknowledged_advisory_passes_with_a_notice(tmp_path) -> None:
    f = tmp_path / "ack.yaml"
    f.write_text(UNSAFE.replace("140 mA", "50 mA") + """acknowledgements:
  - {limit: rms_current_density, reason: motor-point pen electrode under supervision, by: J. Doe}
""")
    r = run_nmes("program", "check", str(f))
    assert r.returncode == 0, r.stderr
    assert "acknowledged: rms_current_density: motor-point pen electrode under supervision " \
           "(by J. Doe)" in r.stderr
    # 'ok.' is not a reason, and someone has to have decided it
    for ack, said in (("{limit: rms_current_density, reason: ok., by: J. Doe}", "needs a reason"),
                      ("{limit: rms_current_density, reason: pen electrode under supervision}",
                       "needs who decided it")):
        f.write_text(UNSAFE.replace("140 mA", "50 mA") + f"acknowledgements:\n  - {ack}\n")
        r = run_nmes("program", "check", str(f))
        assert r.returncode == 2 and said in r.stderr, r.stderr


def test_show_json_and_plot(tmp_path) -> None:
    png = tmp_path / "p.png"
    r = run_nmes("program", "show", str(QUADS), "--json", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout[: r.stdout.rindex("}") + 1])
    ch = data["channels"][0]
    assert data["pulses"] == 6810 and data["duration_s"] == 645.0
    assert ch["charge_per_phase_uC"] == pytest.approx(12.0)
    assert ch["peak_current_density_mA_cm2"] == pytest.approx(0.5)
    # 40 mA * sqrt(2 * 300 us * 35 Hz) = 5.797 mA rms on 80 cm2
    assert ch["rms_current_mA"] == pytest.approx(5.797, abs=0.002)
    assert ch["energy_per_pulse_500ohm_mJ"] == pytest.approx(0.48)
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_show_human_summary() -> None:
    r = run_nmes("program", "show", str(QUADS))
    assert r.returncode == 0, r.stderr
    assert "10 min 45.0 s" in r.stdout and "charge per phase (uC)" in r.stdout
    assert "safe" in r.stdout


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_expand_writes_every_pulse(tmp_path, suffix: str) -> None:
    out = tmp_path / f"pulses.{suffix}"
    r = run_nmes("program", "expand", str(QUADS), "--out", str(out))
    assert r.returncode == 0, r.stderr
    back = PulseSchedule.read(str(out))
    assert back.equals(load_program(QUADS).expand(), atol_t=1e-9, atol_a=1e-12)


def test_expand_without_out_prints_the_first_pulses_in_ma_and_us() -> None:
    r = run_nmes("program", "expand", str(QUADS), "--rows", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    n = len(load_program(QUADS).expand())
    assert lines[0].startswith(f"{n} pulses over ") and "the first 3" in lines[0]
    assert len(lines) == 2 + 3 and all(ln.rstrip().endswith("us") for ln in lines[2:])
    assert all(" mA " in ln for ln in lines[2:])


def test_expand_refuses_unsafe_and_writes_nothing(tmp_path) -> None:
    f = tmp_path / "unsafe.yaml"
    f.write_text(UNSAFE)
    out = tmp_path / "p.csv"
    r = run_nmes("program", "expand", str(f), "--out", str(out))
    assert r.returncode == 2 and not out.exists()


def test_schema_is_json() -> None:
    r = run_nmes("program", "schema")
    assert r.returncode == 0
    assert "channels" in json.loads(r.stdout)["properties"]


_SMALL = """
name: Limits
channels:
  - name: vm
    electrode: {area: 40 cm2, site: quadriceps}
    frequency: 35 Hz
    pulse_width: 300 us
    amplitude: 20 mA
    on: 5 s
    off: 10 s
repetitions: 3
"""


@pytest.mark.parametrize("old, new, expected", [
    ("repetitions: 3", "repetitions: 10000000",
     "program duration = 1.5e+08 s (repetitions = 10000000) breaks the limit <= 86400 s"),
    ("on: 5 s", "on: 1e9 s", "channels[0].on: on = 1e+09 s breaks the limit <= 86400 s"),
    ("    on: 5 s", "    train: {kind: variable, intervals: [1e-9 s]}\n    on: 5 s",
     "channels[0].train.intervals[0]: interval = 1e-09 s breaks the limit >= 10 us"),
    ("    on: 5 s", "    ramp_up: 1e300 s\n    on: 5 s",
     "channels[0].ramp_up: ramp_up = 1e+300 s breaks the limit <= 86400 s"),
    ("35 Hz", "1e-300 Hz", "channels[0].frequency: frequency = 1e-300 Hz breaks the limit "
                           ">= 0.01 Hz"),
    ("20 mA", "４０ mA", "channels[0].amplitude: '４０ mA' has digits other than ASCII 0-9"),
    ("    off: 10 s\n", "    off: 10 s\n    amplitude: 80 mA\n",
     "duplicate key 'amplitude' (first at line 8)"),
])
def test_check_refuses_oversized_and_odd_files_in_one_line(tmp_path, old: str, new: str,
                                                           expected: str) -> None:
    """Programs that asked numpy for 13-261 GiB (a MemoryError traceback), or printed a
    RuntimeWarning and a garbage schedule, are one error line naming field, value and limit."""
    assert old in _SMALL
    f = tmp_path / "odd.yaml"
    f.write_text(_SMALL.replace(old, new))
    r = run_nmes("program", "check", str(f))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {f}: ")
    assert expected in lines[0]
    assert "Traceback" not in r.stderr and "Warning" not in r.stderr


def test_check_names_the_limit_of_an_acknowledgement_without_nan(tmp_path) -> None:
    f = tmp_path / "ack.yaml"
    f.write_text(_SMALL + "acknowledgements:\n  - {limit: rms_current_density, reason: '   '}\n")
    r = run_nmes("program", "check", str(f))
    assert r.returncode == 2
    assert "nan" not in r.stderr
    assert "acknowledgement of 'rms_current_density'" in r.stderr
    assert "limit <= 2 mA/cm2" in r.stderr and "needs a reason" in r.stderr
