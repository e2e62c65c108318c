"""``sim://``: a stimulator that plays schedules against a virtual patient.

It delivers every pulse exactly as scheduled (the limits are those of the ``sim`` safety
profile), in real time or on a :class:`VirtualClock`, and streams each played window with the
patient's response (force, joint angles, EMG) as :class:`Played` events and through
:meth:`SimStimulator.signals`. The patient is an injected dependency: any object with
``start(sfreq=..., seed=..., electrode_areas=...) -> stream`` whose stream has
``advance(chunk, until) -> Signals``; a preset name loads ``opennmes.physiology.get_preset``
lazily.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from opennmes.capabilities import DEVICE_CAPABILITIES
from opennmes.devices._base import Stimulator
from opennmes.devices._clock import Clock
from opennmes.devices._events import Played
from opennmes.errors import DeviceError, ProgramError
from opennmes.schedule import PulseSchedule
from opennmes.signals import Signals

__all__ = ["SimStimulator", "SFREQ_RANGE"]

SFREQ_RANGE = (1.0, 20_000.0)
"""Sampling rates (Hz) of the virtual patient's signals that ``sim://`` accepts: from slow
force and joint-angle traces up to ten times the EMG band (a higher rate only costs memory)."""
_SEED_MAX = 2**32 - 1
_FLAGS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}


def _sfreq(url: str, value: float | str | None) -> float | None:
    if value is None:
        return None
    lo, hi = SFREQ_RANGE
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise DeviceError(f"{url}: sfreq = {value!r} is not a number; give the sampling rate "
                          f"in Hz, {lo:g} to {hi:g}") from None
    if not (math.isfinite(f) and lo <= f <= hi):
        raise DeviceError(f"{url}: sfreq = {value!r} Hz is outside the allowed range "
                          f"{lo:g} to {hi:g} Hz")
    return f


def _seed(url: str, value: int | str | None) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise DeviceError(f"{url}: seed = {value!r} is not a whole number; give 0 to "
                          f"{_SEED_MAX}") from None
    if not 0 <= n <= _SEED_MAX:
        raise DeviceError(f"{url}: seed = {value!r} is outside the allowed range 0 to "
                          f"{_SEED_MAX}")
    return n


def _flag(url: str, name: str, value: str) -> bool:
    key = str(value).strip().lower()
    if key not in _FLAGS:
        raise DeviceError(f"{url}: {name} = {value!r} must be one of 1, 0, true, false, yes, "
                          "no, on, off")
    return _FLAGS[key]


class SimStimulator(Stimulator):
    """The simulated stimulator.

    Parameters
    ----------
    url : str
    preset : str, optional
        Virtual patient preset (``opennmes.physiology.PRESETS``), e.g. ``healthy-adult``.
    patient : object, optional
        A virtual patient object (instead of a preset).
    clock : Clock, optional
        :class:`VirtualClock` for faster than real time.
    options : mapping of str to str, optional
        URL query options: ``sfreq`` (Hz, required with a patient), ``seed``, ``emg`` (0/1).
    sfreq : float, optional
        Sampling rate of the patient's signals, in Hz (overrides ``options``); within
        ``SFREQ_RANGE``.
    seed : int, optional
        Seed of the patient's EMG noise, 0 to 2**32 - 1.

    Raises
    ------
    DeviceError
        An unknown option, or a value outside its range (the message names the option, the
        value and the range), before anything is opened or recorded.
    """

    kind = "sim"
    capabilities = DEVICE_CAPABILITIES["sim"]
    accepts_virtual_clock = True

    def __init__(self, url: str, *, preset: str | None = None, patient: Any = None,
                 clock: Clock | None = None, options: Mapping[str, str] | None = None,
                 sfreq: float | None = None, seed: int | None = None) -> None:
        super().__init__(url, clock=clock)
        opts = dict(options or {})
        unknown = set(opts) - {"sfreq", "seed", "emg"}
        if unknown:
            raise DeviceError(f"{url}: unknown sim:// options {sorted(unknown)}; "
                              "known: sfreq, seed, emg")
        if patient is None and preset:
            from opennmes.physiology import get_preset

            patient = get_preset(preset)
        self.patient = patient
        self.sfreq = _sfreq(url, sfreq if sfreq is not None else opts.get("sfreq"))
        self.seed = _seed(url, seed if seed is not None else opts.get("seed"))
        self.emg = _flag(url, "emg", opts.get("emg", "1"))
        if self.patient is not None and self.sfreq is None:
            raise DeviceError(f"{url}: a virtual patient needs a sampling rate; add "
                              "?sfreq=1000 (Hz) to the URL or pass sfreq=")
        self._stream: Any = None
        self._played: list[PulseSchedule] = []
        self._signals: list[Signals] = []
        self._window_end = 0.0
        self._end_rel: float | None = None
        self._override: dict[int, tuple[float, float]] = {}  # ch -> (old amp, new amp)
        self._last_amp: dict[int, float] = {}
        self._carry: PulseSchedule | None = None

    # ------------------------------------------------------------------ lifecycle hooks
    def _open(self) -> None:
        pass

    def _close(self) -> None:
        self._stream = None

    def _configure(self, program: Any, names: tuple[str, ...], cmap: dict[str, int]) -> None:
        pass

    def _start(self) -> None:
        self._played, self._signals = [], []
        self._window_end, self._end_rel = 0.0, None
        self._override, self._last_amp = {}, {}
        self._carry = None
        if self.patient is not None:
            areas = {c.name: c.electrode.area_m2 for c in self._program.channels}
            kwargs: dict[str, Any] = {"sfreq": self.sfreq, "seed": self.seed}
            try:
                self._stream = self.patient.start(electrode_areas=areas, emg=self.emg,
                                                  **kwargs)
            except TypeError:
                self._stream = self.patient.start(**kwargs)

    def _prepare(self, chunk: PulseSchedule) -> PulseSchedule:
        """A set_intensity applies to the pulses of the chunks that follow it, before the
        guard sees them: the guard judges what will play."""
        if not self._override or not len(chunk):
            return chunk
        amp, amp2 = chunk.amplitude.copy(), chunk.amplitude2.copy()
        for ch, (old, new) in list(self._override.items()):
            idx = np.flatnonzero(chunk.channel == ch)
            for i in idx:
                if abs(amp[i] - old) > 1e-12:  # the stream changed this channel: it wins
                    del self._override[ch]
                    break
                if old > 0:
                    amp[i], amp2[i] = new, amp2[i] * new / old
                else:  # from zero: the second phase as the program's pulse shape has it
                    f2 = float(self._program.channels[ch].second_phase[0])
                    amp[i], amp2[i] = new, new * f2
        return PulseSchedule(t=chunk.t, channel=chunk.channel, amplitude=amp,
                             phase_width=chunk.phase_width, interphase_gap=chunk.interphase_gap,
                             amplitude2=amp2, phase_width2=chunk.phase_width2,
                             waveform=chunk.waveform, channel_names=chunk.channel_names)

    def _deliver(self, chunk: PulseSchedule, until: float | None) -> None:
        start = self._window_end
        if self._carry is not None:
            chunk = PulseSchedule.concat([self._carry, chunk])
            self._carry = None
        if until is not None:
            until = round(until, 9)
            later = chunk.t >= until - 1e-12  # the next window's pulses wait for it
            if later.any():
                self._carry = chunk.take(np.flatnonzero(later))
                chunk = chunk.take(np.flatnonzero(~later))
        if len(chunk) and chunk.t[0] < start - 1e-12:
            raise ProgramError(f"pulse at t = {chunk.t[0]:.6f} s is before the end of the "
                               f"previous chunk ({start:.6f} s); send chunks in time order")
        if until is None:
            until = float(np.max(chunk.t + chunk.pulse_duration)) if len(chunk) else start
        if until < start or (len(chunk) and chunk.t[-1] >= until):
            raise ProgramError(f"until = {until} s must be after the chunk's last pulse and "
                               f"not before {start} s")
        if self._t0 is None:
            self._t0 = self.clock.now()
        played = chunk  # intensity overrides were applied before the guard (_prepare)
        for i in range(len(played.channel_names)):
            idx = np.flatnonzero(played.channel == i)
            if idx.size:
                self._last_amp[i] = float(played.amplitude[idx[-1]])
        signals = self._stream.advance(played, until) if self._stream is not None else None
        self.clock.sleep_until(self._t0 + until)
        self._played.append(played)
        if signals is not None:
            self._signals.append(signals)
        self._window_end = until
        self._post(Played(self.clock.now(), self.kind, until, start=start, until=until,
                          pulses=played, signals=signals))

    def _set_intensity(self, channel: str, amplitude: float) -> None:
        i = self._channel_names.index(channel)
        if i not in self._last_amp:
            raise DeviceError(f"set_intensity({channel!r}): the channel has not pulsed yet; "
                              "deliver a chunk first")
        # the override is applied to the next chunks before the guard judges them (_prepare)
        self._override[i] = (self._last_amp[i], float(amplitude))

    def _single_pulse(self, device_channel: int, amplitude: float, phase_width: float) -> None:
        pass  # recorded by the base class; the patient is not stepped between schedules

    def _stop(self) -> None:
        if self._end_rel is None and self._t0 is not None:
            self._end_rel = self._window_end

    def _delivered(self) -> PulseSchedule:
        if not self._played:
            return PulseSchedule.empty(self._channel_names)
        return PulseSchedule.concat(self._played)

    # ------------------------------------------------------------------ results
    def signals(self) -> Signals | None:
        """The patient's response since :meth:`start`, one Signals (None without a patient)."""
        if not self._signals:
            return None
        first = self._signals[0]
        data = np.concatenate([s.data for s in self._signals], axis=1)
        return Signals(data, first.sfreq, first.names, first.units, first.t0)

    @property
    def window_end(self) -> float:
        """End of the last played window, in s (relative to the start)."""
        return self._window_end if math.isfinite(self._window_end) else 0.0
