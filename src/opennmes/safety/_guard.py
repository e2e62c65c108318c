"""The runtime safety guard: every schedule chunk passes :meth:`SafetyGuard.check` before any
device sees it.

The checks are vectorised over the chunk. The guard keeps the last second of pulses (and the
last onset per channel) so that a stream of chunks is judged exactly as the whole schedule.
A refused chunk raises :class:`~opennmes.errors.SafetyLimitError` naming the first offending
pulse, the parameter, its value, the limit and its source.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from opennmes.errors import SafetyLimitError
from opennmes.safety._dose import (
    RMS_WINDOW,
    channel_areas,
    energy_per_pulse,
    phase_charges,
    sliding_rms_current,
)
from opennmes.safety._limits import LOAD_OHM, Limit, LimitProfile
from opennmes.schedule import WAVEFORM_NAMES, PulseSchedule, Waveform

__all__ = ["SafetyGuard", "Violation", "AcknowledgementLike"]

log = logging.getLogger(__name__)

_WAVEFORM_LABEL = {int(w): n for n, w in WAVEFORM_NAMES.items()}


class AcknowledgementLike(Protocol):
    """Anything with the advisory ``limit`` key, a ``reason`` and who gave it (``by``)."""

    limit: str
    reason: str
    by: str | None


MIN_REASON_WORDS = 3
"""An acknowledgement's reason has at least this many words..."""
MIN_REASON_LETTERS = 12
"""...and at least this many letters: 'ok.' or 'because' is not a reason (OpenNMES rule)."""


def reason_problem(reason: str | None) -> str | None:
    """Why ``reason`` is not a real reason for lifting a limit, or None when it is."""
    text = (reason or "").strip()
    words = [w for w in text.split() if any(ch.isalpha() for ch in w)]
    letters = sum(ch.isalpha() for ch in text)
    if len(words) < MIN_REASON_WORDS or letters < MIN_REASON_LETTERS:
        return (f"say why in at least {MIN_REASON_WORDS} words and {MIN_REASON_LETTERS} "
                f"letters (got {text!r})")
    return None


@dataclass(frozen=True)
class Violation:
    """A limit broken by a schedule.

    Attributes
    ----------
    limit : Limit
    index : int
        First offending pulse (row of the checked chunk).
    t : float
        Its onset, in s.
    channel : str
    value : float
        Its value (SI).
    worst : float
        The worst value over the chunk (SI).
    count : int
        How many pulses break the limit.
    """

    limit: Limit
    index: int
    t: float
    channel: str
    value: float
    worst: float
    count: int

    def error(self) -> SafetyLimitError:
        """The SafetyLimitError that describes this violation."""
        lim = self.limit
        where = f"channel {self.channel!r}, pulse {self.index} at t = {self.t:.6f} s"
        bound = lim.maximum if self._above else lim.minimum
        if bound is None:  # a categorical limit (the waveform)
            return SafetyLimitError(
                lim.parameter, float("nan"), float("nan"), "", lim.source, where=where,
                hint=lim.hint,
                message=f"{where}: {lim.parameter} is not allowed ({lim.source}); {lim.hint}"
                        f" ({self.count} pulses)")
        extra = ""
        if self.count > 1:
            extra = f" ({self.count} pulses, worst {self.worst * lim.scale:.4g} {lim.unit})"
        return SafetyLimitError(
            lim.parameter,
            self.value * lim.scale,
            bound * lim.scale,
            lim.unit,
            f"{lim.severity} limit, {lim.source}",
            where=where,
            hint=lim.hint + extra,
            comparison="<=" if self._above else ">=",
        )

    @property
    def _above(self) -> bool:
        lim = self.limit
        return lim.maximum is not None and (lim.minimum is None or self.value > lim.maximum)

    def __str__(self) -> str:
        return str(self.error())


def _bound(lim: Limit) -> tuple[float, str]:
    """A limit's bound in its display unit and as text (``<= 20 mA/cm2``); NaN and ``""`` for
    a categorical limit (the waveform)."""
    for cmp, value in (("<=", lim.maximum), (">=", lim.minimum)):
        if value is not None:
            shown = value * lim.scale
            return shown, f"{cmp} {shown:.4g} {lim.unit}".rstrip()
    return float("nan"), ""


class SafetyGuard:
    """Checks schedule chunks against a limit profile, for one set of electrodes.

    Parameters
    ----------
    profile : LimitProfile
        Usually ``device_profile(name)`` of the device that will play the chunks.
    electrode_areas : Mapping[str, float]
        Electrode area of every channel, in m^2, by channel name.
    acknowledgements : iterable
        Objects with ``limit`` and ``reason`` (e.g. ``Program.acknowledgements``) that lift
        advisory limits. Hard limits cannot be acknowledged.
    ceilings : mapping, optional
        Per channel, the largest first- and second-phase amplitude (A) a pulse may have: the
        program's own amplitude (:meth:`for_program`). A pulse above it breaks the hard limit
        ``ceiling``.

    Examples
    --------
    >>> guard = SafetyGuard(device_profile("sim"), {"ch1": 45e-4})
    >>> guard.check(chunk)   # raises SafetyLimitError, or returns None
    """

    def __init__(
        self,
        profile: LimitProfile,
        electrode_areas: Mapping[str, float],
        acknowledgements: Iterable[AcknowledgementLike] = (),
        ceilings: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.profile = profile
        self.electrode_areas = dict(electrode_areas)
        self.ceilings = dict(ceilings or {})
        self.acknowledged: dict[str, str] = {}
        for ack in acknowledgements:
            try:
                lim = profile.get(ack.limit)
            except KeyError:
                advisories = [x.key for x in profile.limits if x.severity == "advisory"]
                raise SafetyLimitError(
                    "acknowledgement", float("nan"), float("nan"), "", profile.name,
                    message=f"acknowledgement names unknown limit {ack.limit!r}; advisory "
                            f"limits that can be acknowledged: {advisories}") from None
            # no value is at stake here, only the acknowledgement: the message names the
            # limit, its bound and its source (the NaN value is never printed)
            where = f"acknowledgement of {ack.limit!r}"
            bound, text = _bound(lim)
            what = f"{lim.parameter} (limit {text}; {lim.source})"
            if lim.severity == "hard":
                hint = "a hard limit cannot be acknowledged; change the program"
                raise SafetyLimitError(
                    lim.parameter, float("nan"), bound, lim.unit, lim.source, where=where,
                    hint=hint, message=f"{where}: {what} is a hard limit; {hint}")
            problem = reason_problem(ack.reason)
            if problem is not None:
                hint = problem
                raise SafetyLimitError(
                    lim.parameter, float("nan"), bound, lim.unit, lim.source, where=where,
                    hint=hint, message=f"{where}: lifting {what} needs a reason; {hint}")
            by = (getattr(ack, "by", None) or "").strip()
            if not by:
                hint = "say who decided it (by: NAME or role)"
                raise SafetyLimitError(
                    lim.parameter, float("nan"), bound, lim.unit, lim.source, where=where,
                    hint=hint, message=f"{where}: lifting {what} needs who decided it; {hint}")
            self.acknowledged[ack.limit] = f"{ack.reason.strip()} (by {by})"
        self._history: PulseSchedule | None = None
        self._last_end: dict[int, tuple[float, float]] = {}  # channel -> (onset, duration)
        self.pulses_checked = 0

    # ------------------------------------------------------------------ evaluation
    def _active(self) -> list[Limit]:
        return [lim for lim in self.profile.limits
                if lim.severity != "warning" and lim.key not in self.acknowledged]

    def evaluate(self, chunk: PulseSchedule, *, commit: bool = False) -> list[Violation]:
        """Every limit the chunk breaks (one Violation per limit), earliest pulse first.

        With ``commit`` and no violation, the chunk becomes history for the next call.
        """
        if self._history is not None and chunk.channel_names != self._history.channel_names:
            where = f"chunk channels {chunk.channel_names}"
            hint = "chunks of one stream must keep the same channels"
            raise SafetyLimitError(
                "channels", float("nan"), float("nan"), "", "guard state", where=where,
                hint=hint, message=f"{where} differ from the stream's "
                                   f"{self._history.channel_names}; {hint}")
        n = len(chunk)
        if n == 0:
            return []
        if self._history is not None and len(self._history) and \
                chunk.t[0] < self._history.t[-1]:
            raise SafetyLimitError(
                "chunk start", float(chunk.t[0]), float(self._history.t[-1]), "s",
                "the guard judges pulses in time order",
                where="chunk", hint="send chunks in time order", comparison=">=")
        limits = {lim.key: lim for lim in self._active()}
        found: list[Violation] = []
        bad_wf = ~np.isin(chunk.waveform, np.fromiter(self.profile.waveforms, dtype=np.int8))
        if bad_wf.any():
            i = int(np.argmax(bad_wf))
            allowed = sorted(_WAVEFORM_LABEL[w] for w in self.profile.waveforms)
            wf_lim = Limit("waveform", f"waveform {_WAVEFORM_LABEL[int(chunk.waveform[i])]!r}",
                           None, "", 1.0, "hard", self.profile.source or self.profile.name,
                           minimum=None, hint=f"{self.profile.name} delivers only {allowed}")
            found.append(Violation(wf_lim, i, float(chunk.t[i]),
                                   chunk.channel_names[chunk.channel[i]], float("nan"),
                                   float("nan"), int(bad_wf.sum())))
        if self.ceilings:
            found += self._above_ceiling(chunk)
        # each quantity is computed, judged and dropped in turn, to keep memory low
        rms: np.ndarray | None = None
        area: np.ndarray | None = None
        intervals: tuple[np.ndarray, np.ndarray] | None = None
        for key, lim in limits.items():
            if key == "amplitude":
                v = np.maximum(chunk.amplitude, chunk.amplitude2)
            elif key == "phase_width":
                v = np.maximum(chunk.phase_width, chunk.phase_width2)
            elif key == "energy_per_pulse":
                v = energy_per_pulse(chunk, LOAD_OHM)
            elif key == "charge_per_phase":
                q1, q2 = phase_charges(chunk)
                v = np.maximum(q1, q2)
                del q1, q2
            elif key == "peak_current_density":
                if area is None:
                    area = channel_areas(chunk, self.electrode_areas)
                v = np.maximum(chunk.amplitude, chunk.amplitude2) / area
            elif key in ("charge_imbalance", "net_dc"):
                q1, q2 = phase_charges(chunk)
                mono = chunk.waveform == Waveform.MONOPHASIC
                if key == "net_dc":
                    v = np.where(mono, q1, 0.0)
                else:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        v = np.where(mono | (q1 == 0), 0.0, np.abs(q1 - q2) / q1)
                del q1, q2
            elif key in ("pulse_rate", "pulse_overlap"):
                if intervals is None:
                    intervals = self._intervals(chunk)
                interval, prev_dur = intervals
                with np.errstate(divide="ignore", invalid="ignore"):
                    if key == "pulse_rate":
                        v = np.where(interval > 0, 1.0 / interval,
                                     np.where(np.isnan(interval), 0.0, np.inf))
                    else:
                        v = np.where(np.isnan(interval), 0.0,
                                     np.where(interval > 0, (prev_dur - 1e-9) / interval,
                                              np.inf))
            elif key in ("rms_current_density", "power_density"):
                if rms is None:
                    if area is None:
                        area = channel_areas(chunk, self.electrode_areas)
                    rms = sliding_rms_current(chunk, RMS_WINDOW, history=self._history)
                assert area is not None
                v = rms / area if key == "rms_current_density" else rms**2 * LOAD_OHM / area
            else:
                continue
            bad = np.zeros(n, dtype=bool)
            if lim.maximum is not None:
                bad |= v > lim.maximum * (1 + 1e-9)
            if lim.minimum is not None:
                bad |= v < lim.minimum * (1 - 1e-9)
            if bad.any():
                i = int(np.argmax(bad))
                worst = float(np.max(v[bad])) if lim.maximum is not None and \
                    v[i] > lim.maximum else float(np.min(v[bad]))
                found.append(Violation(lim, i, float(chunk.t[i]),
                                       chunk.channel_names[chunk.channel[i]], float(v[i]),
                                       worst, int(bad.sum())))
            del v, bad
        found.sort(key=lambda x: x.index)
        if commit and not found:
            self._remember(chunk)
        return found

    def _above_ceiling(self, chunk: PulseSchedule) -> list[Violation]:
        """Pulses above their channel's program amplitude (first or second phase)."""
        out = []
        for i, name in enumerate(chunk.channel_names):
            if name not in self.ceilings:
                continue
            top1, top2 = self.ceilings[name]
            m = chunk.channel == i
            over = m & ((chunk.amplitude > top1 * (1 + 1e-9) + 1e-12)
                        | (chunk.amplitude2 > top2 * (1 + 1e-9) + 1e-12))
            if over.any():
                k = int(np.argmax(over))
                lim = Limit("ceiling", "pulse amplitude above the program's", top1, "mA", 1e3,
                            "hard", f"the program's amplitude for {name!r}, its ceiling",
                            hint="lower the intensity, or change the program")
                out.append(Violation(lim, k, float(chunk.t[k]), name,
                                     float(chunk.amplitude[k]),
                                     float(chunk.amplitude[over].max()), int(over.sum())))
        return out

    def _intervals(self, chunk: PulseSchedule) -> tuple[np.ndarray, np.ndarray]:
        """Interval from the previous pulse on the same channel, and that pulse's duration."""
        n = len(chunk)
        interval = np.full(n, np.nan)
        prev_dur = np.zeros(n)
        dur = chunk.pulse_duration
        for ch in np.unique(chunk.channel):
            idx = np.flatnonzero(chunk.channel == ch)
            t = chunk.t[idx]
            iv = np.empty(idx.shape[0])
            pd_ = np.empty(idx.shape[0])
            iv[1:] = np.diff(t)
            pd_[1:] = dur[idx[:-1]]
            last = self._last_end.get(int(ch))
            if last is None:
                iv[0] = np.nan
                pd_[0] = 0.0
            else:
                iv[0] = t[0] - last[0]
                pd_[0] = last[1]
            interval[idx] = iv
            prev_dur[idx] = pd_
        return interval, prev_dur

    def _remember(self, chunk: PulseSchedule) -> None:
        self.pulses_checked += len(chunk)
        for ch in np.unique(chunk.channel):
            i = int(np.flatnonzero(chunk.channel == ch)[-1])
            self._last_end[int(ch)] = (float(chunk.t[i]), float(chunk.pulse_duration[i]))
        full = chunk if self._history is None else PulseSchedule.concat([self._history, chunk])
        self._history = full.window(float(chunk.t[-1]) - RMS_WINDOW, np.inf)

    # ------------------------------------------------------------------ the gate
    def check(self, chunk: PulseSchedule) -> None:
        """Pass the chunk or raise SafetyLimitError naming its first offending pulse.

        A passed chunk becomes part of the guard's history (for rms windows and intervals).
        """
        found = self.evaluate(chunk, commit=True)
        if found:
            v = found[0]
            log.warning("safety guard refused a chunk: %s", v)
            raise v.error()

    def reset(self) -> None:
        """Forget the history (a new stream starts, e.g. after a stop)."""
        self._history = None
        self._last_end.clear()

    @classmethod
    def for_program(cls, program: object, profile: LimitProfile) -> SafetyGuard:
        """A guard for a :class:`~opennmes.stim.Program`: its electrodes and acknowledgements."""
        channels: Sequence[Any] = program.channels  # type: ignore[attr-defined]
        areas = {c.name: c.electrode.area_m2 for c in channels}
        ceilings = {c.name: (float(c.amplitude), float(c.amplitude) * float(c.second_phase[0]))
                    for c in channels}
        return cls(profile, areas, program.acknowledgements,  # type: ignore[attr-defined]
                   ceilings)
