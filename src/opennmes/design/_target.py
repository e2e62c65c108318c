"""A target force profile: times (s) and forces (N), checked once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from opennmes.errors import SignalError

__all__ = ["Target", "read_target"]

MIN_DURATION = 0.05
"""Shortest target a train can be designed for, s."""
MAX_DURATION = 600.0
"""Longest target of one design, s (the NLP grows with the number of slots)."""


@dataclass(frozen=True, eq=False)
class Target:
    """A force profile to track: ``force`` (N) at times ``t`` (s), linear in between.

    Parameters
    ----------
    t : ndarray
        Sample times in s, strictly increasing, from 0 or later.
    force : ndarray
        Target force in N at each time, finite and >= 0, not all zero.
    source : str
        Where the target came from (a file name), for messages.
    """

    t: np.ndarray
    force: np.ndarray
    source: str = "target"

    def __post_init__(self) -> None:
        t = np.ascontiguousarray(self.t, dtype=np.float64)
        f = np.ascontiguousarray(self.force, dtype=np.float64)
        where = self.source
        if t.ndim != 1 or f.ndim != 1 or t.size != f.size:
            raise SignalError(f"{where}: t and force must be two columns of equal length "
                              f"(got {t.size} and {f.size} values)")
        if t.size < 2:
            raise SignalError(f"{where}: a target needs at least 2 samples, got {t.size}")
        for name, arr in (("t", t), ("force", f)):
            bad = ~np.isfinite(arr)
            if bad.any():
                i = int(np.argmax(bad))
                raise SignalError(f"{where}: {name} row {i + 1} = {arr[i]!r} is not a finite "
                                  "number")
        if t[0] < 0:
            raise SignalError(f"{where}: t row 1 = {t[0]!r} s is negative; times start at 0 s "
                              "or later")
        d = np.diff(t)
        if (d <= 0).any():
            i = int(np.argmax(d <= 0)) + 1
            raise SignalError(f"{where}: t row {i + 1} = {t[i]!r} s is not after row {i} = "
                              f"{t[i - 1]!r} s; times must increase")
        if (f < 0).any():
            i = int(np.argmax(f < 0))
            raise SignalError(f"{where}: force row {i + 1} = {f[i]:.6g} N is negative; a "
                              "stimulated muscle only pulls (force >= 0 N)")
        if not (f > 0).any():
            raise SignalError(f"{where}: force is 0 N everywhere; nothing to design for")
        span = float(t[-1] - t[0])
        if not MIN_DURATION <= span <= MAX_DURATION:
            raise SignalError(f"{where}: the target lasts {span:.6g} s; it must last from "
                              f"{MIN_DURATION * 1e3:g} ms to {MAX_DURATION / 60:g} min")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "force", f)

    @property
    def peak(self) -> float:
        """Largest target force, N."""
        return float(self.force.max())

    @property
    def active(self) -> tuple[float, float]:
        """The active interval (s): from the last zero sample before the first non-zero force
        to the first zero sample after the last one (the whole target when it never rests)."""
        nz = np.flatnonzero(self.force > 0)
        i0 = max(int(nz[0]) - 1, 0)
        i1 = min(int(nz[-1]) + 1, self.t.size - 1)
        return float(self.t[i0]), float(self.t[i1])

    def at(self, t: npt.ArrayLike) -> np.ndarray:
        """Target force (N) at times ``t`` (s), linear between samples, held at the ends."""
        return np.interp(np.asarray(t, dtype=np.float64), self.t, self.force)


def read_target(path: str | Path) -> Target:
    """Read a target CSV: columns ``t`` (s) and ``force`` (N), one header row.

    Raises
    ------
    SignalError
        The file is missing, unreadable, lacks a column, or holds a value that is not a
        finite number; the message names the file, the column and the row.
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise SignalError(f"{p}: no such target file")
    try:
        df = pd.read_csv(p, comment="#", skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise SignalError(f"{p}: the file is empty; a target needs a header 't,force' and "
                          "rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise SignalError(f"{p}: not a CSV table ({str(exc).splitlines()[0]})") from None
    cols = {str(c).strip(): c for c in df.columns}
    missing = [c for c in ("t", "force") if c not in cols]
    if missing:
        raise SignalError(f"{p}: missing column(s) {missing}; a target has columns 't' (s) "
                          f"and 'force' (N), found {[str(c) for c in df.columns]}")
    if len(df) == 0:
        raise SignalError(f"{p}: no data rows under the header")
    out = []
    for name in ("t", "force"):
        col = df[cols[name]]
        vals = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(vals)
        if bad.any():
            i = int(np.argmax(bad))
            raise SignalError(f"{p}: {name} row {i + 1} = {col.iloc[i]!r} is not a finite "
                              "number")
        out.append(vals)
    return Target(out[0], out[1], source=str(p))
