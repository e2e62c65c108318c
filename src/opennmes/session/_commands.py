"""The one vocabulary of commands to a running session, defined once.

Every way of operating a session speaks it: a script (:class:`ScriptedOperator`), the terminal
view's keys (:data:`~opennmes.session.KEY_BINDINGS`), a session in its own process
(:class:`~opennmes.session.SupervisedSession`, which sends the same names over its pipe) and
through it the web app's live routes. A :class:`Command` names a control method of
:class:`~opennmes.session.SessionRunner`; its :class:`CommandSpec` in :data:`COMMANDS` says
which arguments it takes and how they are checked (:func:`check_command`), who presses it
by default and when it acts. :func:`apply_command` checks and applies one command to a
runner.

Starting is not a command to a running session: a session starts with
:func:`~opennmes.session.start_session` and :meth:`~opennmes.session.SessionRunner.run`
(in-process) or :func:`~opennmes.session.supervise` (in its own process).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opennmes.errors import NmesError

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.session._runner import SessionRunner

__all__ = ["Command", "CommandSpec", "Param", "COMMANDS", "CommandError", "check_command",
           "check_arity", "apply_command", "MAX_NOTE"]

MAX_NOTE = 2000
"""Longest note or reason, characters."""


class CommandError(NmesError, ValueError):
    """A command to a session is unknown or its arguments are wrong (the message says which
    and what is allowed); nothing was done."""


class Command(enum.StrEnum):
    """A command to a running session; the value is the runner's method name."""

    INCREASE = "increase"
    DECREASE = "decrease"
    SET_LEVEL = "set_level"
    SELECT = "select"
    PAUSE = "pause"
    RESUME = "resume"
    TOGGLE_PAUSE = "toggle_pause"
    TRIGGER = "trigger"
    END_BURST = "end_burst"
    RATE_COMFORT = "rate_comfort"
    SKIN_CHECK = "skin_check"
    ADVERSE_EVENT = "adverse_event"
    STOP = "stop"
    EMERGENCY_STOP = "emergency_stop"


@dataclass(frozen=True)
class Param:
    """One argument of a command.

    ``kind`` is ``channel`` (one of the session's channels), ``triggered`` (a channel a
    button can trigger), ``amplitude`` (a current in A, finite, >= 0), ``score`` (a whole
    number 0 to 10), ``flag`` (True or False), ``text`` (a note or reason, at most
    :data:`MAX_NOTE` characters; ``required`` texts must not be blank).
    """

    name: str
    kind: str
    required: bool = True
    doc: str = ""


@dataclass(frozen=True)
class CommandSpec:
    """What a command takes and does.

    ``by`` is who presses it when nobody is named (``None``: the command records no author,
    e.g. ``select``); ``at_once`` is True for commands that act from the caller's thread (the
    stops, the notes, the selection) rather than at the next control window.
    """

    command: Command
    params: tuple[Param, ...]
    summary: str
    by: str | None = "operator"
    at_once: bool = False

    @property
    def usage(self) -> str:
        """``name ARG [ARG]`` (optional arguments in brackets)."""
        return " ".join([self.command.value, *(p.name if p.required else f"[{p.name}]"
                                               for p in self.params)])


_CHANNEL = Param("channel", "channel", False, "the selected channel when not given")
_REASON = Param("reason", "text", False, "recorded with the stop")

COMMANDS: Mapping[Command, CommandSpec] = {s.command: s for s in (
    CommandSpec(Command.INCREASE, (_CHANNEL,),
                "raise a channel's intensity one step (never above the program amplitude)"),
    CommandSpec(Command.DECREASE, (_CHANNEL,), "lower a channel's intensity one step"),
    CommandSpec(Command.SET_LEVEL, (Param("channel", "channel"),
                                    Param("amplitude", "amplitude", doc="A")),
                "set a channel's intensity: any decrease, a rise of at most one MAX_STEP"),
    CommandSpec(Command.SELECT, (Param("channel", "channel"),),
                "choose the channel that increase and decrease act on", by=None, at_once=True),
    CommandSpec(Command.PAUSE, (), "output to zero, the program clock held"),
    CommandSpec(Command.RESUME, (), "continue where it paused, ramping up from zero"),
    CommandSpec(Command.TOGGLE_PAUSE, (), "pause when running, resume when paused"),
    CommandSpec(Command.TRIGGER, (Param("channel", "triggered"),),
                "start a burst on a triggered channel", by="button"),
    CommandSpec(Command.END_BURST, (Param("channel", "triggered"),),
                "ask the running burst of a triggered channel to ramp down", by="button"),
    CommandSpec(Command.RATE_COMFORT, (Param("score", "score"),),
                "record a comfort rating, 0 (unbearable) to 10 (fully comfortable)",
                by="patient", at_once=True),
    CommandSpec(Command.SKIN_CHECK, (Param("ok", "flag"), Param("note", "text", False),
                                     Param("channel", "channel", False)),
                "record a skin check under the electrodes", at_once=True),
    CommandSpec(Command.ADVERSE_EVENT, (Param("note", "text"),),
                "record an adverse event note", at_once=True),
    CommandSpec(Command.STOP, (_REASON,), "end the session now: output to zero, finished",
                at_once=True),
    CommandSpec(Command.EMERGENCY_STOP, (_REASON,),
                "one-action stop: output to zero now, the session aborted", at_once=True),
)}


def _command(name: Command | str) -> Command:
    try:
        return Command(name)
    except ValueError:
        raise CommandError(f"unknown session command {name!r}; commands: "
                           f"{[c.value for c in Command]}") from None


def _check(p: Param, value: Any, channels: Sequence[str], triggerable: Sequence[str]) -> Any:
    if p.kind == "channel":
        if value not in channels:
            raise CommandError(f"unknown channel {value!r}; channels: {list(channels)}")
        return value
    if p.kind == "triggered":
        if value not in triggerable:
            raise CommandError(f"channel {value!r} is not triggered by a button; triggered "
                               f"channels: {list(triggerable)}")
        return value
    if p.kind == "amplitude":
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value >= 0):
            raise CommandError(f"intensity = {value!r} A must be a finite current >= 0")
        return float(value)
    if p.kind == "score":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
            raise CommandError(f"comfort rating {value!r} must be a whole number from 0 "
                               "(unbearable) to 10 (fully comfortable)")
        return value
    if p.kind == "flag":
        if not isinstance(value, bool):
            raise CommandError(f"{p.name} = {value!r} must be True or False")
        return value
    if not isinstance(value, str):
        raise CommandError(f"{p.name} = {value!r} must be text")
    if len(value) > MAX_NOTE:
        raise CommandError(f"{p.name} has {len(value)} characters; at most {MAX_NOTE}")
    if p.required and not value.strip():
        raise CommandError(f"{p.name} must say what happened (it is empty)")
    return value


def check_arity(command: Command | str, args: Sequence[Any]) -> Command:
    """The :class:`Command` named by ``command`` when ``args`` has a number of arguments it
    takes (a script is checked so before its session); CommandError otherwise."""
    cmd = _command(command)
    spec = COMMANDS[cmd]
    n, n_required = len(tuple(args)), sum(p.required for p in spec.params)
    if not n_required <= n <= len(spec.params):
        some = f" ({n_required} required)" if n_required < len(spec.params) else ""
        raise CommandError(f"{cmd.value} takes {len(spec.params)} arguments{some}: "
                           f"{spec.usage}; got {n}")
    return cmd


def check_command(command: Command | str, args: Sequence[Any], *, channels: Sequence[str],
                  triggerable: Sequence[str] = ()) -> tuple[Command, tuple[Any, ...]]:
    """Check a command and its arguments against a session's channels.

    Parameters
    ----------
    command : Command or str
        A :class:`Command` or its name.
    args : sequence
        Positional arguments, as in :data:`COMMANDS`; an optional argument may be left out
        or given as None.
    channels : sequence of str
        The session's channels.
    triggerable : sequence of str
        The channels a button can trigger (``SessionRunner.triggerable``).

    Returns
    -------
    (Command, tuple)
        The command and its checked arguments (trailing optional arguments left out).

    Raises
    ------
    CommandError
        Unknown command, wrong number of arguments, or an argument out of range (the message
        names which and what is allowed).
    """
    cmd = check_arity(command, args)
    spec = COMMANDS[cmd]
    out = [None if (v is None and not p.required) else _check(p, v, channels, triggerable)
           for p, v in zip(spec.params, args, strict=False)]
    while out and out[-1] is None:
        out.pop()
    return cmd, tuple(out)


def apply_command(runner: SessionRunner, command: Command | str, *args: Any,
                  by: str | None = None) -> None:
    """Check ``command`` against the runner's channels and call the runner's method.

    Parameters
    ----------
    runner : SessionRunner
    command : Command or str
    *args
        The command's arguments (see :data:`COMMANDS`).
    by : str, optional
        Who pressed it (recorded with the event); the command's default when None.

    Raises
    ------
    CommandError, NmesError
        The command or an argument is wrong, or the runner refused it.
    """
    cmd, checked = check_command(command, args, channels=runner.channels,
                                 triggerable=runner.triggerable)
    spec = COMMANDS[cmd]
    kwargs = {p.name: v for p, v in zip(spec.params, checked, strict=False) if v is not None}
    if spec.by is not None:
        kwargs["by"] = spec.by if by is None else by
    getattr(runner, cmd.value)(**kwargs)
