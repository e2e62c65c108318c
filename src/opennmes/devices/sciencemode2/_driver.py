"""RehaStim 2 driver: ScienceMode2 channel-list mode over a serial port.

Open: wait for the device's Init (sent every 500 ms), answer InitAck, then keep the 1200 ms
watchdog fed (a Watchdog packet whenever 0.5 s pass without a command). While stimulating, the
host asks GetStimulationMode at least every 0.1 s: the answers confirm the delivered pulses
and feed the watchdog. Start: InitChannelListMode
with one main interval t1 for every channel (low-frequency channels at t1 x (factor + 1)), then
StartChannelListMode whose first call starts the device's period clock; later calls update
amplitude, pulse width and single/doublet/triplet mode per channel. Stop: StopChannelListMode.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, ClassVar

from opennmes.capabilities import DEVICE_CAPABILITIES, DeviceCapabilities
from opennmes.devices._events import DeviceFault
from opennmes.devices._hasomed import HasomedStimulator, refuse
from opennmes.devices._plan import TOL, GridChannel, Pattern
from opennmes.devices.sciencemode2 import _protocol as p
from opennmes.devices.sciencemode2._emulator import GAP, SLOT
from opennmes.errors import DeviceError, ProgramError
from opennmes.schedule import Waveform, exact_steps, exact_us, to_us

__all__ = ["RehaStim2"]

log = logging.getLogger(__name__)

_ACKS = {int(c) for c in (p.Command.INIT_CHANNEL_LIST_MODE_ACK,
                          p.Command.START_CHANNEL_LIST_MODE_ACK,
                          p.Command.STOP_CHANNEL_LIST_MODE_ACK, p.Command.SINGLE_PULSE_ACK,
                          p.Command.GET_STIMULATION_MODE_ACK)}
_ERROR_KIND = {-1: "emergency_switch", -2: "electrode", -3: "module"}
_ERROR_TEXT = {-1: "emergency switch activated or stimulator not connected",
               -2: "electrode error (an electrode is off or its resistance is out of range)",
               -3: "stimulation module error"}
_CAPS = DEVICE_CAPABILITIES["rehastim2"]
assert _CAPS.frequency_range is not None
T_MIN = 1.0 / _CAPS.frequency_range[1]
"""s, firmware minimum of t1 and t2, 8 ms (PDF, InitChannelListMode)."""


def _nearest_t1(period: float) -> str:
    lo, hi = (x * 1e3 for x in _CAPS.nearest_periods(period))
    return f"{1e3 / hi:.4g} Hz ({hi:g} ms) or {1e3 / lo:.4g} Hz ({lo:g} ms)"


class RehaStim2(HasomedStimulator):
    """Hasomed RehaStim 2 (ScienceMode2). Open with ``open_stimulator("rehastim2:///dev/ttyUSB0")``.

    Parameters
    ----------
    url : str
    port : str
        Serial port path.
    handshake_timeout : float
        Seconds to wait for the device's Init (it repeats every 0.5 s).
    """

    kind = "rehastim2"
    capabilities: ClassVar[DeviceCapabilities] = _CAPS
    serial_settings: ClassVar[dict[str, Any]] = dict(baudrate=460800, bytesize=8, parity="E",
                                                     stopbits=1, rtscts=False)
    packet_modulo = 256
    keepalive_interval = 0.5

    def __init__(self, url: str, port: str, *, handshake_timeout: float = 1.5,
                 **kwargs: Any) -> None:
        super().__init__(url, port, **kwargs)
        self.handshake_timeout = handshake_timeout
        self._init_seen = threading.Event()
        self._init_pn = 0
        self._init_version = 0
        self._connected = False
        self._cfg: p.InitChannelListMode | None = None
        self._active: list[int] = []
        self._t2 = 0.0

    # ------------------------------------------------------------------ codec
    def _new_decoder(self) -> Any:
        return p.FrameDecoder()

    def _encode(self, message: Any, packet_number: int) -> bytes:
        return p.encode(message, packet_number)

    def _decode(self, frame: Any) -> Any:
        return p.decode(frame)

    def _ack_key(self, message: Any, frame: Any) -> tuple[int, int] | None:
        if frame.command in _ACKS:
            return frame.command, frame.packet_number
        return None

    def _result_of(self, ack: Any) -> tuple[bool, bool, str]:
        r = int(ack.result)
        return r == 0, r in (-1, -8), f"{r} ({p.RESULT_TEXT.get(r, 'unknown')})"

    def _unsolicited(self, message: Any, frame: Any, t: float) -> None:
        if isinstance(message, p.Init):
            self._init_pn, self._init_version = frame.packet_number, message.version
            if not self._connected:
                self._init_seen.set()
                return
            # the device reset (watchdog): reconnect as the protocol says, report the stop
            self._send_init_ack()
            self._post(DeviceFault(self.clock.now(), self.kind, self._rel(), kind="device_reset",
                                   message="the device restarted its Init sequence (watchdog "
                                           "timeout or power cycle); stimulation stopped",
                                   fatal=self._state == "running"))
        elif isinstance(message, p.StimulationError):
            code = int(message.code)
            self._post(DeviceFault(self.clock.now(), self.kind, self._rel(),
                                   kind=_ERROR_KIND.get(code, "other"), code=code,
                                   message=_ERROR_TEXT.get(code, f"stimulation error {code}")))
        elif isinstance(message, p.UnknownCommand):
            self._post(DeviceFault(self.clock.now(), self.kind, self._rel(), kind="protocol",
                                   code=message.command, fatal=False,
                                   message=f"the device did not know command "
                                           f"{message.command}"))

    def _send_init_ack(self) -> None:
        result = 0 if self._init_version == p.PROTOCOL_VERSION else -5
        self._write(p.encode(p.InitAck(result), self._init_pn))

    def _handshake(self) -> None:
        if not self._init_seen.wait(self.handshake_timeout):
            raise DeviceError(
                f"{self.url}: no Init from the device within {self.handshake_timeout:g} s "
                "(it repeats Init every 0.5 s once switched on). Is it a RehaStim 2, switched "
                "on, in ScienceMode, and not held by another program?")
        self._send_init_ack()
        if self._init_version != p.PROTOCOL_VERSION:
            raise DeviceError(f"{self.url}: protocol version {self._init_version}; this driver "
                              f"speaks version {p.PROTOCOL_VERSION}")
        self._connected = True

    def _keepalive(self) -> None:
        # while streaming, the status queries feed the device's watchdog
        if time.monotonic() - self._last_write >= self.keepalive_interval:
            self._write(p.encode(p.Watchdog(), self._next_pn()))

    def _status_query(self) -> tuple[Any, int]:
        return p.GetStimulationMode(), int(p.Command.GET_STIMULATION_MODE_ACK)

    def _on_status(self, ack: Any) -> bool:
        mode = int(ack.mode)
        if mode == 2:
            return True
        if self._streaming():
            self._post(DeviceFault(self.clock.now(), self.kind, self._rel(),
                                   kind="device_stopped",
                                   message=f"the RehaStim 2 stopped stimulating by itself (it "
                                           f"reports mode {mode}, not 2: emergency switch, "
                                           "electrode or module error, or a reset)"))
        return False

    # ------------------------------------------------------------------ program mapping
    def _configure(self, program: Any, names: tuple[str, ...], cmap: dict[str, int]) -> None:
        chans = list(program.channels)
        for c in chans:
            if c.waveform != "symmetric-biphasic":
                raise ProgramError(
                    f"channel {c.name!r}: waveform {c.waveform!r}; RehaStim 2 delivers only "
                    "symmetric biphasic pulses (PDF §1.2). Use waveform: symmetric-biphasic or "
                    "another device (p24, sim://)")
            if abs(c.interphase_gap - GAP) > 1e-7:
                raise ProgramError(
                    f"channel {c.name!r}: interphase gap {c.interphase_gap * 1e6:g} us; "
                    "RehaStim 2 pulses have a fixed 100 us gap (PDF §1.2). Set "
                    "interphase_gap: 100 us")
            kind = c.train.kind
            if kind in ("variable", "burst") or (kind == "doublet" and
                                                 c.train.doublets == "initial"):
                what = "doublets: initial" if kind == "doublet" else f"a {kind!r} train"
                raise ProgramError(
                    f"channel {c.name!r}: {what} needs pulses off one fixed period; RehaStim 2 "
                    "runs every channel on one main interval t1 (PDF §1.3). Use a constant or "
                    "'doublets: all' train, or the p24 / sim:// backends")
            if kind == "modulated" and any(m.parameter == "frequency"
                                           for m in c.train.modulation or []):
                raise ProgramError(
                    f"channel {c.name!r}: frequency modulation needs a changing period; "
                    "RehaStim 2 keeps t1 fixed while running. Modulate amplitude or pulse width")
        periods = [1.0 / c.frequency for c in chans]
        t1 = min(periods)
        if t1 < T_MIN - 1e-12:
            raise ProgramError(f"{1 / t1:g} Hz: RehaStim 2's shortest main interval is 8 ms "
                               "(125 Hz, firmware minimum, PDF InitChannelListMode)")
        try:
            c1 = p.t1_code(t1)
        except Exception:
            raise ProgramError(
                f"{1 / t1:.6g} Hz needs a main interval of {t1 * 1e3:.6g} ms; RehaStim 2 sets "
                f"t1 = 1 ms + n x 0.5 ms (PDF InitChannelListMode). Nearest: "
                f"{_nearest_t1(t1)}") from None
        lf_factor, lf_mask = 0, 0
        for c, per in zip(chans, periods, strict=True):
            r = per / t1
            if abs(r - round(r)) > 1e-6 or round(r) > 8:
                raise ProgramError(
                    f"channel {c.name!r}: {c.frequency:g} Hz; RehaStim 2 has one main rate "
                    f"({1 / t1:g} Hz here) and low-frequency channels at that rate divided by "
                    "2..8 (PDF, low-frequency factor). Make every rate the main rate or a "
                    "division of it, or use p24 (per-channel periods)")
            if round(r) > 1:
                if lf_factor and lf_factor != round(r) - 1:
                    raise ProgramError(
                        "RehaStim 2 has one low-frequency factor for all low-frequency channels;"
                        f" channel {c.name!r} would need another one")
                lf_factor = int(round(r)) - 1
                lf_mask |= 1 << cmap[c.name]
        ipis = {round(c.train.doublet_interval, 9) for c in chans if c.train.kind == "doublet"}
        has_groups = bool(ipis)
        if len(ipis) > 1:
            raise ProgramError(f"doublet intervals {sorted(ipis)} s differ; RehaStim 2 has one "
                               "inter-pulse interval t2 for all channels")
        t2 = ipis.pop() if ipis else T_MIN
        if t2 < T_MIN - 1e-12:
            raise ProgramError(f"doublet interval {t2 * 1e3:g} ms; RehaStim 2's shortest "
                               "inter-pulse interval t2 is 8 ms (firmware minimum, PDF)")
        try:
            c2 = p.t2_code(t2)
        except Exception:
            raise ProgramError(f"doublet interval {t2 * 1e3:g} ms is not 1.5 ms + n x 0.5 ms "
                               "(PDF InitChannelListMode)") from None
        active = sorted(cmap[n] for n in names)
        mask = sum(1 << d for d in active)
        self._cfg = p.InitChannelListMode(lf_factor, mask, lf_mask, c2, c1, 0)
        self._active = active
        self._t2 = p.t2_from_code(c2)
        # the device runs its whole channel list (and repeats it for doublets) each period
        busy = len(active) * SLOT + (2 * self._t2 if has_groups else 0.0)
        self._grid = [GridChannel(c.name, cmap[c.name], per,
                                  offset=active.index(cmap[c.name]) * SLOT, busy=busy)
                      for c, per in zip(chans, periods, strict=True)]

    def _ma(self, channel: str, t: float, amplitude: float) -> int:
        """The amplitude in device steps (whole mA), or refuse it."""
        caps = self.capabilities
        assert caps.amplitude_range is not None
        lo, hi = caps.amplitude_range
        n = exact_steps(amplitude, caps.amplitude_step)  # 1 mA steps: n is in mA
        if n is None or not round(lo / caps.amplitude_step) <= n <= round(
                hi / caps.amplitude_step):
            raise refuse(channel, t, f"amplitude {amplitude * 1e3:.6g} mA",
                         f"RehaStim 2 sets whole mA from {lo * 1e3:g} to {hi * 1e3:g} mA (PDF "
                         "StartChannelListMode); round the chunk with stim.quantize(chunk)")
        return n

    def _us(self, channel: str, t: float, width: float) -> int:
        """The phase width in whole microseconds, or refuse it."""
        caps = self.capabilities
        assert caps.phase_width_range is not None
        lo, hi = (int(to_us(x)) for x in caps.phase_width_range)
        n = exact_us(width)
        if n is None or not lo <= n <= hi:
            raise refuse(channel, t, f"pulse width {width * 1e6:.6g} us",
                         f"RehaStim 2 takes whole microseconds from {lo} to {hi} us (PDF)")
        return n

    def _validate(self, channel: GridChannel, t_k: float, pattern: Pattern) -> None:
        name = channel.name
        first = pattern[0]
        if first.dt > TOL:
            raise refuse(name, t_k, f"pulse {first.dt * 1e3:.4g} ms after the period start",
                         "RehaStim 2 starts every channel at the start of its period (plus its "
                         "1.5 ms slot); give the channel a delay that is a multiple of its "
                         "period")
        if len(pattern) > 3:
            raise refuse(name, t_k, f"{len(pattern)} pulses in one period",
                         "RehaStim 2 gives a channel at most a triplet per period")
        for j, q in enumerate(pattern):
            if abs(q.dt - j * self._t2) > TOL:
                raise refuse(name, t_k, f"pulse {j + 1} of the group at +{q.dt * 1e3:.4g} ms",
                             f"groups repeat every t2 = {self._t2 * 1e3:g} ms on RehaStim 2")
            if q[1:] != first[1:]:
                raise refuse(name, t_k, "pulses of one group differ",
                             "RehaStim 2 gives every pulse of a doublet/triplet the same shape")
        if first.waveform != Waveform.SYMMETRIC_BIPHASIC or \
                abs(first.interphase_gap - GAP) > 1e-7 or \
                abs(first.amplitude2 - first.amplitude) > 1e-9 or \
                abs(first.phase_width2 - first.phase_width) > 1e-9:
            raise refuse(name, t_k, "pulse is not symmetric biphasic with a 100 us gap",
                         "that is the only pulse RehaStim 2 delivers (PDF §1.2)")
        self._ma(name, t_k, first.amplitude)
        self._us(name, t_k, first.phase_width)
        if len(pattern) > 1 and self._cfg is not None:
            t1 = p.t1_from_code(self._cfg.t1_code)
            if t1 < len(pattern) * self._t2 - 1e-12:
                raise refuse(name, t_k, f"a group of {len(pattern)} needs {len(pattern)} x t2",
                             f"longer than t1 = {t1 * 1e3:g} ms (PDF: t1 >= n x t2)")

    # ------------------------------------------------------------------ wire
    def _wire_arm(self) -> None:
        assert self._cfg is not None
        self.request(self._cfg, int(p.Command.INIT_CHANNEL_LIST_MODE_ACK), "InitChannelListMode")

    def _wire_update(self, patterns: tuple[Pattern, ...], *, first: bool) -> None:
        by_dev = {g.device_channel: pat for g, pat in zip(self._grid, patterns, strict=True)}
        g_name = {g.device_channel: g.name for g in self._grid}
        entries = []
        for d in self._active:
            pat = by_dev.get(d, ())
            if not pat:
                entries.append(p.ChannelEntry(0, 0, 0))
                continue
            q = pat[0]
            entries.append(p.ChannelEntry(len(pat) - 1, self._us(g_name[d], 0.0, q.phase_width),
                                          self._ma(g_name[d], 0.0, q.amplitude)))
        self.request(p.StartChannelListMode(tuple(entries)),
                     int(p.Command.START_CHANNEL_LIST_MODE_ACK),
                     "StartChannelListMode" if first else "update")

    def _wire_stop(self) -> None:
        self.request(p.StopChannelListMode(), int(p.Command.STOP_CHANNEL_LIST_MODE_ACK),
                     "StopChannelListMode")

    def _single_pulse(self, device_channel: int, amplitude: float, phase_width: float) -> None:
        name = f"ch{device_channel + 1}"
        msg = p.SinglePulse(device_channel, self._us(name, 0.0, phase_width),
                            self._ma(name, 0.0, amplitude))
        self.request(msg, int(p.Command.SINGLE_PULSE_ACK), "SinglePulse")

    def _single_pulse_gap(self) -> float:
        return GAP

    def get_stimulation_mode(self) -> int:
        """The device's mode: 0 start, 1 channel list initialised, 2 running."""
        ack = self.request(p.GetStimulationMode(), int(p.Command.GET_STIMULATION_MODE_ACK),
                           "GetStimulationMode")
        return int(ack.mode)
