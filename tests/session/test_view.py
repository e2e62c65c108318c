"""The terminal views: keys map to the runner's controls; the panel and the plain lines show
progress, phase, countdown and amplitudes."""

from __future__ import annotations

import io

from rich.console import Console

from opennmes.session import KEY_HELP, PlainView, SessionRunner, TerminalView, handle_key

from .conftest import backend, make_program


def test_keys_drive_the_runner() -> None:
    prog = make_program(reps=2, on=1.0)
    with backend("sim") as (stim, _):
        runner = SessionRunner(prog, stim)
        pressed = {0.0: ["+", "+", "\x1b[A", "-"], 0.4: ["p"], 0.8: ["p"], 1.2: ["7"],
                   1.6: [" "]}
        done: set[float] = set()

        def keys(r: SessionRunner, t: float) -> None:
            for at, ks in pressed.items():
                if t >= at and at not in done:
                    done.add(at)
                    for k in ks:
                        assert handle_key(r, k) is not None

        runner.add_hook(keys)
        assert handle_key(runner, "q") is None
        res = runner.run()
    kinds = [e.kind for e in res.events]
    assert kinds.count("intensity") == 4 and res.dose[0].max_level == 0.003
    assert res.dose[0].final_level == 0.002
    assert "pause" in kinds and "resume" in kinds and "comfort" in kinds
    assert res.how == "emergency" and res.events[-1].data()["by"] == "keyboard"


def test_panel_and_plain_lines() -> None:
    prog = make_program(reps=2, on=1.0)
    with backend("sim") as (stim, _):
        runner = SessionRunner(prog, stim)
        for _ in range(10):
            runner.increase()
        out = io.StringIO()
        view = TerminalView(runner, keys=False, console=Console(file=io.StringIO(), width=120))
        shots: list[str] = []

        def snap(r: SessionRunner, t: float) -> None:
            if abs(t - 0.6) < 1e-6 or abs(t - 1.6) < 1e-6:
                c = Console(file=io.StringIO(), width=120, record=True)
                c.print(view.render())
                shots.append(c.export_text())

        runner.add_hook(snap)
        with PlainView(runner, every=0.5, stream=out):
            runner.run()
    assert "STIMULATING" in shots[0] and "contraction 1/2" in shots[0]
    assert "next contraction in" in shots[1] and "10.0 mA" in shots[0]
    assert KEY_HELP.split()[0] in shots[0]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[    0.0 s] event start")
    assert any("quad" in ln and "level 10" in ln for ln in lines)
    assert lines[-1].endswith("event stop: how=completed, reason=program completed, by=runner")
