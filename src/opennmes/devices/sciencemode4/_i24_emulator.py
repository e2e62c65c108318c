"""An I24 that speaks the ScienceMode4 dyscom layer over a pseudo-terminal.

Model (sources in :mod:`opennmes.devices.sciencemode4.dyscom` and docs/devices/i24.md):
DlPowerModule switches a module and echoes it; DlInit configures a live measurement (signal
types in channel order, the rate from CONFIG1 or the filter) and enters LIVE_MEASURING_PRE;
DlStart starts the stream (LIVE_MEASURING): one DlSendLiveData frame per sample instant with
every channel's value, signal type and electrode status, its time offset counting samples
from 0; DlStop ends it (the acknowledgement carries the 64-bit time, here the number of
samples sent). DlGet answers battery, operation mode, device id, firmware version and an
empty list of measurements; the file system (file status, by name, info; DlSys; file
transfer) is not emulated: those requests get their acknowledgement with result 11 (invalid
command). The general layer answers device id, versions and battery. Every frame that
arrives intact gets an answer with a result byte (UnknownCommand, result 11, for a command
the I24 does not know).

Values: EMG in V from a recording (:class:`~opennmes.signals.Signals`, its rows taken in turn
for the EMG channels, resampled by nearest sample and looped; played from DlStart, or from
the moment :meth:`I24Emulator.play` is called) or, without one, seeded rest noise (5 uV rms);
bioimpedance a constant in ohm; other signal types read 0.

Faults: :meth:`electrode_off` (status bits on a channel from now), :meth:`drop_frames` and
:meth:`corrupt_frames` (the next live frames are lost or arrive with a bad checksum),
:meth:`go_silent` (the device answers and sends nothing until :meth:`wake`), and the
emulator base's unplug and freeze.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import numpy as np

from opennmes.devices._emulator import PtyEmulator
from opennmes.devices.sciencemode4 import _dyscom as dl
from opennmes.devices.sciencemode4 import _protocol as p
from opennmes.errors import DeviceError, ProtocolError
from opennmes.signals import Signals

__all__ = ["I24Emulator", "ELECTRODE_BITS"]

ELECTRODE_BITS = {"positive": 0b010, "negative": 0b100, "both": 0b110}
"""Live-data status bits of an electrode that is off (DyscomPowerLiveDataStatusFlag 1, 2)."""
_EMG = (int(dl.SignalType.EMG_1), int(dl.SignalType.EMG_2))
_INVALID = int(p.Result.INVALID_CMD)
_MAX_BATCH = 0.05  # s of samples sent per turn at most (a turn late by more keeps up later)


class I24Emulator(PtyEmulator):
    """Emulated I24; see the module docstring. Channels are 0-based, in DlInit order.

    Parameters
    ----------
    signals : Signals, optional
        The recording the EMG channels play from DlStart on.
    bioimpedance : float
        Bioimpedance value when no recording gives one, ohm.
    seed : int
        Seed of the rest noise.
    """

    name = "i24"
    n_channels = dl.MAX_CHANNELS

    def __init__(self, signals: Signals | None = None, *, bioimpedance: float = 500.0,
                 seed: int = 0, device_id: str = "EMU-I24-01", firmware: str = "1.0.0",
                 battery_percent: int = 90) -> None:
        super().__init__()
        self.signals = signals
        self.bioimpedance = float(bioimpedance)
        self.device_id = device_id
        self.firmware = firmware
        self.battery_percent = int(battery_percent)
        self._rng = np.random.default_rng(seed)
        self.mode = dl.OperationMode.IDLE
        self.power: dict[int, int] = {}
        self.config: dl.DlInit | None = None
        self.rate = 0
        self._t_start = 0.0
        self.sent = 0
        """Samples sent since the last DlStart (the next time offset)."""
        self.status = [0] * dl.MAX_CHANNELS
        self._drop = 0
        self._corrupt = 0
        self.dropped = 0
        self.corrupted = 0
        self.silent = False
        self.measurements = 0
        self._k0 = 0

    def _new_decoder(self) -> Any:
        return p.FrameDecoder()

    def _reply(self, msg: Any, pn: int) -> None:
        if not self.silent:
            self.send(dl.encode(msg, pn))

    def play(self, signals: Signals | None) -> None:
        """Play ``signals`` (from its start; None: rest noise) from the sample due now on."""
        with self._lock:
            now = time.monotonic()
            self._tick(now)
            due = self._due(now) if self.mode == dl.OperationMode.LIVE_MEASURING else 0
            self.signals, self._k0 = signals, max(self.sent, due)

    # ------------------------------------------------------------------ faults
    def electrode_off(self, channel: int, which: str = "both") -> None:
        """Electrode(s) of ``channel`` (0-based) come off: its samples say so from now."""
        if which not in ELECTRODE_BITS:
            raise DeviceError(f"electrode {which!r}: one of {sorted(ELECTRODE_BITS)}")
        with self._lock:
            self._tick(time.monotonic())
            self.status[channel] |= ELECTRODE_BITS[which]
            self._note(f"channel {channel}: {which} electrode off")

    def electrode_on(self, channel: int) -> None:
        """The electrodes of ``channel`` are back on the skin."""
        with self._lock:
            self._tick(time.monotonic())
            self.status[channel] = 0

    def electrode_error(self, channel: int) -> None:
        """The emulator base's electrode fault: both electrodes of ``channel`` off."""
        self.electrode_off(channel, "both")

    def drop_frames(self, n: int) -> None:
        """The next ``n`` live frames are lost on the way (their samples never arrive)."""
        with self._lock:
            self._drop += int(n)

    def corrupt_frames(self, n: int) -> None:
        """The next ``n`` live frames arrive with a flipped bit (their checksum fails); ``0``
        ends a corruption still pending."""
        with self._lock:
            self._corrupt = int(n)

    def go_silent(self) -> None:
        """The device stops sending anything (live data and answers) until :meth:`wake`."""
        with self._lock:
            self.silent = True
            self._note("silent")

    def wake(self) -> None:
        """End :meth:`go_silent`; the stream goes on from the current time."""
        with self._lock:
            self.silent = False
            self._skip_until(time.monotonic())

    def emergency_switch(self) -> None:
        """An I24 has no stimulation output: nothing to stop."""

    # ------------------------------------------------------------------ state
    @property
    def output_is_zero(self) -> bool:
        """A measurement device never delivers current."""
        return True

    def _stop_output(self, reason: str) -> None:
        if self.mode == dl.OperationMode.LIVE_MEASURING:
            self._note(f"measurement stopped: {reason}")
        self.mode = dl.OperationMode.IDLE

    # ------------------------------------------------------------------ the stream
    def _value(self, channel: int, kind: int, k: np.ndarray) -> np.ndarray:
        sig = self.signals
        if kind in _EMG:
            if sig is None:
                return self._rng.normal(0.0, 5e-6, len(k))
            emg = [i for i, t in enumerate(self.config.signal_types if self.config else ())
                   if t in _EMG]
            row = emg.index(channel) % sig.data.shape[0]
            idx = ((k - self._k0) * sig.sfreq / self.rate).astype(np.int64) % sig.n_samples
            return np.asarray(sig.data[row, idx], dtype=float)
        if kind == dl.SignalType.BI:
            return np.full(len(k), self.bioimpedance)
        return np.zeros(len(k))

    def _due(self, now: float) -> int:
        return int((now - self._t_start) * self.rate) + 1

    def _tick(self, now: float) -> None:
        if self.mode != dl.OperationMode.LIVE_MEASURING or self.config is None:
            return
        upto = min(self._due(now), self.sent + max(1, int(_MAX_BATCH * self.rate)))
        if upto <= self.sent:
            return
        k = np.arange(self.sent, upto)
        types = self.config.signal_types
        values = [self._value(c, t, k) for c, t in enumerate(types)]
        status = self.status[:len(types)]
        n = len(types)
        head, live = bytes((n,)), struct.Struct(">I" + "fBB" * n)
        out = bytearray()
        for j, kk in enumerate(k):
            if self._drop:
                self._drop -= 1
                self.dropped += 1
                continue
            flat: list[float | int] = []
            for c, t in enumerate(types):
                flat += (float(values[c][j]), t, status[c])
            data = head + live.pack(int(kk), *flat)
            frame = p.encode_frame(int(kk) % 64, int(dl.DlCommand.SEND_LIVE_DATA), data)
            if self._corrupt:
                self._corrupt -= 1
                self.corrupted += 1
                frame = frame[:-2] + bytes((frame[-2] ^ 0x02,)) + frame[-1:]
            out += frame
        self.sent = upto
        if out and not self.silent:
            self.send(bytes(out))

    def _next_deadline(self, now: float) -> float:
        if self.mode != dl.OperationMode.LIVE_MEASURING or not self.rate:
            return now + 0.01
        return max(self._t_start + self.sent / self.rate, now + 0.002)

    def _skip_until(self, now: float) -> None:
        if self.mode == dl.OperationMode.LIVE_MEASURING and self.rate:
            self.sent = max(self.sent, self._due(now) - 1)

    # ------------------------------------------------------------------ frames
    def _on_frame(self, frame: p.Frame, t: float) -> None:
        if self.silent:
            return
        pn = frame.packet_number
        try:
            msg = dl.decode(frame)
        except ProtocolError as exc:
            self._note(f"undecodable command {frame.command}: {exc}")
            self._reply(_ack(frame.command, int(p.Result.PARAMETER_ERROR)), pn)
            return
        reply = self._answer(msg, t)
        self._reply(reply, pn)

    def _answer(self, msg: Any, t: float) -> Any:
        if isinstance(msg, dl.DlPowerModule):
            self.power[msg.module] = msg.power
            if msg.module == dl.PowerModule.MEASUREMENT and not msg.power:
                self._stop_output("measurement module switched off")
            return dl.DlPowerModuleAck(0, msg.module, msg.power)
        if isinstance(msg, dl.DlInit):
            return self._init(msg)
        if isinstance(msg, dl.DlStart):
            if self.mode not in (dl.OperationMode.LIVE_MEASURING_PRE,
                                 dl.OperationMode.LIVE_MEASURING):
                return dl.DlStartAck(int(p.Result.NOT_INITIALIZED))
            if self.mode == dl.OperationMode.LIVE_MEASURING_PRE:
                self.mode = dl.OperationMode.LIVE_MEASURING
                self._t_start, self.sent, self._k0 = t, 0, 0
                self.measurements += 1
            return dl.DlStartAck(0)
        if isinstance(msg, dl.DlStop):
            self._tick(t)
            self._stop_output("DlStop")
            return dl.DlStopAck(0, self.sent)
        if isinstance(msg, dl.DlGet):
            return self._get(msg.get_type)
        if isinstance(msg, p.GetDeviceId):
            return p.GetDeviceIdAck(0, self.device_id[:p.DEVICE_ID_LENGTH])
        if isinstance(msg, p.GetExtendedVersion | p.GetVersionMain):
            a, b, c = (int(x) for x in (self.firmware.split(".") + ["0", "0"])[:3])
            v = (a, b, c)
            cls = p.GetExtendedVersionAck if isinstance(msg, p.GetExtendedVersion) else \
                p.GetVersionMainAck
            return cls(0, v, (4, 0, 0))
        if isinstance(msg, p.GetBatteryStatus):
            return p.GetBatteryStatusAck(0, self.battery_percent, 3900)
        if isinstance(msg, p.Reset):
            self._stop_output("reset")
            self.config = None
            return p.ResetAck(0)
        if isinstance(msg, dl.DlSys):
            return dl.DlSysAck(_INVALID, msg.sys_type, 0, msg.file_name)
        return p.UnknownCommand()  # a P24 command, a file transfer: not an I24 request here

    def _init(self, msg: dl.DlInit) -> dl.DlInitAck:
        if self.mode == dl.OperationMode.LIVE_MEASURING:
            return dl.DlInitAck(int(p.Result.BUSY), msg.registers, "", 0, 4)
        try:
            rate = msg.sample_rate
        except ProtocolError as exc:
            self._note(f"DlInit refused: {exc}")
            return dl.DlInitAck(int(p.Result.PARAMETER_ERROR), msg.registers, "",
                                int(dl.InitState.ERROR_ADS129X_REGISTER), 4)
        if any(s == dl.SignalType.UNUSED for s in msg.signal_types):
            return dl.DlInitAck(int(p.Result.PARAMETER_ERROR), msg.registers, "", 0, 4)
        self.config, self.rate = msg, rate
        self.mode = dl.OperationMode.LIVE_MEASURING_PRE
        self.status = [0] * dl.MAX_CHANNELS
        file_id = f"emu_{self.measurements + 1:04d}"
        return dl.DlInitAck(0, msg.registers, file_id, int(dl.InitState.SUCCESS),
                            dl.rate_code(rate))

    def _get(self, kind: int) -> dl.DlGetAck:
        if kind == dl.GetType.BATTERY:
            return dl.DlGetAck(0, kind, (1, self.battery_percent, 30, -50, 3900))
        if kind == dl.GetType.OPERATION_MODE:
            return dl.DlGetAck(0, kind, int(self.mode))
        if kind == dl.GetType.DEVICE_ID:
            return dl.DlGetAck(0, kind, self.device_id)
        if kind == dl.GetType.FIRMWARE_VERSION:
            return dl.DlGetAck(0, kind, self.firmware)
        if kind == dl.GetType.LIST_OF_MEASUREMENT_META_INFO:
            return dl.DlGetAck(0, kind, 0)
        return dl.DlGetAck(_INVALID, kind)  # the file system is not emulated


_REQUEST_ACK: dict[int, Any] = {
    100: lambda r: dl.DlInitAck(r), 102: lambda r: dl.DlStartAck(r),
    104: lambda r: dl.DlStopAck(r), 109: lambda r: dl.DlGetAck(r, 0, None, bytes(11)),
    111: lambda r: dl.DlPowerModuleAck(r, 0, 0),
    114: lambda r: dl.DlSysAck(r, 0, 0, ""),
}


def _ack(command: int, result: int) -> Any:
    """The acknowledgement of request ``command`` with ``result``; UnknownCommand for a
    command without one."""
    make = _REQUEST_ACK.get(command)
    if make is not None:
        return make(result)
    return p.ack_for(command, result) or p.UnknownCommand()
