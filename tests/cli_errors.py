"""The check every ``nmes`` attack test makes: a refused command is one ``error:`` line."""

from __future__ import annotations

from typing import Any


def one_error_line(r: Any, *names: object) -> str:
    """The single ``error:`` line on stderr of a refused ``nmes`` command (exit status 2, no
    traceback), which names every one of ``names``; ``r`` is what ``run_nmes`` returned."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for n in names:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]
