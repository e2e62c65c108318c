"""Fixtures of the store tests: every test runs on SQLite and, when ``NMES_TEST_PG_URL`` is
set (``.ci/postgres.sh`` prints it), on a fresh PostgreSQL database too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from opennmes.signals import Signals
from opennmes.stim import PulseSchedule
from opennmes.store import Store, open_store

from ..conftest import pg_database


@pytest.fixture(autouse=True)
def _no_user_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user data directory or a configured database."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("NMES_DB_URL", raising=False)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def other_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other.db'}"
    else:
        yield from pg_database()


@pytest.fixture
def program_doc() -> dict[str, object]:
    return {"name": "TKA quadriceps", "channels": [
        {"name": "quad_l", "frequency": 35.0, "pulse_width": 0.0003, "amplitude": 0.04,
         "waveform": "symmetric-biphasic", "electrode": {"area": 0.0025, "site": "quadriceps"}}],
        "train": {"kind": "constant", "on": 10.0, "off": 20.0}}


def emg_block(k: int, n: int = 200, sfreq: float = 2000.0, seed: int = 0) -> Signals:
    """Block ``k`` of a 4-channel EMG stream (volts), ``n`` samples at ``sfreq`` Hz."""
    rng = np.random.default_rng(seed + k)
    return Signals(rng.normal(0, 1e-4, size=(4, n)), sfreq, ("emg1", "emg2", "emg3", "emg4"),
                   ("V",) * 4, k * n / sfreq)


def pulse_block(t0: float, duration: float, freq: float = 35.0,
                names: tuple[str, ...] = ("quad_l", "quad_r")) -> PulseSchedule:
    """Pulses on every channel at ``freq`` Hz for ``duration`` s from ``t0`` s."""
    parts = []
    for c in range(len(names)):
        t = t0 + np.arange(0.0, duration, 1 / freq) + c * 1e-3
        parts.append(PulseSchedule.from_arrays(np.round(t, 6), 0.02 + 0.001 * c, 300e-6,
                                               channel=c, interphase_gap=50e-6,
                                               channel_names=names))
    return PulseSchedule.concat(parts)
