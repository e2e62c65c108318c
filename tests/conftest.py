"""Shared test helpers: repository paths and running the ``nmes`` command as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
EXAMPLES = REPO / "examples"


def run_nmes(*args: str, timeout: float = 120, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m opennmes ARGS`` and capture its output."""
    full_env = dict(os.environ)
    full_env.setdefault("MPLBACKEND", "Agg")
    full_env["COLUMNS"] = "200"
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "opennmes", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO, env=full_env,
    )


@pytest.fixture
def nmes():
    """The :func:`run_nmes` helper as a fixture."""
    return run_nmes
