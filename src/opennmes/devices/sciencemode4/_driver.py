"""P24 driver: ScienceMode4 mid level over a serial port (USB CDC).

Start: MlInit (stop all channels on an error). The first MlUpdate enables every configured
channel with its own period and starts the period clocks; later updates change each channel's
point pattern (amplitude, widths, gap, doublets, onset inside the period) and keep the phase,
because the period is unchanged. A keep-alive thread sends MlGetCurrentData every 0.25 s (the
device stops after 1.5 s without it) and turns channel errors into events. Stop: MlStop.
Single pulses use the low level (LlInit, LlChannelConfig) while no schedule runs.

Opening runs the start-up of the published clients (science_mode_4 ``DeviceP24.initialize``):
GetStimStatus, a stop of whatever level is still active, GetDeviceId and GetExtendedVersion
(see :attr:`P24.identity`). Every acknowledgement's first byte is its result (Smpt_Result,
``smpt_extract_ack`` of the C library): a non-zero result fails the request with a DeviceError
that names the command and the result; an UnknownCommand or GeneralError that echoes a
request's packet number ends that request at once instead of after its timeout.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from opennmes.capabilities import DEVICE_CAPABILITIES, DeviceCapabilities
from opennmes.devices._events import DeviceFault
from opennmes.devices._hasomed import HasomedStimulator, refuse
from opennmes.devices._plan import GridChannel, Pattern, Pulse
from opennmes.devices.sciencemode4 import _protocol as p
from opennmes.devices.sciencemode4._shapes import pattern_to_points
from opennmes.errors import DeviceError, ProgramError, ProtocolError
from opennmes.schedule import Waveform

__all__ = ["P24", "P24Identity"]

log = logging.getLogger(__name__)

_ACKS = {int(cls.COMMAND) for cls in p.REQUEST_ACK.values()}
_REJECTS = (int(p.Command.UNKNOWN_CMD), int(p.Command.GENERAL_ERROR))
_STATE_KIND = {1: "electrode", 2: "timeout", 3: "other"}
_RESULT_KIND = {1: "transfer", 2: "parameter", 7: "wrong_mode", 10: "electrode", 21: "busy",
                11: "protocol"}


@dataclass(frozen=True)
class P24Identity:
    """What a P24 says about itself at start-up (general layer)."""

    device_id: str
    firmware: str
    """Firmware version ``major.minor.revision``."""
    sciencemode: str
    """ScienceMode protocol version ``major.minor.revision``."""


def _version(v: tuple[int, int, int]) -> str:
    return ".".join(str(x) for x in v)


class P24(HasomedStimulator):
    """Hasomed P24 (ScienceMode4 mid level). Open with ``open_stimulator("p24:///dev/ttyACM0")``.

    Parameters
    ----------
    url : str
    port : str
    """

    kind = "p24"
    capabilities: ClassVar[DeviceCapabilities] = DEVICE_CAPABILITIES["p24"]
    serial_settings: ClassVar[dict[str, Any]] = dict(baudrate=115200, bytesize=8, parity="N",
                                                     stopbits=1)
    packet_modulo = 64
    keepalive_interval = 0.25

    def __init__(self, url: str, port: str, **kwargs: Any) -> None:
        super().__init__(url, port, **kwargs)
        self._ml = False
        self._ll = False
        self._reported: set[tuple[int, int]] = set()
        self.last_status: p.MlGetCurrentDataAck | None = None
        self.identity: P24Identity | None = None
        """Device id and versions, read when the port opens."""

    # ------------------------------------------------------------------ codec
    def _new_decoder(self) -> Any:
        return p.FrameDecoder()

    def _encode(self, message: Any, packet_number: int) -> bytes:
        return p.encode(message, packet_number)

    def _decode(self, frame: Any) -> Any:
        return p.decode(frame)

    def _ack_key(self, message: Any, frame: Any) -> tuple[int, int] | None:
        if frame.command in _REJECTS:
            # the device could not process the request with this packet number: end its wait
            return next((k for k in list(self._waiters) if k[1] == frame.packet_number), None)
        if frame.command in _ACKS:
            return frame.command, frame.packet_number
        return None

    def _result_of(self, ack: Any) -> tuple[bool, bool, str]:
        r = int(ack.result)
        text = f"result {r} ({p.RESULT_TEXT.get(r, 'unknown result code')})"
        if isinstance(ack, p.UnknownCommand):
            return False, False, f"UnknownCommand, the device cannot process it: {text}"
        if isinstance(ack, p.GeneralError):
            return False, r == int(p.Result.TRANSFER_ERROR), f"GeneralError: {text}"
        return r == 0, r == int(p.Result.TRANSFER_ERROR), text

    def _unsolicited(self, message: Any, frame: Any, t: float) -> None:
        if isinstance(message, p.UnknownCommand | p.GeneralError):
            r = int(message.result)
            what = "did not know a command" if isinstance(message, p.UnknownCommand) else \
                "reported a general error"
            self._post(DeviceFault(self.clock.now(), self.kind, self._rel(),
                                   kind=_RESULT_KIND.get(r, "protocol"), code=r, fatal=False,
                                   message=f"the device {what} (packet {frame.packet_number}): "
                                           f"result {r} ({p.RESULT_TEXT.get(r, 'unknown')})"))

    def _on_poll_answer(self, msg: Any, sent: float, t: float) -> None:
        r = int(msg.result)
        if r == int(p.Result.TRANSFER_ERROR):
            # the query arrived damaged: no status was had (a lost query, asked again at the
            # next poll), not an answer
            self.polls_answered -= 1
        elif r and self._streaming():
            # any other refusal: the device is not stimulating as the host believes
            self._post(DeviceFault(self.clock.now(), self.kind, self._rel(),
                                   kind=_RESULT_KIND.get(r, "other"), code=r,
                                   message=f"the P24 refused the status query: result {r} "
                                           f"({p.RESULT_TEXT.get(r, 'unknown')}); output "
                                           "stopped"))
        super()._on_poll_answer(msg, sent, t)

    def _handshake(self) -> None:
        # no greeting on ScienceMode4; the published clients' start-up: the stimulation status
        # (proves the device answers), stop a level left active, then device id and versions
        try:
            st = self.request(p.GetStimStatus(), int(p.Command.GET_STIM_STATUS_ACK),
                              "GetStimStatus")
        except DeviceError as exc:
            raise DeviceError(f"{self.url}: no answer from a ScienceMode4 device ({exc}); is it "
                              "a P24, switched on and not held by another program?") from exc
        if st.stim_status == p.StimStatus.LL_INITIALIZED:
            self.request(p.LlStop(), int(p.Command.LL_STOP_ACK), "LlStop (left active)")
        elif st.stim_status in (p.StimStatus.ML_INITIALIZED, p.StimStatus.ML_RUNNING):
            self.request(p.MlStop(), int(p.Command.ML_STOP_ACK), "MlStop (left active)")
        ident = self.request(p.GetDeviceId(), int(p.Command.GET_DEVICE_ID_ACK), "GetDeviceId")
        ver = self.request(p.GetExtendedVersion(), int(p.Command.GET_EXTENDED_VERSION_ACK),
                           "GetExtendedVersion")
        self.identity = P24Identity(ident.device_id, _version(ver.firmware),
                                    _version(ver.sciencemode))
        log.info("%s: P24 %s, firmware %s, ScienceMode %s", self.port, ident.device_id,
                 self.identity.firmware, self.identity.sciencemode)

    def battery(self) -> tuple[int, float]:
        """Battery level [%] and voltage [V] (GetBatteryStatus)."""
        ack = self.request(p.GetBatteryStatus(), int(p.Command.GET_BATTERY_STATUS_ACK),
                           "GetBatteryStatus")
        return int(ack.level_percent), ack.voltage_mv / 1000.0

    def stim_status(self) -> tuple[str, int]:
        """Stimulation status (``uninitialized``, ``ll_initialized``, ``ml_initialized``,
        ``ml_running``) and the high-voltage level code (GetStimStatus)."""
        ack = self.request(p.GetStimStatus(), int(p.Command.GET_STIM_STATUS_ACK),
                           "GetStimStatus")
        try:
            name = p.StimStatus(ack.stim_status).name.lower()
        except ValueError:
            name = f"unknown ({ack.stim_status})"
        return name, int(ack.high_voltage)

    def _keepalive(self) -> None:
        # the mid level needs MlGetCurrentData at least every 1.5 s, also before the first
        # update and after a fault; while streaming the base queries much more often
        if self._ml and not self._streaming():
            self._try_poll(time.monotonic(), self.keepalive_interval)

    def _status_query(self) -> tuple[Any, int]:
        return p.MlGetCurrentData(4), int(p.Command.ML_GET_CURRENT_DATA_ACK)

    def _on_status(self, ack: Any) -> bool:
        self.last_status = ack
        for i, s in enumerate(ack.states):
            if s:
                name = next((g.name for g in self._grid if g.device_channel == i), f"ch{i + 1}")
                if (i, s) not in self._reported:
                    self._reported.add((i, s))
                    self._post(DeviceFault(self.clock.now(), self.kind, self._rel(),
                                           kind=_STATE_KIND.get(s, "other"), code=s,
                                           channel=name,
                                           message=f"channel {name!r}: "
                                                   f"{p.CHANNEL_STATE_TEXT.get(s, s)}"))
                return False
        running = any(ack.running)
        if not running and self._streaming():
            self._post(DeviceFault(self.clock.now(), self.kind, self._rel(),
                                   kind="device_stopped",
                                   message="the P24 stopped stimulating by itself (emergency "
                                           "stop, keep-alive timeout or power)"))
        return running

    # ------------------------------------------------------------------ program mapping
    def _configure(self, program: Any, names: tuple[str, ...], cmap: dict[str, int]) -> None:
        grid = []
        for c in program.channels:
            if c.waveform == "sine":
                raise ProgramError(f"channel {c.name!r}: sine cycles are not rectangular; the "
                                   "P24 plays rectangular points only (use sim://)")
            kind = c.train.kind
            if kind in ("variable", "burst") or (kind == "modulated" and any(
                    m.parameter == "frequency" for m in c.train.modulation or [])):
                raise ProgramError(
                    f"channel {c.name!r}: a {kind!r} train changes the interval between pulses;"
                    " a P24 mid-level channel repeats one pattern per fixed period (changing "
                    "the period restarts the channel). Use a constant or doublet train, or "
                    "sim://")
            per = 1.0 / c.frequency
            try:
                p.period_code(per)
            except ProtocolError:
                ms = per * 1e3
                lo, hi = (x * 1e3 for x in self.capabilities.nearest_periods(per))
                assert self.capabilities.period_grid is not None
                step = self.capabilities.period_grid[1] * 1e3
                raise ProgramError(
                    f"channel {c.name!r}: {c.frequency:.6g} Hz needs a period of {ms:.6g} ms; "
                    f"P24 periods are multiples of {step:g} ms (ScienceMode4 mid level). "
                    f"Nearest: {1e3 / hi:.6g} Hz ({hi:g} ms) or {1e3 / lo:.6g} Hz ({lo:g} ms)"
                ) from None
            grid.append(GridChannel(c.name, cmap[c.name], per))
        self._grid = grid

    def _validate(self, channel: GridChannel, t_k: float, pattern: Pattern) -> None:
        try:
            pts = pattern_to_points(pattern)
        except ProgramError as exc:
            raise refuse(channel.name, t_k, str(exc), "change the program or use sim://") \
                from None
        dur = sum(q.duration_us for q in pts) * 1e-6
        if dur >= channel.period:
            raise refuse(channel.name, t_k, f"the pattern lasts {dur * 1e3:.4g} ms",
                         f"it must end within the period of {channel.period * 1e3:.4g} ms")

    # ------------------------------------------------------------------ wire
    def _wire_arm(self) -> None:
        if self._ll:
            self.request(p.LlStop(), int(p.Command.LL_STOP_ACK), "LlStop")
            self._ll = False
        self.request(p.MlInit(True), int(p.Command.ML_INIT_ACK), "MlInit")
        self._ml = True
        self._reported.clear()
        self._last_poll = time.monotonic()

    def _wire_update(self, patterns: tuple[Pattern, ...], *, first: bool) -> None:
        chans = []
        for g, pat in zip(self._grid, patterns, strict=True):
            code, acc = p.period_code(g.period)
            chans.append((g.device_channel,
                          p.MlChannelConfig(0, code, acc, pattern_to_points(pat))))
        self.request(p.MlUpdate(tuple(chans)), int(p.Command.ML_UPDATE_ACK),
                     "MlUpdate (start)" if first else "MlUpdate")

    def _wire_stop(self) -> None:
        if self._ml:
            self._ml = False
            self.request(p.MlStop(), int(p.Command.ML_STOP_ACK), "MlStop")

    def _single_pulse(self, device_channel: int, amplitude: float, phase_width: float) -> None:
        pts = pattern_to_points((Pulse(0.0, amplitude, phase_width, 0.0, amplitude,
                                       phase_width, int(Waveform.SYMMETRIC_BIPHASIC)),))
        if self._ml:
            self._wire_stop()
        if not self._ll:
            self.request(p.LlInit(0, 0), int(p.Command.LL_INIT_ACK), "LlInit")
            self._ll = True
        self.request(p.LlChannelConfig(True, device_channel % 4, device_channel // 4, pts),
                     int(p.Command.LL_CHANNEL_CONFIG_ACK), "LlChannelConfig")

    def _close(self) -> None:
        if self._ll and self._link is not None and self._link.alive:
            try:
                self.request(p.LlStop(), int(p.Command.LL_STOP_ACK), "LlStop")
            except DeviceError:
                pass
        super()._close()
