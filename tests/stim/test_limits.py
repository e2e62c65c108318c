"""Size limits of programs (duration, pulse count, rates), refused before any expansion; unit
strings with non-ASCII digits; duplicate keys in program files."""

from __future__ import annotations

import glob
import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

from opennmes.errors import ProgramError
from opennmes.stim import (
    MAX_PROGRAM_DURATION,
    MAX_PROGRAM_PULSES,
    PROGRAM_FREQUENCY_RANGE,
    Channel,
    Electrode,
    Program,
    load_program,
    load_program_text,
)
from opennmes.stim._expand import pulse_counts

from ..conftest import EXAMPLES, REPO

BASE = """
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


def _edit(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new)


# each of these asked numpy for 13-261 GiB (or overflowed to a garbage schedule) before the
# limits; the message names the field, the value, the limit and where the limit comes from
OVERSIZED = {
    "repetitions": (_edit("repetitions: 3", "repetitions: 10000000"),
                    ["(top level): program duration = 1.5e+08 s (repetitions = 10000000)",
                     "<= 86400 s", "MAX_PROGRAM_DURATION"]),
    "on": (_edit("on: 5 s", "on: 1e9 s"),
           ["channels[0].on: on = 1e+09 s", "<= 86400 s", "MAX_PROGRAM_DURATION"]),
    "intervals": (_edit("    on: 5 s", "    train: {kind: variable, intervals: [1e-9 s]}\n"
                        "    on: 5 s"),
                  ["channels[0].train.intervals[0]: interval = 1e-09 s", ">= 10 us",
                   "PROGRAM_FREQUENCY_RANGE"]),
    "ramp_up": (_edit("    on: 5 s", "    ramp_up: 1e300 s\n    on: 5 s"),
                ["channels[0].ramp_up: ramp_up = 1e+300 s", "<= 86400 s",
                 "MAX_PROGRAM_DURATION"]),
    "low frequency": (_edit("35 Hz", "1e-300 Hz"),
                      ["channels[0].frequency: frequency = 1e-300 Hz", ">= 0.01 Hz",
                       "PROGRAM_FREQUENCY_RANGE"]),
    "high frequency": (_edit("35 Hz", "1e300 Hz"),
                       ["channels[0].frequency: frequency = 1e+300 Hz", "<= 100000 Hz",
                        "PROGRAM_FREQUENCY_RANGE"]),
    "pulses": (_edit("repetitions: 3", "duration: 24 h").replace(
                   "    on: 5 s\n    off: 10 s\n", "").replace("35 Hz", "200 Hz").replace(
                   "300 us", "100 us"),
               ["(top level): pulse count = 17,280,000", "<= 10,000,000 pulses",
                "MAX_PROGRAM_PULSES"]),
    "phases": (_edit("repetitions: 3", "phases:\n" + "".join(
                   f"  - {{name: p{i}, duration: 20 h}}\n" for i in range(3))),
               ["program duration = 2.16e+05 s (3 phases)", "MAX_PROGRAM_DURATION"]),
    "modulation period": (_edit("    on: 5 s", "    train: {kind: modulated, modulation: "
                                "[{parameter: frequency, low: 10 Hz, high: 50 Hz, "
                                "period: 1e-9 s}]}\n    on: 5 s"),
                          ["period = 1e-09 s breaks the limit >= 1e-05 s"]),
    "modulated frequency": (_edit("    on: 5 s", "    train: {kind: modulated, modulation: "
                                  "[{parameter: frequency, low: 1e-9 Hz, high: 50 Hz, "
                                  "period: 2 s}]}\n    on: 5 s"),
                            ["low = 1e-09 Hz breaks the limit >= 0.01 Hz"]),
    "trigger time": (_edit("    on: 5 s\n    off: 10 s\n",
                           "    on: 5 s\n    trigger: {source: button, refractory: 1e12 s}\n"),
                     ["channels[0].trigger.refractory: refractory = 1e+12 s",
                      "MAX_PROGRAM_DURATION"]),
}


@pytest.mark.parametrize("name", list(OVERSIZED))
def test_oversized_programs_are_refused_before_expansion(name: str,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    text, parts = OVERSIZED[name]

    def no_expansion(*args: object, **kwargs: object) -> None:
        raise AssertionError("the program was expanded")

    monkeypatch.setattr("opennmes.stim._expand.train_offsets", no_expansion)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from numpy either
        with pytest.raises(ProgramError) as info:
            load_program_text(text, source="big.yaml")
    msg = str(info.value)
    assert msg.startswith("big.yaml: ") and "\n" not in msg
    assert "docs/program-format.md#limits" in msg
    for part in parts:
        assert part in msg


def test_limits_apply_to_programs_built_in_python() -> None:
    electrode = Electrode(area=40e-4, site="quadriceps")
    with pytest.raises(ValidationError, match="MAX_PROGRAM_DURATION"):
        Channel(name="a", electrode=electrode, frequency=35.0, pulse_width=300e-6,
                amplitude=0.02, on=1e9)
    with pytest.raises(ValidationError, match="PROGRAM_FREQUENCY_RANGE"):
        Channel(name="a", electrode=electrode, frequency=float("1e-300"), pulse_width=300e-6,
                amplitude=0.02)
    ch = Channel(name="a", electrode=electrode, frequency=35.0, pulse_width=300e-6,
                 amplitude=0.02, on=5.0, off=10.0)
    with pytest.raises(ValidationError, match="repetitions = 10000000"):
        Program(name="p", channels=[ch], repetitions=10_000_000)


def test_a_program_at_the_limits_is_accepted() -> None:
    """24 h of 2-channel 50 Hz stimulation with 10 s : 20 s cycles (2 880 cycles of 500 pulses
    per channel) is long but allowed; the count is checked without expanding it. The pulse
    limit is inclusive: 2500 Hz for 4000 s is 10 million pulses, 0.4 ms more is refused."""
    text = _edit("35 Hz", "50 Hz").replace("on: 5 s", "on: 10 s").replace(
        "off: 10 s", "off: 20 s").replace("repetitions: 3", "duration: 24 h")
    two = text.replace("channels:\n", "channels:\n  - name: vl\n    electrode: {area: 40 cm2, "
                       "site: quadriceps}\n    frequency: 50 Hz\n    pulse_width: 300 us\n"
                       "    amplitude: 20 mA\n    on: 10 s\n    off: 20 s\n")
    program = load_program_text(two)
    assert program.duration_s == MAX_PROGRAM_DURATION
    counts = pulse_counts(program)
    assert counts == {"vl": 2880 * 500, "vm": 2880 * 500}
    tens = BASE.replace("    on: 5 s\n    off: 10 s\n", "").replace("35 Hz", "2500 Hz").replace(
        "300 us", "100 us")
    full = load_program_text(tens.replace("repetitions: 3", "duration: 4000 s"))
    assert pulse_counts(full) == {"vm": MAX_PROGRAM_PULSES}
    with pytest.raises(ProgramError, match="pulse count = 10,000,001 breaks"):
        load_program_text(tens.replace("repetitions: 3", "duration: 4000.0004 s"))


def _programs() -> list[Path]:
    return sorted(Path(p) for p in glob.glob(str(EXAMPLES / "programs" / "*.yaml")))


@pytest.mark.parametrize("path", _programs(), ids=lambda p: p.stem)
def test_pulse_count_bound_holds_and_is_close(path: Path) -> None:
    """The pre-expansion count is an upper bound of the real one, above it by at most two
    pulses per contraction (ramp pulses of zero amplitude, grid rounding)."""
    program = load_program(path)
    schedule = program.expand()
    counts = pulse_counts(program)
    for k, name in enumerate(program.channel_names):
        real = int((schedule.channel == k).sum())
        assert counts[name] >= real
        ch = program.channels[k]
        contractions = max(1, round(program.duration_s / (ch.cycle_time or
                                                          program.duration_s)))
        assert counts[name] - real <= 2 * contractions + 1


def test_rate_range_is_wider_than_the_safety_limits() -> None:
    """The program range only keeps numbers sane; the 10 kHz pulse-rate limit of the safety
    profiles (with its source) is what refuses a fast but finite train."""
    from opennmes.safety import device_profile

    assert PROGRAM_FREQUENCY_RANGE[1] > device_profile("sim").get("pulse_rate").maximum


def test_limits_are_documented() -> None:
    doc = (REPO / "docs" / "program-format.md").read_text()
    assert "## Limits" in doc
    for text in ("MAX_PROGRAM_DURATION", "MAX_PROGRAM_PULSES", "PROGRAM_FREQUENCY_RANGE",
                 "24 h", "10,000,000", "0.01 Hz", "100 kHz"):
        assert text in doc


@pytest.mark.parametrize("amplitude", ["４０ mA", "٤٠ mA"])
def test_non_ascii_digits_in_a_program_file(amplitude: str) -> None:
    with pytest.raises(ProgramError, match=r"channels\[0\]\.amplitude: .*digits other than "
                                           r"ASCII 0-9.*'40 mA'"):
        load_program_text(_edit("20 mA", amplitude), source="p.yaml")


def test_duplicate_keys_are_an_error_naming_key_and_lines() -> None:
    text = _edit("    off: 10 s\n", "    off: 10 s\n    amplitude: 80 mA\n")
    with pytest.raises(ProgramError) as info:
        load_program_text(text, source="dup.yaml")
    msg = str(info.value)
    assert "duplicate key 'amplitude' (first at line 8)" in msg
    assert "at line 11, column 5" in msg
    with pytest.raises(ProgramError, match="duplicate key 'name'"):
        load_program_text('{"name": "a", "name": "b", "channels": []}')


def test_yaml_merge_keys_may_be_overridden() -> None:
    """``<<:`` merges a mapping whose keys the explicit ones replace: not a duplicate."""
    text = BASE.replace("channels:\n  - name: vm\n", "x-pad: &pad {area: 40 cm2, site: vm}\n"
                        "channels:\n  - name: vm\n")
    text = text.replace("electrode: {area: 40 cm2, site: quadriceps}",
                        "electrode: {<<: *pad, site: quadriceps}")
    from opennmes.stim._files import read_yaml

    data = read_yaml(text)
    assert data["channels"][0]["electrode"] == {"area": "40 cm2", "site": "quadriceps"}
