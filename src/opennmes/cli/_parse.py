"""Option parsing and output shared by the ``nmes`` groups that read signals: unit-bearing
ranges, channel pairs, signals written to CSV."""

from __future__ import annotations

from pathlib import Path

from opennmes.errors import UnitError
from opennmes.signals import Signals
from opennmes.units import parse_quantity

__all__ = ["parse_range", "parse_pair", "write_signals_csv"]


def parse_range(text: str, dimension: str, name: str) -> tuple[float, float]:
    """``"0 s,0.3 s"`` -> (0.0, 0.3) in SI units."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise UnitError(f"{name} = {text!r} must be two values with units separated by a comma, "
                        "e.g. '0 s,0.5 s'")
    a, b = (parse_quantity(p, dimension, name=name) for p in parts)
    if not a < b:
        raise UnitError(f"{name} = {text!r}: the first value must be below the second")
    return a, b


def parse_pair(text: str, name: str) -> tuple[str, str]:
    """``"Biceps:Triceps"`` -> ("Biceps", "Triceps")."""
    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        raise UnitError(f"{name} = {text!r} must be two channel names joined by ':'")
    return parts[0].strip(), parts[1].strip()


def write_signals_csv(sig: Signals, path: Path) -> None:
    """CSV with a ``t [s]`` column then ``name [unit]`` columns (readable by read_csv)."""
    df = sig.to_pandas()
    df.columns = ["t [s]"] + [f"{n} [{u}]" for n, u in zip(sig.names, sig.units, strict=True)]
    df.to_csv(path, index=False, float_format="%.9g")
