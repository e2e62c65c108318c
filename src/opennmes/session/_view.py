"""Terminal views of a running session: a live Rich panel with keys, or plain progress lines.

Keys (live view, :data:`KEY_BINDINGS`, each a command of the one vocabulary): ``+`` / up arrow
raise the selected channel one step, ``-`` / down arrow lower it, Tab selects the next channel,
``t`` triggers it, ``p`` pauses or resumes, ``s`` stops, space or ``x`` is the emergency stop,
``0``-``9`` record a comfort rating.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from opennmes.session._commands import Command, apply_command

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.session._runner import SessionRunner, Status

__all__ = ["TerminalView", "PlainView", "KEY_HELP", "KEY_BINDINGS", "KeyBinding", "key_command",
           "handle_key", "format_status", "play"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class KeyBinding:
    """Keys of the live view that send one :class:`~opennmes.session.Command`.

    ``label`` is what :func:`handle_key` returns; ``help`` is the binding in
    :data:`KEY_HELP`.
    """

    keys: tuple[str, ...]
    command: Command
    label: str
    help: str


KEY_BINDINGS: tuple[KeyBinding, ...] = (
    KeyBinding(("+", "=", "\x1b[A"), Command.INCREASE, "up", "[+/↑] up"),
    KeyBinding(("-", "_", "\x1b[B"), Command.DECREASE, "down", "[-/↓] down"),
    KeyBinding(("\t",), Command.SELECT, "select", "[Tab] channel"),
    KeyBinding(("t", "T"), Command.TRIGGER, "trigger", "[t] trigger"),
    KeyBinding(("p", "P"), Command.TOGGLE_PAUSE, "pause", "[p] pause/resume"),
    KeyBinding(("s", "S"), Command.STOP, "stop", "[s] stop"),
    KeyBinding((" ", "x", "X"), Command.EMERGENCY_STOP, "emergency", "[space/x] EMERGENCY STOP"),
    KeyBinding(tuple("0123456789"), Command.RATE_COMFORT, "comfort", "[0-9] comfort"),
)
"""The live view's keys, each a command of the one vocabulary (``by="keyboard"``)."""

KEY_HELP = "  ".join(b.help for b in KEY_BINDINGS)


def key_command(key: str, *, channels: Sequence[str], selected: str,
                triggerable: Sequence[str]) -> tuple[KeyBinding, tuple[Any, ...]] | None:
    """The binding of ``key`` and its command's arguments (None: not a key we use, or ``t``
    on a channel that is not triggered).

    Parameters
    ----------
    key : str
    channels, triggerable : sequence of str
        The session's channels and its triggered channels.
    selected : str
        The selected channel (``Tab`` selects the next one, ``t`` triggers it).
    """
    binding = next((b for b in KEY_BINDINGS if key in b.keys), None)
    if binding is None:
        return None
    args: tuple[Any, ...] = ()
    if binding.command is Command.SELECT:
        chans = list(channels)
        args = (chans[(chans.index(selected) + 1) % len(chans)],)
    elif binding.command is Command.TRIGGER:
        if selected not in triggerable:
            return None
        args = (selected,)
    elif binding.command is Command.STOP:
        args = ("stop pressed",)
    elif binding.command is Command.EMERGENCY_STOP:
        args = ("emergency stop key",)
    elif binding.command is Command.RATE_COMFORT:
        args = (int(key),)
    return binding, args


def handle_key(runner: SessionRunner, key: str) -> str | None:
    """Apply one key press to the runner; returns what it did (None: not a key we use)."""
    found = key_command(key, channels=runner.channels, selected=runner.selected,
                        triggerable=runner.triggerable)
    if found is None:
        return None
    binding, args = found
    apply_command(runner, binding.command, *args, by="keyboard")
    return binding.label


def _countdown(st: Status) -> str:
    pos = st.position
    if st.paused:
        return "paused"
    if pos.contracting:
        return f"contraction {pos.contraction}/{pos.n_contractions}"
    if pos.next_contraction is None:
        return "no more contractions"
    return f"next contraction in {pos.next_contraction:4.1f} s"


def format_status(st: Status, duration: float) -> str:
    """One plain line describing the session."""
    amps = "  ".join(f"{c} {st.amplitude[c] * 1e3:5.1f} mA (level {st.levels[c] * 1e3:.0f})"
                     for c in st.levels)
    force = f"  force {st.force:6.1f} N" if st.force is not None else ""
    return (f"[{st.t:7.1f} s] {st.program_time:6.1f}/{duration:.0f} s  phase {st.position.phase}"
            f"  {_countdown(st)}  {amps}{force}")


class PlainView:
    """Progress lines every ``every`` s of session time (no TTY, CI logs)."""

    def __init__(self, runner: SessionRunner, *, every: float = 30.0,
                 stream: IO[str] | None = None) -> None:
        self.runner = runner
        self.every = float(every)
        self.stream = stream or sys.stdout
        self._next = 0.0
        self._seen = 0
        runner.add_hook(self._hook)

    def _events(self) -> None:
        evs = self.runner.events
        for ev in evs[self._seen:]:
            if ev.kind not in ("intensity",):
                self._print(f"[{ev.t:7.1f} s] event {ev.kind}: "
                            + ", ".join(f"{k}={v}" for k, v in ev.data().items()
                                        if v not in (None, "", ())))
        self._seen = len(evs)

    def _hook(self, runner: SessionRunner, t: float) -> None:
        self._events()
        if t + 1e-9 >= self._next:
            self._next = t + self.every
            self._print(format_status(runner.status(), runner.timeline.duration))

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        self._events()  # the stop and anything after the last window


class TerminalView:
    """A live panel (progress, phase, countdown, amplitudes, force) and the keyboard.

    Parameters
    ----------
    runner : SessionRunner
    keys : bool
        Read keys from stdin (only when it is a terminal).
    console : rich.console.Console, optional
    """

    def __init__(self, runner: SessionRunner, *, keys: bool = True, console: Any = None) -> None:
        from rich.console import Console

        self.runner = runner
        self.console = console or Console()
        self.keys = keys and sys.stdin.isatty()
        self._live: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_key = ""

    def render(self) -> Any:
        """The panel for the current status."""
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        r = self.runner
        st = r.status()
        dur = r.timeline.duration
        head = Text()
        head.append(f"{r.program.name}", style="bold")
        head.append(f"   {st.state.upper()}", style="yellow" if st.paused else
                    ("bold red" if st.state in ("stopping", "ended") else "green"))
        stimulating = any(a > 0 for a in st.amplitude.values())
        head.append("   ● STIMULATING" if stimulating else "   ○ output off",
                    style="bold magenta" if stimulating else "dim")
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=max(dur, 1e-9), completed=min(st.program_time, dur),
                                width=40), Text(f"{st.program_time:6.1f} / {dur:.0f} s"))
        line = Text(f" phase {st.position.phase}   {_countdown(st)}", style="bold")
        table = Table(box=None, padding=(0, 2))
        for col in ("channel", "now", "level", "max set", "program max"):
            table.add_column(col, justify="right" if col != "channel" else "left")
        for c in r.channels:
            mark = "▶ " if c == st.selected else "  "
            table.add_row(mark + c, f"{st.amplitude[c] * 1e3:5.1f} mA",
                          f"{st.levels[c] * 1e3:5.1f} mA", f"{st.max_levels[c] * 1e3:5.1f} mA",
                          f"{r.max_amplitude[c] * 1e3:5.1f} mA")
        parts: list[Any] = [head, bar, line, table]
        if st.force is not None:
            parts.append(Text(f" force {st.force:7.1f} N"))
        shown = [e for e in r.events if e.kind != "intensity"]
        if shown:
            ev = shown[-1]
            det = ", ".join(f"{k}={v}" for k, v in ev.data().items()
                            if k not in ("by", "utc", "channels", "max_amplitude")
                            and v not in (None, "", ()))
            parts.append(Text(f" last event at {ev.t:.1f} s: {ev.kind} {det}"[:78],
                              style="cyan"))
        parts.append(Text(KEY_HELP, style="dim"))
        return Panel(Group(*parts), title="OpenNMES session", border_style="cyan")

    def __enter__(self) -> TerminalView:
        from rich.live import Live

        self._live = Live(get_renderable=self.render, console=self.console,
                          refresh_per_second=8, transient=False)
        self._live.start()
        if self.keys:
            self._thread = threading.Thread(target=self._read_keys, name="nmes-keys",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._live is not None:
            self._live.stop()

    def _read_keys(self) -> None:
        import termios
        import tty

        fd = sys.stdin.fileno()
        try:
            old = termios.tcgetattr(fd)
        except termios.error:
            return
        try:
            tty.setcbreak(fd)
            while not self._stop.is_set():
                r, _, _ = select.select([fd], [], [], 0.1)
                if not r:
                    continue
                data = os.read(fd, 16).decode("utf-8", "replace")
                keys = [data] if data.startswith("\x1b[") else list(data)
                for k in keys:
                    try:
                        handle_key(self.runner, k)
                    except Exception as exc:  # a bad key never ends the session
                        log.warning("key %r: %s", k, exc)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)


def play(runner: SessionRunner, *, live: bool | None = None, keys: bool = True,
         every: float = 30.0, stream: IO[str] | None = None) -> Any:
    """Run the session with a view: the live panel on a terminal, plain lines otherwise.

    Returns the :class:`SessionResult`.
    """
    out = stream or sys.stdout
    use_live = out.isatty() if live is None else live
    if use_live:
        with TerminalView(runner, keys=keys):
            return runner.run()
    with PlainView(runner, every=every, stream=out):
        return runner.run()
