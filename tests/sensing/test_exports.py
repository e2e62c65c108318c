"""The public surface of opennmes.sensing is explicit and documented."""

from __future__ import annotations

import opennmes.sensing as sensing


def test_all_names_exist_and_have_docstrings() -> None:
    assert len(sensing.__all__) == len(set(sensing.__all__))
    for name in sensing.__all__:
        obj = getattr(sensing, name)
        if callable(obj):
            assert obj.__doc__, name
