"""The package version recorded in every simulation's metadata (looked up once per process)."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np

from opennmes.physiology import get_preset, simulate, simulate_train
from opennmes.physiology._simulate import _version
from opennmes.stim import load_program

from ..conftest import EXAMPLES


def test_recorded_version_is_the_installed_one_and_looked_up_once() -> None:
    installed = version("opennmes")
    _version.cache_clear()
    r = simulate_train("ding2003", np.array([0.0, 0.02, 0.04]), t_end=0.5, sfreq=1000.0)
    assert r.metadata["opennmes_version"] == installed
    assert _version.cache_info().misses == 1
    res = simulate(load_program(EXAMPLES / "programs" / "quadriceps.yaml"),
                   get_preset("post-surgery"), sfreq=100.0, t_end=2.0)
    assert res.metadata["opennmes_version"] == installed
    assert res.to_pandas().attrs["opennmes_version"] == installed
    info = _version.cache_info()
    assert info.misses == 1 and info.hits >= 1
