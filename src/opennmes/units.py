"""Parsing of unit-bearing values at the edges (files, CLI, web forms).

Inside OpenNMES every quantity is an SI float: seconds, hertz, amperes, ohms, square metres,
coulombs, joules, watts. Files and command lines say ``"300 us"``, ``"40 mA"``, ``"35 Hz"``,
``"80 cm2"``; :func:`parse_quantity` converts them, refusing a value of the wrong dimension with
a message that names the value and the units it accepts.
"""

from __future__ import annotations

import math
import re
import unicodedata

from opennmes.errors import UnitError

__all__ = ["DIMENSIONS", "parse_quantity", "format_quantity"]

# unit symbol -> (dimension, factor to SI)
_UNITS: dict[str, tuple[str, float]] = {
    # time
    "s": ("time", 1.0),
    "ms": ("time", 1e-3),
    "us": ("time", 1e-6),
    "µs": ("time", 1e-6),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    # frequency
    "Hz": ("frequency", 1.0),
    "kHz": ("frequency", 1e3),
    "pps": ("frequency", 1.0),
    # current
    "A": ("current", 1.0),
    "mA": ("current", 1e-3),
    "uA": ("current", 1e-6),
    "µA": ("current", 1e-6),
    # length
    "m": ("length", 1.0),
    "cm": ("length", 1e-2),
    "mm": ("length", 1e-3),
    # area
    "m2": ("area", 1.0),
    "cm2": ("area", 1e-4),
    "mm2": ("area", 1e-6),
    # resistance
    "ohm": ("resistance", 1.0),
    "kohm": ("resistance", 1e3),
    # charge
    "C": ("charge", 1.0),
    "uC": ("charge", 1e-6),
    "µC": ("charge", 1e-6),
    # energy
    "J": ("energy", 1.0),
    "mJ": ("energy", 1e-3),
    # force
    "N": ("force", 1.0),
    # angle
    "rad": ("angle", 1.0),
    "deg": ("angle", math.pi / 180.0),
    # dimensionless
    "%": ("ratio", 0.01),
}

DIMENSIONS: dict[str, tuple[str, ...]] = {}
for _sym, (_dim, _f) in _UNITS.items():
    DIMENSIONS.setdefault(_dim, ())
    DIMENSIONS[_dim] = DIMENSIONS[_dim] + (_sym,)

_ALIASES = {"cm²": "cm2", "m²": "m2", "mm²": "mm2", "Ω": "ohm", "kΩ": "kohm", "°": "deg",
            "sec": "s", "hz": "Hz", "khz": "kHz", "ma": "mA"}

# digits are ASCII only: Python's \d and float() also accept other scripts' digits
# ('４０', '٤٠'), which a reader of the file may not recognise as the number it becomes
_RX = re.compile(
    r"^\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*([^\s0-9].*?)?\s*$")


def _foreign_digits(text: str) -> list[str]:
    """The decimal digits of ``text`` that are not ASCII 0-9 (fullwidth, Arabic-Indic, ...)."""
    return [c for c in text if c.isdecimal() and not ("0" <= c <= "9")]


def parse_quantity(text: str | float | int, dimension: str, *, name: str = "value") -> float:
    """Convert a unit-bearing value to an SI float.

    Parameters
    ----------
    text : str | float | int
        ``"300 us"``, ``"40 mA"``, ``"35Hz"``, ``"80 cm2"``. A bare number is refused: a
        physical value must carry its unit (no silent defaults).
    dimension : str
        One of the keys of :data:`DIMENSIONS` (``"time"``, ``"frequency"``, ``"current"``, ...).
    name : str
        Name of the field, used in error messages.

    Returns
    -------
    float
        The value in SI units (s, Hz, A, m, m^2, ohm, C, J, N, rad).

    Raises
    ------
    UnitError
        When the value has no unit, an unknown unit, the wrong dimension, is not finite, or
        writes its number with digits other than ASCII 0-9 (fullwidth ``４０``, Arabic-Indic
        ``٤٠``, ...: Python would read them, a person checking the file may not).
    """
    if dimension not in DIMENSIONS:
        raise UnitError(f"unknown dimension {dimension!r}; known: {sorted(DIMENSIONS)}")
    allowed = ", ".join(DIMENSIONS[dimension])
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise UnitError(f"{name}: expected a string such as '10 {DIMENSIONS[dimension][0]}', "
                        f"got {text!r}")
    if not isinstance(text, str):
        raise UnitError(
            f"{name}: {text!r} has no unit; write it with one of: {allowed}"
        )
    foreign = _foreign_digits(text)
    if foreign:
        which = ", ".join(f"{c!r} ({unicodedata.name(c, 'digit')})"
                          for c in dict.fromkeys(foreign))
        ascii_text = "".join(str(unicodedata.decimal(c)) if c in foreign else c for c in text)
        raise UnitError(f"{name}: {text!r} has digits other than ASCII 0-9: {which}; write "
                        f"the number with the digits 0-9, e.g. {ascii_text.strip()!r}")
    m = _RX.match(text)
    if not m:
        raise UnitError(f"{name}: cannot read {text!r} as a number with a unit ({allowed})")
    number, unit = m.group(1), (m.group(2) or "")
    unit = _ALIASES.get(unit, unit)
    if not unit:
        raise UnitError(f"{name}: {text!r} has no unit; write it with one of: {allowed}")
    if unit not in _UNITS:
        raise UnitError(f"{name}: unknown unit {unit!r} in {text!r}; use one of: {allowed}")
    dim, factor = _UNITS[unit]
    if dim != dimension:
        raise UnitError(
            f"{name}: {text!r} is a {dim}, expected a {dimension} (units: {allowed})"
        )
    value = float(number) * factor
    if not math.isfinite(value):
        raise UnitError(f"{name}: {text!r} is not a finite number")
    return value


_DISPLAY = {
    "time": [(1.0, "s"), (1e-3, "ms"), (1e-6, "us")],
    "current": [(1.0, "A"), (1e-3, "mA"), (1e-6, "uA")],
    "frequency": [(1e3, "kHz"), (1.0, "Hz")],
    "area": [(1e-4, "cm2")],
    "charge": [(1e-6, "uC")],
    "energy": [(1e-3, "mJ")],
}


def format_quantity(value: float, dimension: str, *, digits: int = 4) -> str:
    """Format an SI value with a readable unit, e.g. ``3e-4, 'time'`` -> ``'300 us'``.

    The result parses back with :func:`parse_quantity` to the same value (to ``digits``
    significant digits).
    """
    scales = _DISPLAY.get(dimension)
    if scales is None:
        sym = DIMENSIONS[dimension][0]
        return f"{value:.{digits}g} {sym}"
    for factor, sym in scales:
        if abs(value) >= factor or (factor, sym) == scales[-1]:
            return f"{value / factor:.{digits}g} {sym}"
    raise AssertionError("unreachable")  # pragma: no cover
