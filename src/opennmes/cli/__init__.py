"""The ``nmes`` command.

Each command group lives in its own module in this package and exposes ``register(app)``;
modules are discovered here, so adding a group never edits this file. The CLI only parses,
calls the library and renders.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from opennmes.errors import NmesError

__all__ = ["app", "main", "FAILED_GROUPS"]

app = typer.Typer(
    name="nmes",
    help="OpenNMES: design, check, deliver, simulate and record neuromuscular stimulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


FAILED_GROUPS: dict[str, str] = {}
"""Command modules that could not be loaded, with the reason (a test keeps this empty)."""


def _load_groups() -> None:
    # one broken command module must not take every other command down with it
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{mod.name}")
            register = getattr(module, "register", None)
            if register is not None:
                register(app)
        except Exception as exc:  # reported by `nmes` and by the test suite
            FAILED_GROUPS[mod.name] = f"{type(exc).__name__}: {exc}"


_load_groups()


def main() -> None:
    """Entry point of the ``nmes`` command: library errors and file-system errors (a file that
    cannot be read or written) become one clear ``error:`` line and exit status 2."""
    for name, why in FAILED_GROUPS.items():
        typer.echo(f"warning: commands in {name!r} are unavailable ({why})", err=True)
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except NmesError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # a file the command reads or writes (disk full, no permission)
        from opennmes.cli._paths import describe_os_error

        typer.echo(f"error: {describe_os_error(exc)}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # usage errors (click's, or the copy of click inside typer)
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
