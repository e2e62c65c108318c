"""The one command vocabulary: every command is a control method of the runner with the
arguments its spec names, checked the same way whoever sends it (script, keys, supervisor,
web), and applied to a runner by one function."""

from __future__ import annotations

import inspect
import math

import pytest

from opennmes.session import (
    COMMANDS,
    KEY_BINDINGS,
    Command,
    CommandError,
    ScriptedOperator,
    SessionRunner,
    TriggerDrive,
    apply_command,
    check_command,
    key_command,
)
from opennmes.stim import Program

from .conftest import backend, make_program


def test_every_command_has_a_spec() -> None:
    assert set(COMMANDS) == set(Command)
    for cmd, spec in COMMANDS.items():
        assert spec.command is cmd and spec.summary


@pytest.mark.parametrize("command", list(Command))
def test_each_command_is_a_runner_method_taking_its_arguments(command: Command) -> None:
    spec = COMMANDS[command]
    params = inspect.signature(getattr(SessionRunner, command.value)).parameters
    positional = [p for p in params.values()
                  if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
    assert [p.name for p in positional] == [p.name for p in spec.params]
    for p, arg in zip(positional, spec.params, strict=True):
        assert (p.default is inspect.Parameter.empty) == arg.required, (command, p.name)
    assert ("by" in params) == (spec.by is not None)
    if spec.by is not None:
        assert params["by"].default == spec.by, command  # one default author


CHANNELS = ("quad", "hand")


@pytest.mark.parametrize(("command", "args", "message"), [
    ("jump", (), r"unknown session command 'jump'; commands: \['increase'"),
    (Command.INCREASE, ("nope",), r"unknown channel 'nope'; channels: \['quad', 'hand'\]"),
    (Command.INCREASE, ("quad", "hand"), r"increase takes 1 arguments \(0 required\): "
                                         r"increase \[channel\]; got 2"),
    (Command.SET_LEVEL, ("quad",), r"set_level takes 2 arguments: set_level channel "
                                   "amplitude; got 1"),
    (Command.SET_LEVEL, ("quad", -0.001), "intensity = -0.001 A must be a finite current"),
    (Command.SET_LEVEL, ("quad", math.nan), "intensity = nan A"),
    (Command.SET_LEVEL, ("quad", "5 mA"), "intensity = '5 mA' A"),
    (Command.TRIGGER, ("quad",), r"channel 'quad' is not triggered by a button; triggered "
                                 r"channels: \['hand'\]"),
    (Command.END_BURST, ("nope",), "channel 'nope' is not triggered by a button"),
    (Command.RATE_COMFORT, (11,), r"comfort rating 11 must be a whole number from 0 "
                                  r"\(unbearable\) to 10 \(fully comfortable\)"),
    (Command.RATE_COMFORT, ("7",), "comfort rating '7' must be a whole number"),
    (Command.RATE_COMFORT, (True,), "comfort rating True"),
    (Command.SKIN_CHECK, ("yes",), "ok = 'yes' must be True or False"),
    (Command.ADVERSE_EVENT, ("  ",), "note must say what happened"),
    (Command.ADVERSE_EVENT, ("x" * 2001,), "note has 2001 characters; at most 2000"),
    (Command.STOP, (3,), "reason = 3 must be text"),
])
def test_bad_commands_are_refused_naming_what(command: str, args: tuple[object, ...],
                                              message: str) -> None:
    with pytest.raises(CommandError, match=message):
        check_command(command, args, channels=CHANNELS, triggerable=("hand",))


def test_checked_arguments() -> None:
    check = lambda c, *a: check_command(c, a, channels=CHANNELS, triggerable=("hand",))  # noqa: E731
    assert check("increase") == (Command.INCREASE, ())
    assert check(Command.INCREASE, None) == (Command.INCREASE, ())
    assert check("set_level", "quad", 1) == (Command.SET_LEVEL, ("quad", 1.0))
    assert check("skin_check", False, None, "hand") == (Command.SKIN_CHECK,
                                                         (False, None, "hand"))
    assert check("stop") == (Command.STOP, ())


def _two_channels() -> Program:
    quad = make_program(reps=4, on=1.0, off=1.0).channels[0]
    hand = quad.model_copy(update={"name": "hand"})
    return Program(name="two", channels=[quad, hand], duration=6.0)


def test_apply_command_plays_each_command_on_a_runner() -> None:
    with backend("sim") as (stim, _):
        runner = SessionRunner(_two_channels(), stim,
                               drives=[TriggerDrive("hand", "button", refractory=0.5)])
        script = [(0.0, "increase", ("quad",)), (0.0, "increase", ()),
                  (0.2, "set_level", ("quad", 0.003)), (0.2, "select", ("hand",)),
                  (0.4, "increase", ()), (0.5, "trigger", ("hand",)),
                  (0.7, "end_burst", ("hand",)), (0.8, "pause", ()), (1.0, "resume", ()),
                  (1.2, "toggle_pause", ()), (1.4, "toggle_pause", ()),
                  (1.6, "rate_comfort", (8,)), (1.6, "skin_check", (True, "fine", "quad")),
                  (1.6, "adverse_event", ("tingling",)), (1.8, "decrease", ("quad",)),
                  (2.0, "emergency_stop", ("done",))]
        runner.add_hook(ScriptedOperator(script))
        res = runner.run()
    kinds = [e.kind for e in res.events]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    assert kinds.count("intensity") == 5 and kinds.count("pause") == 2
    assert kinds.count("resume") == 2
    assert [e.data()["result"] for e in res.events if e.kind == "trigger"] == ["burst", "end"]
    assert {"comfort", "skin_check", "adverse_event"} <= set(kinds)
    levels = [(e.data()["channel"], e.data()["new"]) for e in res.events
              if e.kind == "intensity"]
    assert levels == [("quad", 0.001), ("quad", 0.002), ("quad", 0.003), ("hand", 0.001),
                      ("quad", 0.002)]
    assert {e.data()["by"] for e in res.events[1:] if "by" in e.data()} == {"script"}
    assert res.how == "emergency" and res.reason == "done"


def test_a_script_is_checked_before_its_session() -> None:
    with pytest.raises(CommandError, match="unknown session command 'fly'"):
        ScriptedOperator([(1.0, "fly", ())])
    with pytest.raises(CommandError, match="rate_comfort takes 1 arguments"):
        ScriptedOperator([(1.0, "rate_comfort", ())])


def test_a_command_refused_by_apply_does_nothing() -> None:
    with backend("sim") as (stim, _):
        runner = SessionRunner(make_program(), stim)
        with pytest.raises(CommandError, match="unknown channel"):
            apply_command(runner, Command.INCREASE, "nope")
        with pytest.raises(CommandError, match="comfort rating 12"):
            apply_command(runner, "rate_comfort", 12)
        assert runner.events == []
        runner.stop("end")
        runner.run()


def test_key_bindings_are_commands() -> None:
    keys = [k for b in KEY_BINDINGS for k in b.keys]
    assert len(keys) == len(set(keys))  # one meaning per key
    assert {b.command for b in KEY_BINDINGS} <= set(Command)
    kw = {"channels": CHANNELS, "selected": "quad", "triggerable": ("hand",)}
    assert key_command("q", **kw) is None
    assert key_command("t", **kw) is None  # quad is not triggered
    found = key_command("t", **kw | {"selected": "hand"})
    assert found is not None and found[0].command is Command.TRIGGER and found[1] == ("hand",)
    tab = key_command("\t", **kw | {"selected": "hand"})
    assert tab is not None and tab[1] == ("quad",)  # wraps round
    seven = key_command("7", **kw)
    assert seven is not None and seven[0].command is Command.RATE_COMFORT
    assert seven[1] == (7,)
    for key, binding_args in [(k, key_command(k, **kw | {"selected": "hand"}))
                              for b in KEY_BINDINGS for k in b.keys]:
        assert binding_args is not None, key
        check_command(binding_args[0].command, binding_args[1], channels=CHANNELS,
                      triggerable=("hand",))
