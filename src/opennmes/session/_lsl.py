"""Lab Streaming Layer (LSL): a session's pulses and events out as markers, its signals out as
streams, and any LSL stream in as a session sensor.

Out (:class:`LslPublisher`): while a session runs, one marker stream (``<name>-markers``, type
``Markers``, one string channel, irregular rate) carries a JSON object for every pulse the
device confirmed it delivered (the session record's truth: pulses the device did not confirm
are not sent as pulses, only counted by the ``unconfirmed`` event, as in the record) and for
every session event (start, intensity, pause, resume, trigger, loop, stop, ...). Each sensor's
samples (the virtual patient's, a replayed recording's, a live sensor's) go out on a stream
``<name>-<sensor>`` (type ``Signals``) with channel labels and units. Every timestamp is on
LSL's clock (``pylsl.local_clock()``): session time plus the offset between the two clocks,
measured once when the session starts (on a virtual clock, session time then runs faster than
LSL's clock: the stamps keep the session's spacing, not the wall's).

In (:class:`LslSensor`): an LSL stream found by name, type or source id becomes a session
sensor (EMG, IMU, force; any numeric stream with a regular rate). It is resolved and opened
when it is built, before any current flows: a stream that is not found within ``timeout``
is a :class:`~opennmes.errors.SignalError`. Its samples are mapped from LSL's clock to session
time; samples from before the session started are dropped. The first sample of the session
is placed at its stamp, every later one by its count at the stream's nominal rate (the record
and the streaming filters need gap-free samples; a sender's stamps jitter with its pushes,
:attr:`LslSensor.max_skew` says by how much). A stream that goes silent during
the session returns nothing, and the session's watchdog stops the output as for any silent
sensor (``sensor_timeout``; a ``watchdog`` event in the record).

Markers in (:class:`LslTrigger`): a marker stream of task software (string or numeric, any
rate) starts bursts on a triggered channel, as the trigger button does.

pylsl is an optional dependency (extra ``research``); without it every class here raises a
:class:`~opennmes.errors.SessionError` saying how to install it.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.errors import NmesError, SessionError, SignalError
from opennmes.schedule import PulseSchedule, Waveform
from opennmes.session._runner import _jsonable
from opennmes.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.session._runner import SessionRunner

__all__ = ["LslPublisher", "LslSensor", "LslTrigger", "lsl_spec", "lsl_clock_offset",
           "LSL_TIMEOUT"]

log = logging.getLogger(__name__)

LSL_TIMEOUT = 3.0
"""Default time to find an LSL stream, s."""
_MARGIN = 0.05  # s before the device's last confirmation up to which pulses are final
_KEYS = {"name": "name", "type": "type", "source_id": "source_id"}


def _pylsl() -> Any:
    """The pylsl module, or a clear error."""
    try:
        import pylsl
    except (ImportError, OSError, RuntimeError) as exc:
        raise SessionError(f"LSL streams need the optional package pylsl ({exc}); install it "
                           "with pip install 'opennmes[research]' (or pip install pylsl)") \
            from None
    return pylsl


def lsl_clock_offset(session_now: Callable[[], float], tries: int = 7) -> float:
    """LSL's clock minus session time, s: the pair of readings with the narrowest bracket."""
    clock = _pylsl().local_clock
    best = (math.inf, 0.0)
    for _ in range(tries):
        a = clock()
        s = float(session_now())
        b = clock()
        if b - a < best[0]:
            best = (b - a, 0.5 * (a + b) - s)
    return best[1]


def lsl_spec(spec: str) -> dict[str, Any]:
    """``type=EMG,name=Amp1,timeout=5`` (an optional ``lsl:`` in front) -> the keyword
    arguments of :class:`LslSensor` / :class:`LslTrigger` (``stream_name``, ``stream_type``,
    ``source_id``, ``timeout``; ``marker`` for a trigger)."""
    text = spec[4:] if spec.lower().startswith("lsl:") else spec
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, sep, v = part.partition("=")
        k, v = k.strip().lower(), v.strip()
        if not sep or not v:
            raise SessionError(f"LSL stream {spec!r}: {part!r} must be KEY=VALUE (keys: name, "
                               "type, source_id, timeout, marker)")
        if k in _KEYS:
            out[{"name": "stream_name", "type": "stream_type"}.get(k, k)] = v
        elif k == "timeout":
            try:
                out["timeout"] = float(v)
            except ValueError:
                raise SessionError(f"LSL stream {spec!r}: timeout = {v!r} must be a number of "
                                   "seconds") from None
        elif k == "marker":
            out["marker"] = v
        else:
            raise SessionError(f"LSL stream {spec!r}: unknown key {k!r}; keys: name, type, "
                               "source_id, timeout, marker")
    return out


def _resolve(stream_name: str | None, stream_type: str | None, source_id: str | None,
             timeout: float) -> tuple[Any, Any, str]:
    """(pylsl, the one stream's info, its description); errors when none or several match."""
    pylsl = _pylsl()
    given = {"name": stream_name, "type": stream_type, "source_id": source_id}
    given = {k: v for k, v in given.items() if v}
    if not given:
        raise SessionError("an LSL stream needs name=, type= or source_id= to be found")
    for k, v in given.items():
        if "'" in str(v):
            raise SessionError(f"LSL stream {k} = {v!r} must not contain a quote")
    if not (math.isfinite(timeout) and 0 < timeout <= 60):
        raise SessionError(f"LSL timeout = {timeout!r} s must be above 0 and at most 60 s")
    what = ", ".join(f"{k}={v!r}" for k, v in given.items())
    infos = pylsl.resolve_bypred(" and ".join(f"{k}='{v}'" for k, v in given.items()), 1,
                                 timeout)
    if not infos:
        raise SignalError(f"no LSL stream with {what} found within {timeout:g} s (timeout); "
                          "is its outlet running and reachable from this computer?")
    if len(infos) > 1:
        found = [f"{i.name()} ({i.type()}, source_id {i.source_id()!r}, {i.hostname()})"
                 for i in infos]
        raise SignalError(f"{len(infos)} LSL streams match {what}: {found}; name one by "
                          "name= or source_id=")
    return pylsl, infos[0], what


def _open_inlet(pylsl: Any, info: Any, what: str, timeout: float) -> tuple[Any, Any]:
    inlet = pylsl.StreamInlet(info, max_buflen=60, processing_flags=pylsl.proc_clocksync)
    try:
        inlet.open_stream(timeout)
        full = inlet.info(timeout)
    except Exception as exc:  # pylsl raises TimeoutError / LostError
        inlet.close_stream()
        raise SignalError(f"the LSL stream with {what} was found but could not be opened "
                          f"within {timeout:g} s: {exc}") from None
    return inlet, full


class LslSensor:
    """An LSL stream as a live session sensor (see the module docstring).

    Parameters
    ----------
    name : str, optional
        Stream name in the record and the ``sensor`` a drive can name (default: the LSL
        stream's name).
    stream_name, stream_type, source_id : str, optional
        What to find the stream by (at least one; all given must match).
    timeout : float
        Longest wait for the stream, s (found and opened, or a SignalError).

    Channel names are the stream's channel labels (``<name>.<i>`` for unlabelled channels;
    the sensor's name for an unlabelled one-channel stream), units its channel units.
    """

    def __init__(self, name: str | None = None, *, stream_name: str | None = None,
                 stream_type: str | None = None, source_id: str | None = None,
                 timeout: float = LSL_TIMEOUT) -> None:
        pylsl, info, what = _resolve(stream_name, stream_type, source_id, timeout)
        if info.channel_format() == pylsl.cf_string:
            raise SignalError(f"the LSL stream with {what} carries text markers, not samples; "
                              "markers start bursts through an LSL trigger (--lsl-trigger)")
        sfreq = float(info.nominal_srate())
        if not sfreq > 0:
            raise SignalError(f"the LSL stream with {what} has an irregular rate; a sensor "
                              "needs a regular sampling rate (nominal_srate > 0)")
        self.inlet, full = _open_inlet(pylsl, info, what, timeout)
        self.pylsl = pylsl
        self.stream = f"{info.name()} ({info.type()}, {sfreq:g} Hz)"
        self.name = name or str(info.name())
        self.sfreq = sfreq
        n = int(info.channel_count())
        labels = full.get_channel_labels() or [None] * n
        units = full.get_channel_units() or [None] * n
        if n == 1 and not labels[0]:
            self.names: tuple[str, ...] = (self.name,)
        else:
            self.names = tuple(lab or f"{self.name}.{i + 1}" for i, lab in enumerate(labels))
        if len(set(self.names)) != n:
            raise SignalError(f"the LSL stream with {what} has repeated channel labels "
                              f"{list(self.names)}")
        self.units = tuple(u or "" for u in units)
        self._stim: Any = None
        self._offset: float | None = None
        self._next: float | None = None
        self.max_skew = 0.0
        """Largest distance seen between a chunk's LSL stamp and its place by count, s."""

    def attach(self, stim: Any) -> None:
        """Follow ``stim``'s session clock (the runner calls this); a virtual clock is
        refused (an LSL stream runs in real time)."""
        if stim.clock.virtual:
            raise SessionError(f"LSL sensor {self.name!r} ({self.stream}) runs in real time; "
                               "a session on a virtual clock cannot follow it (drop --virtual)")
        self._stim = stim

    def _pull(self) -> tuple[np.ndarray, np.ndarray]:
        parts, stamps = [], []
        while True:
            x, ts = self.inlet.pull_chunk(timeout=0.0, max_samples=8192, as_numpy=True)
            if ts is None or not len(ts):
                break
            parts.append(np.asarray(x, dtype=float).reshape(len(ts), -1))
            stamps.append(np.asarray(ts, dtype=float))
            if len(ts) < 8192:
                break
        if not parts:
            return np.empty((0, len(self.names))), np.empty(0)
        return np.vstack(parts), np.concatenate(stamps)

    def read(self, t: float) -> Signals | None:
        """The samples that arrived since the last call, in session time (None when none)."""
        data, ts = self._pull()
        stim = self._stim
        if stim is None or stim.t0 is None:  # the session has not started: not its samples
            return None
        if self._offset is None:
            self._offset = lsl_clock_offset(stim.now_rel)
        if not len(ts):
            return None
        ts = ts - self._offset
        if self._next is None:  # the first samples of the session
            keep = ts >= 0.0
            data, ts = data[keep], ts[keep]
            if not len(ts):
                return None
            self._next = float(ts[0])
        else:  # placed by count (a stream and the record are gap-free); how far stamps stray
            self.max_skew = max(self.max_skew, abs(float(ts[0]) - self._next))
        t0 = self._next
        self._next = t0 + len(ts) / self.sfreq
        return Signals(np.ascontiguousarray(data.T), self.sfreq, self.names, self.units, t0)

    def close(self) -> None:
        """Close the inlet."""
        try:
            self.inlet.close_stream()
        except Exception:  # closing a lost stream
            pass


class LslTrigger:
    """Markers of an LSL stream (task software) start bursts on a triggered channel.

    A hook (:meth:`SessionRunner.add_hook`): every window, each marker that arrived (whose
    first value equals ``marker`` when given) asks for a burst, recorded as a trigger ``by``
    ``lsl:<stream name>`` (a refractory period, a pause and the burst in progress apply as
    for the button). Markers from before the session started are dropped.

    Parameters
    ----------
    channel : str
        A triggered channel (its program declares a trigger, e.g. ``source: external``).
    marker : str, optional
        Only markers with this value trigger.
    stream_name, stream_type, source_id, timeout :
        As for :class:`LslSensor`.
    """

    def __init__(self, channel: str, *, marker: str | None = None,
                 stream_name: str | None = None, stream_type: str | None = None,
                 source_id: str | None = None, timeout: float = LSL_TIMEOUT) -> None:
        pylsl, info, what = _resolve(stream_name, stream_type, source_id, timeout)
        self.inlet, _ = _open_inlet(pylsl, info, what, timeout)
        self.channel = channel
        self.marker = marker
        self.by = f"lsl:{info.name()}"
        self.received = 0
        self.matched = 0

    def __call__(self, runner: SessionRunner, t: float) -> None:
        while True:
            x, ts = self.inlet.pull_sample(timeout=0.0)
            if ts is None:
                return
            if runner.stim.t0 is None:
                continue  # before the session
            self.received += 1
            if self.marker is not None and str(x[0]) != self.marker:
                continue
            self.matched += 1
            runner.trigger(self.channel, by=self.by)

    def close(self) -> None:
        """Close the inlet."""
        try:
            self.inlet.close_stream()
        except Exception:
            pass


class _Tap:
    """A sensor whose every read is also handed to the publisher (same name, same API)."""

    def __init__(self, sensor: Any, out: queue.SimpleQueue[tuple[str, Signals]]) -> None:
        self._sensor = sensor
        self._out = out
        self.name = sensor.name

    def read(self, t: float) -> Signals | None:
        sig = self._sensor.read(t)
        if sig is not None and sig.n_samples:
            self._out.put((self.name, sig))
        return sig

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._sensor, attr)


def _wave_name(code: int) -> str:
    try:
        return Waveform(code).name.lower().replace("_", "-")
    except ValueError:
        return str(code)


class LslPublisher:
    """A running session on LSL: pulses and events as markers, sensors as streams.

    Build it on a runner that has not run yet; it starts publishing when entered (or
    :meth:`start`) and sends the last pulses and the stop once the session has ended; leave
    (or :meth:`close`) after :meth:`SessionRunner.run` returns::

        with LslPublisher(runner):
            result = runner.run()

    Each pulse marker is JSON with SI values: ``event`` = ``"pulse"``, ``t`` (session time,
    s), ``channel``, ``amplitude``, ``amplitude2`` (A), ``phase_width``, ``phase_width2``,
    ``interphase_gap`` (s), ``waveform``, and ``intended_amplitude`` /
    ``intended_phase_width``: what the session asked the device for that pulse (null when the
    device played a pulse at a time the session did not send one). An event marker is
    ``event`` = its kind, ``t``, and the fields it has in the record. Markers go out in session
    time order, pulses once the device has confirmed them (about ``poll`` + 0.1 s behind).

    Parameters
    ----------
    runner : SessionRunner
    name : str
        Prefix of the stream names.
    signals : bool
        Also publish each sensor's samples.
    poll : float
        How often the publisher thread looks for new pulses, events and samples, s.
    """

    def __init__(self, runner: SessionRunner, *, name: str = "OpenNMES",
                 signals: bool = True, poll: float = 0.1) -> None:
        pylsl = _pylsl()
        if runner.state != "ready":
            raise SessionError("publish a session on LSL before it runs")
        if not 0.01 <= poll <= 1.0:
            raise SessionError(f"LSL poll = {poll!r} s must be within 0.01 to 1 s")
        self.pylsl = pylsl
        self.runner = runner
        self.name = name
        self.poll = float(poll)
        self.source_id = f"opennmes-{uuid.uuid4().hex[:12]}"
        info = pylsl.StreamInfo(f"{name}-markers", "Markers", 1, pylsl.IRREGULAR_RATE,
                                pylsl.cf_string, self.source_id)
        desc = info.desc()
        desc.append_child_value("program", runner.program.name)
        desc.append_child_value("device", runner.stim.url)
        desc.append_child_value("channels", json.dumps(list(runner.channels)))
        desc.append_child_value("units", "SI: A, s")
        self.markers = pylsl.StreamOutlet(info)
        self.outlets: dict[str, tuple[Any, int, float]] = {}
        self.offset: float | None = None
        self.sent_markers = 0
        self.sent_pulses = 0
        self._signals: queue.SimpleQueue[tuple[str, Signals]] = queue.SimpleQueue()
        if signals:
            runner.sensors[:] = [_Tap(s, self._signals) for s in runner.sensors]
        self._sent: list[PulseSchedule] = []
        self._sent_lock = threading.Lock()
        stim = runner.stim
        self._deliver = stim.deliver
        setattr(stim, "deliver", self._tap_deliver)  # noqa: B010 (the chunks sent: intended)
        self._mark = -math.inf
        self._ev_i = 0
        self._pending: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._done = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="nmes-lsl-out", daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LslPublisher:
        """Start publishing (the thread waits for the session's first window)."""
        self._thread.start()
        return self

    def __enter__(self) -> LslPublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Send what is left (the whole record once the session has ended) and close."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)
        self._flush(final=self.runner.state == "ended")
        if getattr(self.runner.stim, "deliver", None) == self._tap_deliver:
            delattr(self.runner.stim, "deliver")  # the class's method again
        self.outlets.clear()

    # ------------------------------------------------------------------ taps and thread
    def _tap_deliver(self, chunk: PulseSchedule, *, until: float | None = None) -> None:
        if len(chunk):
            with self._sent_lock:
                self._sent.append(chunk)
        self._deliver(chunk, until=until)

    def _run(self) -> None:
        from opennmes.devices import ordinary_priority

        ordinary_priority()
        while not self._stop.wait(self.poll):
            ended = self.runner.state == "ended"
            try:
                self._flush(final=ended)
            except Exception:  # publishing never stops a session
                log.exception("LSL publishing failed")
            if ended:
                return

    def _flush(self, *, final: bool) -> None:
        with self._lock:
            if self._done:
                return
            stim = self.runner.stim
            if self.offset is None:
                if stim.t0 is None:
                    return
                self.offset = lsl_clock_offset(stim.now_rel)
            self._publish_signals()
            events = self.runner._events  # append-only; read up to its current length
            n_ev = len(events)
            for ev in events[self._ev_i:n_ev]:
                self._pending.append((float(ev.t), 1, json.dumps(
                    {"event": ev.kind, "t": round(float(ev.t), 6)} | _jsonable(ev.data()),
                    default=_json_default)))
            self._ev_i = n_ev
            if final:
                cutoff = math.inf
            else:
                cutoff = min(self.runner.now(), stim.confirmed_until()) - _MARGIN
            self._pending += self._pulse_markers(cutoff)
            self._pending.sort(key=lambda m: (m[0], m[1]))
            k = len(self._pending) if final else \
                int(np.searchsorted([m[0] for m in self._pending], cutoff))
            out, self._pending = self._pending[:k], self._pending[k:]
            for t, _, text in out:
                self.markers.push_sample([text], t + self.offset)
            self.sent_markers += len(out)
            if final:
                self._done = True

    def _pulse_markers(self, cutoff: float) -> list[tuple[float, int, str]]:
        """Markers of the confirmed pulses from the last mark up to ``cutoff`` s."""
        try:
            d = self.runner.stim.delivered()
        except NmesError as exc:
            log.warning("LSL: the delivered pulses could not be read: %s", exc)
            return []
        lo, hi = (int(i) for i in np.searchsorted(d.t, [self._mark, cutoff], side="left"))
        if hi <= lo:
            return []
        part = d.take(slice(lo, hi))
        self._mark = float(d.t[hi - 1]) + 1e-7
        amp_i, pw_i = self._intended(part)
        names = part.channel_names
        out = []
        for j in range(len(part)):
            doc = {"event": "pulse", "t": round(float(part.t[j]), 6),
                   "channel": names[int(part.channel[j])],
                   "amplitude": float(part.amplitude[j]),
                   "amplitude2": float(part.amplitude2[j]),
                   "phase_width": float(part.phase_width[j]),
                   "phase_width2": float(part.phase_width2[j]),
                   "interphase_gap": float(part.interphase_gap[j]),
                   "waveform": _wave_name(int(part.waveform[j])),
                   "intended_amplitude": None if math.isnan(amp_i[j]) else float(amp_i[j]),
                   "intended_phase_width": None if math.isnan(pw_i[j]) else float(pw_i[j])}
            out.append((float(part.t[j]), 0, json.dumps(doc)))
        self.sent_pulses += len(part)
        return out

    def _intended(self, part: PulseSchedule) -> tuple[np.ndarray, np.ndarray]:
        """For each delivered pulse, the amplitude and width the session sent for it (the
        sent pulse of that channel nearest in time, within 1 ms), NaN where none."""
        amp = np.full(len(part), np.nan)
        pw = np.full(len(part), np.nan)
        with self._sent_lock:
            chunks = list(self._sent)
            # keep what later pulses may still match (1 s behind the newest delivered)
            self._sent = [c for c in chunks if c.t[-1] >= float(part.t[-1]) - 1.0]
        if not chunks:
            return amp, pw
        sent = PulseSchedule.concat(chunks)
        for c in np.unique(part.channel):
            mine = np.flatnonzero(part.channel == c)
            s = np.flatnonzero(sent.channel == c)
            if not s.size:
                continue
            st = sent.t[s]
            order = np.argsort(st, kind="stable")
            st, s = st[order], s[order]
            i = np.clip(np.searchsorted(st, part.t[mine]), 1, st.size) - 1
            j = np.clip(i + 1, 0, st.size - 1)
            pick = np.where(np.abs(st[j] - part.t[mine]) < np.abs(st[i] - part.t[mine]), j, i)
            ok = np.abs(st[pick] - part.t[mine]) <= 1e-3
            amp[mine[ok]] = sent.amplitude[s[pick[ok]]]
            pw[mine[ok]] = sent.phase_width[s[pick[ok]]]
        return amp, pw

    def _publish_signals(self) -> None:
        pylsl = self.pylsl
        assert self.offset is not None
        while True:
            try:
                name, sig = self._signals.get_nowait()
            except queue.Empty:
                return
            n = len(sig.names)
            if name not in self.outlets:
                info = pylsl.StreamInfo(f"{self.name}-{name}", "Signals", n, sig.sfreq,
                                        pylsl.cf_float32, f"{self.source_id}-{name}")
                info.set_channel_labels(list(sig.names))
                info.set_channel_units(list(sig.units))
                self.outlets[name] = (pylsl.StreamOutlet(info), n, sig.sfreq)
            out, n0, sfreq0 = self.outlets[name]
            if n != n0 or sig.sfreq != sfreq0:
                log.warning("LSL: sensor %r changed its channels or rate; samples not sent",
                            name)
                continue
            stamps = sig.t0 + np.arange(sig.n_samples) / sig.sfreq + self.offset
            out.push_chunk(np.ascontiguousarray(sig.data.T, dtype=np.float32), stamps.tolist())


def _json_default(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, tuple | set):
        return list(v)
    if isinstance(v, Mapping):
        return dict(v)
    return str(v)
