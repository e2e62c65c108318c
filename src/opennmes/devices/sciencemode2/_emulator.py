"""A RehaStim 2 that speaks ScienceMode2 over a pseudo-terminal.

Behaviour from the PDF (v1.24): Init repeated every 500 ms until InitAck; a watchdog that stops
stimulation, resets the modes and restarts the Init repetition after 1200 ms without a valid
packet; channel-list mode with 1.5 ms channel slots, doublets/triplets repeated after t2 and
low-frequency channels skipping periods; error replies (-1 transfer, -2 parameter, -3 wrong
mode); StimulationError on electrode error (-2) or emergency switch (-1), after which the device
is back in start mode. Every pulse it would have delivered is recorded.

Escapes (``escapes``): the PDF names the bytes a sender must escape (0xF0, 0x0F, 0x81) and how an
escape reads; whether the device also accepts escapes of other bytes (pyScienceMode escapes 0x55
and 0x0A) is not known. ``"tolerant"`` (the default) reads any escape by the rule, ``"strict"``
answers such a frame like a damaged one (transfer error, -1). See docs/devices/rehastim2.md.
"""

from __future__ import annotations

import math
import time
from typing import Any

from opennmes.capabilities import DEVICE_CAPABILITIES
from opennmes.devices._bytes import unstuff
from opennmes.devices._emulator import PtyEmulator
from opennmes.devices.sciencemode2 import _protocol as p
from opennmes.errors import DeviceError, ProtocolError
from opennmes.schedule import Waveform, to_us

__all__ = ["RehaStim2Emulator", "INIT_REPETITION", "WATCHDOG_TIMEOUT", "SLOT", "GAP", "ESCAPES"]

INIT_REPETITION = 0.5   # s, PDF Table 7
WATCHDOG_TIMEOUT = 1.2  # s, PDF Table 7
SLOT = 1.5e-3           # s per channel in fixed-slot execution (PDF §1.3)
GAP = 100e-6            # s, fixed interphase gap (PDF §1.2)
_CAPS = DEVICE_CAPABILITIES["rehastim2"]
assert _CAPS.frequency_range is not None and _CAPS.phase_width_range is not None
assert _CAPS.amplitude_range is not None
_T_MIN = 1.0 / _CAPS.frequency_range[1]  # s, firmware minimum of t1 and t2 (8 ms, PDF)
_PW_MIN, _PW_MAX = (int(to_us(x)) for x in _CAPS.phase_width_range)  # us; below min plays min
_MA_MAX = round(_CAPS.amplitude_range[1] * 1e3)  # whole mA

MODE_START, MODE_INITIALISED, MODE_RUNNING = 0, 1, 2
ESCAPES = ("tolerant", "strict")
"""How the emulator reads an escape of a byte that needs none (module docstring)."""


class RehaStim2Emulator(PtyEmulator):
    """Emulated RehaStim 2; see the module docstring. Channels are 0-based internally."""

    name = "rehastim2"

    def __init__(self, *, init_repetition: float = INIT_REPETITION,
                 watchdog_timeout: float = WATCHDOG_TIMEOUT,
                 escapes: str = "tolerant") -> None:
        if escapes not in ESCAPES:
            raise DeviceError(f"RehaStim 2 emulator: escapes={escapes!r} is not an option; "
                              f"use one of {', '.join(ESCAPES)}")
        super().__init__()
        self.escapes = escapes
        self.init_repetition = init_repetition
        self.watchdog_timeout = watchdog_timeout
        self.connected = False
        self.mode = MODE_START
        self._pn = 0
        self._next_init = 0.0
        self._last_valid = 0.0
        self._cfg: p.InitChannelListMode | None = None
        self._active: list[int] = []
        self._entries: dict[int, p.ChannelEntry] = {}
        self._t_start = 0.0
        self._k = 0
        self._slot = 0
        self._latched: dict[int, p.ChannelEntry] = {}
        self._latched_k = -1
        self._due: float | None = None
        self.inits_sent = 0
        self.init_times: list[float] = []  # clock time of each Init sent, s
        self.watchdog_stops = 0
        self.stimulation_errors: list[int] = []
        self.starts = 0

    def _new_decoder(self) -> Any:
        return p.FrameDecoder(strict_escapes=self.escapes == "strict")

    def _send(self, msg: p.Message, pn: int | None = None) -> None:
        if pn is None:
            pn, self._pn = self._pn, (self._pn + 1) % 256
        self.send(p.encode(msg, pn))

    # ------------------------------------------------------------------ time
    def _next_deadline(self, now: float) -> float:
        d = now + 0.01
        if not self.connected:
            d = min(d, self._next_init)
        if self.mode == MODE_RUNNING and self._cfg is not None:
            d = min(d, self._due if self._due is not None else
                    self._t_start + self._k * p.t1_from_code(self._cfg.t1_code))
        return d

    def _tick(self, now: float) -> None:
        if not self.connected:
            if now >= self._next_init:
                self._send(p.Init(p.PROTOCOL_VERSION))
                self.inits_sent += 1
                self.init_times.append(now)
                self._next_init = now + self.init_repetition
            return
        if now - self._last_valid > self.watchdog_timeout:
            self._note("watchdog: no valid packet for 1.2 s; stop, reset, re-send Init")
            if self.mode == MODE_RUNNING:
                self.watchdog_stops += 1
            self._stop_output("watchdog")
            self.connected = False
            self._next_init = now
            return
        self._emit_until(now)

    def _emit_until(self, now: float) -> None:
        """Record every pulse whose slot time has come (slot by slot, so a stop or fault in
        the middle of a channel list cuts the rest of it)."""
        cfg = self._cfg
        if self.mode != MODE_RUNNING or cfg is None or cfg.t1_code == 0:
            return
        t1 = p.t1_from_code(cfg.t1_code)
        t2 = p.t2_from_code(cfg.t2_code)
        rel = now - self._t_start
        self._due = None
        while self._k * t1 <= rel:
            k = self._k
            if self._latched_k != k:  # the list is executed with the values at its start
                self._latched, self._latched_k = dict(self._entries), k
            slots = []
            for rank, ch in enumerate(self._active):
                e = self._latched.get(ch)
                if e is None or e.current_ma == 0:
                    continue
                if cfg.low_frequency & (1 << ch) and k % (cfg.low_frequency_factor + 1):
                    continue
                for g in range(e.mode + 1):
                    slots.append((k * t1 + g * t2 + rank * SLOT, ch, e))
            slots.sort(key=lambda x: x[0])
            while self._slot < len(slots):
                t, ch, e = slots[self._slot]
                if t > rel:
                    self._due = self._t_start + t
                    return
                pw = max(e.pulse_width_us, _PW_MIN) / 1e6  # PDF: pw < 20 us becomes 20 us
                a = e.current_ma / 1e3
                self.record.add(t, ch, a, pw, GAP, a, pw, int(Waveform.SYMMETRIC_BIPHASIC))
                self._slot += 1
            self._k += 1
            self._slot = 0

    def _skip_until(self, now: float) -> None:
        cfg = self._cfg
        if self.mode != MODE_RUNNING or cfg is None or cfg.t1_code == 0:
            return
        t1 = p.t1_from_code(cfg.t1_code)
        k = math.ceil((now - self._t_start) / t1)
        if k > self._k:
            self._k, self._slot, self._latched_k, self._due = k, 0, -1, None

    def _pulse(self, t: float, ch: int, e: p.ChannelEntry, t2: float) -> None:
        pw = max(e.pulse_width_us, _PW_MIN) / 1e6
        a = e.current_ma / 1e3
        for g in range(e.mode + 1):
            self.record.add(t + g * t2, ch, a, pw, GAP, a, pw, int(Waveform.SYMMETRIC_BIPHASIC))

    def _stop_output(self, reason: str) -> None:
        if self.mode == MODE_RUNNING:
            self._note(f"stimulation stopped: {reason}")
        self.mode = MODE_START
        self._entries = {}
        self._latched = {}

    @property
    def output_is_zero(self) -> bool:
        with self._lock:
            return self.mode != MODE_RUNNING or all(
                e.current_ma == 0 for e in self._entries.values())

    # ------------------------------------------------------------------ faults
    def electrode_error(self, channel: int) -> None:
        """Electrode error: StimulationError -2, stop, back to start mode (PDF cmd 38)."""
        with self._lock:
            self._stimulation_error(-2)

    def emergency_switch(self) -> None:
        """Emergency switch: StimulationError -1, stop, back to start mode (PDF cmd 38)."""
        with self._lock:
            self._stimulation_error(-1)

    def _stimulation_error(self, code: int) -> None:
        self._emit_until(time.monotonic())
        self._stop_output(f"stimulation error {code}")
        self.stimulation_errors.append(code)
        if self.connected:
            self._send(p.StimulationError(code))

    # ------------------------------------------------------------------ frames
    def _on_bad_frame(self, exc: ProtocolError, decoder: Any) -> None:
        super()._on_bad_frame(exc, decoder)
        raw = getattr(decoder, "last_bad", b"")
        # a frame whose checksum or length fails: answer -1 on its acknowledgement (PDF §5.1)
        if not self.connected or len(raw) < 8:
            return
        try:
            body = unstuff(raw[5:-1], strict=False)
        except ProtocolError:
            return
        if len(body) >= 2 and body[1] in (30, 32, 34, 36):
            ack = {30: p.InitChannelListModeAck, 32: p.StartChannelListModeAck,
                   34: p.StopChannelListModeAck, 36: p.SinglePulseAck}[body[1]]
            self._send(ack(-1), body[0])

    def _on_frame(self, frame: p.Frame, t: float) -> None:
        try:
            msg = p.decode(frame)
        except ProtocolError as exc:
            self._note(f"undecodable command {frame.command}: {exc}")
            if frame.command in (30, 32, 36):
                ack = {30: p.InitChannelListModeAck, 32: p.StartChannelListModeAck,
                       36: p.SinglePulseAck}[frame.command]
                self._send(ack(-2), frame.packet_number)
            else:
                self._send(p.UnknownCommand(frame.command))
            return
        if not self.connected:
            if isinstance(msg, p.InitAck) and msg.result == 0:
                self.connected = True
                self._last_valid = t
                self._note("InitAck received: connected")
            return
        self._last_valid = t
        pn = frame.packet_number
        if isinstance(msg, p.Watchdog | p.InitAck):
            return
        if isinstance(msg, p.GetStimulationMode):
            self._send(p.GetStimulationModeAck(0, self.mode), pn)
        elif isinstance(msg, p.InitChannelListMode):
            self._send(p.InitChannelListModeAck(self._init_list(msg)), pn)
        elif isinstance(msg, p.StartChannelListMode):
            self._send(p.StartChannelListModeAck(self._start_list(msg, t)), pn)
        elif isinstance(msg, p.StopChannelListMode):
            self._emit_until(t)
            self._stop_output("StopChannelListMode")
            self._cfg = None
            self._send(p.StopChannelListModeAck(0), pn)
        elif isinstance(msg, p.SinglePulse):
            self._send(p.SinglePulseAck(self._single(msg, t)), pn)
        else:
            self._send(p.UnknownCommand(frame.command))

    def _init_list(self, m: p.InitChannelListMode) -> int:
        if self.mode == MODE_RUNNING:
            return -3
        t1 = p.t1_from_code(m.t1_code)
        if (m.low_frequency_factor > 7 or m.active == 0 or m.low_frequency & ~m.active
                or m.execution != 0 or p.t2_from_code(m.t2_code) < _T_MIN - 1e-12
                or (m.t1_code != 0 and t1 < _T_MIN - 1e-12) or m.t1_code > 2048):
            return -2
        self._cfg = m
        self._active = [c for c in range(8) if m.active >> c & 1]
        self.mode = MODE_INITIALISED
        return 0

    def _start_list(self, m: p.StartChannelListMode, t: float) -> int:
        cfg = self._cfg
        if self.mode == MODE_START or cfg is None:
            return -3
        if len(m.entries) != len(self._active):
            return -2
        t1, t2 = p.t1_from_code(cfg.t1_code), p.t2_from_code(cfg.t2_code)
        for e in m.entries:
            if e.mode > 2 or e.pulse_width_us > _PW_MAX or e.current_ma > _MA_MAX:
                return -2
            if e.mode and cfg.t1_code and t1 < (e.mode + 1) * t2 - 1e-12:
                return -2
        entries = dict(zip(self._active, m.entries, strict=True))
        if cfg.t1_code == 0:  # one-shot: the command itself triggers one list
            for rank, ch in enumerate(self._active):
                e = entries[ch]
                if e.current_ma:
                    self._pulse(t - self._t_start + rank * SLOT, ch, e, t2)
            return 0
        self._emit_until(t)
        if self.mode == MODE_INITIALISED:
            self.mode = MODE_RUNNING
            self._t_start = t
            self._k = 0
            self._slot = 0
            self._latched_k = -1
            self.starts += 1
            self.record.clear()
        self._entries = entries
        self._emit_until(t)
        return 0

    def _single(self, m: p.SinglePulse, t: float) -> int:
        if self.mode != MODE_START:
            return -3
        if (m.channel >= _CAPS.channels or m.pulse_width_us > _PW_MAX
                or m.current_ma > _MA_MAX):
            return -2
        if m.current_ma:
            pw = max(m.pulse_width_us, _PW_MIN) / 1e6
            a = m.current_ma / 1e3
            self.single_record.add(t, m.channel, a, pw, GAP, a, pw,
                                   int(Waveform.SYMMETRIC_BIPHASIC))
        return 0
