"""The PulseSchedule: what is delivered, one row per pulse.

Every layer speaks this one currency: a program expands into it, the safety guard checks it, a
stimulator plays it, the virtual patient responds to it, the session log stores it and dose
reports are computed from it.

The module owns the schedule's columns (:data:`COLUMNS`), its time grid and its one rounding
rule:

* times and widths lie on whole microseconds; a value is put on the grid by rounding to the
  *nearest* whole microsecond, ties to even (:func:`to_us`, :func:`round_us`), and a device
  that counts whole microseconds reads a value that lies on the grid with :func:`exact_us`;
* amplitudes are put on a device's current step by rounding to the nearest step, ties to even
  (:func:`quantize_amplitude`, :meth:`PulseSchedule.quantize`); a value is a whole number of
  steps when :func:`exact_steps` says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from opennmes.errors import ProgramError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Waveform", "WAVEFORM_NAMES", "PulseSchedule", "COLUMNS", "US_PER_S",
           "GRID_TOLERANCE_US", "round_us", "to_us", "exact_us", "quantize_amplitude",
           "exact_steps"]

US_PER_S = 1_000_000
"""Microseconds per second: the schedule's time grid is one whole microsecond."""

GRID_TOLERANCE_US = 1e-3
"""How far (in us) a time or width may sit from a whole microsecond and still count as on the
grid (floating-point noise of SI seconds, 1 ns)."""

_STEP_TOLERANCE = 1e-6
"""How far (in steps) an amplitude may sit from a whole number of steps and still count as one
(floating-point noise)."""


def round_us(x_us: npt.ArrayLike) -> np.ndarray:
    """Values given in microseconds, rounded to whole microseconds (int64).

    The one rounding rule of the time grid: the nearest whole microsecond, ties to even
    (``np.rint``). Use it where the exact value is best computed in microseconds (an onset
    ``k * (1e6 / f)``); :func:`to_us` takes seconds.
    """
    return np.rint(np.asarray(x_us, dtype=np.float64)).astype(np.int64)


def to_us(t: npt.ArrayLike) -> np.ndarray:
    """Times or widths in seconds as whole microseconds (int64): ``round_us(t * 1e6)``.

    A scalar gives a 0-d array; ``int(to_us(t))`` is the count.
    """
    return round_us(np.asarray(t, dtype=np.float64) * US_PER_S)


def exact_us(t: float) -> int | None:
    """The whole microseconds of ``t`` seconds when ``t`` lies on the grid (within
    :data:`GRID_TOLERANCE_US`), else None: how a device that counts whole microseconds reads a
    time or a width (it refuses what is not on the grid rather than rounding it)."""
    x = float(t) * US_PER_S
    n = int(round_us(x))
    return n if abs(x - n) <= GRID_TOLERANCE_US else None


def _per_unit(step: float) -> int | None:
    """Whole steps per ampere (1000 for 1 mA, 2000 for 0.5 mA), or None when 1/step is not a
    whole number; dividing an integer by it gives the closest float to each step."""
    per = 1.0 / step
    n = round(per)
    return n if n > 0 and abs(per - n) <= 1e-9 * per else None


def _check_step(step: float) -> None:
    if not (math.isfinite(step) and step >= 0):
        raise ProgramError(f"amplitude step = {step!r} A must be finite and >= 0 (0: continuous)")


def quantize_amplitude(amplitude: npt.ArrayLike, step: float, *,
                       down: bool = False) -> np.ndarray:
    """Amplitudes (A) on a device's current ``step`` (A): the one rounding rule of amplitudes.

    Each value goes to the nearest whole number of steps, ties to even (``np.rint``), or, with
    ``down``, to the highest step not above it (a ceiling that must not be passed). A ``step``
    of 0 means a continuous output: the values are returned as they are. The result is a new
    float64 array (0-d for a scalar; ``float(...)`` gives the value).
    """
    _check_step(step)
    a = np.array(amplitude, dtype=np.float64)
    if step == 0:
        return a
    per = _per_unit(step)
    scaled = a * per if per is not None else a / step
    k = np.floor(scaled + 1e-9) if down else np.rint(scaled)
    return k / per if per is not None else k * step


def exact_steps(amplitude: float, step: float) -> int | None:
    """The number of ``step`` (A) in ``amplitude`` (A) when it is a whole number of steps (within
    a millionth of a step), else None: how a device that sets whole steps reads an amplitude
    (it refuses what is not on its step rather than rounding it)."""
    _check_step(step)
    if step == 0:
        raise ProgramError("exact_steps needs a step > 0; a continuous output has no steps")
    per = _per_unit(step)
    x = float(amplitude) * per if per is not None else float(amplitude) / step
    n = round(x)
    return int(n) if abs(x - n) <= _STEP_TOLERANCE else None


class Waveform(IntEnum):
    """Shape of one pulse, stored in :attr:`PulseSchedule.waveform`.

    MONOPHASIC
        One rectangular phase; nothing balances its charge (net DC).
    SYMMETRIC_BIPHASIC
        Rectangular phase, interphase gap, equal and opposite rectangular phase.
    ASYMMETRIC_BIPHASIC
        Rectangular phase, gap, a longer and lower opposite phase of equal charge.
    SINE_CYCLE
        One cycle of a sinusoidal medium-frequency carrier (e.g. the 2500 Hz cycles of Russian
        current): two half-sine phases of equal charge, no gap. ``amplitude`` is the peak.
    """

    MONOPHASIC = 0
    SYMMETRIC_BIPHASIC = 1
    ASYMMETRIC_BIPHASIC = 2
    SINE_CYCLE = 3


WAVEFORM_NAMES: dict[str, Waveform] = {
    "monophasic": Waveform.MONOPHASIC,
    "symmetric-biphasic": Waveform.SYMMETRIC_BIPHASIC,
    "asymmetric-biphasic": Waveform.ASYMMETRIC_BIPHASIC,
    "sine": Waveform.SINE_CYCLE,
}

COLUMNS: dict[str, npt.DTypeLike] = {
    "t": np.float64,
    "channel": np.int16,
    "amplitude": np.float64,
    "phase_width": np.float64,
    "interphase_gap": np.float64,
    "amplitude2": np.float64,
    "phase_width2": np.float64,
    "waveform": np.int8,
}
"""The columns of a :class:`PulseSchedule`, in order, with their dtypes."""


@dataclass(frozen=True, eq=False)
class PulseSchedule:
    """Columnar table of pulses, sorted by time.

    All arrays have one entry per pulse. Units are SI.

    Parameters
    ----------
    t : ndarray of float64
        Onset of the first phase, in seconds, non-decreasing. Expansion puts every onset on a
        whole microsecond.
    channel : ndarray of int16
        Index into ``channel_names``.
    amplitude : ndarray of float64
        Peak current of the first phase, in amperes (>= 0).
    phase_width : ndarray of float64
        Width of the first phase, in seconds.
    interphase_gap : ndarray of float64
        Gap between the phases, in seconds (0 for monophasic and sine cycles).
    amplitude2 : ndarray of float64
        Peak current of the second (balancing) phase, in amperes (0 for monophasic).
    phase_width2 : ndarray of float64
        Width of the second phase, in seconds (0 for monophasic).
    waveform : ndarray of int8
        :class:`Waveform` id of each pulse.
    channel_names : tuple of str
        Names of the channels, indexed by ``channel``.
    """

    t: np.ndarray
    channel: np.ndarray
    amplitude: np.ndarray
    phase_width: np.ndarray
    interphase_gap: np.ndarray
    amplitude2: np.ndarray
    phase_width2: np.ndarray
    waveform: np.ndarray
    channel_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = None
        for name, dtype in COLUMNS.items():
            arr = np.ascontiguousarray(getattr(self, name), dtype=dtype)
            if arr.ndim != 1:
                raise ProgramError(f"PulseSchedule.{name} must be one-dimensional")
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise ProgramError(
                    f"PulseSchedule columns differ in length: {name} has {arr.shape[0]}, "
                    f"t has {n}"
                )
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "channel_names", tuple(self.channel_names))
        if len(set(self.channel_names)) != len(self.channel_names):
            raise ProgramError(f"channel names must be unique, got {self.channel_names}")
        if n:
            for name in ("t", "amplitude", "phase_width", "interphase_gap", "amplitude2",
                         "phase_width2"):
                arr = getattr(self, name)
                bad = ~np.isfinite(arr) | (arr < 0)
                if bad.any():
                    i = int(np.argmax(bad))
                    raise ProgramError(
                        f"pulse {i}: {name} = {float(arr[i])!r} must be finite and >= 0"
                    )
            if (np.diff(self.t) < 0).any():
                i = int(np.argmax(np.diff(self.t) < 0)) + 1
                raise ProgramError(
                    f"pulse {i}: t = {self.t[i]!r} s is earlier than the pulse before it "
                    f"({self.t[i - 1]!r} s); pulse times must be sorted"
                )
            if self.channel.min() < 0 or self.channel.max() >= len(self.channel_names):
                raise ProgramError(
                    f"channel index out of range 0..{len(self.channel_names) - 1}"
                )
            valid = {int(w) for w in Waveform}
            ws = set(np.unique(self.waveform).tolist())
            if not ws <= valid:
                raise ProgramError(f"unknown waveform ids {sorted(ws - valid)}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, channel_names: Sequence[str]) -> PulseSchedule:
        """A schedule with no pulses on the given channels."""
        cols = {k: np.empty(0, dtype=v) for k, v in COLUMNS.items()}
        return cls(**cols, channel_names=tuple(channel_names))

    @classmethod
    def from_arrays(
        cls,
        t: npt.ArrayLike,
        amplitude: npt.ArrayLike,
        phase_width: npt.ArrayLike,
        *,
        channel: npt.ArrayLike | int = 0,
        interphase_gap: npt.ArrayLike | float = 0.0,
        waveform: Waveform = Waveform.SYMMETRIC_BIPHASIC,
        channel_names: Sequence[str] = ("ch1",),
    ) -> PulseSchedule:
        """Build a schedule of one waveform from arrays (scalars broadcast).

        The second phase is derived from the waveform: equal to the first for symmetric
        biphasic and sine cycles, absent for monophasic. Use the constructor for asymmetric
        pulses.
        """
        t_arr = np.asarray(t, dtype=np.float64)
        n = t_arr.shape[0]

        def full(x: Any, dtype: npt.DTypeLike) -> np.ndarray:
            return np.broadcast_to(np.asarray(x, dtype=dtype), (n,)).copy()

        amp = full(amplitude, np.float64)
        pw = full(phase_width, np.float64)
        if waveform == Waveform.MONOPHASIC:
            amp2, pw2 = np.zeros(n), np.zeros(n)
        elif waveform == Waveform.ASYMMETRIC_BIPHASIC:
            raise ProgramError("from_arrays cannot derive an asymmetric second phase; "
                               "pass amplitude2 and phase_width2 to PulseSchedule()")
        else:
            amp2, pw2 = amp.copy(), pw.copy()
        gap = full(interphase_gap, np.float64)
        if waveform == Waveform.SINE_CYCLE:
            gap[:] = 0.0
        return cls(
            t=t_arr,
            channel=full(channel, np.int16),
            amplitude=amp,
            phase_width=pw,
            interphase_gap=gap,
            amplitude2=amp2,
            phase_width2=pw2,
            waveform=full(int(waveform), np.int8),
            channel_names=tuple(channel_names),
        )

    @classmethod
    def concat(cls, parts: Sequence[PulseSchedule]) -> PulseSchedule:
        """Join schedules with the same channels and re-sort by (time, channel)."""
        if not parts:
            raise ProgramError("concat needs at least one schedule")
        names = parts[0].channel_names
        for p in parts[1:]:
            if p.channel_names != names:
                raise ProgramError(
                    f"cannot join schedules with channels {names} and {p.channel_names}"
                )
        cols = {k: np.concatenate([getattr(p, k) for p in parts]) for k in COLUMNS}
        order = np.lexsort((cols["channel"], cols["t"]))
        return cls(**{k: v[order] for k, v in cols.items()}, channel_names=names)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return int(self.t.shape[0])

    def __repr__(self) -> str:
        return (
            f"PulseSchedule({len(self)} pulses, {len(self.channel_names)} channels, "
            f"{self.duration:.3f} s)"
        )

    @property
    def duration(self) -> float:
        """Time from 0 to the end of the last pulse, in seconds."""
        if len(self) == 0:
            return 0.0
        return float(np.max(self.t + self.pulse_duration))

    @property
    def pulse_duration(self) -> np.ndarray:
        """Duration of each pulse from onset to the end of its last phase, in seconds."""
        return self.phase_width + self.interphase_gap + self.phase_width2

    def take(self, index: npt.ArrayLike | slice) -> PulseSchedule:
        """Rows selected by a slice, a boolean mask or a sorted integer index."""
        idx = index if isinstance(index, slice) else np.asarray(index)
        return PulseSchedule(
            **{k: getattr(self, k)[idx] for k in COLUMNS}, channel_names=self.channel_names
        )

    def window(self, start: float, stop: float) -> PulseSchedule:
        """Pulses with onset in ``[start, stop)`` seconds."""
        lo, hi = np.searchsorted(self.t, [start, stop], side="left")
        return self.take(slice(int(lo), int(hi)))

    def chunks(self, length: float) -> list[PulseSchedule]:
        """Split into consecutive windows of ``length`` seconds (for streaming to a device)."""
        if length <= 0:
            raise ProgramError(f"chunk length must be > 0 s, got {length}")
        end = self.t[-1] if len(self) else 0.0
        n = int(np.floor(end / length)) + 1
        return [self.window(i * length, (i + 1) * length) for i in range(n)]

    def for_channel(self, name: str) -> PulseSchedule:
        """Only the pulses of the named channel (channel names are kept)."""
        if name not in self.channel_names:
            raise ProgramError(f"unknown channel {name!r}; channels: {list(self.channel_names)}")
        return self.take(self.channel == self.channel_names.index(name))

    def shift(self, dt: float) -> PulseSchedule:
        """A copy with every onset moved by ``dt`` seconds (the result must stay >= 0)."""
        cols = {k: getattr(self, k) for k in COLUMNS}
        cols["t"] = self.t + dt
        return PulseSchedule(**cols, channel_names=self.channel_names)

    def scaled(self, factor: npt.ArrayLike) -> PulseSchedule:
        """A copy with both phase amplitudes multiplied by ``factor`` (scalar or per pulse)."""
        f = np.broadcast_to(np.asarray(factor, dtype=np.float64), self.t.shape)
        cols = {k: getattr(self, k) for k in COLUMNS}
        cols["amplitude"] = self.amplitude * f
        cols["amplitude2"] = self.amplitude2 * f
        return PulseSchedule(**cols, channel_names=self.channel_names)

    def quantize(self, step: float) -> PulseSchedule:
        """A copy with both phase amplitudes on a device's current ``step`` (A), by
        :func:`quantize_amplitude` (nearest step, ties to even; 0: unchanged).

        Explicit, never silent: a device refuses amplitudes between its steps, so a program
        whose ramps produce them is quantized first; the quantized schedule is what the guard
        checks and the device plays.
        """
        _check_step(step)
        if step == 0:
            return self
        cols = {k: getattr(self, k) for k in COLUMNS}
        cols["amplitude"] = quantize_amplitude(self.amplitude, step)
        cols["amplitude2"] = quantize_amplitude(self.amplitude2, step)
        return PulseSchedule(**cols, channel_names=self.channel_names)

    def equals(self, other: PulseSchedule, *, atol_t: float = 0.0, atol_a: float = 0.0) -> bool:
        """True when both schedules hold the same pulses (within the given tolerances)."""
        if self.channel_names != other.channel_names or len(self) != len(other):
            return False
        if not np.allclose(self.t, other.t, rtol=0, atol=atol_t):
            return False
        for k in ("amplitude", "amplitude2"):
            if not np.allclose(getattr(self, k), getattr(other, k), rtol=0, atol=atol_a):
                return False
        for k in ("phase_width", "interphase_gap", "phase_width2"):
            if not np.allclose(getattr(self, k), getattr(other, k), rtol=0, atol=1e-9):
                return False
        return bool(np.array_equal(self.channel, other.channel)
                    and np.array_equal(self.waveform, other.waveform))

    # ------------------------------------------------------------------ tables
    def to_pandas(self) -> pd.DataFrame:
        """One row per pulse; columns in SI units, channel and waveform by name."""
        import pandas as pd

        names = np.array(self.channel_names, dtype=object)
        wnames = {int(w): n for n, w in WAVEFORM_NAMES.items()}
        return pd.DataFrame(
            {
                "t": self.t,
                "channel": names[self.channel] if len(self) else np.array([], dtype=object),
                "amplitude": self.amplitude,
                "phase_width": self.phase_width,
                "interphase_gap": self.interphase_gap,
                "amplitude2": self.amplitude2,
                "phase_width2": self.phase_width2,
                "waveform": [wnames[int(w)] for w in self.waveform],
            }
        )

    @classmethod
    def from_pandas(cls, df: pd.DataFrame, channel_names: Sequence[str] | None = None
                    ) -> PulseSchedule:
        """Inverse of :meth:`to_pandas`."""
        missing = [c for c in COLUMNS if c not in df.columns]
        if missing:
            raise ProgramError(f"pulse table lacks columns {missing}")
        chans = df["channel"].astype(str).to_numpy()
        names = tuple(channel_names) if channel_names else tuple(dict.fromkeys(chans))
        lookup = {n: i for i, n in enumerate(names)}
        try:
            ch = np.array([lookup[c] for c in chans], dtype=np.int16)
            wf = np.array([int(WAVEFORM_NAMES[w]) for w in df["waveform"].astype(str)],
                          dtype=np.int8)
        except KeyError as exc:
            raise ProgramError(f"unknown channel or waveform {exc.args[0]!r} in pulse table") \
                from exc
        return cls(
            t=df["t"].to_numpy(np.float64),
            channel=ch,
            amplitude=df["amplitude"].to_numpy(np.float64),
            phase_width=df["phase_width"].to_numpy(np.float64),
            interphase_gap=df["interphase_gap"].to_numpy(np.float64),
            amplitude2=df["amplitude2"].to_numpy(np.float64),
            phase_width2=df["phase_width2"].to_numpy(np.float64),
            waveform=wf,
            channel_names=names,
        )

    def write(self, path: str) -> None:
        """Write to ``.csv`` or ``.parquet`` (chosen by the suffix)."""
        df = self.to_pandas()
        if path.endswith(".parquet"):
            df.to_parquet(path, index=False)
        elif path.endswith(".csv"):
            df.to_csv(path, index=False, float_format="%.9g")
        else:
            raise ProgramError(f"{path}: unknown pulse file type; use .csv or .parquet")

    @classmethod
    def read(cls, path: str) -> PulseSchedule:
        """Read a file written by :meth:`write`."""
        import pandas as pd

        if path.endswith(".parquet"):
            df = pd.read_parquet(path)
        elif path.endswith(".csv"):
            df = pd.read_csv(path)
        else:
            raise ProgramError(f"{path}: unknown pulse file type; use .csv or .parquet")
        return cls.from_pandas(df)
