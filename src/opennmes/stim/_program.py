"""The stimulation program: channels, electrodes, pulse shapes, trains, envelopes and phases.

A :class:`Program` is an immutable, validated value object. Values are SI floats inside; program
files carry units (see :mod:`opennmes.stim._files`). ``program.expand()`` gives the
:class:`~opennmes.stim.PulseSchedule` that is delivered.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from opennmes.schedule import WAVEFORM_NAMES, PulseSchedule
from opennmes.stim._quantities import Amperes, Fraction, Hertz, Metres, Seconds, SquareMetres
from opennmes.units import format_quantity

__all__ = [
    "Electrode",
    "Modulation",
    "Train",
    "Trigger",
    "TRIGGER_SOURCES",
    "Channel",
    "Phase",
    "Timing",
    "Acknowledgement",
    "Program",
    "MAX_CHANNELS",
    "MAX_PROGRAM_DURATION",
    "MAX_PROGRAM_PULSES",
    "PROGRAM_FREQUENCY_RANGE",
    "PROGRAM_LIMITS_SOURCE",
]

MAX_CHANNELS = 16

# Size limits of a program, checked on construction, before anything is expanded (a program
# file could otherwise ask for 10 million repetitions or a 1e9 s plateau and exhaust memory
# while its pulse schedule is built). Rationale in docs/program-format.md#limits.
#: Where the size limits come from (quoted in their error messages).
PROGRAM_LIMITS_SOURCE = "OpenNMES program limit, docs/program-format.md#limits"
#: Longest program, in s (24 h). A program is one session: NMES sessions last minutes to an
#: hour, TENS and drop-foot FES are worn for at most a waking day; longer use is a series of
#: sessions, each checked and recorded. Also the longest time any single program field
#: (on, off, ramps, delays, phase durations, trigger times) may give.
MAX_PROGRAM_DURATION = 24 * 3600.0
#: Most pulses one program may expand to, all channels and phases together. The expansion and
#: the safety check hold about 160 bytes per pulse at their peak (10 million pulses: 1.6 GB);
#: the largest protocol of the library has about 0.6 million, an 8-hour two-channel TENS at
#: 100 Hz 5.8 million.
MAX_PROGRAM_PULSES = 10_000_000
#: Pulse rates a program may give (channel, phase, burst and modulated frequencies), in Hz;
#: the periods between 1/max and 1/min (variable-train intervals) follow from it. Below
#: 0.01 Hz (one pulse per 100 s) no stimulation protocol exists; above 100 kHz a period spans
#: fewer than 10 steps of the whole-microsecond grid pulses are placed on. The safety
#: profiles' own pulse-rate limits (10 kHz, or the device's) still apply on top.
PROGRAM_FREQUENCY_RANGE = (0.01, 100_000.0)
TriggerSource = Literal["emg", "gait", "button", "external"]
#: Sources a channel's trigger can have (see :class:`Trigger`).
TRIGGER_SOURCES: tuple[str, ...] = get_args(TriggerSource)
#: Default sensor-silence timeout of the sensor-driven trigger sources (emg, gait), in s.
SENSOR_SILENCE_TIMEOUT = 0.5

WaveformName = Literal["monophasic", "symmetric-biphasic", "asymmetric-biphasic", "sine"]
Side = Literal["left", "right", "bilateral", "midline"]


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h"


def _session_time(value: float, info: ValidationInfo) -> float:
    """A time of a program: finite and no longer than one program."""
    name = info.field_name or "time"
    if not math.isfinite(value):
        raise ValueError(f"{name} = {value!r} s: must be a finite time")
    if value > MAX_PROGRAM_DURATION:
        raise ValueError(
            f"{name} = {value:.4g} s breaks the limit <= {MAX_PROGRAM_DURATION:g} s "
            f"({_hours(MAX_PROGRAM_DURATION)}, the longest program; MAX_PROGRAM_DURATION, "
            f"{PROGRAM_LIMITS_SOURCE}); run longer use as several sessions")
    return value


def check_rate(value: float, name: str) -> float:
    """``value`` (Hz) if it lies in :data:`PROGRAM_FREQUENCY_RANGE`, else ValueError."""
    lo, hi = PROGRAM_FREQUENCY_RANGE
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} = {value!r} Hz: must be a finite frequency > 0 Hz")
    if not lo <= value <= hi:
        cmp, bound = (">=", lo) if value < lo else ("<=", hi)
        raise ValueError(f"{name} = {value:.4g} Hz breaks the limit {cmp} {bound:g} Hz "
                         f"(PROGRAM_FREQUENCY_RANGE {lo:g} Hz to {hi:g} Hz, "
                         f"{PROGRAM_LIMITS_SOURCE})")
    return value


def _rate(value: float, info: ValidationInfo) -> float:
    return check_rate(value, info.field_name or "frequency")


def _period(value: float, info: ValidationInfo) -> float:
    """A time between pulses: the inverse of a rate in PROGRAM_FREQUENCY_RANGE."""
    lo, hi = 1.0 / PROGRAM_FREQUENCY_RANGE[1], 1.0 / PROGRAM_FREQUENCY_RANGE[0]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"interval = {value!r} s: every interval must be a finite time > 0 s")
    if not lo * (1 - 1e-12) <= value <= hi * (1 + 1e-12):
        cmp, bound = (">=", lo) if value < lo else ("<=", hi)
        raise ValueError(f"interval = {value:.4g} s breaks the limit {cmp} "
                         f"{format_quantity(bound, 'time')} (the periods of "
                         f"PROGRAM_FREQUENCY_RANGE {PROGRAM_FREQUENCY_RANGE[0]:g} Hz to "
                         f"{PROGRAM_FREQUENCY_RANGE[1]:g} Hz, {PROGRAM_LIMITS_SOURCE})")
    return value


#: A time of a program, in s: at most MAX_PROGRAM_DURATION (files: ``10 s``).
Time = Annotated[Seconds, AfterValidator(_session_time)]
#: A pulse or burst rate, in Hz, within PROGRAM_FREQUENCY_RANGE (files: ``35 Hz``).
Rate = Annotated[Hertz, AfterValidator(_rate)]
#: A time between two pulses, in s, the inverse of a Rate (files: ``50 ms``).
Period = Annotated[Seconds, AfterValidator(_period)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Electrode(_Frozen):
    """An electrode (or electrode pair) of a channel.

    Parameters
    ----------
    area : float, optional
        Conductive area of the smaller electrode of the pair, in m^2 (files: ``80 cm2``).
        Current density is computed on it. Give ``area`` or both ``width`` and ``height``.
    width, height : float, optional
        Size of a rectangular electrode, in m (files: ``5 cm``).
    site : str
        Body site, e.g. ``quadriceps``, ``tibialis anterior``, ``anterior neck``; used by the
        contraindication screening (see ``opennmes.safety.SITES``).
    side : {"left", "right", "bilateral", "midline"}, optional
    muscle : str, optional
        Target muscle when it differs from the site.
    placement : str, optional
        Placement id or picture reference, e.g. ``vm-motor-point``.
    """

    area: SquareMetres | None = None
    width: Metres | None = None
    height: Metres | None = None
    site: str
    side: Side | None = None
    muscle: str | None = None
    placement: str | None = None

    @model_validator(mode="after")
    def _area(self) -> Electrode:
        if self.area is None:
            if self.width is None or self.height is None:
                raise ValueError("give the electrode area (e.g. '45 cm2') or width and height")
            object.__setattr__(self, "area", self.width * self.height)
        if not (self.area and self.area > 0):
            raise ValueError(f"electrode area must be > 0, got {self.area} m2")
        if not self.site.strip():
            raise ValueError("electrode site must not be empty")
        return self

    @property
    def area_m2(self) -> float:
        """Electrode area in m^2 (always set after validation)."""
        assert self.area is not None
        return self.area


class Modulation(_Frozen):
    """Periodic modulation of one pulse parameter (TENS modulated modes, against habituation).

    The parameter sweeps linearly from ``low`` to ``high`` in the first half of each ``period``
    and back in the second half (triangle). ``low``/``high`` are in the parameter's own
    dimension: hertz for ``frequency``, seconds for ``pulse_width``, a fraction of the channel
    amplitude for ``amplitude`` (files: ``50 %``).
    """

    parameter: Literal["frequency", "amplitude", "pulse_width"]
    low: str | float
    high: str | float
    period: Time

    @model_validator(mode="after")
    def _values(self) -> Modulation:
        from opennmes.units import parse_quantity

        dim = {"frequency": "frequency", "pulse_width": "time", "amplitude": "ratio"}[
            self.parameter
        ]
        for name in ("low", "high"):
            v = getattr(self, name)
            val = parse_quantity(v, dim, name=name) if isinstance(v, str) else float(v)
            if not (math.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be > 0, got {v!r}")
            if self.parameter == "frequency":
                check_rate(val, name)
            object.__setattr__(self, name, val)
        shortest = 1.0 / PROGRAM_FREQUENCY_RANGE[1]
        if not self.period >= shortest:
            raise ValueError(f"period = {self.period:.4g} s breaks the limit >= {shortest:g} s "
                             f"(one period at the highest rate of PROGRAM_FREQUENCY_RANGE, "
                             f"{PROGRAM_LIMITS_SOURCE})")
        if self.parameter == "amplitude" and max(float(self.low), float(self.high)) > 1.0:
            raise ValueError("amplitude modulation is a fraction of the amplitude: <= 100 %")
        return self


class Train(_Frozen):
    """How pulses follow each other within a contraction.

    kind
        ``constant``: one pulse every ``1/frequency``.
        ``doublet``: ``doublets: initial`` starts the train with two pulses ``doublet_interval``
        apart, then continues at ``frequency`` (variable-frequency train); ``doublets: all``
        puts a doublet at every period (doublet-frequency train).
        ``variable``: the inter-pulse ``intervals`` repeat in order.
        ``burst``: bursts at ``burst_frequency``; inside a burst, pulses (or sine cycles) at the
        channel ``frequency`` for ``burst_duty`` of the burst period or ``pulses_per_burst``
        pulses (Russian current: 2500 Hz sine carrier, 50 Hz bursts, duty 50 %).
        ``modulated``: the ``modulation`` list sweeps frequency, amplitude and/or pulse width.
    """

    kind: Literal["constant", "doublet", "variable", "burst", "modulated"] = "constant"
    doublet_interval: Time | None = None
    doublets: Literal["initial", "all"] = "initial"
    intervals: list[Period] | None = None
    burst_frequency: Rate | None = None
    burst_duty: Fraction | None = None
    pulses_per_burst: int | None = None
    modulation: list[Modulation] | None = None

    @model_validator(mode="after")
    def _kind(self) -> Train:
        k = self.kind
        if k == "doublet":
            if self.doublet_interval is None or self.doublet_interval <= 0:
                raise ValueError("a doublet train needs doublet_interval > 0 (e.g. '5 ms')")
        if k == "variable" and not self.intervals:
            raise ValueError("a variable train needs a list of intervals (e.g. ['5 ms', '50 ms'])")
        if k == "variable" and self.intervals and min(self.intervals) <= 0:
            raise ValueError("every interval must be > 0 s")
        if k == "burst":
            if self.burst_frequency is None or self.burst_frequency <= 0:
                raise ValueError("a burst train needs burst_frequency > 0 (e.g. '50 Hz')")
            if (self.burst_duty is None) == (self.pulses_per_burst is None):
                raise ValueError("a burst train needs exactly one of burst_duty or "
                                 "pulses_per_burst")
            if self.burst_duty is not None and not 0 < self.burst_duty <= 1:
                raise ValueError(f"burst_duty must be in (0, 100 %], got {self.burst_duty}")
            if self.pulses_per_burst is not None and self.pulses_per_burst < 1:
                raise ValueError("pulses_per_burst must be >= 1")
        if k == "modulated" and not self.modulation:
            raise ValueError("a modulated train needs a modulation list")
        return self

def _s(value: float | None) -> str:
    """A time for an error message."""
    return "None" if value is None else f"{value:g} s"


class Trigger(_Frozen):
    """What starts (and, for gait, ends) the bursts of a triggered channel (functional
    stimulation).

    A triggered channel is silent until its trigger fires; each trigger gives one burst with the
    channel's pulses and envelope: ``ramp_up``, then the plateau for ``on`` (or until the
    trigger ends it, capped by ``max_burst``), then ``ramp_down``. Device logic follows
    emg-gait-and-control.md §1.3 (EMG-triggered: a voluntary EMG onset starts a fixed burst,
    then the EMG is ignored for a refractory time) and §2 / clinical-protocols §3.1 (drop foot:
    stimulation from foot-off + delay to initial contact + extension, with a longest burst).

    Parameters
    ----------
    source : {"emg", "gait", "button", "external"}
        ``emg``: an onset of the patient's own EMG (``opennmes.sensing.OnsetDetector``);
        ``gait``: foot-off starts and initial contact ends a burst (shank gyroscope,
        ``opennmes.sensing.GaitEventDetector``); ``button``: a press (patient or therapist);
        ``external``: a request through the API.
    signal : str, optional
        Sensor channel: the EMG channel (emg) or the sagittal shank angular-velocity channel
        (gait). Required for emg and gait, refused for button and external.
    sensor : str, optional
        Name of the live sensor stream that carries ``signal`` (None: any sensor that has it).
    refractory : float
        Triggers are ignored this long after a burst ends, in s (files: ``8 s``). Default 0.
    max_burst : float, optional
        Longest burst from its start (ramps included), in s: a safety stop; for gait it caps a
        swing whose initial contact is missed.
    silence_timeout : float, optional
        A sensor silent this long sets the output to zero, in s. emg and gait: 0.5 s unless
        given; button and external: none (refused).
    delay : float
        gait only: stimulation starts at foot-off + ``delay``, in s. Default 0.
    extension : float
        gait only: stimulation ends at initial contact + ``extension``, in s. Default 0.
    method : {"threshold", "tkeo", "cusum"}
        emg only: the onset detection method (``opennmes.sensing.ONSET_METHODS``).
    threshold : float, optional
        emg only: the detector's ``h`` (threshold and tkeo: baseline SDs above the baseline
        mean; cusum: alarm level in nats). None: the detector's default.
    hold : float
        emg only: time above threshold that confirms an onset, in s. Default 50 ms (T_hold
        50-100 ms, emg-gait-and-control.md §1.3).
    rest : float
        emg only: rest EMG recorded at the session start to calibrate the detector (no
        triggers during it), in s. Default 1 s (a 0.5-2 s baseline, §1.2).
    detector : {"gyroscope", "heel-switch"}
        gait only: ``gyroscope``, the sagittal shank angular velocity in rad/s
        (``opennmes.sensing.GaitEventDetector``); ``heel-switch``, an in-shoe heel FSR: heel
        unloaded starts, loaded ends a burst (``opennmes.sensing.HeelSwitchDetector``, as
        commercial drop-foot stimulators do, emg-gait-and-control.md §2.1).
    polarity : {1, -1}
        gait gyroscope only: sign of the mid-swing peak on ``signal`` (the sensor's mounting).
    on_level, off_level : float, optional
        gait heel switch only, required there: load above ``on_level`` is heel contact, below
        ``off_level`` heel off, in the switch's unit (``off_level < on_level``).
    debounce : float
        gait heel switch only: time a new heel state must persist, in s. Default 30 ms
        (20-50 ms usual).
    """

    source: TriggerSource
    signal: str | None = None
    sensor: str | None = None
    refractory: Time = 0.0
    max_burst: Time | None = None
    silence_timeout: Time | None = None
    delay: Time = 0.0
    extension: Time = 0.0
    method: Literal["threshold", "tkeo", "cusum"] = "threshold"
    threshold: float | None = None
    hold: Time = 0.05
    rest: Time = 1.0
    detector: Literal["gyroscope", "heel-switch"] = "gyroscope"
    polarity: Literal[1, -1] = 1
    on_level: float | None = None
    off_level: float | None = None
    debounce: Time = 0.03

    @model_validator(mode="after")
    def _check(self) -> Trigger:
        src = self.source
        sensed = src in ("emg", "gait")
        fields = type(self).model_fields
        heel = src == "gait" and self.detector == "heel-switch"
        only = {"detector": src == "gait", "polarity": src == "gait" and not heel,
                "on_level": heel, "off_level": heel, "debounce": heel}
        for name, allowed in only.items():
            if not allowed and getattr(self, name) != fields[name].default:
                who = "gait triggers" if name == "detector" else (
                    "gait triggers with a gyroscope" if name == "polarity"
                    else "gait triggers with a heel switch")
                raise ValueError(f"{name} = {getattr(self, name)!r}: only {who} have a "
                                 f"{name} (source is {src!r}"
                                 f"{', detector ' + repr(self.detector) if src == 'gait' else ''})")
        if heel:
            if self.on_level is None or self.off_level is None:
                raise ValueError("a heel-switch gait trigger needs on_level and off_level (the "
                                 "loads that mean heel contact and heel off)")
            if not (math.isfinite(self.on_level) and math.isfinite(self.off_level)
                    and self.off_level < self.on_level):
                raise ValueError(f"off_level = {self.off_level!r} must be below on_level = "
                                 f"{self.on_level!r}")
            if not (math.isfinite(self.debounce) and self.debounce > 0):
                raise ValueError(f"debounce = {_s(self.debounce)}: must be > 0 s")
        if sensed and not (self.signal and self.signal.strip()):
            what = "EMG channel" if src == "emg" else (
                "heel-switch channel" if heel else "sagittal shank angular-velocity channel")
            raise ValueError(f"signal = {self.signal!r}: a {src} trigger needs the {what} "
                             f"it listens to (e.g. signal: "
                             f"{'wrist_extensors.emg' if src == 'emg' else 'Gyr_Z'})")
        if not sensed:
            for name in ("signal", "sensor", "silence_timeout"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} = {getattr(self, name)!r}: a {src} trigger has "
                                     f"no sensor; {name} is only for emg and gait triggers")
        if src != "gait":
            for name in ("delay", "extension"):
                if getattr(self, name) != 0:
                    raise ValueError(f"{name} = {_s(getattr(self, name))}: only gait triggers "
                                     f"have a {name} (source is {src!r})")
        if src != "emg":
            for name in ("method", "threshold", "hold", "rest"):
                if getattr(self, name) != fields[name].default:
                    raise ValueError(f"{name} = {getattr(self, name)!r}: only emg triggers "
                                     f"have an onset detector {name} (source is {src!r})")
        for name in ("refractory", "delay", "extension", "hold"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} = {_s(v)}: must be >= 0 s")
        for name in ("max_burst", "silence_timeout"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} = {_s(v)}: must be > 0 s when given")
        if src == "emg" and not (math.isfinite(self.rest) and self.rest > 0):
            raise ValueError(f"rest = {_s(self.rest)}: an emg trigger calibrates its onset "
                             f"detector on rest EMG; rest must be > 0 s")
        if self.threshold is not None and not (math.isfinite(self.threshold)
                                               and self.threshold > 0):
            raise ValueError(f"threshold = {self.threshold!r}: must be > 0 when given")
        if sensed and self.silence_timeout is None:
            object.__setattr__(self, "silence_timeout", SENSOR_SILENCE_TIMEOUT)
        return self

    def describe(self) -> str:
        """A short human summary, e.g. ``gait on 'Gyr_Z' (extension 0.15 s, max burst 2 s)``."""
        out: str = self.source
        if self.signal is not None:
            out += f" on {self.signal!r}"
            if self.sensor is not None:
                out += f" of {self.sensor!r}"
        parts = []
        if self.source == "emg":
            h = "default" if self.threshold is None else f"{self.threshold:g}"
            parts.append(f"{self.method} h {h}")
        if self.source == "gait" and self.detector == "heel-switch":
            parts.append(f"heel switch on {self.on_level:g} / off {self.off_level:g}")
        if self.delay:
            parts.append(f"delay {self.delay:g} s")
        if self.extension:
            parts.append(f"extension {self.extension:g} s")
        if self.refractory:
            parts.append(f"refractory {self.refractory:g} s")
        if self.max_burst is not None:
            parts.append(f"max burst {self.max_burst:g} s")
        return f"{out} ({', '.join(parts)})" if parts else out


class Channel(_Frozen):
    """One stimulation channel: electrode, pulse shape, train and on/off envelope.

    Parameters
    ----------
    name : str
        Unique name, e.g. ``right quadriceps``.
    electrode : Electrode
    waveform : {"symmetric-biphasic", "asymmetric-biphasic", "monophasic", "sine"}
        ``sine`` is a medium-frequency sinusoidal carrier (use it with a burst train); its
        phase width is half the carrier period and is derived.
    frequency : float
        Pulse rate in Hz (for ``sine``, the carrier frequency).
    pulse_width : float, optional
        Width of the first phase, in s (files: ``300 us``). Required except for ``sine``.
    interphase_gap : float
        Gap between the two phases, in s. 0 unless given (``sine``: always 0).
    asymmetry : float, optional
        For ``asymmetric-biphasic``: second-phase width / first-phase width (> 1); the second
        phase's amplitude is divided by it, so the pulse stays charge-balanced.
    amplitude : float
        Peak current of the first phase at full intensity, in A (files: ``40 mA``).
    train : Train
    ramp_up, on, ramp_down, off : float
        Envelope of each contraction, in s: linear ramp from zero, plateau, linear ramp down,
        rest. ``on`` unset means continuous stimulation (no contractions, e.g. TENS).
    delay : float
        Start of this channel after the start of each phase, in s (not for a triggered
        channel).
    trigger : Trigger, optional
        Makes this a triggered channel (functional stimulation): it stimulates only in bursts
        started by its trigger. Each burst is ``ramp_up``, plateau, ``ramp_down``; the plateau
        lasts ``on`` or, without ``on``, until the trigger ends it (gait: initial contact +
        extension) or ``trigger.max_burst`` passes. Ramps may then be given without ``on``.
        ``off`` must not exceed ``trigger.refractory``, so that the expansion (one burst every
        ``ramp_up + on + ramp_down + off``) is the worst case of the triggered bursts.
    """

    name: str = Field(min_length=1)
    electrode: Electrode
    waveform: WaveformName = "symmetric-biphasic"
    frequency: Rate
    pulse_width: Time | None = None
    interphase_gap: Time = 0.0
    asymmetry: float | None = None
    amplitude: Amperes
    train: Train = Train()
    ramp_up: Time = 0.0
    on: Time | None = None
    ramp_down: Time = 0.0
    off: Time = 0.0
    delay: Time = 0.0
    trigger: Trigger | None = None

    @model_validator(mode="after")
    def _shape(self) -> Channel:
        if self.waveform == "sine":
            object.__setattr__(self, "pulse_width", 0.5 / self.frequency)
            object.__setattr__(self, "interphase_gap", 0.0)
        elif self.pulse_width is None:
            raise ValueError("pulse_width is required (e.g. '300 us')")
        assert self.pulse_width is not None
        if not self.pulse_width > 0:
            raise ValueError(f"pulse_width must be > 0 s, got {self.pulse_width}")
        for name in ("interphase_gap", "ramp_up", "ramp_down", "off", "delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 s, got {getattr(self, name)}")
        if not self.amplitude >= 0:
            raise ValueError(f"amplitude must be >= 0 A, got {self.amplitude}")
        if self.on is not None and self.on < 0:
            raise ValueError(f"on must be >= 0 s, got {self.on}")
        if self.on is None and self.trigger is None and (self.ramp_up or self.ramp_down
                                                         or self.off):
            raise ValueError("ramps and off time need an 'on' time; leave all four unset for "
                             "continuous stimulation")
        if self.on is not None and self.active_time <= 0:
            raise ValueError("ramp_up + on + ramp_down must be > 0 s")
        if self.waveform == "asymmetric-biphasic":
            if self.asymmetry is None or not self.asymmetry > 1:
                raise ValueError("asymmetric-biphasic needs asymmetry > 1 (second phase width / "
                                 "first phase width)")
        elif self.asymmetry is not None:
            raise ValueError("asymmetry is only for the asymmetric-biphasic waveform")
        period = 1.0 / self.frequency
        if self.waveform != "sine" and self.pulse_duration >= period:
            raise ValueError(
                f"a pulse lasts {self.pulse_duration * 1e6:.0f} us, not shorter than the period "
                f"{period * 1e6:.0f} us at {self.frequency:g} Hz; lower the frequency or the "
                f"pulse width"
            )
        if self.train.kind == "doublet" and self.train.doublet_interval is not None:
            if self.train.doublet_interval <= self.pulse_duration:
                raise ValueError("doublet_interval must be longer than one pulse")
        if self.train.kind == "modulated" and self.train.modulation:
            f_max, pw_max = self.frequency, self.pulse_width_s
            for m in self.train.modulation:
                if m.parameter == "frequency":
                    f_max = max(float(m.low), float(m.high))
                if m.parameter == "pulse_width":
                    pw_max = max(float(m.low), float(m.high))
            ratio = self.second_phase[1] / self.pulse_width_s
            if pw_max * (1 + ratio) + self.interphase_gap >= 1.0 / f_max:
                raise ValueError("the modulated pulse width does not fit the modulated period")
        if self.train.kind == "burst" and self.train.burst_frequency is not None:
            if self.train.burst_frequency >= self.frequency:
                raise ValueError("burst_frequency must be below the pulse (carrier) frequency")
        if self.trigger is not None:
            self._check_triggered(self.trigger)
        return self

    def _check_triggered(self, tr: Trigger) -> None:
        """The envelope rules of a triggered channel (a burst must end; the expansion must be
        the worst case of the bursts)."""
        if self.delay:
            hint = "use trigger.delay (foot-off + delay)" if tr.source == "gait" else (
                "remove it")
            raise ValueError(f"delay = {_s(self.delay)}: a triggered channel starts each burst "
                             f"at its trigger, so a phase delay means nothing for it; {hint}")
        if self.on is None and tr.max_burst is None:
            raise ValueError("a triggered channel needs 'on' or trigger.max_burst (got neither): "
                             "every burst must end even when the trigger never ends it")
        if self.on is None and self.off:
            raise ValueError(f"off = {_s(self.off)}: a triggered channel without 'on' has no "
                             f"cycle; its rest after a burst is trigger.refractory")
        if tr.max_burst is not None and tr.max_burst < self.ramp_up + self.ramp_down:
            raise ValueError(f"trigger.max_burst = {_s(tr.max_burst)} is shorter than ramp_up "
                             f"+ ramp_down = {_s(self.ramp_up + self.ramp_down)}; a burst "
                             f"must have room for its ramps")
        if self.on is not None and self.off > tr.refractory + 1e-12:
            raise ValueError(
                f"off = {_s(self.off)} is longer than trigger.refractory = "
                f"{_s(tr.refractory)}: the expansion checked before a session repeats a burst "
                f"every ramp_up + on + ramp_down + off, but triggers may start one after the "
                f"refractory time; set off <= refractory")

    @property
    def waveform_id(self) -> int:
        """The :class:`~opennmes.stim.Waveform` id of this channel's pulses."""
        return int(WAVEFORM_NAMES[self.waveform])

    @property
    def pulse_width_s(self) -> float:
        """First-phase width in s (always set after validation)."""
        assert self.pulse_width is not None
        return self.pulse_width

    @property
    def second_phase(self) -> tuple[float, float]:
        """(amplitude factor, width) of the second phase relative to the first."""
        pw = self.pulse_width_s
        if self.waveform == "monophasic":
            return 0.0, 0.0
        if self.waveform == "asymmetric-biphasic":
            assert self.asymmetry is not None
            return 1.0 / self.asymmetry, pw * self.asymmetry
        return 1.0, pw

    @property
    def pulse_duration(self) -> float:
        """Onset of the first phase to the end of the second, in s."""
        return self.pulse_width_s + self.interphase_gap + self.second_phase[1]

    @property
    def active_time(self) -> float:
        """ramp_up + on + ramp_down, in s (0 for continuous stimulation)."""
        return self.ramp_up + (self.on or 0.0) + self.ramp_down

    @property
    def burst_time(self) -> float | None:
        """Longest burst of a triggered channel, in s: ``ramp_up + on + ramp_down``, capped by
        ``trigger.max_burst``; None for a channel that is not triggered."""
        if self.trigger is None:
            return None
        ends = [] if self.on is None else [self.active_time]
        if self.trigger.max_burst is not None:
            ends.append(self.trigger.max_burst)
        return min(ends)

    @property
    def cycle_time(self) -> float | None:
        """One contraction cycle (active + off), in s; None when continuous."""
        if self.on is None:
            return None
        return self.active_time + self.off


class Phase(_Frozen):
    """A phase of a program (warm-up, work, cool-down), run one after another.

    Parameters
    ----------
    name : str
    repetitions : int, optional
        Contraction cycles in this phase.
    duration : float, optional
        Length of this phase in s (files: ``5 min``). Give one of the two.
    frequency, pulse_width, ramp_up, on, ramp_down, off : optional
        Replace the channels' values during this phase.
    amplitude_scale : float
        Fraction of each channel's amplitude (files: ``60 %``), default 1.
    channels : list of str, optional
        Channels active in this phase (default: all).
    """

    name: str = Field(min_length=1)
    repetitions: int | None = None
    duration: Time | None = None
    frequency: Rate | None = None
    pulse_width: Time | None = None
    ramp_up: Time | None = None
    on: Time | None = None
    ramp_down: Time | None = None
    off: Time | None = None
    amplitude_scale: Fraction = 1.0
    channels: list[str] | None = None

    @model_validator(mode="after")
    def _length(self) -> Phase:
        if (self.repetitions is None) == (self.duration is None):
            raise ValueError(f"phase {self.name!r}: give exactly one of repetitions or duration")
        if self.repetitions is not None and self.repetitions < 1:
            raise ValueError(f"phase {self.name!r}: repetitions must be >= 1")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"phase {self.name!r}: duration must be > 0 s")
        if not 0 < self.amplitude_scale <= 1:
            raise ValueError(f"phase {self.name!r}: amplitude_scale must be in (0, 100 %]")
        return self

    def apply(self, channel: Channel) -> Channel:
        """The channel as it runs during this phase (validated again)."""
        update = {
            k: getattr(self, k)
            for k in ("frequency", "pulse_width", "ramp_up", "on", "ramp_down", "off")
            if getattr(self, k) is not None
        }
        update["amplitude"] = channel.amplitude * self.amplitude_scale
        data = channel.model_dump()
        data.update(update)
        return Channel.model_validate(data)


class Timing(_Frozen):
    """How channels are placed in time relative to each other.

    ``synchronous``: all channels contract together (each may still have a ``delay``).
    ``alternating``: reciprocal, channel k starts when channel k-1's contraction ends (e.g.
    agonist then antagonist); the off time of each channel must leave room for the others.
    ``sequenced``: channel k starts ``offset`` seconds after channel k-1; an offset shorter than
    the contraction gives overlapping ramps (e.g. the two-channel shoulder-subluxation pattern).
    """

    mode: Literal["synchronous", "alternating", "sequenced"] = "synchronous"
    offset: Time | None = None

    @model_validator(mode="after")
    def _offset(self) -> Timing:
        if self.mode == "sequenced" and (self.offset is None or self.offset < 0):
            raise ValueError("sequenced timing needs an offset >= 0 s (e.g. '4 s')")
        if self.mode != "sequenced" and self.offset is not None:
            raise ValueError("offset is only used with sequenced timing")
        return self


class Acknowledgement(_Frozen):
    """A recorded decision to exceed an advisory limit.

    ``limit`` is the advisory's key (e.g. ``rms_current_density``); ``reason`` says why.
    """

    limit: str = Field(min_length=1)
    reason: str = Field(min_length=3)
    by: str | None = None


class Program(_Frozen):
    """A multi-channel stimulation program.

    Give exactly one of ``repetitions`` (contraction cycles), ``duration`` (s) or ``phases``.

    Examples
    --------
    >>> from opennmes.stim import load_program_text
    >>> p = load_program_text('''
    ... name: Quadriceps strengthening
    ... channels:
    ...   - name: right quadriceps
    ...     electrode: {area: 80 cm2, site: quadriceps, side: right}
    ...     waveform: symmetric-biphasic
    ...     frequency: 35 Hz
    ...     pulse_width: 300 us
    ...     amplitude: 40 mA
    ...     ramp_up: 2 s
    ...     on: 10 s
    ...     ramp_down: 1 s
    ...     off: 30 s
    ... repetitions: 15
    ... ''')
    >>> round(p.duration_s)
    645
    """

    name: str = Field(min_length=1)
    description: str = ""
    indication: str | None = None
    evidence: str | None = None
    channels: list[Channel] = Field(min_length=1, max_length=MAX_CHANNELS)
    repetitions: int | None = None
    duration: Time | None = None
    phases: list[Phase] | None = None
    timing: Timing = Timing()
    acknowledgements: list[Acknowledgement] = []

    @model_validator(mode="after")
    def _program(self) -> Program:
        names = [c.name for c in self.channels]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"channel names must be unique; repeated: {sorted(dup)}")
        given = sum(x is not None for x in (self.repetitions, self.duration, self.phases))
        if given != 1:
            raise ValueError("give exactly one of repetitions, duration or phases")
        if self.repetitions is not None and self.repetitions < 1:
            raise ValueError("repetitions must be >= 1")
        if self.duration is not None and not self.duration > 0:
            raise ValueError("duration must be > 0 s")
        if self.phases is not None:
            if not self.phases:
                raise ValueError("phases must not be empty")
            for ph in self.phases:
                for cn in ph.channels or []:
                    if cn not in names:
                        raise ValueError(f"phase {ph.name!r} names unknown channel {cn!r}; "
                                         f"channels: {names}")
                for ch in self.channels:
                    pc = ph.apply(ch)
                    if ph.repetitions is not None and pc.on is None:
                        raise ValueError(f"phase {ph.name!r} counts repetitions but channel "
                                         f"{ch.name!r} is continuous; give a duration")
        elif self.repetitions is not None:
            cont = [c.name for c in self.channels if c.on is None]
            if cont:
                raise ValueError(f"repetitions need contraction cycles but {cont} are "
                                 f"continuous (no 'on'); give a duration instead")
        if self.timing.mode != "synchronous" and self.triggered_channels:
            raise ValueError(f"timing mode = {self.timing.mode!r} places channels after one "
                             f"another, but triggered channels {list(self.triggered_channels)} "
                             f"start at their triggers; use synchronous timing")
        if self.timing.mode == "alternating":
            for ph_channels in self.phase_channels():
                active = sum(c.active_time for c in ph_channels)
                for c in ph_channels:
                    if c.on is None or c.off + 1e-9 < active - c.active_time:
                        raise ValueError(
                            f"alternating timing: channel {c.name!r} rests {c.off:g} s but the "
                            f"other channels need {active - c.active_time:g} s; lengthen 'off'"
                        )
        from opennmes.stim._expand import size_problem

        problem = size_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    def phase_list(self) -> list[Phase]:
        """The phases this program runs (one implicit ``main`` phase when none are given)."""
        if self.phases is not None:
            return list(self.phases)
        return [Phase(name="main", repetitions=self.repetitions, duration=self.duration)]

    def phase_channels(self) -> list[list[Channel]]:
        """For each phase, its active channels with the phase's overrides applied."""
        out = []
        for ph in self.phase_list():
            active = ph.channels or [c.name for c in self.channels]
            out.append([ph.apply(c) for c in self.channels if c.name in active])
        return out

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Names of the channels, in order."""
        return tuple(c.name for c in self.channels)

    @property
    def triggered_channels(self) -> tuple[str, ...]:
        """Names of the channels that have a trigger, in order."""
        return tuple(c.name for c in self.channels if c.trigger is not None)

    @property
    def duration_s(self) -> float:
        """Planned length of the whole program, in s."""
        from opennmes.stim._expand import phase_lengths

        return float(sum(phase_lengths(self)))

    def expand(self) -> PulseSchedule:
        """Every pulse of the program, exact to the microsecond (see ``expand_program``).

        A triggered channel expands to its normal schedule: a burst every ``ramp_up + on +
        ramp_down + off`` (continuous at full amplitude without ``on``). Its ``off`` is at most
        the trigger's refractory time, so this is the worst case of the triggered bursts: the
        safety guard checks it before a session. In a session the runner replaces it with the
        bursts its trigger starts.
        """
        from opennmes.stim._expand import expand_program

        return expand_program(self)

    def describe(self) -> str:
        """A human summary: duration, phases, timing and one line per channel."""
        m, sec = divmod(self.duration_s, 60)
        dur = f"{int(m)} min {sec:04.1f} s" if m else f"{sec:.1f} s"
        lines = [f"{self.name}: {dur}, phases: "
                 f"{', '.join(p.name for p in self.phase_list())}, timing: {self.timing.mode}"]
        for c in self.channels:
            if c.trigger is not None:
                on = "until the trigger ends it" if c.on is None else f"on {c.on:g} s"
                env = (f"bursts: ramp {c.ramp_up:g} s / {on} / down {c.ramp_down:g} s, "
                       f"triggered by {c.trigger.describe()}")
            else:
                env = ("continuous" if c.on is None else
                       f"ramp {c.ramp_up:g} s / on {c.on:g} s / down {c.ramp_down:g} s / "
                       f"off {c.off:g} s")
            where = " ".join(x for x in (c.electrode.side, c.electrode.site) if x)
            lines.append(
                f"  {c.name}: {c.waveform}, {c.frequency:g} Hz, {c.pulse_width_s * 1e6:g} us, "
                f"{c.amplitude * 1e3:g} mA, {c.train.kind} train, {env}; electrode "
                f"{c.electrode.area_m2 * 1e4:g} cm2 on {where}")
        for a in self.acknowledgements:
            lines.append(f"  acknowledged {a.limit}: {a.reason}")
        return "\n".join(lines)

    def acknowledged(self, limit: str) -> Acknowledgement | None:
        """The acknowledgement recorded for an advisory limit, if any."""
        for a in self.acknowledgements:
            if a.limit == limit:
                return a
        return None

    def to_file_dict(self) -> dict[str, object]:
        """A JSON-able dict with unit-bearing strings that loads back to an equal Program."""
        return self.model_dump(mode="json", exclude_defaults=True)
