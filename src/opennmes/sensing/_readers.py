"""Readers that turn recordings into :class:`~opennmes.signals.Signals`.

Every reader returns SI units where the file states a convertible unit (``uV`` and ``mV`` become
``V``; ``deg/s`` becomes ``rad/s``) and always an explicit sampling rate taken from the file (or,
for CSV, from the caller, a rate the file states, or a fit of its time column; the CSV reader
logs which). Channels whose unit is not known keep the file's unit string (for instance
``count`` for raw ADC values).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from opennmes.errors import SignalError
from opennmes.signals import Signals

__all__ = [
    "read_signals",
    "read_c3d",
    "read_edf",
    "read_csv",
    "read_text",
    "read_joint_angles",
    "emg_channels",
    "read_emg",
    "to_si",
]

log = logging.getLogger(__name__)

# unit string -> (SI unit, factor)
_SI: dict[str, tuple[str, float]] = {
    "v": ("V", 1.0),
    "mv": ("V", 1e-3),
    "uv": ("V", 1e-6),
    "µv": ("V", 1e-6),
    "μv": ("V", 1e-6),
    "nv": ("V", 1e-9),
    "rad/s": ("rad/s", 1.0),
    "deg/s": ("rad/s", np.pi / 180.0),
    "°/s": ("rad/s", np.pi / 180.0),
    "dps": ("rad/s", np.pi / 180.0),
    "m/s^2": ("m/s^2", 1.0),
    "m/s2": ("m/s^2", 1.0),
    "g": ("m/s^2", 9.80665),
    "n": ("N", 1.0),
    "rad": ("rad", 1.0),
    "deg": ("rad", np.pi / 180.0),
    "s": ("s", 1.0),
}


def to_si(unit: str) -> tuple[str, float]:
    """SI unit and multiplication factor for a unit string (unknown units map to themselves).

    Parameters
    ----------
    unit : str
        Unit as written in a file, e.g. ``"uV"``, ``"deg/s"``.

    Returns
    -------
    tuple of (str, float)
        The SI unit and the factor that converts values into it.
    """
    key = unit.strip().replace(" ", "").lower()
    return _SI.get(key, (unit.strip(), 1.0))


def _build(data: np.ndarray, sfreq: float, names: Sequence[str], units: Sequence[str],
           t0: float = 0.0) -> Signals:
    out = np.array(data, dtype=np.float64)
    si_units = []
    for i, u in enumerate(units):
        su, f = to_si(u)
        if f != 1.0:
            out[i] *= f
        si_units.append(su)
    return Signals(out, sfreq, tuple(names), tuple(si_units), t0)


def read_c3d(path: str | Path) -> Signals:
    """Analog channels of a C3D file (read with ``ezc3d``).

    Channel names are the label's part before the first ``.`` (``Delt_ant.EMG1`` ->
    ``Delt_ant``) when that part is unique in the file, otherwise the whole label. The analog
    rate (``ANALOG:RATE``, Hz) and units (``ANALOG:UNITS``) come from the file; scale factors are
    already applied by ``ezc3d``.

    Parameters
    ----------
    path : str or Path
        The ``.c3d`` file.
    """
    return _read_c3d(path)[0]


def _read_c3d(path: str | Path) -> tuple[Signals, list[str]]:
    import ezc3d

    try:
        c = ezc3d.c3d(str(path))
    except Exception as exc:  # ezc3d raises plain RuntimeError / IOError
        raise SignalError(f"{path}: cannot read C3D file: {exc}") from exc
    params = c["parameters"]["ANALOG"]
    labels = [str(lab).strip() for lab in params["LABELS"]["value"]]
    data = np.asarray(c["data"]["analogs"])[0]
    if not labels or data.shape[0] == 0:
        raise SignalError(f"{path}: the C3D file has no analog channels")
    sfreq = float(np.asarray(params["RATE"]["value"]).ravel()[0])
    units = list(params["UNITS"]["value"]) if "UNITS" in params else []
    if len(units) != len(labels):
        raise SignalError(
            f"{path}: ANALOG:UNITS has {len(units)} entries for {len(labels)} channels; "
            "units must be explicit"
        )
    descriptions = list(params.get("DESCRIPTIONS", {}).get("value", [""] * len(labels)))
    prefixes = [lab.split(".", 1)[0] for lab in labels]
    names = [p if prefixes.count(p) == 1 else lab for p, lab in zip(prefixes, labels, strict=True)]
    kinds = [
        "emg" if ("emg" in lab.lower() or "emg" in str(d).lower()) and "voltage" not in lab.lower()
        else "other"
        for lab, d in zip(labels, descriptions, strict=True)
    ]
    return _build(data, sfreq, names, units), kinds


def read_edf(path: str | Path, channels: Sequence[str] | None = None) -> Signals:
    """Channels of an EDF, EDF+ or BDF file (read with ``pyedflib``), in physical units.

    Parameters
    ----------
    path : str or Path
        The ``.edf`` or ``.bdf`` file.
    channels : sequence of str, optional
        Labels to read. All channels must share one sampling rate; with mixed rates, pick the
        channels of one rate.
    """
    return _read_edf(path, channels)[0]


def _read_edf(path: str | Path, channels: Sequence[str] | None = None
              ) -> tuple[Signals, list[str]]:
    from pyedflib import highlevel

    try:
        header_sigs = highlevel.read_edf_header(str(path))["SignalHeaders"]
    except Exception as exc:
        raise SignalError(f"{path}: cannot read EDF/BDF file: {exc}") from exc
    labels = [h["label"].strip() for h in header_sigs]
    if channels is None:
        idx = list(range(len(labels)))
    else:
        missing = [c for c in channels if c not in labels]
        if missing:
            raise SignalError(f"{path}: no channel named {missing}; channels: {labels}")
        idx = [labels.index(c) for c in channels]
    rates = {labels[i]: float(header_sigs[i]["sample_frequency"]
                              if header_sigs[i].get("sample_frequency") is not None
                              else header_sigs[i]["sample_rate"]) for i in idx}
    if len(set(rates.values())) > 1:
        raise SignalError(
            f"{path}: channels have different sampling rates {rates}; pass channels= with "
            "channels of one rate"
        )
    sigs, hdrs, _ = highlevel.read_edf(str(path), ch_nrs=idx)
    data = np.vstack([np.asarray(s, dtype=np.float64) for s in sigs])
    units = [h["dimension"].strip() for h in hdrs]
    if any(u == "" for u in units):
        empty = [labels[i] for i, u in zip(idx, units, strict=True) if u == ""]
        raise SignalError(f"{path}: channels {empty} have no physical dimension (unit)")
    kinds = [
        "emg" if "emg" in (labels[i] + " " + hdrs[k].get("transducer", "")).lower() else "other"
        for k, i in enumerate(idx)
    ]
    return _build(data, next(iter(rates.values())), [labels[i] for i in idx], units), kinds


_UNIT_IN_HEADER = re.compile(r"^\s*(?P<name>.*?)\s*[\[(](?P<unit>[^\])]+)[\])]\s*$")
# a rate stated in a leading comment line: '# sfreq: 150 Hz', '# sampling rate (Hz) = 150',
# '# Sampling Rate (Hz):= 1000.00' (BITalino), '# fs = 2 kHz'
_STATED_RATE = re.compile(
    r"^#\s*(?:sfreq|fs|sampl(?:ing|e)[ _-]?rate|sampling[ _-]?frequency)\s*"
    r"(?:[\[(]\s*(?P<unit1>k?hz)\s*[\])])?\s*(?::=|:|=)\s*"
    r"(?P<value>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)\s*(?P<unit2>k?hz)?\s*$",
    re.IGNORECASE | re.ASCII)


def _stated_rate(path: str | Path) -> tuple[float, str] | None:
    """The sampling rate (Hz) a CSV file states in its leading ``#`` lines, and that line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                m = _STATED_RATE.match(line.strip())
                if m:
                    unit = (m["unit1"] or m["unit2"] or "hz").lower()
                    rate = float(m["value"]) * (1e3 if unit == "khz" else 1.0)
                    if not (np.isfinite(rate) and rate > 0):
                        raise SignalError(f"{path}: the stated sampling rate "
                                          f"{line.strip()!r} is not a positive number")
                    return rate, line.strip()
    except OSError as exc:
        raise SignalError(f"{path}: cannot read: {exc.strerror}") from exc
    return None


def _fit_rate(t: np.ndarray) -> float:
    """Sampling rate (Hz) of a time column: the inverse of the least-squares slope of time
    against sample index over the whole column (not the median step, which carries the
    column's rounding: 0.006667 s steps give 149.9925 Hz, 30 ms off after 10 min)."""
    i = np.arange(t.size, dtype=np.float64)
    i -= i.mean()
    slope = float(np.dot(i, t - t.mean()) / np.dot(i, i))
    return 1.0 / slope if slope > 0 else float("nan")


def _check_time_column(path: str | Path, t: np.ndarray, rate: float, source: str,
                       time_column: str) -> None:
    """Refuse a time column that is not uniform, or that drifts from ``rate`` by more than
    half a sample anywhere."""
    fitted = _fit_rate(t)
    dt = np.diff(t)
    if not np.isfinite(fitted) or np.max(np.abs(dt - 1.0 / fitted)) > 1e-3 / fitted:
        raise SignalError(f"{path}: time column {time_column!r} is not uniformly sampled")
    off = t - np.arange(t.size) / rate
    drift = float(np.max(np.abs(off - off.mean())))
    if drift > 0.5 / rate:
        raise SignalError(
            f"{path}: sfreq = {rate:.10g} Hz ({source}) but the time column {time_column!r} "
            f"says {fitted:.10g} Hz: at {rate:.10g} Hz its samples would be misdated by up to "
            f"{drift * 1e3:.3g} ms (more than half a sample); give the rate the file was "
            f"recorded at")


def read_csv(path: str | Path, *, sfreq: float | None = None,
             units: dict[str, str] | None = None, time_column: str = "t") -> Signals:
    """Channels of a CSV table: one header row, one column per channel.

    Units come from the header (``Biceps [uV]`` or ``Biceps (mV)``) or from ``units``; a channel
    without a unit is an error. The sampling rate is, in this order: ``sfreq``; the rate the
    file states in a leading comment line (``# sfreq: 150 Hz``, ``# sampling rate (Hz) = 150``,
    ``# Sampling Rate (Hz):= 150``); a least-squares fit of the ``time_column`` (seconds)
    against the sample index over the whole column. Which one was used is logged (INFO, logger
    ``opennmes.sensing._readers``). A time column that disagrees with a given or stated rate
    by more than half a sample anywhere, or is not uniform, is an error.

    Parameters
    ----------
    path : str or Path
        The ``.csv`` file (comma separated; ``#`` lines are comments).
    sfreq : float, optional
        Sampling rate in Hz; required when the file neither states one nor has a time column.
    units : dict of str to str, optional
        Unit per channel name, for headers without units.
    time_column : str
        Name of the time column in seconds, if any.
    """
    import pandas as pd

    stated = _stated_rate(path)
    df = pd.read_csv(path, comment="#")
    names: list[str] = []
    col_units: list[str] = []
    t: np.ndarray | None = None
    for col in df.columns:
        m = _UNIT_IN_HEADER.match(str(col))
        name, unit = (m["name"], m["unit"].strip()) if m else (str(col).strip(), None)
        if name == time_column:
            if unit not in (None, "s"):
                raise SignalError(f"{path}: time column {col!r} must be in s, got {unit!r}")
            t = df[col].to_numpy(dtype=float)
            continue
        if units and name in units:
            unit = units[name]
        if unit is None:
            raise SignalError(
                f"{path}: channel {name!r} has no unit; write it in the header as "
                f"'{name} [uV]' or pass units={{'{name}': ...}}"
            )
        names.append(name)
        col_units.append(unit)
    timed = t is not None and len(t) > 1
    if sfreq is not None:
        source = "the sfreq argument"
        if stated is not None and abs(stated[0] - sfreq) > 1e-9 * sfreq:
            raise SignalError(f"{path}: sfreq = {sfreq:g} Hz but the file states "
                              f"{stated[1]!r}")
    elif stated is not None:
        sfreq, source = stated[0], f"the file's {stated[1]!r} line"
    elif timed:
        assert t is not None
        sfreq = _fit_rate(t)
        source = (f"a least-squares fit of the {time_column!r} column ({t.size} samples, "
                  f"{t[-1] - t[0]:.6g} s)")
    else:
        raise SignalError(
            f"{path}: no sampling rate: the file has no {time_column!r} column and states no "
            f"rate (a '# sfreq: ... Hz' line); pass sfreq"
        )
    if timed:
        assert t is not None
        _check_time_column(path, t, sfreq, source, time_column)
    log.info("%s: sampling rate %.10g Hz from %s", path, sfreq, source)
    data = df[[c for c in df.columns if _col_name(c) in names]].to_numpy(dtype=float).T
    t0 = float(t[0]) if t is not None and len(t) else 0.0
    return _build(data, sfreq, names, col_units, t0)


def _col_name(col: object) -> str:
    m = _UNIT_IN_HEADER.match(str(col))
    return m["name"] if m else str(col).strip()


_XSENS_UNITS = {"acc": "m/s^2", "gyr": "rad/s", "mag": "a.u.", "counter": "", "lat": "",
                "lon": "", "alt": ""}


def read_text(path: str | Path) -> Signals:
    """Text exports of two sensor families, recognised by their header.

    * BITalino "Simple Text Format" (``# Sampling Rate (Hz):= 1000.00`` ... then one column per
      channel of raw ADC values). Units are ``count`` (raw, not converted).
    * Xsens MT Manager export (``// Sample rate: 120.0Hz`` lines, a tab-separated header row
      ``Counter Acc_X ... Gyr_X ... Mag_X ...``). Acc in m/s^2, Gyr in rad/s, Mag in a.u.;
      counter and GPS columns are dropped.

    Parameters
    ----------
    path : str or Path
        The ``.txt`` file.
    """
    return _read_text(path)[0]


def read_joint_angles(path: str | Path) -> Signals:
    """Joint angles per frame from a gait JSON file, in rad.

    The layout of the gait datasets in ``shared/data`` (Fukuchi et al. 2018; Van Criekinge et
    al. 2023, as distributed by gaitkit): ``fps`` (Hz) and ``angle_frames``, a list of frames
    whose ``*_angle`` and ``pelvis_tilt`` entries are angles in degrees. Channels keep their
    names (``right_knee_angle``, ...); values are converted to rad. Frames without a value
    are NaN.
    """
    import json

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SignalError(f"{path}: cannot read joint angles: {exc}") from exc
    if not isinstance(doc, dict) or "fps" not in doc or "angle_frames" not in doc:
        found = sorted(doc)[:10] if isinstance(doc, dict) else type(doc).__name__
        raise SignalError(f"{path}: a joint-angle file needs 'fps' and 'angle_frames'; found "
                          f"{found}")
    frames = doc["angle_frames"]
    if not frames:
        raise SignalError(f"{path}: 'angle_frames' is empty")
    names = [k for k, v in frames[0].items()
             if (k.endswith("_angle") or k == "pelvis_tilt") and (v is None or
                                                                  isinstance(v, int | float))]
    if not names:
        raise SignalError(f"{path}: no angle channels in the frames; keys: "
                          f"{sorted(frames[0])}")
    data = np.array([[np.nan if fr.get(n) is None else float(fr[n]) for fr in frames]
                     for n in names], dtype=np.float64)
    return Signals(np.radians(data), float(doc["fps"]), tuple(names), ("rad",) * len(names))


def _read_text(path: str | Path) -> tuple[Signals, list[str]]:
    path = Path(path)
    with path.open(encoding="utf-8", errors="replace") as fh:
        head = [fh.readline() for _ in range(8)]
    if head[0].startswith("#"):
        meta = {}
        for line in head:
            if line.startswith("#") and ":=" in line:
                k, v = line[1:].split(":=", 1)
                meta[k.strip().lower()] = v.strip()
        if "sampling rate (hz)" not in meta:
            raise SignalError(f"{path}: no '# Sampling Rate (Hz):=' header line; rate unknown")
        data = _loadtxt(path, comments="#", ndmin=2).T
        labels = meta.get("labels", "").split() or [f"ch{i}" for i in range(data.shape[0])]
        if len(labels) != data.shape[0]:
            labels = [f"ch{i}" for i in range(data.shape[0])]
        sig = _build(_finite(path, data, labels), float(meta["sampling rate (hz)"]), labels,
                     ["count"] * data.shape[0])
        return sig, ["emg" if "emg" in lab.lower() else "other" for lab in labels]
    if head[0].startswith("//"):
        rate = None
        n_header = 0
        for line in head:
            if line.startswith("//"):
                n_header += 1
                m = re.search(r"sample rate:\s*([0-9.]+)", line, re.I)
                if m:
                    rate = float(m.group(1))
        if rate is None:
            raise SignalError(f"{path}: no '// Sample rate:' header line; rate unknown")
        cols = head[n_header].strip().split("\t")
        table = _loadtxt(path, skiprows=n_header + 1, delimiter="\t",
                         usecols=range(len(cols)), ndmin=2).T
        keep = [i for i, c in enumerate(cols) if _XSENS_UNITS.get(c.split("_")[0].lower()[:3])]
        keep = [i for i in keep if cols[i].split("_")[0].lower() in ("acc", "gyr", "mag")]
        units = [_XSENS_UNITS[cols[i].split("_")[0].lower()] for i in keep]
        names = [cols[i] for i in keep]
        return _build(_finite(path, table[keep], names), rate, names, units), \
            ["other"] * len(keep)
    raise SignalError(
        f"{path}: unknown text format (expected a BITalino '# ...' or Xsens '// ...' header)"
    )


def _loadtxt(path: Path, **kwargs: object) -> np.ndarray:
    """``np.loadtxt`` whose failures (a word among the numbers, no rows) are one SignalError
    naming the file."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # "input contained no data"
            data = np.loadtxt(path, **kwargs)  # type: ignore[call-overload]
    except (ValueError, UserWarning) as exc:
        raise SignalError(f"{path}: {exc}") from None
    return np.asarray(data)


def _finite(path: Path, data: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """``data`` (channels x samples) when every value is finite, else a SignalError naming
    the channel and the sample (from 1) of the first nan or inf."""
    bad = np.argwhere(~np.isfinite(data))
    if bad.size:
        c, k = (int(x) for x in bad[0])
        raise SignalError(f"{path}: channel {names[c]!r}, sample {k + 1}: {data[c, k]} is not "
                          "a finite number")
    return data


def read_signals(path: str | Path, **kwargs: object) -> Signals:
    """Read any supported recording, chosen by file extension.

    ``.c3d`` -> :func:`read_c3d`, ``.edf``/``.bdf`` -> :func:`read_edf`, ``.csv`` ->
    :func:`read_csv` (``kwargs`` passed on), ``.txt`` -> :func:`read_text`.
    """
    return _read_any(path, **kwargs)[0]


def _read_any(path: str | Path, **kwargs: object) -> tuple[Signals, list[str]]:
    path = Path(path)
    if not path.exists():
        raise SignalError(f"{path}: no such file")
    ext = path.suffix.lower()
    if ext == ".c3d":
        return _read_c3d(path)
    if ext in (".edf", ".bdf"):
        return _read_edf(path, **kwargs)  # type: ignore[arg-type]
    if ext == ".csv":
        sig = read_csv(path, **kwargs)  # type: ignore[arg-type]
        return sig, ["emg" if "emg" in n.lower() else "other" for n in sig.names]
    if ext == ".txt":
        return _read_text(path)
    if ext == ".json":
        sig = read_joint_angles(path)
        return sig, ["angle"] * len(sig.names)
    raise SignalError(f"{path}: unknown file type {ext!r}; supported: .c3d .edf .bdf .csv .txt "
                      ".json (joint angles)")


def emg_channels(signals: Signals) -> list[str]:
    """Names of the EMG channels of a Signals.

    For Signals in memory this is every channel whose name contains ``emg`` (any case); the file
    readers use the file's labels and descriptions instead (see :func:`read_emg`).
    """
    return [n for n in signals.names if "emg" in n.lower()]


def read_emg(path: str | Path, channels: Sequence[str] | None = None, *,
             drop_flat: bool = True, **kwargs: object) -> Signals:
    """The EMG channels of a recording.

    Parameters
    ----------
    path : str or Path
        Any file :func:`read_signals` reads.
    channels : sequence of str, optional
        Channel names to keep (any channel of the file, EMG-labelled or not).
    drop_flat : bool
        Leave out EMG channels that are constant (unconnected sensors); they are logged.

    Raises
    ------
    SignalError
        No EMG channel in the file (the message lists what was found), or an unknown name.
    """
    sig, kinds = _read_any(path, **kwargs)
    if channels is not None:
        unknown = [c for c in channels if c not in sig.names]
        if unknown:
            raise SignalError(
                f"{path}: no channel named {unknown}; channels in the file: {list(sig.names)}"
            )
        return sig.pick(list(channels))
    names = [n for n, k in zip(sig.names, kinds, strict=True) if k == "emg"]
    if not names:
        found = ", ".join(f"{n} [{u}]" for n, u in zip(sig.names, sig.units, strict=True))
        raise SignalError(
            f"{path}: no EMG channels found (labels containing 'EMG'); the file has "
            f"{len(sig.names)} channels at {sig.sfreq:g} Hz: {found}. Choose channels explicitly "
            "(channels=[...] in Python, --channel on the command line)"
        )
    if drop_flat:
        flat = [n for n in names if np.ptp(sig[n]) == 0.0]
        if flat:
            log.info("%s: leaving out %d constant EMG channels: %s", path, len(flat), flat)
        names = [n for n in names if n not in flat]
        if not names:
            raise SignalError(f"{path}: every EMG channel is constant (no signal)")
    return sig.pick(names)
