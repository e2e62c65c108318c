"""Meta-tests: every package and public base module declares ``__all__``, every exported name
exists and is documented, and the top-level package stays light to import."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import opennmes

PACKAGES = sorted(
    m.name for m in pkgutil.walk_packages(opennmes.__path__, "opennmes.")
    if m.ispkg and not m.name.split(".")[-1].startswith("_")
    and ".cli" not in m.name and ".migrations" not in m.name
)


BASE_MODULES = ["opennmes.errors", "opennmes.units", "opennmes.signals", "opennmes.schedule",
                "opennmes.capabilities"]
"""The public base modules (the currencies and the errors) that every layer imports."""


def test_packages_found() -> None:
    assert {"opennmes.stim", "opennmes.safety", "opennmes.control"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES + BASE_MODULES)
def test_exports_exist_and_are_documented(name: str) -> None:
    mod = importlib.import_module(name)
    assert mod.__doc__, f"{name} has no module docstring"
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{name} does not declare __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats names"
    for attr in exported:
        assert hasattr(mod, attr), f"{name}.__all__ names missing {attr!r}"
        obj = getattr(mod, attr)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name}.{attr} has no docstring"


def test_top_level_exports() -> None:
    for attr in opennmes.__all__:
        assert hasattr(opennmes, attr)


def test_import_is_light() -> None:
    """``import opennmes`` must not pull in numba, scipy, matplotlib or SQLAlchemy."""
    code = ("import sys, opennmes; heavy = [m for m in ('numba', 'scipy', 'matplotlib', "
            "'sqlalchemy', 'fastapi') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
