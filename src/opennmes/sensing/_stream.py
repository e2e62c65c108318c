"""Live signal streams: one small interface for every sensor.

A :class:`SignalSource` hands out consecutive chunks of :class:`~opennmes.signals.Signals` with a
fixed rate, channel names and units; ``read()`` returns ``None`` when the stream has ended. The
streaming filters and detectors of this package consume such chunks.

Three sources are provided:

* :class:`PlaybackSource` replays a recording (or any Signals, such as the patient signals of a
  simulated session) chunk by chunk, optionally paced in real time.
* :class:`PushSource` is for drivers that deliver samples from their own thread or callback
  (for example a Delsys, BITalino or IMU SDK): the driver calls :meth:`PushSource.push` with new
  samples; the consumer calls :meth:`PushSource.read`.
* :class:`PatientSource` plays a :class:`~opennmes.stim.PulseSchedule` into a simulated patient
  (any object with ``advance(chunk, until) -> Signals``, such as
  :class:`opennmes.physiology.PatientStream`) and hands out its signals (force, joint angle,
  synthetic EMG) chunk by chunk: the patient signals of a simulated session.
* :class:`PullSource` wraps a function that returns the samples that arrived since its last
  call (polling drivers).

To plug in a real EMG or IMU, write a tiny adapter that converts the device's samples to SI units
(V, rad/s, m/s^2) and feeds a :class:`PushSource` or :class:`PullSource`; see docs/sensing.md.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from opennmes.errors import SignalError
from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.schedule import PulseSchedule

__all__ = ["SignalSource", "PlaybackSource", "PushSource", "PullSource", "PatientSource",
           "iter_chunks"]


@runtime_checkable
class SignalSource(Protocol):
    """What a live or replayed sensor stream offers."""

    sfreq: float
    names: tuple[str, ...]
    units: tuple[str, ...]

    def read(self) -> Signals | None:
        """The next chunk, or ``None`` when the stream has ended."""
        ...

    def close(self) -> None:
        """Stop the stream (idempotent)."""
        ...


class PlaybackSource:
    """Replay Signals in chunks of ``chunk`` seconds.

    Parameters
    ----------
    signals : Signals
        What to replay.
    chunk : float
        Chunk length in seconds (at least one sample).
    realtime : bool
        Sleep so that chunks come out at the recording's pace.
    """

    def __init__(self, signals: Signals, chunk: float, *, realtime: bool = False):
        self._sig = signals
        self.sfreq = signals.sfreq
        self.names = signals.names
        self.units = signals.units
        self._n = max(1, int(round(chunk * signals.sfreq)))
        self._i = 0
        self._realtime = realtime
        self._start: float | None = None
        self._closed = False

    def read(self) -> Signals | None:
        """The next chunk, or ``None`` at the end."""
        if self._closed or self._i >= self._sig.n_samples:
            return None
        i0, i1 = self._i, min(self._sig.n_samples, self._i + self._n)
        self._i = i1
        if self._realtime:
            now = time.monotonic()
            if self._start is None:
                self._start = now
            due = self._start + i1 / self.sfreq
            if due > now:
                time.sleep(due - now)
        return Signals(self._sig.data[:, i0:i1], self.sfreq, self.names, self.units,
                       self._sig.t0 + i0 / self.sfreq)

    def close(self) -> None:
        """Stop the replay."""
        self._closed = True


class _Stamped:
    def __init__(self, sfreq: float, names: Sequence[str], units: Sequence[str], t0: float):
        if not (np.isfinite(sfreq) and sfreq > 0):
            raise SignalError(f"sfreq = {sfreq!r} Hz must be a positive number")
        if len(names) != len(units):
            raise SignalError(f"{len(names)} names but {len(units)} units")
        self.sfreq = float(sfreq)
        self.names = tuple(names)
        self.units = tuple(units)
        self._n = 0
        self._t0 = float(t0)
        self._closed = False

    def _stamp(self, x: np.ndarray) -> Signals:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1 and len(self.names) == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[0] != len(self.names):
            raise SignalError(f"sensor gave samples of shape {x.shape}; expected "
                              f"({len(self.names)}, n) for channels {list(self.names)}")
        out = Signals(x, self.sfreq, self.names, self.units, self._t0 + self._n / self.sfreq)
        self._n += x.shape[1]
        return out

    def close(self) -> None:
        """Stop the stream (idempotent)."""
        self._closed = True


class PushSource(_Stamped):
    """A stream fed by a driver thread or callback.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    names, units : sequence of str
        Channels and their units (SI: V, rad/s, m/s^2).
    t0 : float
        Time of the first sample in seconds (on the session clock).
    """

    def __init__(self, sfreq: float, names: Sequence[str], units: Sequence[str],
                 t0: float = 0.0):
        super().__init__(sfreq, names, units, t0)
        self._q: queue.Queue[np.ndarray | None] = queue.Queue()

    def push(self, samples: np.ndarray) -> None:
        """Add new samples, shape (n_channels, n) (thread-safe)."""
        self._q.put(np.array(samples, dtype=np.float64))

    def end(self) -> None:
        """Mark the end of the stream (after the queued samples)."""
        self._q.put(None)

    def read(self, timeout: float | None = None) -> Signals | None:
        """All samples pushed since the last read, as one chunk.

        Blocks up to ``timeout`` seconds for the first one (forever when ``None``); returns
        ``None`` after :meth:`end` or :meth:`close`.
        """
        if self._closed:
            return None
        try:
            first = self._q.get(timeout=timeout)
        except queue.Empty:
            raise SignalError(f"no samples from the sensor within {timeout} s") from None
        parts = [first]
        while not self._q.empty() and parts[-1] is not None:
            parts.append(self._q.get_nowait())
        done = parts[-1] is None
        data = [p for p in parts if p is not None]
        if done:
            self._closed = True
        if not data:
            return None
        return self._stamp(np.concatenate([np.atleast_2d(d) for d in data], axis=1))


class PullSource(_Stamped):
    """A stream that polls a function for the samples that arrived since its last call.

    Parameters
    ----------
    pull : callable
        Returns an array (n_channels, n) of new samples (n may be 0), or ``None`` at the end.
    sfreq : float
        Sampling rate in Hz.
    names, units : sequence of str
        Channels and their units.
    t0 : float
        Time of the first sample in seconds.
    """

    def __init__(self, pull: Callable[[], np.ndarray | None], sfreq: float,
                 names: Sequence[str], units: Sequence[str], t0: float = 0.0):
        super().__init__(sfreq, names, units, t0)
        self._pull = pull

    def read(self) -> Signals | None:
        """The next chunk, or ``None`` at the end."""
        if self._closed:
            return None
        x = self._pull()
        if x is None:
            self._closed = True
            return None
        return self._stamp(x)


class _Advancing(Protocol):
    def advance(self, chunk: PulseSchedule, until: float) -> Signals: ...


class PatientSource:
    """The signals of a simulated patient stimulated by a schedule, chunk by chunk.

    Parameters
    ----------
    patient : object with ``advance(chunk, until) -> Signals``
        A patient stream, e.g. ``opennmes.physiology.get_preset(...).start(sfreq=...)``.
    schedule : PulseSchedule
        Pulses to deliver (seconds on the patient's clock).
    chunk : float
        Chunk length in seconds.
    duration : float
        Seconds to simulate.
    channels : sequence of str, optional
        Output channels to keep (e.g. ``["quadriceps.emg", "knee.angle"]``).
    """

    def __init__(self, patient: _Advancing, schedule: PulseSchedule, chunk: float,
                 duration: float, channels: Sequence[str] | None = None):
        if not chunk > 0 or not duration > 0:
            raise SignalError(f"chunk = {chunk} s and duration = {duration} s must be positive")
        self._patient = patient
        self._schedule = schedule
        self._chunk = float(chunk)
        self._duration = float(duration)
        self._channels = None if channels is None else list(channels)
        self._t = 0.0
        self._closed = False
        first = self._next(0.0)
        self.sfreq = first.sfreq if first is not None else float("nan")
        self.names = first.names if first is not None else ()
        self.units = first.units if first is not None else ()
        self._first: Signals | None = first

    def _next(self, t: float) -> Signals | None:
        if t >= self._duration - 1e-12:
            return None
        until = min(self._duration, t + self._chunk)
        sig = self._patient.advance(self._schedule.window(t, until), until)
        self._t = until
        return sig.pick(self._channels) if self._channels is not None else sig

    def read(self) -> Signals | None:
        """The next chunk, or ``None`` at the end."""
        if self._closed:
            return None
        if self._first is not None:
            out, self._first = self._first, None
            return out
        return self._next(self._t)

    def close(self) -> None:
        """Stop the simulation (idempotent)."""
        self._closed = True


def iter_chunks(source: SignalSource) -> Iterator[Signals]:
    """Iterate over a source's chunks until it ends; closes it afterwards."""
    try:
        while True:
            chunk = source.read()
            if chunk is None:
                return
            yield chunk
    finally:
        source.close()
