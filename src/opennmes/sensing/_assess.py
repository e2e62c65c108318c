"""Biofeedback assessment from EMG recordings.

* Side-to-side asymmetry: symmetry index SI = (L - R) / (0.5 (L + R)) x 100 % (Robinson et al.
  1987, J Manipulative Physiol Ther 10:172) of the mean linear envelope, and the deficit of the
  weaker side, 1 - weaker / stronger.
* Activation timing against a reference: onset and offset differences in seconds.
* Co-contraction index of an agonist/antagonist pair: CCI = 2 sum(min(e1, e2)) / sum(e1 + e2)
  x 100 % (Falconer & Winter 1985, Electromyogr Clin Neurophysiol 25:135).
* Fatigue: median frequency (MDF) of the EMG power spectrum over sliding windows, its linear
  slope and relative change; a falling MDF is the classic spectral sign of fatigue (De Luca
  1984) in a *sustained isometric* contraction. In a dynamic movement the spectrum also moves
  with force, muscle length and the muscle sliding under the electrode (Farina 2006, Exerc
  Sport Sci Rev 34:121), so :func:`assess` judges fatigue only in an isometric recording of at
  least :data:`FATIGUE_MIN_DURATION`; otherwise it reports the trend and says why it does not
  call it fatigue.

:func:`assess` gathers these into an :class:`Assessment` that says which muscles are deficient
and by how much, writes CSV/JSON and draws figures.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal as sps

from opennmes.errors import SignalError
from opennmes.sensing._filters import EmgPipeline
from opennmes.sensing._onset import OnsetEvent, detect_onsets
from opennmes.signals import Signals

__all__ = [
    "symmetry_index",
    "cocontraction_index",
    "median_frequency",
    "fatigue_trend",
    "FATIGUE_MIN_DURATION",
    "activation_timing",
    "Assessment",
    "assess",
]

log = logging.getLogger(__name__)


def symmetry_index(left: float, right: float) -> float:
    """Robinson symmetry index in percent: (L - R) / (0.5 (L + R)) x 100 (0 = symmetric)."""
    if left < 0 or right < 0 or left + right == 0:
        raise SignalError(f"symmetry index needs non-negative values not both zero, got "
                          f"left={left}, right={right}")
    return float((left - right) / (0.5 * (left + right)) * 100.0)


def cocontraction_index(env: Signals, agonist: str, antagonist: str) -> float:
    """Falconer & Winter co-contraction index in percent of two envelopes in the same units.

    Parameters
    ----------
    env : Signals
        Envelopes (e.g. from :func:`~opennmes.sensing.envelope`, normalised to MVC when the two
        muscles' amplitudes must be comparable).
    agonist, antagonist : str
        Channel names.
    """
    a, b = env[agonist], env[antagonist]
    tot = float(np.sum(a + b))
    if tot <= 0:
        raise SignalError(f"{agonist} and {antagonist} have no activity; CCI undefined")
    return float(2.0 * np.sum(np.minimum(a, b)) / tot * 100.0)


def median_frequency(signals: Signals, window: float, step: float) -> Signals:
    """Median frequency (Hz) of each channel's spectrum over sliding windows.

    The EMG is band-passed 20-450 Hz (capped at 0.45 sfreq) first; each window's spectrum is a
    Welch estimate with 4 segments. Output sample ``k`` is the window starting at
    ``t0 + k * step`` and is dated at the window's centre.

    Parameters
    ----------
    signals : Signals
        Raw EMG.
    window, step : float
        Window length and hop in seconds.
    """
    fs = signals.sfreq
    n = int(round(window * fs))
    hop = int(round(step * fs))
    if n < 64 or hop < 1 or n > signals.n_samples:
        raise SignalError(f"MDF window {window} s ({n} samples) must hold at least 64 samples "
                          f"and fit in the {signals.duration:g} s recording")
    hi = min(450.0, 0.45 * fs)
    x = EmgPipeline(fs, len(signals.names), band=(20.0, hi), envelope="none").filter(
        signals.data)
    starts = np.arange(0, signals.n_samples - n + 1, hop)
    out = np.empty((len(signals.names), starts.size))
    for k, s in enumerate(starts):
        f, p = sps.welch(x[:, s:s + n], fs=fs, nperseg=max(64, n // 4), axis=-1)
        c = np.cumsum(p, axis=-1)
        for ch in range(c.shape[0]):
            out[ch, k] = np.interp(0.5 * c[ch, -1], c[ch], f) if c[ch, -1] > 0 else np.nan
    return Signals(out, 1.0 / step, signals.names, ("Hz",) * len(signals.names),
                   signals.t0 + window / 2)


FATIGUE_MIN_DURATION = 20.0
"""s of sustained contraction below which a median-frequency trend is not called fatigue. An
OpenNMES judgement: fatiguing isometric protocols hold 20-60 s or more, and a trend over a few
1 s windows is dominated by the spread of single-window estimates."""
RECORDING_KINDS = ("isometric", "dynamic")


def _fatigue_judged(kind: str | None, duration: float) -> str | None:
    """Why a recording's MDF trend is not judged as fatigue (None: it is)."""
    if kind is None:
        return ("the recording's kind is not given: a falling median frequency shows fatigue "
                "only in a sustained isometric contraction (say kind='isometric', or "
                "--kind isometric, if it is one)")
    if kind == "dynamic":
        return ("a dynamic movement: the median frequency changes with force, muscle length "
                "and electrode position, not only with fatigue")
    if duration < FATIGUE_MIN_DURATION:
        return (f"{duration:.1f} s is shorter than the {FATIGUE_MIN_DURATION:.0f} s of "
                "sustained contraction a fatigue trend needs")
    return None


def fatigue_trend(mdf: Signals) -> dict[str, dict[str, float]]:
    """Linear trend of each channel's median frequency.

    Returns
    -------
    dict
        Per channel: ``slope`` (Hz/s), ``start`` (fitted MDF at the first window, Hz) and
        ``change`` (relative change of the fitted MDF from first to last window, percent).
    """
    t = mdf.t
    out = {}
    for name in mdf.names:
        y = mdf[name]
        ok = np.isfinite(y)
        if ok.sum() < 3:
            raise SignalError(f"{name}: fewer than 3 MDF windows; use a longer recording")
        slope, icpt = np.polyfit(t[ok], y[ok], 1)
        start = slope * t[ok][0] + icpt
        end = slope * t[ok][-1] + icpt
        out[name] = {"slope": float(slope), "start": float(start),
                     "change": float((end - start) / start * 100.0)}
    return out


def activation_timing(events: Sequence[OnsetEvent],
                      reference: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """First onset and the offset after it per muscle, against reference times (seconds).

    Parameters
    ----------
    events : sequence of OnsetEvent
        Detected events.
    reference : mapping
        ``{muscle: {"onset": s, "offset": s}}`` (either key may be missing).
    """
    rows = []
    for muscle, ref in reference.items():
        ons = [e.t for e in events if e.channel == muscle and e.kind == "onset"]
        on = ons[0] if ons else None
        offs = [e.t for e in events if e.channel == muscle and e.kind == "offset"
                and on is not None and e.t > on]
        off = offs[0] if offs else None
        row: dict[str, Any] = {"muscle": muscle, "onset": on, "offset": off}
        for key, val in (("onset", on), ("offset", off)):
            if key in ref:
                row[f"ref_{key}"] = float(ref[key])
                row[f"{key}_error"] = None if val is None else float(val - ref[key])
        rows.append(row)
    return rows


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


@dataclass
class Assessment:
    """Result of :func:`assess`: tables (lists of dicts), findings and figure data."""

    muscles: list[dict[str, Any]]
    asymmetry: list[dict[str, Any]]
    timing: list[dict[str, Any]]
    cocontraction: list[dict[str, Any]]
    fatigue: list[dict[str, Any]]
    findings: list[str]
    deficient: dict[str, float]
    _plots: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything except figure data, JSON-serialisable."""
        return {"deficient": self.deficient, "findings": self.findings,
                "muscles": self.muscles, "asymmetry": self.asymmetry, "timing": self.timing,
                "cocontraction": self.cocontraction, "fatigue": self.fatigue}

    def to_markdown(self) -> str:
        """A short human-readable report: deficient muscles first, then the tables."""
        lines = ["# EMG assessment", "", "## Deficient muscles", ""]
        if self.deficient:
            lines += [f"- {k}: {v:g} {'ms' if 'timing' in k else '%'}"
                      for k, v in self.deficient.items()]
        else:
            lines.append("- none with the given limits")
        lines += ["", "## Findings", ""] + [f"- {f}" for f in self.findings]
        for title, rows in (("Asymmetry", self.asymmetry), ("Activation timing", self.timing),
                            ("Co-contraction", self.cocontraction), ("Fatigue", self.fatigue)):
            if rows:
                keys = list(rows[0])
                lines += ["", f"## {title}", "", "| " + " | ".join(keys) + " |",
                          "|" + "---|" * len(keys)]
                lines += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path, *, plots: bool = True) -> list[Path]:
        """Write ``assessment.json``, ``report.md``, one CSV per table and PNG figures."""
        import pandas as pd

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "assessment.json"]
        written[0].write_text(json.dumps(self.to_dict(), indent=2))
        written.append(out / "report.md")
        written[-1].write_text(self.to_markdown())
        for name in ("muscles", "asymmetry", "timing", "cocontraction", "fatigue"):
            rows = getattr(self, name)
            if rows:
                p = out / f"{name}.csv"
                pd.DataFrame(rows).to_csv(p, index=False)
                written.append(p)
        if plots:
            written += self._draw(out)
        return written

    def _draw(self, out: Path) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        paths = []
        envs: dict[str, Signals] = self._plots.get("envelopes", {})
        if envs:
            n = sum(len(e.names) for e in envs.values())
            fig, axes = plt.subplots(n, 1, figsize=(8, 1.4 * n + 1), sharex=True, squeeze=False)
            k = 0
            for label, env in envs.items():
                for name in env.names:
                    ax = axes[k, 0]
                    unit = env.unit(name)
                    shown = {"V": "uV", "count": "ADC counts", "counts": "ADC counts"}.get(
                        unit, unit or "no unit")
                    ax.plot(env.t, env[name] * 1e6 if unit == "V" else env[name], lw=0.8)
                    ax.set_ylabel(f"{label}\n{name}\n({shown})", fontsize=7)
                    for e in self._plots.get("events", {}).get(label, []):
                        if e.channel == name:
                            ax.axvline(e.t, color="g" if e.kind == "onset" else "r", lw=0.6)
                    k += 1
            axes[-1, 0].set_xlabel("time [s]")
            fig.suptitle("EMG envelopes with onsets (green) and offsets (red)")
            p = out / "envelopes.png"
            fig.savefig(p, dpi=100)
            plt.close(fig)
            paths.append(p)
        if self.asymmetry:
            fig, ax = plt.subplots(figsize=(6, 3))
            names = [r["muscle"] for r in self.asymmetry]
            ax.bar(names, [r["symmetry_index"] for r in self.asymmetry])
            ax.axhline(0, color="k", lw=0.5)
            ax.set_ylabel("symmetry index [%] (L - R)")
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
            fig.tight_layout()
            p = out / "asymmetry.png"
            fig.savefig(p, dpi=100)
            plt.close(fig)
            paths.append(p)
        mdfs: dict[str, Signals] = self._plots.get("mdf", {})
        if mdfs:
            fig, ax = plt.subplots(figsize=(6, 3))
            for label, m in mdfs.items():
                for name in m.names:
                    ax.plot(m.t, m[name], marker=".", lw=0.8, label=f"{label} {name}")
            ax.set_xlabel("time [s]")
            ax.set_ylabel("median frequency [Hz]")
            ax.legend(fontsize=6, ncol=2)
            fig.tight_layout()
            p = out / "fatigue.png"
            fig.savefig(p, dpi=100)
            plt.close(fig)
            paths.append(p)
        return paths


def assess(recordings: Mapping[str, Signals], *, rest: tuple[float, float],
           pairs: Sequence[tuple[str, str]] = (), sides: tuple[str, str] | None = None,
           reference: Mapping[str, Mapping[str, float]] | None = None,
           cocontraction: Sequence[tuple[str, str]] = (), onset_method: str = "threshold",
           asymmetry_limit: float = 20.0, timing_limit: float = 0.1,
           fatigue_limit: float = 10.0, mdf_window: float = 1.0,
           cutoff: float = 5.0, kind: str | None = None) -> Assessment:
    """Assess EMG recordings: asymmetry, timing, co-contraction, fatigue, deficient muscles.

    Parameters
    ----------
    recordings : mapping of str to Signals
        Raw EMG by label (e.g. ``{"left": ..., "right": ...}`` or one recording).
    rest : tuple of float
        Quiet segment (seconds) for the onset baseline, in every recording.
    pairs : sequence of (str, str)
        Left/right channel pairs within each recording, e.g. ``("Biceps_L", "Biceps_R")``.
    sides : tuple of str, optional
        Two recording labels (left, right) whose same-named channels are compared.
    reference : mapping, optional
        Reference activation timing ``{muscle: {"onset": s, "offset": s}}``.
    cocontraction : sequence of (str, str)
        Agonist/antagonist pairs for the co-contraction index (MVC-free: raw envelopes).
    onset_method : str
        Onset method of :func:`~opennmes.sensing.detect_onsets`.
    asymmetry_limit : float
        Deficit of the weaker side (percent of the stronger) above which a muscle is flagged.
        A project setting, not a published cut-off.
    timing_limit : float
        Onset or offset error in seconds above which a muscle is flagged.
    fatigue_limit : float
        MDF decline in percent above which a muscle is flagged as fatiguing.
    mdf_window : float
        MDF window in seconds (hop is half of it).
    cutoff : float
        Envelope low-pass in Hz.
    kind : {"isometric", "dynamic"}, optional
        What the recordings are. Fatigue is judged only for ``isometric`` recordings of at
        least :data:`FATIGUE_MIN_DURATION`; otherwise the MDF trend is reported (``judged``
        False, with ``why``) and one finding says why fatigue was not judged.
    """
    if not recordings:
        raise SignalError("assess needs at least one recording")
    if kind is not None and kind not in RECORDING_KINDS:
        raise SignalError(f"recording kind {kind!r}; one of {RECORDING_KINDS}")
    muscles, asym, timing, cci_rows, fat = [], [], [], [], []
    findings: list[str] = []
    notes: list[str] = []  # what was not judged, and why
    deficient: dict[str, float] = {}
    envs: dict[str, Signals] = {}
    evs: dict[str, list[OnsetEvent]] = {}
    mdfs: dict[str, Signals] = {}
    mean_amp: dict[tuple[str, str], float] = {}
    for label, sig in recordings.items():
        env = EmgPipeline(sig.sfreq, len(sig.names), band=(20.0, min(450.0, 0.45 * sig.sfreq)),
                          envelope="linear", cutoff=cutoff).process(sig)
        envs[label] = env
        events = detect_onsets(sig, rest, onset_method)
        evs[label] = events
        for name in sig.names:
            e = env[name]
            amp = float(np.mean(e))
            mean_amp[(label, name)] = amp
            muscles.append({"recording": label, "muscle": name, "unit": env.unit(name),
                            "mean_envelope": amp, "peak_envelope": float(np.max(e)),
                            "n_onsets": sum(1 for v in events
                                            if v.channel == name and v.kind == "onset")})
        if reference:
            for row in activation_timing(events, {k: v for k, v in reference.items()
                                                  if k in sig.names}):
                row["recording"] = label
                timing.append(row)
        for ag, an in cocontraction:
            if ag in sig.names and an in sig.names:
                cci_rows.append({"recording": label, "agonist": ag, "antagonist": an,
                                 "cci": cocontraction_index(env, ag, an)})
        if sig.duration >= 3 * mdf_window:
            mdf = median_frequency(sig, mdf_window, mdf_window / 2)
            mdfs[label] = mdf
            why = _fatigue_judged(kind, sig.duration)
            for name, tr in fatigue_trend(mdf).items():
                fat.append({"recording": label, "muscle": name, **tr, "judged": why is None,
                            "why": why or ""})
                if why is None and tr["change"] < -fatigue_limit:
                    findings.append(f"{label} {name}: median frequency fell {-tr['change']:.0f} %"
                                    f" ({tr['slope']:.2f} Hz/s): fatigue")
            if why is not None:
                notes.append(f"{label}: fatigue not judged: {why}")
    compare: list[tuple[str, str, str, str, str]] = []
    for left, right in pairs:
        for label, sig in recordings.items():
            if left in sig.names and right in sig.names:
                compare.append((f"{left}/{right}", label, left, label, right))
    if sides is not None:
        lab_l, lab_r = sides
        if lab_l not in recordings or lab_r not in recordings:
            raise SignalError(f"sides {sides} must be recording labels {list(recordings)}")
        common = [n for n in recordings[lab_l].names if n in recordings[lab_r].names]
        if not common:
            raise SignalError(f"recordings {lab_l!r} and {lab_r!r} share no channel names: "
                              f"{list(recordings[lab_l].names)} vs "
                              f"{list(recordings[lab_r].names)}")
        compare += [(n, lab_l, n, lab_r, n) for n in common]
    for muscle, la, na, lb, nb in compare:
        lv, rv = mean_amp[(la, na)], mean_amp[(lb, nb)]
        si = symmetry_index(lv, rv)
        weaker = "left" if lv < rv else "right"
        deficit = (1 - min(lv, rv) / max(lv, rv)) * 100.0
        asym.append({"muscle": muscle, "left": lv, "right": rv, "symmetry_index": si,
                     "weaker": weaker, "deficit": deficit})
        if deficit > asymmetry_limit:
            key = f"{muscle} ({weaker})"
            deficient[key] = round(deficit, 1)
            findings.append(f"{muscle}: the {weaker} side is {deficit:.0f} % weaker "
                            f"(symmetry index {si:+.0f} %): deficient")
    for row in timing:
        for key in ("onset", "offset"):
            err = row.get(f"{key}_error")
            if err is not None and abs(err) > timing_limit:
                findings.append(f"{row['recording']} {row['muscle']}: {key} "
                                f"{'late' if err > 0 else 'early'} by {abs(err) * 1e3:.0f} ms")
                deficient.setdefault(f"{row['muscle']} ({row['recording']}, timing)",
                                     round(abs(err) * 1e3, 1))
            elif f"ref_{key}" in row and err is None:
                findings.append(f"{row['recording']} {row['muscle']}: no {key} found")
    if not findings:
        findings.append("no deficiency found with the given limits")
    findings += notes
    result = Assessment(muscles, asym, timing, cci_rows, fat, findings, deficient)
    result._plots = {"envelopes": envs, "events": evs, "mdf": mdfs}
    return result
