"""Pydantic field types for unit-bearing values.

Python callers pass SI floats (``frequency=35.0``); program files must write the unit
(``frequency: 35 Hz``). Validation with the context ``{"from_file": True}`` refuses bare numbers,
so that ``pulse_width: 300`` in a file can never become 300 seconds. Serialisation writes the
value back with a readable unit, so a dumped program loads again as written.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo

from opennmes.errors import UnitError
from opennmes.units import DIMENSIONS, format_quantity, parse_quantity

__all__ = ["Seconds", "Hertz", "Amperes", "SquareMetres", "Metres", "Fraction", "quantity"]


def _parser(dimension: str) -> Any:
    def parse(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            try:
                return parse_quantity(value, dimension, name=info.field_name or "value")
            except UnitError as exc:
                raise ValueError(str(exc).split(": ", 1)[-1]) from None
        if isinstance(value, bool):
            raise ValueError(f"expected a {dimension}, got {value!r}")
        if isinstance(value, int | float):
            ctx = info.context or {}
            if ctx.get("from_file") and dimension != "ratio":
                units = ", ".join(DIMENSIONS[dimension])
                raise ValueError(f"{value!r} has no unit; write it with one of: {units}")
            return float(value)
        return value

    return parse


def _serializer(dimension: str) -> Any:
    def ser(value: float) -> str | float:
        if dimension == "ratio":
            return value
        return format_quantity(value, dimension, digits=9)

    return ser


def quantity(dimension: str) -> Any:
    """An annotated float type that parses and serialises values of ``dimension``."""
    return Annotated[
        float,
        BeforeValidator(_parser(dimension)),
        PlainSerializer(_serializer(dimension), when_used="json"),
    ]


Seconds = quantity("time")
Hertz = quantity("frequency")
Amperes = quantity("current")
SquareMetres = quantity("area")
Metres = quantity("length")
Fraction = quantity("ratio")
