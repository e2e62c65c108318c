"""``nmes track --controller mpc``: model-predictive control of the quadriceps force on
sim://, recorded in the store; input it cannot use ends in one error line."""

from __future__ import annotations

import re

import pytest

from opennmes.store import open_store

from ..conftest import run_nmes
from .test_track import setup  # noqa: F401 - the same program (35 Hz, 90 mA) and store


def test_track_a_force_target_by_mpc(setup: tuple[str, str]) -> None:  # noqa: F811
    db, prog = setup
    r = run_nmes("track", prog, "--device", "sim://healthy-adult", "--patient", "S01",
                 "--db", db, "--virtual", "--plain", "--controller", "mpc",
                 "--peak-force", "100", "--repetitions", "1", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    rmse = [float(x) for x in re.findall(r"tracking error per repetition \(RMSE\): ([\d.]+) N",
                                         r.stdout)]
    assert len(rmse) == 1 and rmse[0] < 3.0, r.stdout  # measured 0.17 N
    assert "the target was tracked" in r.stdout
    with open_store(db) as s:
        rec = s.load_session(1)
    assert rec.info.status == "finished"
    assert rec.events[0].data["drives"]["quadriceps"].startswith("MPC on 'quadriceps.force'")
    ctl = rec.streams["control.quadriceps"]
    assert ctl.units == ("N", "N", "A") and ctl.sfreq == 35.0
    amp = ctl["quadriceps.amplitude"]
    assert 0.0 < amp.max() <= 0.09 + 1e-12
    assert len(rec.pulses) == int((amp > 0).sum())


@pytest.mark.parametrize(("args", "match"), [
    (["--controller", "lqr"], "--controller 'lqr'; one of pid, mpc"),
    (["--controller", "mpc", "--target", "walk.json"], "tracks a force"),
    (["--controller", "mpc", "--peak-force", "-5"], "--peak-force -5.0 N must be > 0"),
    (["--controller", "mpc", "--real-clock"], "runs on a virtual clock only"),
])
def test_track_mpc_refuses_what_it_cannot_do(setup: tuple[str, str],  # noqa: F811
                                             args: list[str], match: str) -> None:
    db, prog = setup
    clock = [] if "--real-clock" in args else ["--virtual"]
    args = [a for a in args if a != "--real-clock"]
    r = run_nmes("track", prog, "--device", "sim://healthy-adult", "--patient", "S01",
                 "--db", db, *clock, "--plain", *args)
    assert r.returncode == 2
    assert match in r.stderr
    with open_store(db) as s:
        assert not s.list_sessions()
