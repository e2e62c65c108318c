"""Fixtures: the real recordings in ../shared/data (used in place, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opennmes.sensing import read_emg, read_signals
from opennmes.signals import Signals


def _data_dir() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists():
            return (parent / ".." / "shared" / "data").resolve()
    raise RuntimeError("repository root (pyproject.toml) not found")


DATA = _data_dir()
DELSYS = DATA / "emg" / "delsys_trigno_shoulder_2000hz.c3d"
BITALINO = DATA / "emg" / "bitalino_forearm_1000hz.txt"
SHANK = DATA / "gait" / "xsens_shank_walking_120hz.txt"
THIGH = DATA / "gait" / "xsens_thigh_walking_120hz.txt"


@pytest.fixture(scope="session")
def delsys() -> Signals:
    return read_emg(DELSYS)


@pytest.fixture(scope="session")
def bitalino() -> Signals:
    return read_emg(BITALINO)


@pytest.fixture(scope="session")
def shank() -> Signals:
    return read_signals(SHANK)
