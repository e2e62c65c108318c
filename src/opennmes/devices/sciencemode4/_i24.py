"""I24 driver: a live EMG/bioimpedance measurement over the ScienceMode4 dyscom layer.

Opening asks the device who it is (general GetDeviceId, dyscom DlGet firmware version) and
stops a measurement left running (DlGet operation mode, then DlStop; science_mode_4
``DeviceI24.initialize``). :meth:`I24.start` switches the measurement module on
(DlPowerModule), configures the channels and rate (DlInit: the signal type of each channel,
CONFIG1 for the rate) and starts the stream (DlStart); every acknowledgement's result byte is
checked (non-zero: a :class:`~opennmes.errors.DeviceError` naming the command and result).

The reader thread decodes each DlSendLiveData frame; :meth:`I24.read` returns the samples that
arrived since the last call as an :class:`I24Block`: values per channel, the electrode status
of each sample, and the sample times. Samples are placed by their time offset (a sample count
from DlStart): frames lost or corrupted on the way (a :class:`~opennmes.errors.ProtocolError`
from the decoder, counted in :attr:`I24.protocol_errors`) leave a gap that is filled by
holding the last value and marked in ``I24Block.missing``. A stream that only gives
undecodable frames (:data:`MAX_BAD_FRAMES` in a row) and a device that sends nothing for
``silence`` s while measuring are errors of :meth:`I24.read`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from opennmes.devices._serial import SerialLink, Waiter
from opennmes.devices.sciencemode4 import _dyscom as dl
from opennmes.devices.sciencemode4 import _protocol as p
from opennmes.errors import DeviceError, DeviceTimeoutError, ProtocolError

__all__ = ["I24", "I24Block", "CHANNEL_KINDS", "MAX_BAD_FRAMES", "SILENCE"]

log = logging.getLogger(__name__)

CHANNEL_KINDS = {"emg1": dl.SignalType.EMG_1, "emg2": dl.SignalType.EMG_2,
                 "bi": dl.SignalType.BI}
"""Channel kinds a measurement can ask for, in the I24's signal types."""
UNITS = {int(dl.SignalType.EMG_1): "V", int(dl.SignalType.EMG_2): "V",
         int(dl.SignalType.BI): "ohm"}
MAX_BAD_FRAMES = 50
"""Undecodable frames in a row after which the stream counts as unreadable."""
SILENCE = 0.5
"""s without a live frame while measuring after which the device counts as silent."""
_MAX_FILL = 1.0  # s: a longer jump of the time offset is not filled but refused


@dataclass(frozen=True)
class I24Block:
    """Samples of a live measurement: ``values`` (channels x samples, V or ohm), ``status``
    (electrode bits per sample: 2 positive, 4 negative electrode off), ``missing`` (samples
    that never arrived, filled with the previous value), the first sample's index since
    DlStart and its arrival time (``time.monotonic()`` s)."""

    first: int
    values: np.ndarray
    status: np.ndarray
    missing: np.ndarray
    sfreq: float
    arrived: float

    @property
    def n_samples(self) -> int:
        return int(self.values.shape[1])

    @property
    def t(self) -> np.ndarray:
        """Sample times since DlStart, s."""
        return (self.first + np.arange(self.n_samples)) / self.sfreq

    def contact_lost(self) -> np.ndarray:
        """Per channel, the index of the first sample with an electrode off (-1: none)."""
        off = (self.status & 0b110) != 0
        return np.where(off.any(axis=1), off.argmax(axis=1), -1)


class I24:
    """A Hasomed I24 on a serial port (USB CDC); see the module docstring.

    Parameters
    ----------
    port : str
        Serial port (``/dev/ttyACM0``, an emulator's pty).
    timeout : float
        Longest wait for an acknowledgement, s.
    silence : float
        Longest gap between live frames while measuring, s.
    """

    serial_settings: ClassVar[dict[str, Any]] = dict(baudrate=115200, bytesize=8, parity="N",
                                                     stopbits=1)

    def __init__(self, port: str, *, timeout: float = 0.5, silence: float = SILENCE) -> None:
        self.port = port
        self.timeout = float(timeout)
        self.silence = float(silence)
        self.device_id = ""
        self.firmware = ""
        self.signal_types: tuple[int, ...] = ()
        self.sample_rate = 0
        self.measuring = False
        self.protocol_errors = 0
        self.last_protocol_error: ProtocolError | None = None
        self.missing = 0
        """Samples that never arrived (dropped or corrupted frames), in the whole stream."""
        self._bad_run = 0
        self._link: SerialLink | None = None
        self._lock = threading.Lock()
        self._waiters: dict[tuple[int, int], Waiter] = {}
        self._pn = 0
        self._frames: deque[tuple[float, int, tuple[float, ...], tuple[int, ...]]] = deque()
        self._next = 0
        self._last: tuple[tuple[float, ...], tuple[int, ...]] | None = None
        self._last_frame = 0.0
        self._lost: str | None = None
        self._accept = False

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> Self:
        """Open the port, identify the device, stop a measurement left running."""
        link = SerialLink(self.port, self.serial_settings, p.FrameDecoder(), self._on_frame,
                          self._on_protocol_error, self._on_disconnect)
        link.open()
        self._link = link
        try:
            try:
                ident = self.request(p.GetDeviceId(), int(p.Command.GET_DEVICE_ID_ACK),
                                     "GetDeviceId")
            except DeviceError as exc:
                raise DeviceError(f"{self.port}: no answer from a ScienceMode4 device ({exc}); "
                                  "is it an I24, switched on and not held by another "
                                  "program?") from exc
            self.device_id = ident.device_id
            self.firmware = str(self._get(dl.GetType.FIRMWARE_VERSION).value)
            mode = self._get(dl.GetType.OPERATION_MODE).value
            if mode not in (dl.OperationMode.IDLE, dl.OperationMode.UNDEFINED):
                self.request(dl.DlStop(), int(dl.DlCommand.STOP_ACK), "DlStop (left running)")
        except BaseException:
            self.close()
            raise
        log.info("%s: I24 %s, firmware %s", self.port, self.device_id, self.firmware)
        return self

    def __enter__(self) -> Self:
        return self.open() if self._link is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop a running measurement, switch the measurement module off, close the port
        (idempotent; a silent or lost device is closed all the same)."""
        link = self._link
        if link is None:
            return
        try:
            if link.alive:
                if self.measuring:
                    self.stop()
                self.request(dl.DlPowerModule(dl.PowerModule.MEASUREMENT, 0),
                             int(dl.DlCommand.POWER_MODULE_ACK), "DlPowerModule (off)")
        except DeviceError as exc:
            log.warning("%s: closing the I24: %s", self.port, exc)
        finally:
            self._link = None
            self.measuring = self._accept = False
            link.close()

    # ------------------------------------------------------------------ requests
    def request(self, msg: Any, ack: int, what: str) -> Any:
        """Send ``msg`` and wait for its acknowledgement (command ``ack``, the same packet
        number); a non-zero result is a DeviceError."""
        link = self._link
        if link is None or not link.alive:
            raise DeviceError(f"{self.port}: the I24 is {self._lost or 'not open'}")
        with self._lock:
            pn = self._pn
            self._pn = (pn + 1) % 64
            w = Waiter()
            self._waiters[(ack, pn)] = w
            self._waiters[(int(p.Command.UNKNOWN_CMD), pn)] = w
        try:
            link.write(dl.encode(msg, pn))
            if not w.wait(self.timeout):
                raise DeviceTimeoutError(f"{self.port}: no acknowledgement of {what} from the "
                                         f"I24 within {self.timeout * 1e3:.0f} ms")
        finally:
            with self._lock:
                self._waiters.pop((ack, pn), None)
                self._waiters.pop((int(p.Command.UNKNOWN_CMD), pn), None)
        got = w.message
        r = int(getattr(got, "result", 0))
        if isinstance(got, p.UnknownCommand) or r:
            kind = "UnknownCommand: " if isinstance(got, p.UnknownCommand) else ""
            raise DeviceError(f"{self.port}: the I24 refused {what}: {kind}result {r} "
                              f"({p.RESULT_TEXT.get(r, 'unknown result code')})")
        return got

    def _get(self, kind: int) -> dl.DlGetAck:
        ack = self.request(dl.DlGet(kind), int(dl.DlCommand.GET_ACK),
                           f"DlGet {dl.GetType(kind).name.lower()}")
        assert isinstance(ack, dl.DlGetAck)
        if ack.get_type != kind:
            raise DeviceError(f"{self.port}: DlGet {kind} answered with get type {ack.get_type}")
        return ack

    def battery(self) -> int:
        """Battery level, % (DlGet battery)."""
        return int(self._get(dl.GetType.BATTERY).value[1])  # type: ignore[index]

    # ------------------------------------------------------------------ measuring
    def start(self, channels: tuple[str, ...] = ("emg1",), sample_rate: int = 1000) -> None:
        """Measure ``channels`` (kinds of :data:`CHANNEL_KINDS`, in order) at ``sample_rate``
        samples/s (250 to 32 000, a rate of the I24's output rate codes)."""
        bad = [c for c in channels if c not in CHANNEL_KINDS]
        if not channels or bad or len(channels) > dl.MAX_CHANNELS:
            raise DeviceError(f"I24 channels {list(channels)}: 1 to {dl.MAX_CHANNELS} of "
                              f"{sorted(CHANNEL_KINDS)}")
        try:
            init = dl.DlInit.live(tuple(int(CHANNEL_KINDS[c]) for c in channels), sample_rate)
        except ProtocolError as exc:
            raise DeviceError(f"I24 sample rate: {exc}") from None
        if self.measuring:
            self.stop()
        self.request(dl.DlPowerModule(dl.PowerModule.MEASUREMENT, 1),
                     int(dl.DlCommand.POWER_MODULE_ACK), "DlPowerModule (measurement on)")
        ack = self.request(init, int(dl.DlCommand.INIT_ACK), "DlInit")
        if ack.init_state not in (dl.InitState.UNUSED, dl.InitState.SUCCESS):
            raise DeviceError(f"{self.port}: DlInit failed with init state {ack.init_state}")
        if ack.sample_rate != sample_rate:
            raise DeviceError(f"{self.port}: asked for {sample_rate} samples/s, the I24 set "
                              f"{ack.sample_rate}")
        self.signal_types, self.sample_rate = init.signal_types, sample_rate
        with self._lock:
            self._frames.clear()
            self._next, self._last, self._bad_run = 0, None, 0
            self._accept = True  # frames may follow the acknowledgement at once
        self.request(dl.DlStart(), int(dl.DlCommand.START_ACK), "DlStart")
        self._last_frame = time.monotonic()
        self.measuring = True

    def stop(self) -> None:
        """End the measurement (DlStop); the samples sent before its acknowledgement are
        still read."""
        self.measuring = False
        try:
            self.request(dl.DlStop(), int(dl.DlCommand.STOP_ACK), "DlStop")
        finally:
            self._accept = False

    def units(self) -> tuple[str, ...]:
        """Unit of each measured channel."""
        return tuple(UNITS.get(t, "") for t in self.signal_types)

    def read(self) -> I24Block | None:
        """Samples that arrived since the last call (None: none yet). Raises DeviceError when
        the link is lost, the stream is unreadable or jumps, DeviceTimeoutError when the
        device has been silent for ``silence`` s."""
        with self._lock:
            frames = list(self._frames)
            self._frames.clear()
            bad_run = self._bad_run
        if self._lost is not None:
            raise DeviceError(f"{self.port}: the I24 is {self._lost}")
        if bad_run >= MAX_BAD_FRAMES:
            raise DeviceError(f"{self.port}: the I24's stream is unreadable: {bad_run} "
                              f"undecodable frames in a row (last: {self.last_protocol_error})"
                              ) from self.last_protocol_error
        now = time.monotonic()
        if not frames:
            if self.measuring and now - self._last_frame > self.silence:
                raise DeviceTimeoutError(
                    f"{self.port}: the I24 sent no samples for {now - self._last_frame:.3f} s "
                    f"(limit {self.silence:g} s) while measuring")
            return None
        return self._block(frames)

    def _block(self, frames: list[tuple[float, int, tuple[float, ...], tuple[int, ...]]]
               ) -> I24Block | None:
        n_ch = len(self.signal_types)
        vals: list[tuple[float, ...]] = []
        stat: list[tuple[int, ...]] = []
        miss: list[bool] = []
        first = self._next
        for _, k, v, s in frames:
            if k < self._next:
                continue  # a repeat (or wrap-around): its place is taken
            gap = k - self._next
            if gap > _MAX_FILL * self.sample_rate:
                raise DeviceError(f"{self.port}: the I24's time offset jumped from "
                                  f"{self._next} to {k} samples")
            if gap:
                hold = self._last or ((0.0,) * n_ch, (0,) * n_ch)
                vals += [hold[0]] * gap
                stat += [hold[1]] * gap
                miss += [True] * gap
                self.missing += gap
            vals.append(v)
            stat.append(s)
            miss.append(False)
            self._last = (v, s)
            self._next = k + 1
        if not vals:
            return None
        return I24Block(first, np.array(vals, dtype=float).T.reshape(n_ch, -1),
                        np.array(stat, dtype=np.uint8).T.reshape(n_ch, -1),
                        np.array(miss, dtype=bool), float(self.sample_rate), frames[0][0])

    # ------------------------------------------------------------------ reader thread
    def _on_frame(self, frame: p.Frame, t: float) -> None:
        try:
            if frame.command == dl.DlCommand.SEND_LIVE_DATA:  # the fast path: no objects
                k, f = dl.live_fields(frame.data)
                self._on_live(t, k, f)
                return
            msg = dl.decode(frame)
        except ProtocolError as exc:
            self._on_protocol_error(exc)
            return
        with self._lock:
            self._bad_run = 0
            w = self._waiters.get((frame.command, frame.packet_number))
        if w is not None:
            w.message, w.t = msg, t
            w.event.set()
        else:
            log.debug("%s: unsolicited %s", self.port, msg)

    def _on_live(self, t: float, k: int, f: tuple[float | int, ...]) -> None:
        with self._lock:
            self._bad_run = 0
            self._last_frame = t
            if len(f) == 3 * len(self.signal_types) and self._accept:
                self._frames.append((t, k, tuple(float(x) for x in f[0::3]),
                                     tuple(int(x) for x in f[2::3])))

    def _on_protocol_error(self, exc: ProtocolError) -> None:
        with self._lock:
            self.protocol_errors += 1
            self._bad_run += 1
            self.last_protocol_error = exc
        log.debug("%s: bad frame from the I24: %s", self.port, exc)

    def _on_disconnect(self, reason: str) -> None:
        self._lost = f"disconnected ({reason})"
        log.error("%s: I24 %s", self.port, self._lost)
