"""Signals to and from MNE-Python's ``Raw`` (optional: the ``research`` extra installs MNE).

MNE keeps samples in SI units, as :class:`~opennmes.signals.Signals` does, so no value is
scaled. A channel whose name contains ``emg`` and whose unit is ``V`` becomes an MNE ``emg``
channel, every other one ``misc``. MNE knows a unit only by its FIFF code (V, N, rad, m, s,
...); the exact unit strings and the start time are kept in ``raw.info["description"]`` as
JSON so that :func:`raw_to_signals` gives back the same names, units, rate and ``t0``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.errors import SignalError
from opennmes.sensing._readers import emg_channels
from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    import mne

__all__ = ["signals_to_raw", "raw_to_signals", "MNE_DESCRIPTION_KEY"]

MNE_DESCRIPTION_KEY = "opennmes.signals"
"""Key of the JSON object in ``raw.info["description"]`` that keeps units and ``t0``."""

# unit string <-> FIFF unit code (mne.io.constants.FIFF.FIFF_UNIT_*)
_FIFF_UNITS = {"V": 107, "N": 102, "rad": 7, "m": 1, "s": 3, "A": 4, "Hz": 101, "K": 5,
               "kg": 2, "C": 106, "Pa": 103, "T": 112, "1": 0}


def _mne() -> Any:
    try:
        import mne
    except ImportError as exc:  # pragma: no cover - the research extra is installed in tests
        raise SignalError("MNE-Python is not installed; install the research extra: "
                          "pip install 'opennmes[research]'") from exc
    return mne


def signals_to_raw(signals: Signals, *, annotations: mne.Annotations | None = None,
                   types: Sequence[str] | None = None) -> mne.io.RawArray:
    """An ``mne.io.RawArray`` holding ``signals`` (SI units, same names and rate).

    Parameters
    ----------
    signals : Signals
    annotations : mne.Annotations, optional
        Set on the Raw (onsets relative to its first sample, ``orig_time=None``).
    types : sequence of str, optional
        MNE channel type per channel; default ``emg`` for EMG channels in volts, else
        ``misc``.

    The first sample is ``round(t0 * sfreq)``; the exact ``t0`` is kept in the description.
    """
    mne = _mne()
    emg = set(emg_channels(signals))
    if types is None:
        types = ["emg" if n in emg and u == "V" else "misc"
                 for n, u in zip(signals.names, signals.units, strict=True)]
    if len(types) != len(signals.names):
        raise SignalError(f"{len(types)} channel types for {len(signals.names)} channels")
    info = mne.create_info(list(signals.names), signals.sfreq, list(types))
    for ch, unit in zip(info["chs"], signals.units, strict=True):
        ch["unit"] = _FIFF_UNITS.get(unit, -1)
    info["description"] = json.dumps({MNE_DESCRIPTION_KEY: {
        "units": list(signals.units), "t0": signals.t0, "names": list(signals.names)}})
    raw = mne.io.RawArray(np.array(signals.data), info,
                          first_samp=int(round(signals.t0 * signals.sfreq)), verbose="error")
    if annotations is not None:
        raw.set_annotations(annotations)
    return raw


def raw_to_signals(raw: mne.io.BaseRaw) -> Signals:
    """The samples of an MNE Raw as :class:`Signals` (SI units, as MNE keeps them).

    Units come from the description written by :func:`signals_to_raw` when the channels still
    match, otherwise from each channel's FIFF unit code (``"1"`` when MNE has none); ``t0``
    is the exact one written there while the first sample is unchanged, else
    ``raw.first_time``.
    """
    names = tuple(raw.ch_names)
    kept: dict[str, Any] = {}
    try:
        doc = json.loads(raw.info.get("description") or "")
        kept = doc.get(MNE_DESCRIPTION_KEY, {}) if isinstance(doc, dict) else {}
    except ValueError:
        pass
    sfreq = float(raw.info["sfreq"])
    if tuple(kept.get("names", ())) == names:
        units = tuple(kept["units"])
    else:
        by_code = {v: k for k, v in _FIFF_UNITS.items()}
        units = tuple(by_code.get(int(ch["unit"]), "1") for ch in raw.info["chs"])
    t0 = float(raw.first_time)
    if "t0" in kept and int(round(float(kept["t0"]) * sfreq)) == raw.first_samp:
        t0 = float(kept["t0"])  # not cropped or resampled: the exact start
    return Signals(raw.get_data(), sfreq, names, units, t0)
