"""A P24 that speaks ScienceMode4 over a pseudo-terminal (mid level and low-level pulses).

Model (Hasomed ScienceMode4 C library and science_mode_4 documentation): MlInit enters the mid
level; each MlUpdate enables channels with a period, a ramp and up to 16 points; a channel whose
period is unchanged keeps its phase, a new or changed one starts when the update arrives. The
host must send MlGetCurrentData at least every 1.5 s or stimulation stops. Electrode errors stop
all channels when the level was initialised with ``stop_all_on_error`` (else only that channel)
and show in the channel states of MlGetCurrentDataAck. LlInit/LlChannelConfig give single
pulses when the mid level is not active. Assumptions where the sources are silent are listed in
docs/devices/p24.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from opennmes.devices._bytes import STUFF, STUFF_KEY
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

    def __init__(self, *, keepalive_timeout: float = KEEPALIVE_TIMEOUT) -> None:
        super().__init__()
        self.keepalive_timeout = keepalive_timeout
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
        body = bytearray()
        it = iter(raw[9:-1])
        for b in it:
            if b == STUFF:
                b = next(it, 0) ^ STUFF_KEY
            body.append(b)
        if len(body) >= 2:
            word = (body[0] << 8) | body[1]
            cmd, pn = word & 0x3FF, word >> 10
            acks = {30: p.MlInitAck, 32: p.MlUpdateAck, 34: p.MlStopAck, 0: p.LlInitAck,
                    4: p.LlStopAck}
            if cmd in acks:
                self._reply(acks[cmd](int(p.Result.TRANSFER_ERROR)), pn)

    def _on_frame(self, frame: p.Frame, t: float) -> None:
        pn = frame.packet_number
        try:
            msg = p.decode(frame)
        except ProtocolError as exc:
            self._note(f"undecodable command {frame.command}: {exc}")
            if frame.command == p.Command.ML_UPDATE:
                self._reply(p.MlUpdateAck(int(p.Result.PARAMETER_ERROR)), pn)
            else:
                self._reply(p.UnknownCommand(), pn)
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
