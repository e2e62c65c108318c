"""The layers hold, read from the code (ast over src/): imports point down, and no package
reaches into another package's private (``_name``) module. See docs/architecture.md."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "opennmes"

FORBIDDEN: dict[str, set[str]] = {
    # control holds pure controllers and triggers: state in, amplitude or decision out
    "control": {"devices", "safety", "store", "session", "web", "cli"},
    "store": {"web", "cli", "therapy", "session", "report"},
    "devices": {"session", "control", "store", "web", "cli", "therapy", "report"},
    "stim": {"devices", "safety", "session", "store", "web", "cli", "physiology", "control"},
    "safety": {"devices", "session", "store", "web", "cli", "control"},
    "physiology": {"devices", "session", "store", "web", "cli", "control"},
    "sensing": {"devices", "session", "store", "web", "cli", "control"},
    "session": {"web", "cli"},
    "therapy": {"web", "cli", "session"},
    "report": {"web", "cli"},
    # design builds trains from models, the device's capabilities and its safety guard
    "design": {"devices", "session", "store", "web", "cli", "therapy", "report", "control",
               "sensing"},
    # cohorts compose programs, protocols and the virtual patient; no device, session or store
    "cohort": {"session", "store", "web", "cli", "devices"},
    # the base modules import nothing of the packages above them
    "schedule": {"stim", "devices", "safety", "session", "store", "web", "cli"},
    "signals": {"stim", "devices", "safety", "session", "store", "web", "cli"},
    "units": {"stim", "devices", "safety", "session", "store", "web", "cli"},
    "errors": {"stim", "devices", "safety", "session", "store", "web", "cli"},
    "i18n": {"stim", "devices", "safety", "session", "store", "web", "cli", "therapy", "report"},
}


def _imports() -> list[tuple[str, str, str]]:
    """(file relative to src/opennmes, importing package, imported module) for every import
    of an opennmes module, at any depth (TYPE_CHECKING and function-level imports count)."""
    out = []
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC)
        pkg = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            mods: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                raise AssertionError(f"{rel}: relative import; use absolute imports")
            out += [(str(rel), pkg, m) for m in mods if m.startswith("opennmes.")]
    return out


IMPORTS = _imports()


def test_the_scan_sees_the_code() -> None:
    assert len(IMPORTS) > 200
    assert {p for _, p, _ in IMPORTS} >= {"cli", "web", "session", "devices", "control"}


def test_no_package_imports_another_packages_private_module() -> None:
    bad = sorted({f"{rel}: {mod}" for rel, pkg, mod in IMPORTS
                  if mod.split(".")[1] != pkg
                  and any(part.startswith("_") for part in mod.split(".")[2:])})
    assert bad == []


@pytest.mark.parametrize("pkg", sorted(FORBIDDEN))
def test_imports_point_down(pkg: str) -> None:
    bad = sorted({f"{rel}: {mod}" for rel, p, mod in IMPORTS
                  if p == pkg and mod.split(".")[1] in FORBIDDEN[pkg]})
    assert bad == []


def test_the_library_never_imports_the_apps() -> None:
    bad = sorted({f"{rel}: {mod}" for rel, p, mod in IMPORTS
                  if p not in ("cli", "web", "__main__") and mod.split(".")[1] in ("cli", "web")})
    assert bad == []
