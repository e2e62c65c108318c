"""Triggered stimulation: EMG-triggered, gait-triggered (drop foot), button and external.

A :class:`TriggeredStimulation` turns trigger requests into stimulation bursts on one channel
and renders them as :class:`~opennmes.schedule.PulseSchedule` chunks; the session runner
(``opennmes.session.TriggerDrive``) plays them on a device under the guard. Nothing here
touches a device: state in, decision or pulses out. A burst ramps up (from one period's
share of the ramp at its first pulse), holds, and ramps down when it is asked to end (or
when its ``on`` time or ``max_burst`` has passed). A trigger source that goes silent (no
sensor data for ``silence_timeout`` s) cancels any burst: the output is zero and the event
is recorded.

Device logic follows the reference (emg-gait-and-control.md §1.3 and §2; clinical-protocols
§3.1): EMG-triggered stimulation starts an assisting contraction when the patient's own EMG
crosses a threshold, then ignores the EMG for a refractory time (the stimulation artefact and
the evoked contraction would re-trigger it); drop-foot stimulators stimulate the common
peroneal nerve from foot-off (plus a delay) until initial contact plus an extension.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from opennmes.errors import NmesError
from opennmes.schedule import US_PER_S, PulseSchedule, round_us
from opennmes.stim import Channel

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.sensing import GaitEventDetector, HeelSwitchDetector, OnsetDetector
    from opennmes.signals import Signals

__all__ = ["TriggerEvent", "TriggeredStimulation", "EmgTrigger", "GaitTrigger"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TriggerEvent:
    """What happened to a triggered channel.

    ``kind``: ``burst`` (a burst started), ``ignored`` (a request during a burst or the
    refractory time), ``end`` (a burst was asked to end), ``timeout`` (``max_burst`` ended it),
    ``silent`` (the sensor went silent: output zero).
    """

    t: float
    kind: str
    source: str
    detail: str = ""


class TriggeredStimulation:
    """Bursts of one program channel started by triggers.

    Parameters
    ----------
    channel : Channel
        Its waveform, frequency, pulse width and amplitude define the pulses; ``ramp_up``,
        ``on`` and ``ramp_down`` define a burst (``on`` unset: the burst lasts until
        :meth:`end` or ``max_burst``).
    channel_names : tuple of str
        Channel names of the chunks produced (this channel must be one of them).
    refractory : float
        Time after a burst ends during which triggers are ignored, s.
    max_burst : float, optional
        Longest burst from its start, s (a safety stop for gait stimulation).
    silence_timeout : float, optional
        A sensor that sends nothing for this long cancels stimulation, s.
    grid_origin : float, optional
        Put pulses on the grid ``grid_origin + k / frequency`` (s) instead of starting each
        burst at its trigger: devices with a fixed period clock (RehaStim 2 channel-list mode)
        can only pulse on their grid. The first pulse then follows the trigger by up to one
        period.
    """

    def __init__(self, channel: Channel, channel_names: tuple[str, ...] | None = None, *,
                 refractory: float = 0.0, max_burst: float | None = None,
                 silence_timeout: float | None = None,
                 grid_origin: float | None = None) -> None:
        self.channel = channel
        self.channel_names = channel_names or (channel.name,)
        if channel.name not in self.channel_names:
            raise NmesError(f"channel {channel.name!r} is not in {self.channel_names}")
        if channel.on is None and max_burst is None:
            raise NmesError("a triggered burst needs the channel's 'on' time or max_burst")
        self.index = self.channel_names.index(channel.name)
        self.refractory = float(refractory)
        self.max_burst = max_burst
        self.silence_timeout = silence_timeout
        self.grid_origin = grid_origin
        self.events: list[TriggerEvent] = []
        self._start: float | None = None
        self._end: float | None = None  # time the ramp-down starts
        self._done_at = -math.inf  # end of the last burst (incl. ramp-down)
        self._seen: float | None = None
        self._silent = False
        self._rendered = -math.inf  # end of the last rendered window
        self._capped = False

    # ------------------------------------------------------------------ requests
    @property
    def active(self) -> bool:
        """True while a burst is on (including its ramps)."""
        return self._start is not None

    def trigger(self, t: float, source: str = "external") -> bool:
        """Start a burst at ``t`` s; False (and an ``ignored`` event) when one is running, in
        the refractory time, or the sensor is silent."""
        if self._silent:
            self.events.append(TriggerEvent(t, "ignored", source, "sensor silent"))
            return False
        if self._start is not None or t < self._done_at + self.refractory:
            self.events.append(TriggerEvent(t, "ignored", source,
                                            "burst running" if self._start is not None
                                            else "refractory"))
            return False
        self._start = t
        c = self.channel
        own = t + c.ramp_up + c.on if c.on is not None else math.inf
        cap = t + self.max_burst - c.ramp_down if self.max_burst is not None else math.inf
        self._end = min(own, cap)
        self._capped = cap < own - 1e-9  # max_burst, not the burst's own length, ends it
        self.events.append(TriggerEvent(t, "burst", source))
        return True

    def end(self, t: float, source: str = "external") -> None:
        """Ask the running burst to ramp down from ``t`` s (never later than already set)."""
        if self._start is None:
            return
        t = max(t, self._start)
        if self._end is None or t < self._end:
            self._end = t
            self.events.append(TriggerEvent(t, "end", source))

    def sensor_seen(self, t: float) -> None:
        """The trigger's sensor delivered data up to ``t`` s."""
        self._seen = t if self._seen is None else max(self._seen, t)
        if self._silent:
            self._silent = False
            log.info("trigger sensor is back at t = %.3f s", t)

    # ------------------------------------------------------------------ output
    def level_ahead(self, t: float) -> float:
        """Fraction (0-1) of the channel's amplitude that the running burst has one period
        after ``t`` s: what a streaming device should be set to at once when a burst starts,
        so that it plays from its next period slot (0 when no burst is on)."""
        if self._start is None or self._end is None or self._silent:
            return 0.0
        return float(self._factor(np.array([t + 1.0 / self.channel.frequency]))[0])

    def _factor(self, t: np.ndarray) -> np.ndarray:
        assert self._start is not None and self._end is not None
        c = self.channel
        tau = t - self._start
        # the ramp counts one period ahead, so the pulse at the trigger itself is already
        # above zero (a ramp from exactly 0 would drop that pulse and start a period late)
        per = 1.0 / c.frequency
        up = np.ones_like(t) if c.ramp_up <= 0 else np.minimum(1.0, (tau + per)
                                                               / (c.ramp_up + per))
        if c.ramp_down > 0:
            down = np.clip(1.0 - (t - self._end) / c.ramp_down, 0.0, 1.0)
        else:
            down = (t < self._end).astype(np.float64)
        return np.clip(np.minimum(up, down), 0.0, 1.0)

    def chunk(self, t0: float, t1: float) -> PulseSchedule:
        """The pulses with onset in ``[t0, t1)`` s (zero output when idle or silent).

        Windows are expected in time order; a window that overlaps the previous one only
        renders its new part, so no pulse is ever delivered twice.
        """
        t0 = max(t0, self._rendered)
        self._rendered = max(self._rendered, t1)
        if (self.silence_timeout is not None and self._seen is not None
                and t0 - self._seen > self.silence_timeout and not self._silent):
            self._silent = True
            self.events.append(TriggerEvent(t0, "silent", "watchdog",
                                            f"no sensor data for {t0 - self._seen:.3f} s"))
            log.warning("trigger sensor silent for %.3f s: output zero", t0 - self._seen)
            if self._start is not None:
                self._done_at = t0
            self._start = self._end = None
        if self._silent or self._start is None:
            return PulseSchedule.empty(self.channel_names)
        assert self._end is not None
        c = self.channel
        period_us = 1e6 / c.frequency
        base = self._start
        if self.grid_origin is not None:  # the device's period grid
            base = self.grid_origin + math.ceil(
                (self._start - self.grid_origin) * 1e6 / period_us - 1e-6) * period_us / 1e6
        # onsets are rounded to whole microseconds; membership of a chunk is decided on the
        # rounded onsets, so consecutive chunks neither lose nor repeat a pulse
        k0 = max(0, math.ceil((t0 - base) * 1e6 / period_us) - 1)
        stop = self._end + c.ramp_down
        k1 = math.ceil((min(t1, stop) - base) * 1e6 / period_us) + 1
        if min(t1, stop) <= t0:
            if t1 >= stop:
                self._finish(stop)
            return PulseSchedule.empty(self.channel_names)
        t = round_us(base * US_PER_S + np.arange(k0, k1) * period_us) / US_PER_S
        t = t[(t >= t0) & (t < t1)]
        f = self._factor(t)
        keep = (f > 1e-9) & (t < stop - 1e-9)  # the ramp ends at zero: no pulse at its end
        t, f = t[keep], f[keep]
        r_amp, r_w = c.second_phase
        n = t.shape[0]
        sched = PulseSchedule(
            t=t, channel=np.full(n, self.index, dtype=np.int16),
            amplitude=c.amplitude * f, phase_width=np.full(n, c.pulse_width_s),
            interphase_gap=np.full(n, c.interphase_gap), amplitude2=c.amplitude * f * r_amp,
            phase_width2=np.full(n, r_w), waveform=np.full(n, c.waveform_id, dtype=np.int8),
            channel_names=self.channel_names)
        if t1 >= stop:
            self._finish(stop)
        return sched

    def _finish(self, t: float) -> None:
        if self._start is not None and self._capped and self._end is not None \
                and not any(e.kind == "end" and e.t >= self._start for e in self.events):
            self.events.append(TriggerEvent(t, "timeout", "max_burst"))
        self._start = self._end = None
        self._done_at = t


class EmgTrigger:
    """EMG-triggered stimulation: an onset of the patient's own EMG starts a burst.

    Parameters
    ----------
    stimulation : TriggeredStimulation
    detector : opennmes.sensing.OnsetDetector
        Calibrated on rest EMG; its channel ``emg_channel`` triggers.
    emg_channel : str
    """

    def __init__(self, stimulation: TriggeredStimulation, detector: OnsetDetector,
                 emg_channel: str) -> None:
        self.stimulation = stimulation
        self.detector = detector
        self.emg_channel = emg_channel

    def feed(self, chunk: Signals) -> list[TriggerEvent]:
        """Process one EMG chunk; returns the trigger events it caused."""
        n_before = len(self.stimulation.events)
        self.stimulation.sensor_seen(chunk.t0 + chunk.duration)
        for ev in self.detector.update(chunk):
            if ev.channel == self.emg_channel and ev.kind == "onset":
                self.stimulation.trigger(ev.t_detected, source=f"emg:{ev.channel}")
        return self.stimulation.events[n_before:]


class GaitTrigger:
    """Drop-foot stimulation: from foot-off + ``delay`` to initial contact + ``extension``.

    Parameters
    ----------
    stimulation : TriggeredStimulation
        Its channel's ``on`` time (or ``max_burst``) caps a swing whose initial contact is
        missed.
    detector : opennmes.sensing.GaitEventDetector or opennmes.sensing.HeelSwitchDetector
        Finds foot-off and initial contact on one channel of the chunks fed.
    gyro_channel : str
        The channel the detector reads: sagittal shank angular velocity (rad/s), or the heel
        switch's signal.
    delay, extension : float
        s, as on drop-foot stimulators (CPS §3.1).
    """

    def __init__(self, stimulation: TriggeredStimulation,
                 detector: GaitEventDetector | HeelSwitchDetector, gyro_channel: str, *,
                 delay: float = 0.0, extension: float = 0.0) -> None:
        self.stimulation = stimulation
        self.detector = detector
        self.gyro_channel = gyro_channel
        self.delay = float(delay)
        self.extension = float(extension)

    def feed(self, chunk: Signals) -> list[TriggerEvent]:
        """Process one gyroscope chunk; returns the trigger events it caused."""
        n_before = len(self.stimulation.events)
        self.stimulation.sensor_seen(chunk.t0 + chunk.duration)
        for ev in self.detector.update(chunk, self.gyro_channel):
            if ev.kind == "foot_off":
                self.stimulation.trigger(ev.t_detected + self.delay, source="gait:foot_off")
            elif ev.kind == "initial_contact":
                self.stimulation.end(ev.t_detected + self.extension,
                                     source="gait:initial_contact")
        return self.stimulation.events[n_before:]
