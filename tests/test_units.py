"""Parsing of unit-bearing strings (opennmes.units)."""

from __future__ import annotations

import pytest

from opennmes.errors import UnitError
from opennmes.units import parse_quantity


@pytest.mark.parametrize("text, dimension, value", [
    ("40 mA", "current", 0.040), ("300 us", "time", 300e-6), ("35Hz", "frequency", 35.0),
    ("80 cm²", "area", 80e-4), ("1e-3 A", "current", 1e-3), (".5 s", "time", 0.5),
])
def test_ascii_numbers_parse(text: str, dimension: str, value: float) -> None:
    assert parse_quantity(text, dimension) == pytest.approx(value)


@pytest.mark.parametrize("text, digit, fixed", [
    ("４０ mA", "FULLWIDTH DIGIT FOUR", "40 mA"),
    ("٤٠ mA", "ARABIC-INDIC DIGIT FOUR", "40 mA"),
    ("۳۵ mA", "EXTENDED ARABIC-INDIC DIGIT THREE", "35 mA"),
    ("4० mA", "DEVANAGARI DIGIT ZERO", "40 mA"),
    ("1e٣ uA", "ARABIC-INDIC DIGIT THREE", "1e3 uA"),
])
def test_non_ascii_digits_are_refused(text: str, digit: str, fixed: str) -> None:
    """Python's float() reads '４０' as 40: the parser must not (a reviewer of the file may
    not see the number it becomes)."""
    with pytest.raises(UnitError, match="digits other than ASCII 0-9") as exc:
        parse_quantity(text, "current", name="amplitude")
    msg = str(exc.value)
    assert msg.startswith("amplitude: ")
    assert digit in msg and repr(fixed) in msg
