"""A P24 that speaks ScienceMode4 over a pseudo-terminal (mid level and low-level pulses).

Model (Hasomed ScienceMode4 C library and science_mode_4 documentation): MlInit enters the mid
level; each MlUpdate enables channels with a period, a ramp and up to 16 points; a channel whose
period is unchanged keeps its phase, a new or changed one starts when the update arrives. The
host must send MlGetCurrentData at least every 1.5 s or stimulation stops. Electrode errors stop
all channels when the level was initialised with ``stop_all_on_error`` (else only that channel)
and show in the channel states of MlGetCurrentDataAck. LlInit/LlChannelConfig give single
pulses when the mid level is not active. The general layer (commands 50-69) answers device id,
versions, battery, stimulation and main status and reset. Every frame that arrives intact gets
an answer with a result byte: the request's acknowledgement (result 2, parameter error, when its
data do not decode), else UnknownCommand with result 11 (invalid command) and the request's
packet number. Assumptions where the sources are silent are listed in docs/devices/p24.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from opennmes.devices._bytes import unstuff
from opennmes.devices._emulator import PtyEmulator
from opennmes.devices.sciencemode4 import _protocol as p
from opennmes.devices.sciencemode4._shapes import points_to_pulses
from opennmes.errors import ProtocolError

__all__ = ["P24Emulator", "KEEPALIVE_TIMEOUT"]

KEEPALIVE_TIMEOUT = 1.5  # s: MlGetCurrentData at least every 1.5 s (science_mode_4 README)


@dataclass
class _Chan:
    cfg: p.MlChannelConfig
    start: float
    k: int = 0
    idx: int = 0
    latched: list[Any] | None = None


class P24Emulator(PtyEmulator):
    """Emulated P24; see the module docstring. Channels are 0-based."""

    name = "p24"

    def __init__(self, *, keepalive_timeout: float = KEEPALIVE_TIMEOUT,
                 device_id: str = "EMU-P24-01", firmware: tuple[int, int, int] = (1, 0, 0),
                 sciencemode: tuple[int, int, int] = (4, 0, 0), battery_percent: int = 100,
                 battery_mv: int = 4100) -> None:
        super().__init__()
        self.keepalive_timeout = keepalive_timeout
        self.device_id = device_id
        """GetDeviceIdAck: up to 10 characters."""
        self.firmware = firmware
        self.sciencemode = sciencemode
        """ScienceMode version reported (the C library's Smpt_Library_Version is 4.0.0)."""
        self.battery_percent = battery_percent
        self.battery_mv = battery_mv
        self.high_voltage = int(p.HighVoltage.OFF)
        self.resets = 0
        self.level = "none"
        self.stop_all_on_error = True
        self._chans: dict[int, _Chan] = {}
        self.states = [0] * 8
        self._t_ref: float | None = None
        self._last_query = 0.0
        self._pn = 0
        self.watchdog_stops = 0

    def _new_decoder(self) -> Any:
        return p.FrameDecoder()

    def _reply(self, msg: p.Message, pn: int) -> None:
        self.send(p.encode(msg, pn))

    # ------------------------------------------------------------------ time
    def _next_deadline(self, now: float) -> float:
        d = now + 0.01
        for c in self._chans.values():
            t_k = c.start + c.k * c.cfg.period
            if c.latched is not None and c.idx < len(c.latched):
                t_k += c.latched[c.idx].dt  # the next pulse of a period in progress
            d = min(d, t_k)
        return d

    def _tick(self, now: float) -> None:
        if self._chans and now - self._last_query > self.keepalive_timeout:
            self._note("no MlGetCurrentData for 1.5 s: stimulation stopped")
            self.watchdog_stops += 1
            self._emit_until(self._last_query + self.keepalive_timeout)
            self._chans = {}
            return
        self._emit_until(now)

    def _emit_until(self, now: float) -> None:
        """Record every pulse whose time has come; a period plays the pattern it had at its
        start (ramp pulses scaled (n + 1) / (ramp + 1))."""
        ref = self._t_ref if self._t_ref is not None else 0.0
        for ch, c in self._chans.items():
            per = c.cfg.period
            while c.start + c.k * per <= now:
                if c.latched is None:
                    c.latched = points_to_pulses(c.cfg.points)
                scale = (c.k + 1) / (c.cfg.ramp + 1) if c.k < c.cfg.ramp else 1.0
                t_k = c.start + c.k * per
                while c.idx < len(c.latched):
                    q = c.latched[c.idx]
                    if t_k + q.dt > now:
                        break
                    self.record.add((c.start - ref) + c.k * per + q.dt, ch,
                                    q.amplitude * scale, q.phase_width, q.interphase_gap,
                                    q.amplitude2 * scale, q.phase_width2, q.waveform)
                    c.idx += 1
                if c.idx < len(c.latched):
                    break
                c.k += 1
                c.idx = 0
                c.latched = None

    def _skip_until(self, now: float) -> None:
        for c in self._chans.values():
            k = math.ceil((now - c.start) / c.cfg.period)
            if k > c.k:
                c.k, c.idx, c.latched = k, 0, None

    def _stop_output(self, reason: str) -> None:
        if self._chans:
            self._note(f"stimulation stopped: {reason}")
        self._chans = {}

    @property
    def output_is_zero(self) -> bool:
        with self._lock:
            return not any(points_to_pulses(c.cfg.points) for c in self._chans.values())

    # ------------------------------------------------------------------ faults
    def electrode_error(self, channel: int) -> None:
        """Electrode error on ``channel``: stop (all channels if stop_all_on_error)."""
        with self._lock:
            self._emit_until(time.monotonic())
            self.states[channel] = 1
            if self.stop_all_on_error:
                self._stop_output("electrode error")
            else:
                self._chans.pop(channel, None)

    def reset(self, t: float | None = None) -> None:
        """The device resets (a Reset command, or a power glitch when called by a test): output
        stops, no level is initialised, channel errors are cleared."""
        with self._lock:
            self._emit_until(time.monotonic() if t is None else t)
            self._stop_output("reset")
            self.level, self.states, self.resets = "none", [0] * 8, self.resets + 1
            self.high_voltage = int(p.HighVoltage.OFF)

    def emergency_switch(self) -> None:
        """Emergency stop: every channel stops; the host sees it in MlGetCurrentDataAck."""
        with self._lock:
            self._emit_until(time.monotonic())
            self._stop_output("emergency switch")

    # ------------------------------------------------------------------ frames
    def _on_bad_frame(self, exc: ProtocolError, decoder: Any) -> None:
        super()._on_bad_frame(exc, decoder)
        raw = getattr(decoder, "last_bad", b"")
        if len(raw) < 12:
            return
        try:
            body = unstuff(raw[9:-1], strict=False)
        except ProtocolError:
            return
        if len(body) >= 2:
            word = (body[0] << 8) | body[1]
            ack = p.ack_for(word & 0x3FF, int(p.Result.TRANSFER_ERROR))
            if ack is not None:
                self._reply(ack, word >> 10)

    def _on_frame(self, frame: p.Frame, t: float) -> None:
        pn = frame.packet_number
        try:
            msg = p.decode(frame)
        except ProtocolError as exc:
            self._note(f"undecodable command {frame.command}: {exc}")
            known = frame.command != p.Command.SET_POWER  # an I24 command: unknown here
            self._reply((p.ack_for(frame.command, int(p.Result.PARAMETER_ERROR)) if known
                         else None) or p.UnknownCommand(), pn)
            return
        if self._general(msg, pn, t):
            return
        if isinstance(msg, p.MlInit):
            if self.level == "ll":
                self._reply(p.MlInitAck(int(p.Result.NOT_INITIALIZED)), pn)
                return
            self.level = "ml"
            self.stop_all_on_error = msg.stop_all_on_error
            self._chans, self._t_ref, self.states = {}, None, [0] * 8
            self._last_query = t
            self.record.clear()
            self._reply(p.MlInitAck(0), pn)
        elif isinstance(msg, p.MlUpdate):
            self._reply(p.MlUpdateAck(self._update(msg, t)), pn)
        elif isinstance(msg, p.MlGetCurrentData):
            if self.level != "ml":
                self._reply(p.MlGetCurrentDataAck(int(p.Result.NOT_INITIALIZED)), pn)
                return
            self._last_query = t
            running = tuple(i in self._chans for i in range(8))
            self._reply(p.MlGetCurrentDataAck(0, running, tuple(self.states)), pn)
        elif isinstance(msg, p.MlStop):
            self._emit_until(t)
            self._stop_output("MlStop")
            self.level = "none"
            self._reply(p.MlStopAck(0), pn)
        elif isinstance(msg, p.LlInit):
            ok = self.level != "ml"
            if ok:
                self.level = "ll"
                self.high_voltage = msg.high_voltage or int(p.HighVoltage.V150)
            self._reply(p.LlInitAck(0 if ok else int(p.Result.NOT_INITIALIZED)), pn)
        elif isinstance(msg, p.LlChannelConfig):
            r = 0 if self.level == "ll" else int(p.Result.NOT_INITIALIZED)
            if r == 0 and msg.enable:
                ch = msg.connector * 4 + msg.channel
                for q in points_to_pulses(msg.points):
                    self.single_record.add(t + q.dt, ch, q.amplitude, q.phase_width,
                                           q.interphase_gap, q.amplitude2, q.phase_width2,
                                           q.waveform)
            self._reply(p.LlChannelConfigAck(r, msg.channel, msg.connector), pn)
        elif isinstance(msg, p.LlStop):
            if self.level == "ll":
                self.level = "none"
            self._reply(p.LlStopAck(0), pn)
        else:
            self._reply(p.UnknownCommand(), pn)

    def stim_status(self) -> tuple[int, int]:
        """(Smpt_Stim_Status, Smpt_High_Voltage) as GetStimStatusAck reports them."""
        if self.level == "ll":
            return int(p.StimStatus.LL_INITIALIZED), self.high_voltage
        if self.level == "ml":
            running = bool(self._chans)
            return (int(p.StimStatus.ML_RUNNING if running else p.StimStatus.ML_INITIALIZED),
                    int(p.HighVoltage.V150))
        return int(p.StimStatus.UNINITIALIZED), int(p.HighVoltage.OFF)

    def _general(self, msg: p.Message, pn: int, t: float) -> bool:
        """Answer a general-layer request (commands 50-69); False if ``msg`` is not one."""
        reply: p.Message
        if isinstance(msg, p.GetDeviceId):
            reply = p.GetDeviceIdAck(0, self.device_id)
        elif isinstance(msg, p.GetVersionMain | p.GetVersionStim):
            cls = p.GetVersionMainAck if isinstance(msg, p.GetVersionMain) else \
                p.GetVersionStimAck
            reply = cls(0, self.firmware, self.sciencemode)
        elif isinstance(msg, p.GetExtendedVersion):
            reply = p.GetExtendedVersionAck(0, self.firmware, self.sciencemode)
        elif isinstance(msg, p.GetBatteryStatus):
            reply = p.GetBatteryStatusAck(0, self.battery_percent, self.battery_mv)
        elif isinstance(msg, p.GetStimStatus):
            reply = p.GetStimStatusAck(0, *self.stim_status())
        elif isinstance(msg, p.GetMainStatus):
            reply = p.GetMainStatusAck(0, 0)  # no measurement part on a P24
        elif isinstance(msg, p.Reset):
            reply = p.ResetAck(0)  # acknowledged, then every level ends and the output stops
            self.reset(t)
        else:
            return False
        self._reply(reply, pn)
        return True

    def _update(self, m: p.MlUpdate, t: float) -> int:
        if self.level != "ml":
            return int(p.Result.NOT_INITIALIZED)
        for _, cfg in m.channels:
            dur = sum(max(q.duration_us, 10) for q in cfg.points) * 1e-6
            if cfg.period_code == 0 or dur >= cfg.period:
                return int(p.Result.PARAMETER_ERROR)
        self._emit_until(t)
        if self._t_ref is None:
            self._t_ref = t
        new: dict[int, _Chan] = {}
        for ch, cfg in m.channels:
            if self.states[ch]:
                continue  # a channel with an electrode error stays off until MlInit
            old = self._chans.get(ch)
            if old is not None and old.cfg.period_code == cfg.period_code and \
                    old.cfg.accurate == cfg.accurate:
                old.cfg = cfg
                new[ch] = old
            else:
                new[ch] = _Chan(cfg, t)
        self._chans = new
        return 0
