"""The cohort figure: each metric's spread per program, one box per patient group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from opennmes.cohort._metrics import METRIC_DISPLAY
from opennmes.errors import ModelError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_cohort"]


def plot_cohort(df: pd.DataFrame, metrics: Sequence[str] | None = None,
                muscle: str | None = None) -> Figure:
    """One panel per metric: a box per program and patient group (in the units a person
    reads: N, N s, %, deg).

    Parameters
    ----------
    df : DataFrame
        A results table of :func:`run_cohort` (or read back from its Parquet file).
    metrics : sequence of str, optional
        Metric columns to show; by default every metric column of the table.
    muscle : str, optional
        Only this muscle's rows (by default all, labelled per muscle when there are several).
    """
    from matplotlib.figure import Figure

    known = [m for m in METRIC_DISPLAY if m in df.columns]
    metrics = list(metrics) if metrics else known
    for m in metrics:
        if m not in df.columns:
            raise ModelError(f"metric {m!r} is not in the table; its metrics: {known}")
    for col in ("program", "group", "muscle"):
        if col not in df.columns:
            raise ModelError(f"the table has no {col!r} column; is it a cohort results table?")
    if muscle is not None:
        if muscle not in set(df["muscle"]):
            raise ModelError(f"muscle {muscle!r} is not in the table; muscles: "
                             f"{sorted(set(df['muscle']))}")
        df = df[df["muscle"] == muscle]
    if df.empty or not metrics:
        raise ModelError("nothing to plot: the table has no rows or no metric columns")
    several = df["muscle"].nunique() > 1
    keys = ["program", "muscle"] if several else ["program"]
    programs = [tuple(k) if several else k[0] for k in
                df[keys].drop_duplicates().sort_values(keys).itertuples(index=False)]
    groups = sorted(df["group"].unique())
    fig = Figure(figsize=(max(6.0, 1.2 * len(programs) * len(groups) + 2), 2.6 * len(metrics)))
    axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
    width = 0.8 / len(groups)
    for ax, m in zip(axes, metrics, strict=True):
        label, factor = METRIC_DISPLAY.get(m, (m, 1.0))
        for gi, g in enumerate(groups):
            data, pos = [], []
            for pi, key in enumerate(programs):
                sel = df["group"] == g
                for col, v in zip(keys, key if isinstance(key, tuple) else (key,), strict=True):
                    sel &= df[col] == v
                vals = df.loc[sel, m].to_numpy(np.float64) * factor
                vals = vals[np.isfinite(vals)]
                if vals.size:
                    data.append(vals)
                    pos.append(pi + (gi - (len(groups) - 1) / 2) * width)
            if data:
                bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                                showfliers=False)
                color = f"C{gi}"
                for box in bp["boxes"]:
                    box.set_facecolor(color)
                    box.set_alpha(0.6)
                ax.plot([], [], "s", color=color, label=g)
        ax.set_ylabel(label)
        ax.set_xticks(range(len(programs)))
        ax.set_xticklabels([" / ".join(k) if isinstance(k, tuple) else str(k)
                            for k in programs], fontsize=8)
    axes[0].legend(frameon=False, fontsize=8, title="patients", title_fontsize=8)
    fig.suptitle(f"Cohort: {df['patient'].nunique()} patients x {len(programs)} "
                 "program(s)", fontsize=10)
    fig.tight_layout()
    return fig
