"""Signals: what is measured or simulated (force, joint angle, EMG, gyroscope, ...).

A :class:`Signals` holds a uniform time base (start time and sampling rate, always explicit),
named channels and their units. Physiology produces it, sensors and files produce it, sensing and
control consume it, the store keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from opennmes.errors import SignalError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Signals"]


@dataclass(frozen=True, eq=False)
class Signals:
    """Uniformly sampled multi-channel signals.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Samples in the units given by ``units``.
    sfreq : float
        Sampling rate in hertz (> 0). Never assumed: always given.
    names : sequence of str
        One unique name per channel.
    units : sequence of str
        One unit per channel, e.g. ``"V"``, ``"N"``, ``"rad"``, ``"rad/s"``.
    t0 : float
        Time of the first sample, in seconds.
    """

    data: np.ndarray
    sfreq: float
    names: tuple[str, ...]
    units: tuple[str, ...]
    t0: float = 0.0

    def __post_init__(self) -> None:
        data = np.asarray(self.data, dtype=np.float64)
        if data.ndim == 1:
            data = data[None, :]
        if data.ndim != 2:
            raise SignalError(f"data must be 2-D (channels x samples), got shape {data.shape}")
        if not (np.isfinite(self.sfreq) and self.sfreq > 0):
            raise SignalError(f"sfreq = {self.sfreq!r} Hz must be a positive number")
        names, units = tuple(self.names), tuple(self.units)
        if len(names) != data.shape[0] or len(units) != data.shape[0]:
            raise SignalError(
                f"{data.shape[0]} channels but {len(names)} names and {len(units)} units"
            )
        if len(set(names)) != len(names):
            raise SignalError(f"channel names must be unique, got {names}")
        data.setflags(write=False)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "sfreq", float(self.sfreq))
        object.__setattr__(self, "t0", float(self.t0))

    @property
    def n_samples(self) -> int:
        """Number of samples per channel."""
        return int(self.data.shape[1])

    @property
    def t(self) -> np.ndarray:
        """Sample times in seconds."""
        return self.t0 + np.arange(self.n_samples) / self.sfreq

    @property
    def duration(self) -> float:
        """``n_samples / sfreq`` in seconds."""
        return self.n_samples / self.sfreq

    def __getitem__(self, name: str) -> np.ndarray:
        """Samples of one channel by name."""
        return self.data[self._index(name)]

    def _index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise SignalError(
                f"no channel named {name!r}; channels: {list(self.names)}"
            ) from None

    def unit(self, name: str) -> str:
        """Unit of one channel."""
        return self.units[self._index(name)]

    def pick(self, names: Sequence[str]) -> Signals:
        """A new Signals with only the named channels, in the given order."""
        idx = [self._index(n) for n in names]
        return Signals(self.data[idx], self.sfreq, tuple(names),
                       tuple(self.units[i] for i in idx), self.t0)

    def crop(self, tmin: float, tmax: float) -> Signals:
        """Samples with ``tmin <= t < tmax`` seconds."""
        i0 = max(0, int(np.ceil((tmin - self.t0) * self.sfreq - 1e-9)))
        i1 = min(self.n_samples, int(np.ceil((tmax - self.t0) * self.sfreq - 1e-9)))
        return Signals(self.data[:, i0:i1], self.sfreq, self.names, self.units,
                       self.t0 + i0 / self.sfreq)

    @classmethod
    def concat_channels(cls, parts: Sequence[Signals]) -> Signals:
        """Stack the channels of signals that share their time base."""
        first = parts[0]
        for p in parts[1:]:
            if p.sfreq != first.sfreq or p.n_samples != first.n_samples or p.t0 != first.t0:
                raise SignalError("signals to stack must share sfreq, t0 and length")
        return cls(np.vstack([p.data for p in parts]), first.sfreq,
                   sum((p.names for p in parts), ()), sum((p.units for p in parts), ()),
                   first.t0)

    def append(self, other: Signals) -> Signals:
        """Samples of ``other`` after these (same channels and rate)."""
        if other.names != self.names or other.sfreq != self.sfreq:
            raise SignalError("can only append signals with the same channels and sfreq")
        return Signals(np.hstack([self.data, other.data]), self.sfreq, self.names,
                       self.units, self.t0)

    def to_pandas(self) -> pd.DataFrame:
        """A table with a ``t`` column then one column per channel."""
        import pandas as pd

        cols: dict[str, npt.ArrayLike] = {"t": self.t}
        for i, n in enumerate(self.names):
            cols[n] = self.data[i]
        return pd.DataFrame(cols)
