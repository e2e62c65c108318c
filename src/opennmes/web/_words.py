"""Session events of functional channels in plain words, for patients and therapists.

The live page and the session page show ``trigger`` events (a burst started, a trigger was
ignored, a burst ended, ...) and ``loop`` events (an EMG threshold was calibrated, a closed
loop saturated, ...) as one short sentence each; the stored event keeps the exact fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["event_words", "source_words", "session_words", "count_words"]

_IGNORED = {
    "burst running": "a burst is already running",
    "refractory": "it came during the rest time after the last burst",
    "sensor silent": "the sensor is sending no data",
}


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


def event_words(kind: str, data: Mapping[str, Any]) -> str | None:
    """One sentence for a ``trigger`` or ``loop`` event (None for other kinds).

    Parameters
    ----------
    kind : str
        Session event kind.
    data : mapping
        The event's stored fields (``channel``, ``result``, ``source``, ``detail`` for
        ``trigger``; ``channel``, ``what``, ``detail``, ``value`` for ``loop``).
    """
    ch = str(data.get("channel", ""))
    detail = str(data.get("detail") or "")
    if kind == "trigger":
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
    if kind == "loop":
        what = str(data.get("what", ""))
        value = _number(data.get("value"))
        if what == "calibrated":
            return (f"{ch}: the EMG detector is ready ({detail}"
                    f"{'; threshold ' + value if value else ''}).")
        if what == "saturated":
            return f"{ch}: the output is at its ceiling ({detail})."
        text = f"{ch}: {what}" + (f": {detail}" if detail else "")
        return text + (f" {value}." if value else ".")
    return None


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


def session_words(events: Sequence[Any]) -> dict[str, Any]:
    """What the session page shows of a record's events (each with ``kind``, ``t``, ``data``).

    Returns
    -------
    dict
        ``events``: ``(event, words)`` pairs (``words`` None where the stored fields say it
        best); ``drives``: ``{channel: what drives it}`` from the start event; ``bursts``:
        per triggered channel the number of each trigger result (``burst``, ``ignored``, ...).
    """
    drives: dict[str, str] = {}
    bursts: dict[str, dict[str, int]] = {}
    rows = []
    for e in events:
        if e.kind == "start":
            drives = {str(k): str(v) for k, v in (e.data.get("drives") or {}).items()}
        elif e.kind == "trigger":
            counts = bursts.setdefault(str(e.data.get("channel", "")), {})
            result = str(e.data.get("result", ""))
            counts[result] = counts.get(result, 0) + 1
        rows.append((e, event_words(e.kind, e.data)))
    return {"events": rows, "drives": drives,
            "bursts": {ch: count_words(bursts.get(ch, {})) for ch in drives}}
