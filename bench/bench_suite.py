"""The whole test suite as a benchmark: how long `make test`'s pytest takes on this machine,
quiet and beside CPU hogs, and whether it stays green and quiet there.

Goals (issue "Hardening"): the whole suite under 8 minutes on a quiet 2-core machine; no
failures and no warnings, also with 4 CPU hog processes running beside it (a load average of
about 6 on 2 cores; no time goal there). The suite runs in a subprocess exactly as
`make pytest` runs it (``python -m pytest -q``); PostgreSQL tests run where
``NMES_TEST_PG_URL`` is set (``.ci/run`` sets it) and are counted as skipped otherwise.
``NMES_BENCH_SUITE=0`` leaves this file out (it takes about 15 minutes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import cpu_load, loadavg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 8 * 60.0


def _counts(out: str) -> dict[str, int]:
    """The numbers of pytest's last summary line (``1125 passed, 1 warning in 306.21s``)."""
    line = [ln for ln in out.splitlines() if re.search(r"\bin [\d.]+s\b", ln)][-1:]
    found = {k: int(n) for n, k in re.findall(
        r"(\d+) (passed|failed|errors?|skipped|warnings?|xfailed|xpassed)", "".join(line))}
    return {k.rstrip("s") if k in ("errors", "warnings") else k: v for k, v in found.items()}


def _suite(label: str, hogs: int) -> list[dict[str, Any]]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    with cpu_load(hogs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        load = loadavg()
    c = _counts(r.stdout)
    bad = c.get("failed", 0) + c.get("error", 0)
    note = (f"{c.get('passed', 0)} passed, {bad} failed, {c.get('skipped', 0)} skipped, "
            f"{c.get('warning', 0)} warnings; load average {load:.1f} at the end")
    if bad:
        failed = [ln for ln in r.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        note += "; " + "; ".join(failed[:5])
    timed = hogs == 0  # the time goal is for a quiet machine; loaded, the goal is a pass
    return [
        {"name": f"whole test suite, {label}", "value": wall, "unit": "s",
         "goal": f"< {GOAL_S:.0f} s" if timed else "-",
         "passed": wall < GOAL_S if timed else None, "note": note},
        {"name": f"  failures and errors, {label}", "value": bad, "unit": "",
         "goal": "0", "passed": bad == 0},
        {"name": f"  warnings, {label}", "value": c.get("warning", 0), "unit": "",
         "goal": "0", "passed": c.get("warning", 0) == 0},
    ]


def run() -> list[dict[str, Any]]:
    if os.environ.get("NMES_BENCH_SUITE", "1") == "0":
        return []
    return _suite("quiet", 0) + _suite("4 CPU hog processes", 4)
