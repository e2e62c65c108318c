"""The I24 measurement device as a live session sensor.

:class:`I24Sensor` opens the I24 and starts its measurement when it is made, so that a device
that does not answer, refuses the channels or the rate is an error before any current flows.
Samples that arrive before the session starts are dropped; the first ones after it are
placed at the session time they arrived (their last sample at the time of the read), the rest
by count (the I24 numbers its samples; lost frames are filled and counted, see
:class:`~opennmes.devices.sciencemode4.I24`).

An electrode that comes off (the live status bits) ends the session: the samples up to it
are recorded, then :meth:`I24Sensor.read` raises a :class:`~opennmes.errors.DeviceError`
naming the channel, the electrode and the time; the runner zeroes the output, records a
``device_error`` event with that message and stops the session as ``device_error``. An
EMG-triggered channel would otherwise fire on the artefact of a loose electrode. A device
that goes silent (no live frame for ``silence`` s, 0.5 s unless given), is unplugged or sends
only unreadable frames ends the session the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opennmes.errors import DeviceError, SessionError
from opennmes.signals import Signals

__all__ = ["I24Sensor", "i24_spec"]

_WHICH = {0b010: "positive electrode", 0b100: "negative electrode", 0b110: "both electrodes"}


def i24_spec(spec: str) -> dict[str, Any]:
    """``i24:PORT[,rate=1000][,channels=emg1+bi][,silence=0.5]`` -> the keyword arguments of
    :class:`I24Sensor` (``port``, ``sample_rate``, ``channels``, ``silence``)."""
    text = spec[4:] if spec.lower().startswith("i24:") else spec
    port, *parts = (x.strip() for x in text.split(","))
    if not port or "=" in port:
        raise SessionError(f"I24 sensor {spec!r}: start with the port, e.g. "
                           "i24:/dev/ttyACM0,rate=1000,channels=emg1")
    out: dict[str, Any] = {"port": port}
    for part in filter(None, parts):
        k, sep, v = part.partition("=")
        k, v = k.strip().lower(), v.strip()
        if not sep or not v:
            raise SessionError(f"I24 sensor {spec!r}: {part!r} must be KEY=VALUE (keys: rate, "
                               "channels, silence)")
        if k not in ("rate", "silence", "channels"):
            raise SessionError(f"I24 sensor {spec!r}: unknown key {k!r}; keys: rate, "
                               "channels, silence")
        if k == "channels":
            out["channels"] = tuple(c.strip().lower() for c in v.split("+"))
            continue
        try:
            if k == "rate":
                out["sample_rate"] = int(v)
            else:
                out["silence"] = float(v)
        except ValueError:
            raise SessionError(f"I24 sensor {spec!r}: {k} = {v!r} must be a number") from None
    return out


class I24Sensor:
    """A Hasomed I24 (ScienceMode4 dyscom) as a live session sensor; see the module docstring.

    Parameters
    ----------
    port : str
        The I24's serial port (or an emulator's pty).
    name : str
        Stream name in the record and the ``sensor`` a drive can name. A one-channel
        measurement's channel is called ``name``; several are ``name.1``, ``name.2``, ...
    channels : tuple of str
        Channel kinds in order (``emg1``, ``emg2``, ``bi``).
    sample_rate : int
        Samples/s: 250, 500, 1000, 2000, 4000, 8000, 16000 or 32000.
    silence : float, optional
        Longest gap between the device's live frames, s (default 0.5).
    """

    def __init__(self, port: str, name: str = "emg", *, channels: tuple[str, ...] = ("emg1",),
                 sample_rate: int = 1000, silence: float | None = None,
                 timeout: float = 0.5) -> None:
        from opennmes.devices.sciencemode4 import I24

        if not name.strip():
            raise SessionError("an I24 sensor needs a name")
        self.name = name
        self.port = port
        self.sfreq = float(sample_rate)
        self.device = I24(port, timeout=timeout,
                          **({} if silence is None else {"silence": silence})).open()
        try:
            self.device.start(tuple(channels), int(sample_rate))
        except BaseException:
            self.device.close()
            raise
        n = len(channels)
        self.names = (name,) if n == 1 else tuple(f"{name}.{i + 1}" for i in range(n))
        self.kinds = tuple(channels)
        self.units = self.device.units()
        self.stream = f"I24 {self.device.device_id} on {port} ({sample_rate} samples/s)"
        self.missing = 0
        """Samples of the session that never arrived (filled with the previous value)."""
        self.contact_lost: tuple[float, str, str] | None = None
        """(session time s, channel, electrode) of the electrode that came off, if one did."""
        self._stim: Any = None
        self._next: float | None = None
        self._pending: Signals | None = None

    def attach(self, stim: Any) -> None:
        """Follow ``stim``'s session clock (the runner calls this); a virtual clock is
        refused (the I24 measures in real time)."""
        if stim.clock.virtual:
            raise SessionError(f"I24 sensor {self.name!r} ({self.stream}) measures in real "
                               "time; a session on a virtual clock cannot follow it")
        self._stim = stim

    def read(self, t: float) -> Signals | None:
        """The samples that arrived since the last call, in session time (None when none);
        DeviceError when an electrode came off or the device failed (see the module
        docstring)."""
        if self._pending is not None:  # the samples before a lost contact, once reported
            out, self._pending = self._pending, None
            return out
        if self.contact_lost is not None:
            return None
        block = self.device.read()
        stim = self._stim
        if block is None or stim is None or stim.t0 is None:
            return None  # nothing new, or samples from before the session
        data, status = block.values, block.status
        if self._next is None:  # the first samples of the session: placed at their arrival
            n = block.n_samples
            times = float(stim.now_rel()) - (n - 1 - np.arange(n)) / self.sfreq
            keep = times >= 0.0
            if not keep.any():
                return None
            data, status = data[:, keep], status[:, keep]
            self._next = float(times[keep][0])
            self.missing += int(block.missing[keep].sum())
        else:
            self.missing += int(block.missing.sum())
        t0 = self._next
        off = (status & 0b110) != 0
        if off.any():
            j = int(off.any(axis=0).argmax())
            c = int(off[:, j].argmax())
            at = t0 + j / self.sfreq
            which = _WHICH.get(int(status[c, j]) & 0b110, "electrode")
            self.contact_lost = (at, self.names[c], which)
            if j:
                self._pending = Signals(np.ascontiguousarray(data[:, :j]), self.sfreq,
                                        self.names, self.units, t0)
            self._next = at
            raise DeviceError(f"I24 sensor {self.name!r}: {which} off on channel "
                              f"{self.names[c]!r} ({self.kinds[c]}) at {at:.3f} s: stimulation "
                              "stopped; check the electrodes before the next session")
        self._next = t0 + data.shape[1] / self.sfreq
        return Signals(np.ascontiguousarray(data), self.sfreq, self.names, self.units, t0)

    def close(self) -> None:
        """Stop the measurement and close the port (idempotent)."""
        self.device.close()
