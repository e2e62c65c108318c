"""Run every benchmark in bench/ and write bench/RESULTS.md.

Each ``bench/bench_*.py`` defines ``run() -> list[dict]``; every dict has the keys
``name``, ``value``, ``unit``, ``goal`` (text, e.g. "< 0.5 s") and ``passed`` (bool or None),
and may add ``note``. ``python bench/run.py [NAME ...]`` runs all (or only the named) files.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import platform
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def main(argv: list[str]) -> int:
    files = sorted(HERE.glob("bench_*.py"))
    if argv:
        files = [f for f in files if any(a in f.stem for a in argv)]
    sections: list[str] = []
    failed = 0
    for f in files:
        print(f"== {f.name}", flush=True)
        spec = importlib.util.spec_from_file_location(f.stem, f)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
            rows = mod.run()
        except Exception:
            traceback.print_exc()
            sections.append(f"## {f.stem}\n\nfailed to run:\n\n```\n{traceback.format_exc()}```\n")
            failed += 1
            continue
        ran = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [f"## {f.stem}", "", f"Run on {ran}.", "",
                 "| benchmark | result | goal | met |", "|---|---|---|---|"]
        for r in rows:
            met = {True: "yes", False: "**no**", None: "-"}[r.get("passed")]
            val = r["value"]
            sval = f"{val:.4g}" if isinstance(val, float) else str(val)
            note = f" ({r['note']})" if r.get("note") else ""
            lines.append(f"| {r['name']}{note} | {sval} {r['unit']} | {r['goal']} | {met} |")
            print(f"  {r['name']}: {sval} {r['unit']} (goal {r['goal']}, met {met})", flush=True)
        sections.append("\n".join(lines) + "\n")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        "# Benchmark results\n\n"
        f"Written by `make bench` (bench/run.py); last written on {now}. `python bench/run.py "
        "NAME` reruns one file and replaces only its section; each section gives its own run "
        "time.\n\n"
        f"Machine: {_machine()}.\n\n"
    )
    out = HERE / "RESULTS.md"
    if argv and out.exists():
        # a partial run replaces only its own sections
        old = out.read_text().split("\n## ")
        keep = {s.split("\n", 1)[0]: "## " + s for s in old[1:]}
        for s in sections:
            keep[s.split("\n", 1)[0][3:]] = s
        sections = [keep[k] for k in sorted(keep)]
    out.write_text(header + "\n".join(sections))
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
