"""Metrics of one simulated run, per stimulated muscle (SI in the table; the plot and the
command line show N, N s, % and deg).

- ``peak_force`` (N): the muscle's largest force.
- ``force_time_integral`` (N s): its force integrated over the run (trapezoid rule).
- ``fatigue_index`` (fraction): ``1 - peak(last contraction) / peak(first contraction)``,
  contractions being the complete stretches where the force exceeds 10 % of its peak (one cut
  by the end of the run does not count); NaN with fewer than two. 0 means no fatigue.
- ``a_end_ratio`` (fraction): the fatigue state A (the force scale of the Ding 2000 fatigue
  model) at the end of the run over its value at rest; 1 means no fatigue.
- ``n_contractions``: the number of contractions counted as above.
- ``range_of_motion`` (rad): the range of the angle of the joint the muscle moves (0 for an
  isometric run; NaN for a muscle on no joint).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["METRICS", "METRIC_DISPLAY", "contractions"]

CONTRACTION_LEVEL = 0.10
"""A contraction is a stretch of force above this fraction of the run's peak force."""


def contractions(force: np.ndarray, level: float = CONTRACTION_LEVEL
                 ) -> list[tuple[int, int]]:
    """``(start, stop)`` sample ranges where ``force`` exceeds ``level`` x its peak, complete
    ones only (a stretch still above the level at the last sample is left out)."""
    peak = float(np.max(force)) if force.size else 0.0
    if peak <= 0:
        return []
    above = np.concatenate([[False], force > level * peak, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    spans = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
    return [(a, b) for a, b in spans if b < force.size]


def _peak(run: dict) -> float:
    return float(np.max(run["force"]))


def _fti(run: dict) -> float:
    f = run["force"]
    return float(np.trapezoid(f, dx=1.0 / run["sfreq"])) if f.size > 1 else 0.0


def _fatigue_index(run: dict) -> float:
    spans = contractions(run["force"])
    if len(spans) < 2:
        return float("nan")
    f = run["force"]
    first = float(np.max(f[spans[0][0]:spans[0][1]]))
    last = float(np.max(f[spans[-1][0]:spans[-1][1]]))
    return 1.0 - last / first


def _a_end(run: dict) -> float:
    a = run.get("A")
    return float(a[-1] / run["a_rest"]) if a is not None and run["a_rest"] > 0 else float("nan")


def _n_contractions(run: dict) -> float:
    return float(len(contractions(run["force"])))


def _rom(run: dict) -> float:
    ang = run.get("angle")
    return float(np.max(ang) - np.min(ang)) if ang is not None else float("nan")


METRICS: dict[str, Callable[[dict], float]] = {
    "peak_force": _peak,
    "force_time_integral": _fti,
    "fatigue_index": _fatigue_index,
    "a_end_ratio": _a_end,
    "n_contractions": _n_contractions,
    "range_of_motion": _rom,
}
"""Metric functions by name; each takes the run of one muscle (``force``, ``A``, ``angle``
arrays, ``a_rest`` and ``sfreq``) and returns a float (SI)."""

METRIC_DISPLAY: dict[str, tuple[str, float]] = {
    "peak_force": ("peak force (N)", 1.0),
    "force_time_integral": ("force-time integral (N s)", 1.0),
    "fatigue_index": ("fatigue index (%)", 100.0),
    "a_end_ratio": ("force scale A at the end (% of rest)", 100.0),
    "n_contractions": ("contractions", 1.0),
    "range_of_motion": ("range of motion (deg)", 180.0 / np.pi),
}
"""How a person reads each metric: a label with its unit and the factor from SI."""
