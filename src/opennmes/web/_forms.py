"""Parsing of form fields at the edge: text in, SI floats out, errors that name the field."""

from __future__ import annotations

import datetime as dt
import math

__all__ = ["FormError", "optional_number", "required_number", "optional_date", "optional_int"]


class FormError(ValueError):
    """A form field is wrong; ``field`` names it and the message says why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def optional_number(field: str, text: str, *, low: float, high: float, unit: str,
                    scale: float = 1.0) -> float | None:
    """``float(text) * scale`` (None when blank); FormError outside ``low .. high`` (in the
    form's unit)."""
    if not text.strip():
        return None
    return required_number(field, text, low=low, high=high, unit=unit, scale=scale)


def required_number(field: str, text: str, *, low: float, high: float, unit: str,
                    scale: float = 1.0) -> float:
    """``float(text) * scale``; FormError naming the field, the value and the range."""
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        raise FormError(field, f"{field}: {text!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise FormError(field, f"{field}: {text.strip()} {unit} is outside the allowed range "
                               f"{low:g} to {high:g} {unit}")
    return value * scale


def optional_date(field: str, text: str) -> dt.date | None:
    """An ISO date (YYYY-MM-DD) or None when blank; FormError naming the field otherwise."""
    if not text.strip():
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise FormError(field, f"{field}: {text.strip()!r} is not a date (YYYY-MM-DD)") from None


def optional_int(field: str, text: str, *, low: int, high: int) -> int | None:
    """A whole number in ``low .. high`` or None when blank."""
    if not text.strip():
        return None
    try:
        value = int(text.strip())
    except ValueError:
        raise FormError(field, f"{field}: {text.strip()!r} is not a whole number") from None
    if not low <= value <= high:
        raise FormError(field, f"{field}: {value} is outside the allowed range {low} to {high}")
    return value
