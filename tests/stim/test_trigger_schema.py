"""Triggered channels in program files (issue 6): the ``trigger`` of a channel, its rules, its
expansion (the worst case the guard checks), describe(), the schema and ``nmes program``."""

from __future__ import annotations

import json
from typing import get_args

import numpy as np
import pytest

from opennmes.errors import ProgramError
from opennmes.stim import (
    TRIGGER_SOURCES,
    Channel,
    Electrode,
    Program,
    Trigger,
    load_program,
    load_program_text,
    program_schema,
    save_program,
)

from ..conftest import EXAMPLES, run_nmes

# one channel; TRIGGER is replaced by each test's trigger mapping
BASE = """
name: Triggered
channels:
  - name: hand
    electrode: {area: 25 cm2, site: wrist extensors, side: left}
    frequency: 40 Hz
    pulse_width: 250 us
    amplitude: 30 mA
    ramp_up: 1 s
    on: 5 s
    ramp_down: 1 s
    trigger: TRIGGER
repetitions: 4
"""

EMG = ("{source: emg, signal: EDC, sensor: forearm, method: tkeo, threshold: 12, hold: 80 ms, "
       "rest: 2 s, refractory: 8 s, max_burst: 7 s}")
GAIT = "{source: gait, signal: Gyr_Z, delay: 20 ms, extension: 150 ms, refractory: 300 ms}"
BUTTON = "{source: button, refractory: 8 s}"
EXTERNAL = "{source: external}"


def _file(trigger: str, text: str = BASE) -> Program:
    return load_program_text(text.replace("TRIGGER", trigger), source="t.yaml")


def test_emg_trigger_from_a_file_in_si_units() -> None:
    p = _file(EMG)
    t = p.channels[0].trigger
    assert t is not None and t.source == "emg"
    assert (t.signal, t.sensor, t.method, t.threshold) == ("EDC", "forearm", "tkeo", 12.0)
    assert (t.hold, t.rest, t.refractory, t.max_burst) == pytest.approx((0.08, 2.0, 8.0, 7.0))
    assert t.silence_timeout == pytest.approx(0.5)  # the sensor-source default
    assert (t.delay, t.extension) == (0.0, 0.0)
    assert p.triggered_channels == ("hand",)


def test_gait_trigger_from_a_file() -> None:
    p = _file(GAIT)
    t = p.channels[0].trigger
    assert t is not None and t.source == "gait" and t.signal == "Gyr_Z"
    assert (t.delay, t.extension, t.refractory) == pytest.approx((0.02, 0.15, 0.3))
    assert t.silence_timeout == pytest.approx(0.5) and t.max_burst is None
    # emg-only fields keep their defaults
    assert (t.method, t.threshold, t.hold, t.rest) == ("threshold", None, 0.05, 1.0)


@pytest.mark.parametrize("trigger", [BUTTON, EXTERNAL])
def test_button_and_external_triggers_have_no_sensor(trigger: str) -> None:
    t = _file(trigger.replace("}", ", max_burst: 10 s}")).channels[0].trigger
    assert t is not None and t.source in ("button", "external")
    assert (t.signal, t.sensor, t.silence_timeout) == (None, None, None)
    assert t.max_burst == 10.0


def test_silence_timeout_can_be_set_for_sensor_sources() -> None:
    t = _file(GAIT.replace("}", ", silence_timeout: 200 ms}")).channels[0].trigger
    assert t is not None and t.silence_timeout == pytest.approx(0.2)


def test_sources_and_methods_match_the_sensing_layer() -> None:
    from opennmes.sensing import ONSET_METHODS

    assert TRIGGER_SOURCES == ("emg", "gait", "button", "external")
    assert get_args(Trigger.model_fields["method"].annotation) == ONSET_METHODS


@pytest.mark.parametrize(("trigger", "match"), [
    ("{source: emg}", r"channels\[0\]\.trigger: signal = None: a emg trigger needs the EMG "
                      r"channel"),
    ("{source: gait, signal: ' '}", r"trigger: signal = ' ': a gait trigger needs the sagittal "
                                    r"shank angular-velocity channel"),
    ("{source: button, signal: EDC}", r"signal = 'EDC': a button trigger has no sensor"),
    ("{source: external, sensor: imu}", r"sensor = 'imu': a external trigger has no sensor"),
    ("{source: button, silence_timeout: 1 s}", r"silence_timeout = 1\.0: a button trigger has "
                                               r"no sensor"),
    ("{source: emg, signal: EDC, delay: 100 ms}", r"delay = 0\.1 s: only gait triggers have a "
                                                  r"delay \(source is 'emg'\)"),
    ("{source: button, extension: 1 s}", r"extension = 1 s: only gait triggers"),
    ("{source: gait, signal: Gyr_Z, threshold: 3}", r"threshold = 3\.0: only emg triggers have "
                                                    r"an onset detector threshold"),
    ("{source: gait, signal: Gyr_Z, method: cusum}", r"method = 'cusum': only emg triggers"),
    ("{source: external, hold: 10 ms}", r"hold = 0\.01: only emg triggers"),
    ("{source: button, rest: 2 s}", r"rest = 2\.0: only emg triggers"),
    ("{source: emg, signal: EDC, refractory: -1 s}", r"refractory = -1 s: must be >= 0 s"),
    ("{source: gait, signal: G, delay: -10 ms}", r"delay = -0\.01 s: must be >= 0 s"),
    ("{source: emg, signal: EDC, hold: -1 ms}", r"hold = -0\.001 s: must be >= 0 s"),
    ("{source: emg, signal: EDC, max_burst: 0 s}", r"max_burst = 0 s: must be > 0 s when given"),
    ("{source: gait, signal: G, silence_timeout: 0 s}", r"silence_timeout = 0 s: must be > 0 s"),
    ("{source: emg, signal: EDC, rest: 0 s}", r"rest = 0 s: an emg trigger calibrates its "
                                              r"onset detector on rest EMG; rest must be > 0 s"),
    ("{source: emg, signal: EDC, threshold: 0}", r"threshold = 0\.0: must be > 0 when given"),
    ("{source: emg, signal: EDC, threshold: -2}", r"threshold = -2\.0: must be > 0"),
    ("{source: heel, signal: x}", r"channels\[0\]\.trigger\.source: Input should be 'emg', "
                                  r"'gait', 'button' or 'external'"),
    ("{source: button, refractory: 8}", r"trigger\.refractory: 8 has no unit"),
    ("{source: button, after: 1 s}", r"trigger\.after: unknown field"),
])
def test_trigger_refusals_name_field_value_and_rule(trigger: str, match: str) -> None:
    with pytest.raises(ProgramError, match=match) as info:
        _file(trigger)
    assert "t.yaml" in str(info.value)


def _hand(**kw: object) -> Channel:
    base: dict[str, object] = dict(
        name="hand", electrode=Electrode(area=25e-4, site="wrist extensors"), frequency=40.0,
        pulse_width=250e-6, amplitude=0.03, ramp_up=1.0, on=5.0, ramp_down=1.0, off=8.0,
        trigger=Trigger(source="button", refractory=8.0))
    base.update(kw)
    return Channel(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "match"), [
    (dict(on=None, ramp_up=0.0, ramp_down=0.0, off=0.0),
     r"a triggered channel needs 'on' or trigger\.max_burst \(got neither\)"),
    (dict(on=None, off=8.0, trigger=Trigger(source="button", max_burst=9.0)),
     r"off = 8 s: a triggered channel without 'on' has no cycle"),
    (dict(delay=0.5), r"delay = 0\.5 s: a triggered channel starts each burst at its trigger.*"
                      r"remove it"),
    (dict(delay=0.5, trigger=Trigger(source="gait", signal="Gyr_Z", refractory=8.0)),
     r"delay = 0\.5 s: .*use trigger\.delay \(foot-off \+ delay\)"),
    (dict(off=10.0), r"off = 10 s is longer than trigger\.refractory = 8 s: .*set off <= "
                     r"refractory"),
    (dict(trigger=Trigger(source="external", refractory=8.0, max_burst=1.5)),
     r"trigger\.max_burst = 1\.5 s is shorter than ramp_up \+ ramp_down = 2 s"),
])
def test_triggered_channel_refusals(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _hand(**kw)


def test_gait_burst_ends_at_on_or_max_burst() -> None:
    """Gait: the burst needs an end when initial contact is missed: ``on`` or max_burst."""
    gait = Trigger(source="gait", signal="Gyr_Z", extension=0.15)
    with pytest.raises(ValueError, match=r"needs 'on' or trigger\.max_burst"):
        _hand(on=None, ramp_up=0.1, ramp_down=0.1, off=0.0, trigger=gait)
    capped = _hand(on=None, ramp_up=0.1, ramp_down=0.1, off=0.0,
                   trigger=gait.model_copy(update={"max_burst": 2.0}))
    assert capped.burst_time == 2.0
    assert _hand(trigger=gait.model_copy(update={"refractory": 8.0})).burst_time == 7.0
    assert _hand(trigger=None).burst_time is None


def test_ramps_without_on_only_for_triggered_channels() -> None:
    with pytest.raises(ValueError, match="ramps and off time need an 'on' time"):
        _hand(on=None, off=0.0, trigger=None)
    c = _hand(on=None, off=0.0, trigger=Trigger(source="button", max_burst=3.0))
    assert (c.ramp_up, c.on, c.ramp_down, c.active_time) == (1.0, None, 1.0, 2.0)


def test_triggered_channels_need_synchronous_timing() -> None:
    two = BASE.replace("repetitions: 4", """  - name: other
    electrode: {width: 5 cm, height: 5 cm, site: wrist extensors, side: right}
    frequency: 40 Hz
    pulse_width: 250 us
    amplitude: 30 mA
    on: 5 s
    off: 8 s
timing: {mode: alternating}
repetitions: 4""")
    with pytest.raises(ProgramError, match=r"timing mode = 'alternating' places channels after "
                                           r"one another, but triggered channels \['hand'\] "
                                           r"start at their triggers; use synchronous timing"):
        _file(BUTTON, two)
    p = _file(BUTTON, two.replace("{mode: alternating}", "{mode: synchronous}"))
    assert p.triggered_channels == ("hand",) and p.channel_names == ("hand", "other")


def test_expansion_is_the_normal_schedule() -> None:
    """With ``on``: the same pulses as without the trigger (a burst every active + off);
    without ``on``: continuous at full amplitude, the ramps left out (the worst case)."""
    p = _file(EMG)
    plain = Program.model_validate(
        {**p.model_dump(), "channels": [{**p.channels[0].model_dump(), "trigger": None}]})
    assert plain.triggered_channels == ()
    assert p.expand().equals(plain.expand())
    assert p.duration_s == pytest.approx(4 * 7.0)  # off 0 s: bursts back to back
    q = _file(BUTTON.replace("}", ", max_burst: 4 s}"),
              BASE.replace("    on: 5 s\n", "").replace("    off: 8 s\n", "")
              .replace("repetitions: 4", "duration: 10 s"))
    s = q.expand()
    assert len(s) == 400  # 40 Hz for 10 s, from t = 0
    assert np.all(s.amplitude == pytest.approx(0.030))


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("trigger", [EMG, GAIT, BUTTON, EXTERNAL])
def test_round_trip_through_files(tmp_path, suffix: str, trigger: str) -> None:
    p = _file(trigger)
    f = tmp_path / f"p{suffix}"
    save_program(p, f)
    assert "trigger" in f.read_text()
    q = load_program(f)
    assert q == p and q.channels[0].trigger == p.channels[0].trigger


def test_describe_says_which_channel_is_triggered_and_by_what() -> None:
    text = _file(EMG).describe()
    assert ("hand: symmetric-biphasic, 40 Hz, 250 us, 30 mA, constant train, bursts: ramp 1 s / "
            "on 5 s / down 1 s, triggered by emg on 'EDC' of 'forearm' (tkeo h 12, refractory "
            "8 s, max burst 7 s); electrode 25 cm2 on left wrist extensors") in text
    gait = _file(GAIT).describe()
    assert ("triggered by gait on 'Gyr_Z' (delay 0.02 s, extension 0.15 s, refractory 0.3 s)"
            in gait)
    assert "triggered by external;" in _file(EXTERNAL).describe()
    drop = load_program(EXAMPLES / "programs" / "drop-foot-gait-triggered.yaml").describe()
    assert "bursts: ramp 0.1 s / until the trigger ends it / down 0.1 s" in drop


def test_schema_contains_the_trigger() -> None:
    schema = program_schema()
    channel = schema["$defs"]["Channel"]["properties"]
    assert "trigger" in channel
    trig = schema["$defs"]["Trigger"]
    assert trig["properties"]["source"]["enum"] == list(TRIGGER_SOURCES)
    assert set(trig["properties"]) == {
        "source", "signal", "sensor", "refractory", "max_burst", "silence_timeout", "delay",
        "extension", "method", "threshold", "hold", "rest", "detector", "polarity", "on_level",
        "off_level", "debounce"}
    assert trig["required"] == ["source"]


def test_examples_and_protocols_agree_with_their_triggers() -> None:
    """The two example files, and the triggered protocols of the library, whose channel
    triggers carry the protocol trigger's presets (refractory, timeout = max_burst,
    extension)."""
    from opennmes.therapy import get_protocol

    foot = load_program(EXAMPLES / "programs" / "drop-foot-gait-triggered.yaml")
    ft = foot.channels[0].trigger
    assert ft is not None and (ft.source, ft.signal) == ("gait", "Gyr_Z")
    assert (foot.channels[0].frequency, foot.channels[0].waveform) == (40.0, "asymmetric-biphasic")
    wrist = load_program(EXAMPLES / "programs" / "emg-triggered-wrist.yaml")
    wt = wrist.channels[0].trigger
    assert wt is not None and wt.source == "emg" and wt.threshold == 3.0
    for pid, source in (("drop-foot-fes", "gait"), ("stroke-hand-opening-emg", "emg")):
        proto = get_protocol(pid)
        assert proto.trigger is not None
        c = proto.program.channels[0]
        assert proto.program.triggered_channels == (c.name,)
        assert c.trigger is not None and c.trigger.source == source
        assert c.trigger.refractory == proto.trigger.refractory
        assert c.trigger.max_burst == proto.trigger.timeout == c.burst_time
        assert c.trigger.extension == proto.trigger.extension
        assert c.trigger.delay == proto.trigger.delay


def test_a_program_channel_drives_the_control_layer() -> None:
    """A gait channel without ``on`` (ramps only) is what the control layer takes: a burst
    that is never ended stops at max_burst."""
    from opennmes.control import TriggeredStimulation

    foot = load_program(EXAMPLES / "programs" / "drop-foot-gait-triggered.yaml")
    c = foot.channels[0]
    t = c.trigger
    assert t is not None and t.max_burst == 2.0
    stim = TriggeredStimulation(c, refractory=t.refractory, max_burst=t.max_burst,
                                silence_timeout=t.silence_timeout)
    assert stim.trigger(1.0, source="gait")
    s = stim.chunk(0.0, 5.0)
    assert s.t[0] == pytest.approx(1.0) and s.t[-1] < 1.0 + 2.0  # first pulse at the trigger
    assert s.amplitude.max() == pytest.approx(c.amplitude)


def test_nmes_program_schema_and_check_accept_triggers(tmp_path) -> None:
    r = run_nmes("program", "schema")
    assert r.returncode == 0, r.stderr
    assert "trigger" in json.loads(r.stdout)["$defs"]["Channel"]["properties"]
    f = tmp_path / "gait.yaml"
    f.write_text(BASE.replace("TRIGGER", GAIT.replace("}", ", max_burst: 7 s}")))
    ok = run_nmes("program", "check", str(f))
    assert ok.returncode == 0, ok.stderr
    # 4 bursts of 7 s at 40 Hz, back to back: 280 onsets each, the first at zero amplitude
    assert "OK for sim (1116 pulses, 28.0 s)" in ok.stdout
    for name, expect in (("drop-foot-gait-triggered", "(24000 pulses, 600.0 s)"),
                         ("emg-triggered-wrist", "(4880 pulses, 340.0 s)")):
        r = run_nmes("program", "check", str(EXAMPLES / "programs" / f"{name}.yaml"))
        assert r.returncode == 0, r.stderr
        assert expect in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("TRIGGER", "{source: emg, signal: EDC, delay: 100 ms}"))
    r = run_nmes("program", "check", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {bad}: channels[0].trigger: delay = 0.1 s: only gait triggers have a delay "
        f"(source is 'emg')"]


def test_heel_switch_gait_trigger_fields() -> None:
    """A gait trigger from an in-shoe heel switch: levels required and ordered; gyroscope-
    and heel-only fields refused elsewhere, each error naming the field and the value."""
    from opennmes.stim import Trigger

    t = Trigger(source="gait", signal="heel", detector="heel-switch", on_level=0.6,
                off_level=0.3, debounce="20 ms")
    assert t.debounce == pytest.approx(0.02) and "heel switch on 0.6 / off 0.3" in t.describe()
    with pytest.raises(ValueError, match="needs on_level and off_level"):
        Trigger(source="gait", signal="heel", detector="heel-switch")
    with pytest.raises(ValueError, match="off_level = 0.7 must be below on_level = 0.6"):
        Trigger(source="gait", signal="heel", detector="heel-switch", on_level=0.6,
                off_level=0.7)
    with pytest.raises(ValueError, match="polarity = -1: only gait triggers with a gyroscope"):
        Trigger(source="gait", signal="heel", detector="heel-switch", on_level=0.6,
                off_level=0.3, polarity=-1)
    with pytest.raises(ValueError, match="on_level = 0.6: only gait triggers with a heel sw"):
        Trigger(source="gait", signal="Gyr_Z", on_level=0.6)
    with pytest.raises(ValueError, match="detector = 'heel-switch': only gait triggers"):
        Trigger(source="emg", signal="EMG", detector="heel-switch")
    assert Trigger(source="gait", signal="Gyr_Z", polarity=-1).polarity == -1
