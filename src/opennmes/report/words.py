"""Session events in plain words, for patients and physiotherapists.

One sentence per stored event, in the units people use (mA, s, degrees) and their words
("raised by the physiotherapist", "emergency stop"); the stored event keeps the exact SI
fields. The CLI (``nmes sessions show``, ``nmes run``), the HTML session report and the web
pages all read events through this module, so they say the same thing. A titration's run of
single steps is one line (:func:`grouped_events`).

Languages: :func:`event_words`, :func:`grouped_events`, :func:`session_words`, :func:`who`,
:func:`ma` and :func:`dose_head` take ``lang`` (``"en"``, ``"de"``, ``"es"``; English by
default, see :mod:`opennmes.i18n`). Translated so far: the start, intensity changes and their
grouped runs, pauses, resumes, stops, comfort ratings and the dose table's heads; the other
events are English in every language.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from opennmes.i18n import N_, format_number, format_quantity, gettext

__all__ = ["event_words", "source_words", "session_words", "count_words", "who",
           "grouped_events", "unconfirmed_words", "ma", "dose_rows", "dose_line", "DOSE_HEAD",
           "dose_head"]

_IGNORED = {
    "burst running": "a burst is already running",
    "refractory": "it came during the rest time after the last burst",
    "sensor silent": "the sensor is sending no data",
}
_WHO = {"operator": N_("the operator"), "clinician": N_("the physiotherapist"),
        "therapist": N_("the physiotherapist"), "patient": N_("the patient"),
        "titration": N_("the titration plan"), "runner": N_("the software"),
        "keyboard": N_("a key press"), "test": N_("a test"), "watchdog": N_("the watchdog"),
        "web": N_("the web page"), "script": N_("the script")}
_STOPS = {"completed": N_("The program was completed"), "stopped": N_("Stopped"),
          "emergency": N_("Emergency stop"), "watchdog": N_("Stopped by the watchdog"),
          "device_error": N_("Stopped by a device fault"),
          "safety": N_("Stopped by the safety guard"),
          "record_error": N_("Stopped: the record could not be written")}


def ma(value: Any, lang: str | None = None) -> str:
    """A current in A as people read it, to 0.1 mA (finer than any device's step):
    ``0.0125`` -> ``12.5 mA`` (``12,5 mA`` in German; ``-`` if not a number)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return "-"
    return format_quantity(value * 1e3, "mA", lang, 1)


def who(by: Any, lang: str | None = None) -> str:
    """Who did it: ``clinician`` -> ``the physiotherapist``; ``button:anna`` -> ``anna``."""
    text = str(by or "").strip()
    if not text:
        return gettext(lang, "someone")
    kind, _, name = text.partition(":")
    if name:
        return name
    return gettext(lang, _WHO[kind]) if kind in _WHO else text


def source_words(source: str) -> str:
    """Who or what asked for a burst: ``button:clin`` -> ``button pressed by clin``."""
    kind, _, rest = source.partition(":")
    if kind == "button":
        return f"button pressed by {rest}" if rest else "button pressed"
    if kind == "emg":
        return "muscle activity (EMG) detected"
    if kind == "gait":
        return {"foot_off": "foot lifted off", "initial_contact": "foot back on the ground"
                }.get(rest, f"gait event {rest}")
    if kind == "keyboard":
        return "key pressed"
    if kind == "pause":
        return "session paused"
    if kind == "max_burst":
        return "longest burst time reached"
    if kind == "external":
        return "external request"
    return source or "unknown"


def _number(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.3g}"
    return None


def _seconds(value: Any, lang: str | None = None) -> str:
    return format_quantity(float(value), "s", lang, 1) if isinstance(value, int | float) \
        else "-"


def unconfirmed_words(d: Mapping[str, Any]) -> str:
    """An ``unconfirmed`` event in words: how many pulses, where, since when."""
    counts = d.get("pulses") or {}
    total = sum(int(n) for n in counts.values())
    per = ", ".join(f"{n} on {c}" for c, n in counts.items())
    after = d.get("after")
    since = (f"after its last confirmation at {after:.2f} s" if isinstance(after, int | float)
             else "(it never confirmed any)")
    return (f"{total} pulse{'s' if total != 1 else ''} ({per}) sent between "
            f"{float(d.get('start', 0.0)):.2f} s and {float(d.get('end', 0.0)):.2f} s were not "
            f"confirmed by the device {since}; they are not counted as delivered")


def _trigger(data: Mapping[str, Any]) -> str:
    ch = str(data.get("channel", ""))
    detail = str(data.get("detail") or "")
    result = str(data.get("result", ""))
    source = source_words(str(data.get("source", "")))
    if result == "burst":
        return f"Burst started on {ch} ({source})."
    if result == "ignored":
        why = _IGNORED.get(detail, detail or "no reason given")
        return f"Trigger on {ch} ignored ({source}): {why}."
    if result == "end":
        return f"Burst on {ch} ramping down ({source})."
    if result == "timeout":
        return f"Burst on {ch} ended: the longest burst time was reached."
    if result == "silent":
        return (f"Output on {ch} set to zero: the trigger's sensor went silent"
                f"{' (' + detail + ')' if detail else ''}.")
    return f"Trigger on {ch}: {result} ({source}){': ' + detail if detail else ''}."


def _loop(data: Mapping[str, Any]) -> str:
    ch = str(data.get("channel", ""))
    detail = str(data.get("detail") or "")
    what = str(data.get("what", ""))
    v = data.get("value")
    if what == "calibrated":
        value = _number(v)
        return (f"{ch}: the EMG detector is ready ({detail}"
                f"{'; threshold ' + value if value else ''}).")
    if what == "saturated":
        return f"{ch}: the output is at its ceiling ({detail})."
    text = f"{ch}: {detail}" if detail else f"{ch}: {what}"
    if what == "learnt" and _number(v):
        return f"{text} {ma(v)}."
    if detail.endswith("(rad)") and isinstance(v, int | float) and _number(v):
        return f"{text[:-len('(rad)')].rstrip()} {math.degrees(float(v)):.1f} degrees."
    value = _number(v)
    return text + (f" {value}." if value else ".")


def _changed(lang: str | None, channel: Any, up: bool, old: Any, new: Any) -> str:
    text = (gettext(lang, "Intensity of {channel} raised from {old} to {new}") if up
            else gettext(lang, "Intensity of {channel} lowered from {old} to {new}"))
    return text.format(channel=channel, old=ma(old, lang), new=ma(new, lang))


def event_words(kind: str, data: Mapping[str, Any], lang: str | None = None) -> str:
    """One sentence for a stored session event (its ``kind`` and stored fields), in
    ``lang`` (see the module's note on languages)."""
    d = data
    if kind == "start":
        amps = ", ".join(gettext(lang, "{channel} up to {current}").format(
            channel=c, current=ma(a, lang)) for c, a in zip(
                d.get("channels", []), d.get("max_amplitude", []), strict=False))
        drives = "; ".join(f"{c}: {w}" for c, w in (d.get("drives") or {}).items())
        return (gettext(lang, "Session started: {program} ({currents})").format(
            program=d.get("program"), currents=amps) + (f"; {drives}" if drives else "") + ".")
    if kind == "intensity":
        old, new = d.get("old"), d.get("new")
        up = isinstance(old, int | float) and isinstance(new, int | float) and new > old
        return gettext(lang, "{change} by {who}.").format(
            change=_changed(lang, d.get("channel"), up, old, new),
            who=who(d.get("by"), lang))
    if kind == "pause":
        return gettext(lang, "Paused by {who}; output at zero.").format(
            who=who(d.get("by"), lang))
    if kind == "resume":
        ramp = d.get("ramp")
        back = gettext(lang, ", ramping back over {time}").format(time=_seconds(ramp, lang)) \
            if isinstance(ramp, int | float) and ramp > 0 else ""
        return gettext(lang, "Resumed by {who} after a pause of {time}{ramp}.").format(
            who=who(d.get("by"), lang), time=_seconds(d.get("paused_for"), lang), ramp=back)
    if kind == "stop":
        how = str(d.get("how", ""))
        head = gettext(lang, _STOPS[how]) if how in _STOPS else \
            gettext(lang, "Stopped ({how})").format(how=how)
        by = d.get("by")
        if how in ("stopped", "emergency") and by not in (None, "", "runner"):
            head = gettext(lang, "{what} by {who}").format(what=head, who=who(by, lang))
        reason = str(d.get("reason") or "")
        return head + (f": {reason}" if reason and how != "completed" else "") + "."
    if kind == "device_error":
        return f"Device fault ({str(d.get('fault', 'other')).replace('_', ' ')}): " \
               f"{d.get('message', '')}."
    if kind == "watchdog":
        cause = {"loop_stall": "the control loop fell behind", "device": "the device",
                 "sensor": "a sensor went silent"}.get(str(d.get("cause")), d.get("cause"))
        detail = str(d.get("detail") or "")
        return f"The watchdog set the output to zero ({cause}{': ' + detail if detail else ''})."
    if kind == "comfort":
        return gettext(lang, "Comfort rated {score} of 10 by {who}.").format(
            score=d.get("score"), who=who(d.get("by", "patient"), lang))
    if kind == "skin_check":
        where = f" under {d['channel']}" if d.get("channel") else ""
        state = "looks fine" if d.get("ok", True) else "shows a problem"
        note = str(d.get("note") or "")
        return f"Skin{where} {state}{': ' + note if note else ''} (checked by " \
               f"{who(d.get('by'))})."
    if kind == "adverse_event":
        return f"Adverse event reported by {who(d.get('by'))}: {d.get('note', '')}."
    if kind == "trigger":
        return _trigger(d)
    if kind == "loop":
        return _loop(d)
    if kind == "unconfirmed":
        return unconfirmed_words(d) + "."
    rest = ", ".join(f"{k} {v}" for k, v in d.items() if v not in (None, "", [], {}))
    return f"{kind.replace('_', ' ')}{': ' + rest if rest else ''}."


def grouped_events(events: Sequence[Any], *, step_gap: float = 10.0, lang: str | None = None
                   ) -> list[tuple[float, str, str]]:
    """``(t, kind, words)`` rows for a record's events (each with ``t``, ``kind``, ``data``),
    a run of intensity steps on one channel by one person (each within ``step_gap`` s of the
    last, nothing else in between) as one row: "Intensity of quad raised from 0 to 45 mA in
    45 steps by the titration plan (0.0 to 22.0 s)"."""
    rows: list[tuple[float, str, str]] = []
    run: list[Any] = []

    def flush() -> None:
        if len(run) == 1:
            e = run[0]
            rows.append((e.t, e.kind, event_words(e.kind, e.data, lang)))
        elif run:
            a, b = run[0], run[-1]
            up = b.data.get("new", 0) > a.data.get("old", 0)
            change = _changed(lang, a.data.get("channel"), up, a.data.get("old"),
                              b.data.get("new"))
            rows.append((a.t, "intensity", gettext(
                lang, "{change} in {n} steps by {who} ({start} to {end}).").format(
                    change=change, n=len(run), who=who(a.data.get("by"), lang),
                    start=format_number(a.t, lang, 1), end=_seconds(b.t, lang))))
        run.clear()

    for e in events:
        if e.kind == "intensity" and run and e.data.get("channel") == run[-1].data.get(
                "channel") and e.data.get("by") == run[-1].data.get("by") and \
                e.t - run[-1].t <= step_gap and \
                (e.data.get("new", 0) > e.data.get("old", 0)) == \
                (run[-1].data.get("new", 0) > run[-1].data.get("old", 0)):
            run.append(e)
            continue
        flush()
        if e.kind == "intensity":
            run.append(e)
        else:
            rows.append((e.t, e.kind, event_words(e.kind, e.data, lang)))
    flush()
    return rows


DOSE_HEAD = ("Channel", "Pulses", "Contractions", "Stimulation time", "Tolerated",
             "Highest delivered", "Highest set", "Charge", "Highest current density (rms)")
"""Column heads of :func:`dose_rows` (English; :func:`dose_head` gives them in a language)."""
_DOSE_HEAD = (N_("Channel"), N_("Pulses"), N_("Contractions"), N_("Stimulation time"),
              N_("Tolerated"), N_("Highest delivered"), N_("Highest set"), N_("Charge"),
              N_("Highest current density (rms)"))


def dose_head(lang: str | None = None) -> tuple[str, ...]:
    """:data:`DOSE_HEAD` in ``lang``."""
    return tuple(gettext(lang, h) for h in _DOSE_HEAD)


def _minutes(s: Any) -> str:
    if not isinstance(s, int | float):
        return "-"
    return f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def dose_rows(dose: Mapping[str, Any] | None, lang: str | None = None
              ) -> list[tuple[str, ...]]:
    """A stored dose document as table rows in people's units (see :data:`DOSE_HEAD`); the
    currents in ``lang``'s number format."""
    rows: list[tuple[str, ...]] = []
    for ch in (dose or {}).get("channels", []):
        tol = ch.get("tolerated_level")
        rows.append((str(ch.get("channel")), str(ch.get("pulses")), str(ch.get("contractions")),
                     _minutes(ch.get("stim_time")),
                     "not recorded (an older session)" if tol is None else ma(tol, lang),
                     ma(ch.get("peak_amplitude"), lang), ma(ch.get("max_level"), lang),
                     f"{ch.get('total_charge', 0.0) * 1e3:.2f} mC",
                     f"{ch.get('max_rms_current_density', 0.0) * 0.1:.3f} mA/cm²"))
    return rows


def dose_line(row: Sequence[str]) -> str:
    """One dose row as a sentence for the terminal."""
    ch, pulses, contr, time, tol, peak, top, charge, dens = row
    felt = "tolerated level not recorded (an older session)" if tol.startswith("not") else \
        f"tolerated {tol}"
    return (f"{ch}: {pulses} pulses, {contr} contractions, {time} of stimulation, {felt}, "
            f"highest delivered {peak}, highest set {top}, charge {charge}, highest rms current "
            f"density {dens}")


_COUNTED = {"burst": ("burst", "bursts"), "ignored": ("trigger ignored", "triggers ignored"),
            "end": ("burst end asked", "burst ends asked"),
            "timeout": ("burst ended by the time limit", "bursts ended by the time limit"),
            "silent": ("sensor silence", "sensor silences")}


def count_words(counts: Mapping[str, int]) -> str:
    """``{"burst": 2, "ignored": 1}`` -> ``2 bursts, 1 trigger ignored``."""
    parts = []
    for result, n in counts.items():
        one, many = _COUNTED.get(result, (result, result))
        parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts) if parts else "no triggers"


def session_words(events: Sequence[Any], lang: str | None = None) -> dict[str, Any]:
    """What the session page shows of a record's events (each with ``kind``, ``t``, ``data``).

    Returns
    -------
    dict
        ``events``: ``(t, kind, words)`` rows (titration steps grouped, see
        :func:`grouped_events`); ``drives``: ``{channel: what drives it}`` from the start
        event; ``bursts``: per triggered channel the number of each trigger result
        (``burst``, ``ignored``, ...).
    """
    drives: dict[str, str] = {}
    bursts: dict[str, dict[str, int]] = {}
    for e in events:
        if e.kind == "start":
            drives = {str(k): str(v) for k, v in (e.data.get("drives") or {}).items()}
        elif e.kind == "trigger":
            counts = bursts.setdefault(str(e.data.get("channel", "")), {})
            result = str(e.data.get("result", ""))
            counts[result] = counts.get(result, 0) + 1
    return {"events": grouped_events(events, lang=lang), "drives": drives,
            "bursts": {ch: count_words(bursts.get(ch, {})) for ch in drives}}
