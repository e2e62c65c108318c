"""Recovery study: identification on synthetic participants whose parameters are known, to
measure how often the reported 95 % intervals contain the truth (coverage) and how often a
parameter is reported at all. :func:`recovery_study` runs it serially here;
``opennmes.cohort.run_recovery`` runs the same participants (:func:`recovery_draws`) on a Dask
cluster, each one a :func:`recovery_participant`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.errors import ModelError
from opennmes.physiology._ding import DingParameters, default_parameters
from opennmes.physiology._fitspace import BOUNDS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["recovery_protocol", "synthetic_participant", "recovery_draws",
           "recovery_participant", "recovery_study", "RECOVERY_PARAMETERS"]

RECOVERY_PARAMETERS = ("a_rest", "tau1_rest", "tau2", "km_rest", "alpha_a", "alpha_km",
                       "alpha_tau1", "tau_fat")
"""The Ding 2003 fatigue parameters a recovery study identifies, in the table's order."""


def recovery_protocol() -> np.ndarray:
    """Pulse times (s) of the study's 200-s protocol: 12 contractions (3 s at 30 Hz, 3 s rest),
    a 10-Hz train, then 5 one-second 50-Hz test trains 25 s apart (the rests show recovery)."""
    parts = [k * 6 + np.arange(0, 3, 1 / 30) for k in range(12)]
    parts += [75 + np.arange(0, 2, 1 / 10)]
    parts += [82 + k * 25 + np.arange(0, 1, 1 / 50) for k in range(5)]
    return np.round(np.concatenate(parts), 6)


def synthetic_participant(rng: np.random.Generator) -> DingParameters:
    """Ding 2003 fatigue parameters of one synthetic participant: each force and fatigue
    parameter the published value times a log-normal factor (sd 0.2 in log), ``tau_fat``
    uniform in 90-150 s, all inside the identification bounds [U: a spread chosen for the
    study, not a published population]."""
    p = default_parameters("ding2003", fatigue=True)
    vals: dict[str, Any] = {}
    for k in ("a_rest", "tau1_rest", "tau2", "km_rest", "alpha_a", "alpha_km", "alpha_tau1"):
        b = BOUNDS[k]
        v = getattr(p, k) * float(np.exp(rng.normal(0.0, 0.2)))
        vals[k] = float(np.clip(v, min(b.lower, b.upper), max(b.lower, b.upper)))
    vals["tau_fat"] = float(rng.uniform(90.0, 150.0))
    return p.replace(**vals)


def recovery_participant(truth: DingParameters, seed: int, noise: float = 1.0,
                         sfreq: float = 100.0) -> list[dict[str, Any]]:
    """Simulate the protocol on ``truth`` with ``noise`` N rms, identify, and return one row
    per parameter: truth, value, interval, determined, covered (NaN where fixed or failed)."""
    from opennmes.physiology._identify import identify
    from opennmes.physiology._simulate import simulate_train

    pt = recovery_protocol()
    sim = simulate_train(truth, pt, t_end=200.0, sfreq=sfreq, states=False)
    f = sim["force"] + np.random.default_rng(seed).normal(0.0, noise, sim.t.size)
    names = RECOVERY_PARAMETERS
    try:
        fit = identify(sim.t, f, pt, model="ding2003-fatigue")
    except ModelError as exc:
        return [{"seed": seed, "parameter": k, "truth": getattr(truth, k), "value": np.nan,
                 "ci_low": np.nan, "ci_high": np.nan, "determined": False, "covered": np.nan,
                 "error": str(exc)} for k in names]
    rows = []
    for k in names:
        want = float(getattr(truth, k))
        if k in fit.estimates:
            v, lo, hi = fit.estimates[k]
            rows.append({"seed": seed, "parameter": k, "truth": want, "value": v, "ci_low": lo,
                         "ci_high": hi, "determined": True, "covered": float(lo <= want <= hi),
                         "error": ""})
        else:
            rows.append({"seed": seed, "parameter": k, "truth": want,
                         "value": fit.fixed[k][0], "ci_low": np.nan, "ci_high": np.nan,
                         "determined": False, "covered": np.nan, "error": ""})
    return rows


def recovery_study(n: int, seed: int, noise: float = 1.0) -> pd.DataFrame:
    """Identify ``n`` synthetic participants (serially) and return one row per participant and
    parameter; ``df["covered"].mean()`` over determined rows is the coverage of the intervals.

    Parameters
    ----------
    n : int
        Number of participants.
    seed : int
        Seed of the participants' parameters and of their noise.
    noise : float
        Measurement noise, N rms.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for i, truth, noise_seed in recovery_draws(n, seed):
        rows += [{"participant": i, **r} for r in recovery_participant(truth, noise_seed, noise)]
    return pd.DataFrame(rows)


def recovery_draws(n: int, seed: int) -> list[tuple[int, DingParameters, int]]:
    """The study's participants, drawn in order from ``seed`` alone: ``(index, truth, noise
    seed)`` each. A distributed study draws them here, on the client, so its table does not
    depend on how the participants are batched or on how many workers fit them."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ModelError(f"n = {n!r} participants: needs a whole number of at least 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ModelError(f"seed = {seed!r}: needs a whole number >= 0")
    rng = np.random.default_rng(seed)
    return [(i, synthetic_participant(rng), seed * 100003 + i) for i in range(n)]
