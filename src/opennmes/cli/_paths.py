"""Where ``nmes`` reads and writes, and plain values: checked before any work.

One rule for every command: a missing folder on the way to an output is created when the
output is written, as for the reports and exports; anything that would stop the write (a file
where a folder should be, a folder where the file should be, no permission, a read-only file
system) is one ``error:`` line naming the path, before the command reads, computes or writes
anything. CSV inputs are checked the same way (:func:`input_table`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

from opennmes.errors import NmesError

__all__ = ["InputError", "parse_date", "OutputError", "output_file", "output_folder",
           "make_parent", "describe_os_error", "input_table", "input_pulses",
           "PULSE_TEXT_COLUMNS"]

PULSE_TEXT_COLUMNS = ("channel", "waveform")
"""Columns of a pulse-schedule CSV that hold names, not numbers."""


class OutputError(NmesError):
    """An output path of the command cannot be written."""


class InputError(NmesError, ValueError):
    """A command-line value that is not what the option takes."""


def parse_date(text: str, option: str) -> dt.date:
    """``"2026-03-14"`` -> a date; anything else is one InputError naming the option."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InputError(f"{option} {text!r} is not a date: {exc}; write it as YYYY-MM-DD, "
                         "e.g. 2026-03-14") from None


def describe_os_error(exc: OSError) -> str:
    """``"<path>: <reason>"`` for an OSError, without Python's ``[Errno n]`` noise."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename if exc.filename is not None else None
    return f"{name}: {reason}" if name is not None else reason


def _check_folder(folder: Path, option: str, path: Path) -> None:
    """The folder (existing, or to be made) can hold the output: its nearest existing
    ancestor is a writable folder. Nothing is created here."""
    p = folder
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    if not p.is_dir():
        raise OutputError(f"{option} {path}: {p} is a file, not a folder; choose another path")
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: the folder {p} is not writable (permissions or a "
                          "read-only file system); choose another path")


def make_parent(path: Path) -> Path:
    """Create the missing folders above ``path`` (just before it is written); returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def output_file(path: Path, option: str, suffixes: Sequence[str] = ()) -> Path:
    """Check an output file before the work starts (nothing is created yet: call
    :func:`make_parent` just before writing).

    Parameters
    ----------
    path : Path
        Where the file will be written.
    option : str
        The option or argument that named it, e.g. ``"--out"`` (named in messages).
    suffixes : sequence of str
        Allowed extensions (lower case, with the dot); empty: any.

    Raises
    ------
    OutputError
        Wrong extension, a folder at ``path``, or a folder that cannot be made or written.
    """
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name, e.g. "
                          f"{path / ('out' + (suffixes[0] if suffixes else ''))}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(f"{option} {path}: unknown output type {path.suffix or '(none)'!r}; "
                          f"use {' or '.join(suffixes)}")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{option} {path}: the file exists and is not writable")
    _check_folder(path.parent, option, path)
    return path


def output_folder(path: Path, option: str) -> Path:
    """Check an output folder before the work starts (it and its missing parents are made
    when the command writes into it).

    Raises
    ------
    OutputError
        A file is in the way, or the folder cannot be written.
    """
    _check_folder(path, option, path)
    return path


def input_table(path: Path, *, time_column: str | None = "t") -> list[str]:
    """Check a recording or trace given to a command before it is read: a ``.csv`` file must
    be a table of finite numbers whose time column increases (see
    :func:`opennmes.sensing.check_csv`); other file types are checked by their readers.
    Returns the CSV header's column names (empty for other files)."""
    if path.suffix.lower() != ".csv" or not path.is_file():
        return []
    from opennmes.sensing import check_csv

    return check_csv(path, time_column=time_column)


def input_pulses(path: Path) -> None:
    """Check a pulse-schedule ``.csv`` (``channel`` and ``waveform`` hold names; pulses of
    several channels may share a time, but times never go back)."""
    if path.suffix.lower() != ".csv" or not path.is_file():
        return
    from opennmes.sensing import check_csv

    check_csv(path, text_columns=PULSE_TEXT_COLUMNS, increasing="non-decreasing")
