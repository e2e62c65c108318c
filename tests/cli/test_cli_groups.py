"""Every command module loads, and ``nmes --help`` lists the groups."""

from __future__ import annotations

from opennmes import cli

from ..conftest import run_nmes


def test_every_command_group_loads() -> None:
    assert cli.FAILED_GROUPS == {}


def test_help_lists_groups() -> None:
    r = run_nmes("--help")
    assert r.returncode == 0, r.stderr
    for group in ("program", "simulate", "emulate", "devices", "emg", "gait", "assess", "db"):
        assert group in r.stdout
    assert "warning" not in r.stderr


def test_usage_errors_are_one_clear_message() -> None:
    """A missing option or an unknown command: click's usage message and exit code 2, never
    a traceback."""
    for args, says in ((("run", "x.yaml"), "Missing option '--device'"),
                       (("track",), "Missing"),
                       (("no-such-command",), "No such command")):
        r = run_nmes(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert says in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_installed_command_entry_point() -> None:
    """The same entry point as a process of its own (``python -m opennmes``, what the
    ``nmes`` script calls): help on stdout, and a library error is one line with exit 2."""
    r = run_nmes("--help", subprocess=True)
    assert r.returncode == 0 and "program" in r.stdout, r.stderr
    r = run_nmes("program", "check", "no-such-file.yaml", subprocess=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
