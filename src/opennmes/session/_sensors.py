"""Signal sources a session records and watches: the virtual patient, or any live sensor."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.physiology import PatientStream
    from opennmes.schedule import PulseSchedule

__all__ = ["Sensor", "PatientSensor", "DeviceSignals", "ReplaySensor", "SourceSensor"]


@runtime_checkable
class Sensor(Protocol):
    """A live signal source.

    ``read(t)`` is called by the control loop once per chunk with the session time ``t`` (s)
    and returns the samples that arrived since the last call (``t0`` in session time), or
    None. A sensor whose samples lag the session time by more than the runner's
    ``sensor_timeout`` is dead: the watchdog stops the session. A sensor whose input has a
    natural end (a replayed recording) may say so with an ``ended`` attribute (and
    ``end_time``, s): the runner then stops the session with that reason, not as a fault.
    """

    name: str

    def read(self, t: float) -> Signals | None: ...


class PatientSensor:
    """The response of a virtual patient to the pulses actually sent.

    Parameters
    ----------
    stream : PatientStream
        From ``patient.start(sfreq=..., seed=...)``; its time is session time.
    name : str
        Stream name in the record.
    """

    def __init__(self, stream: PatientStream, name: str = "patient") -> None:
        self.stream = stream
        self.name = name
        self._pending: list[Signals] = []

    def feed(self, chunk: PulseSchedule, until: float) -> None:
        """Advance the patient with the pulses sent for the window ending at ``until`` s."""
        self._pending.append(self.stream.advance(chunk, until))

    def read(self, t: float) -> Signals | None:
        """Samples produced since the last read (None when there are none)."""
        if not self._pending:
            return None
        parts, self._pending = self._pending, []
        parts = [p for p in parts if p.n_samples]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]

        first = parts[0]
        return Signals(np.hstack([p.data for p in parts]), first.sfreq, first.names, first.units,
                       first.t0)


class DeviceSignals:
    """The signals a stimulator streams with each played window (``sim://`` with a virtual
    patient posts them in its ``Played`` events)."""

    def __init__(self, stim: Any, name: str = "patient") -> None:
        self.name = name
        self._pending: list[Signals] = []
        stim.add_listener(self._on_event)

    def _on_event(self, event: Any) -> None:
        sig = getattr(event, "signals", None)
        if isinstance(sig, Signals) and sig.n_samples:
            self._pending.append(sig)

    def read(self, t: float) -> Signals | None:
        """Samples posted since the last read (None when there are none)."""
        if not self._pending:
            return None
        parts, self._pending = self._pending, []
        if len(parts) == 1:
            return parts[0]

        first = parts[0]
        return Signals(np.hstack([p.data for p in parts]), first.sfreq, first.names, first.units,
                       first.t0)


class ReplaySensor:
    """A recording played back as a live sensor, in session time.

    For trying triggers and closed loops without hardware (and for tests): the samples of
    ``signals`` from its ``t0`` appear at session time ``start``, each one only once the
    device's clock has reached it (on a virtual clock, as the clock moves). The stream ends
    with the recording: once its last sample has been read, :attr:`ended` is True and the
    runner stops the session as an ordinary stop whose reason says the recording ended (the
    end of the input, not a sensor fault; a sensor that goes silent before its end still
    trips the watchdog).

    Parameters
    ----------
    signals : Signals
        The recording (any channels; units and rate kept).
    name : str
        Stream name in the record, and the ``sensor`` a drive can name.
    start : float
        Session time of the recording's first sample, s.
    loop : bool
        Start the recording again when it ends (the stream never stops; its samples stay
        contiguous in session time).
    """

    def __init__(self, signals: Signals, name: str = "replay", *, start: float = 0.0,
                 loop: bool = False) -> None:
        self.signals = signals
        self.name = name
        self.names = signals.names
        self.start = float(start)
        self.loop = bool(loop)
        self._i = 0
        self._now: Any = None

    def attach(self, stim: Any) -> None:
        """Follow ``stim``'s session clock (the runner calls this)."""
        self._now = stim.now_rel

    @property
    def ended(self) -> bool:
        """True once every sample of a recording that does not loop has been read."""
        return not self.loop and self._i >= self.signals.n_samples

    @property
    def end_time(self) -> float:
        """Session time just after the recording's last sample, s."""
        return self.start + self.signals.n_samples / self.signals.sfreq

    def read(self, t: float) -> Signals | None:
        """Samples whose session time is before ``t`` s and before the device clock."""
        upto = t if self._now is None else min(t, float(self._now()))
        sig = self.signals
        n = sig.n_samples
        i1 = max(self._i, int(math.ceil((upto - self.start) * sig.sfreq - 1e-9)))
        if not self.loop:
            i1 = min(n, i1)
        if i1 <= self._i or n == 0:
            return None
        idx = np.arange(self._i, i1) % n
        out = Signals(sig.data[:, idx], sig.sfreq, sig.names, sig.units,
                      self.start + self._i / sig.sfreq)
        self._i = i1
        return out


class SourceSensor:
    """A live :mod:`opennmes.sensing` stream as a session sensor.

    Wraps a :class:`~opennmes.sensing.PushSource` (a driver thread or callback pushes the
    samples of a real EMG amplifier or IMU) or a :class:`~opennmes.sensing.PullSource` (the
    session polls a driver): each window, the samples that arrived since the last one are
    recorded and handed to the session's drives. The source's ``t0`` must be in session time:
    start the device's stream when the session starts (``t0=0``), or stamp it from
    ``stim.now_rel()``.

    Parameters
    ----------
    source : PushSource or PullSource
        Channels and units announced up front (``names``), so the drives are checked before
        the session.
    name : str
        Stream name in the record.
    """

    def __init__(self, source: Any, name: str) -> None:
        self.source = source
        self.name = name
        self.names = tuple(source.names)

    def read(self, t: float) -> Signals | None:
        """The samples that arrived since the last call (None when there are none)."""
        from opennmes.errors import SignalError
        from opennmes.sensing import PushSource

        try:
            if isinstance(self.source, PushSource):
                sig = self.source.read(timeout=0.0)
            else:
                sig = self.source.read()
        except SignalError:  # a push source with nothing new
            return None
        if sig is None or not sig.n_samples:
            return None
        return sig
