"""Checking a CSV table before it is read: one clear error for the first bad cell.

The readers (:func:`~opennmes.sensing.read_csv`, pulse schedules, force traces) turn a table
into arrays; a table with a word in a numeric column, an empty cell, ``nan`` or ``inf``, or a
time column that repeats or goes back would otherwise give a Python error deep in pandas or,
worse, a result full of NaN. :func:`check_csv` finds the first such cell and names the file,
its line, the column and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from pathlib import Path

import numpy as np

from opennmes.errors import SignalError

__all__ = ["check_csv"]

_UNIT = re.compile(r"^\s*(?P<name>.*?)\s*[\[(](?P<unit>[^\])]+)[\])]\s*$")


def _name(col: object) -> str:
    m = _UNIT.match(str(col))
    return m["name"] if m else str(col).strip()


def _data_lines(path: Path) -> Iterator[int]:
    """Line numbers (from 1) of the header and data rows, as pandas counts them with
    ``comment="#"``: blank lines and lines starting with ``#`` are skipped."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            text = line.strip()
            if text and not text.startswith("#"):
                yield n


def _line_of(path: Path, row: int) -> int:
    """The file line of data row ``row`` (0 = the first row under the header)."""
    for k, n in enumerate(_data_lines(path)):
        if k == row + 1:
            return n
    return row + 2


def check_csv(path: str | Path, *, time_column: str | None = "t",
              text_columns: Collection[str] = (), increasing: str = "strict") -> list[str]:
    """Check that a CSV file is a table of finite numbers with an increasing time column.

    Parameters
    ----------
    path : str or Path
        The ``.csv`` file (comma separated, one header row; ``#`` lines are comments).
    time_column : str, optional
        Name of the time column (a unit in the header, ``t [s]``, is allowed); its values
        must increase. None: no time column is checked.
    text_columns : collection of str
        Columns that hold names rather than numbers (e.g. a pulse table's ``channel``).
    increasing : {"strict", "non-decreasing"}
        ``"strict"``: every time is above the one before (samples of a recording);
        ``"non-decreasing"``: equal times are allowed (pulses of several channels at once).

    Raises
    ------
    SignalError
        The file is empty, is not a table, has no data rows, has a cell that is not a finite
        number (a word, an empty cell, ``nan``, ``inf``), or a time that repeats or goes
        back. The message names the file, the line, the column and the value.

    Returns
    -------
    list of str
        The column names of the header, as written.
    """
    import pandas as pd

    if increasing not in ("strict", "non-decreasing"):
        raise ValueError(f"increasing = {increasing!r} must be 'strict' or 'non-decreasing'")
    path = Path(path)
    try:
        df = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False,
                         skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise SignalError(f"{path}: the file is empty; a CSV table needs a header row and "
                          "data rows") from None
    except pd.errors.ParserError as exc:
        why = str(exc).strip().splitlines()[-1]
        raise SignalError(f"{path}: not a CSV table: {why}") from None
    except UnicodeDecodeError as exc:
        raise SignalError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None
    except OSError as exc:
        raise SignalError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise SignalError(f"{path}: no data rows under the header ({', '.join(columns)})")
    numeric = [c for c in columns if _name(c) not in text_columns]
    first: tuple[int, int, str] | None = None  # (row, column index, problem)
    n_bad = 0
    values: dict[str, np.ndarray] = {}
    for j, col in enumerate(numeric):
        raw = df[col].str.strip()
        vals = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
        values[col] = vals
        bad = np.flatnonzero(~np.isfinite(vals))
        if not bad.size:
            continue
        n_bad += int(bad.size)
        i = int(bad[0])
        if first is not None and (i, j) >= first[:2]:
            continue
        cell = str(raw.iloc[i])
        if cell == "":
            problem = "the cell is empty (a missing value)"
        else:
            try:
                float(cell)
                problem = f"{cell!r} is not a finite number"
            except ValueError:
                problem = f"{cell!r} is not a number"
        first = (i, j, problem)
    if first is not None:
        i, j, problem = first
        more = "" if n_bad == 1 else f" ({n_bad - 1} more bad cell{'s' if n_bad > 2 else ''})"
        raise SignalError(f"{path}: line {_line_of(path, i)}, column {numeric[j]!r}: "
                          f"{problem}; every cell must be a finite number{more}")
    tcol = next((c for c in numeric if _name(c) == time_column), None)
    if tcol is None:
        return columns
    t = values[tcol]
    dt = np.diff(t)
    bad = np.flatnonzero(dt <= 0 if increasing == "strict" else dt < 0)
    if bad.size:
        i = int(bad[0]) + 1
        what = ("repeats the time of the line before" if dt[i - 1] == 0 else
                f"goes back from {t[i - 1]:g}")
        rule = "increase" if increasing == "strict" else "not decrease"
        raise SignalError(f"{path}: line {_line_of(path, i)}, column {tcol!r}: time {t[i]:g} "
                          f"{what}; times must {rule} from row to row")
    return columns
