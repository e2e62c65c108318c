"""Signal sources a session records and watches: the virtual patient, or any live sensor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.physiology import PatientStream
    from opennmes.stim import PulseSchedule

__all__ = ["Sensor", "PatientSensor", "DeviceSignals"]


@runtime_checkable
class Sensor(Protocol):
    """A live signal source.

    ``read(t)`` is called by the control loop once per chunk with the session time ``t`` (s)
    and returns the samples that arrived since the last call (``t0`` in session time), or
    None. A sensor whose samples lag the session time by more than the runner's
    ``sensor_timeout`` is dead: the watchdog stops the session.
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
        import numpy as np

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
        import numpy as np

        first = parts[0]
        return Signals(np.hstack([p.data for p in parts]), first.sfreq, first.names, first.units,
                       first.t0)
