"""A second Dask scheduler in its own process with its own worker processes, on loopback:
the stand-in for a multi-node cluster at a scheduler address."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import EXAMPLES

QUADS = EXAMPLES / "programs" / "quadriceps.yaml"

SPEC = f"""
name: small sweep
seed: 11
duration: 30 s
sfreq: 100 Hz
batch: 3
programs:
  - {QUADS}
  - protocol: total-knee-arthroplasty
patients:
  - preset: post-surgery
    n: 5
    spread: {{strength: 20 %, fatigability: 30 %, rheobase: 10 %}}
  - preset: stroke
    n: 2
    spread: {{strength: 10 %}}
metrics: [peak_force, force_time_integral, fatigue_index, a_end_ratio, n_contractions]
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen) -> None:
    """End one process group this fixture started (by its id), politely then firmly."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="package")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cohort") / "spec.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="package")
def remote_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tcp://127.0.0.1:PORT`` of a ``dask scheduler`` process with one ``dask worker``
    process (two worker processes under its nanny), started from an empty folder so the
    workers use the installed package; both process groups are ended afterwards."""
    from distributed import Client

    work = tmp_path_factory.mktemp("dask-remote")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for name, args in (
            ("scheduler", ["-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                           "--port", str(port), "--no-dashboard"]),
            ("worker", ["-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
                        "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                        "--local-directory", str(work)]),
        ):
            log = open(work / f"{name}.log", "w")  # noqa: SIM115 (closed below)
            logs.append(log)
            procs.append(subprocess.Popen([sys.executable, *args], cwd=work, env=env,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        deadline = time.monotonic() + 120
        while True:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("the dask scheduler or worker exited:\n"
                                   + (work / "scheduler.log").read_text()
                                   + (work / "worker.log").read_text())
            try:
                with Client(address, timeout=5) as c:
                    c.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
        yield address
    finally:
        for p in reversed(procs):
            _stop(p)
        for log in logs:
            log.close()
