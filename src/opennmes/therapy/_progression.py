"""Progression: targets rise as tolerance grows (the protocol's ``progression`` rules).

:func:`review_progression` is pure: given the prescription's current state and its sessions,
it proposes :class:`Adjustment` s; ``TherapyRecord.apply_progression`` saves them. Tolerance
rises across sessions (Alon & Smith 2005; CPS §2.3, S40) and intensity is the main dose
variable after TKA (R^2 = 0.68, S19), hence amplitude rules first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opennmes.therapy._adherence import SessionSummary
from opennmes.therapy._protocol import Protocol

__all__ = ["Adjustment", "review_progression"]


@dataclass(frozen=True)
class Adjustment:
    """A change of a prescription target.

    ``parameter``: ``amplitude`` (A, per channel), ``repetitions``, ``minutes`` or ``off``
    (s, per channel). ``reason`` says which rule and which sessions.
    """

    parameter: str
    channel: str | None
    old: float | None
    new: float
    reason: str


def _fmt(parameter: str, v: float | None) -> str:
    if v is None:
        return "unset"
    return {"amplitude": f"{v * 1e3:g} mA", "off": f"{v:g} s", "minutes": f"{v:g} min"}.get(
        parameter, f"{v:g}")


def review_progression(protocol: Protocol, state: Mapping[str, Any],
                       sessions: Sequence[SessionSummary], start_date: dt.date,
                       as_of: dt.date) -> list[Adjustment]:
    """Adjustments the protocol's rules call for.

    Parameters
    ----------
    protocol : Protocol
    state : mapping
        The prescription state: ``targets`` and ``ceilings`` (channel -> A), ``repetitions``,
        ``minutes``, ``off`` (channel -> s), ``base`` (the prescribed repetitions / minutes /
        off) and ``changed`` (``"parameter:channel"`` -> ISO time of the last change).
    sessions : sequence of SessionSummary
    start_date, as_of : datetime.date
    """
    out: list[Adjustment] = []
    ended = sorted((s for s in sessions if s.status != "running"), key=lambda s: s.started_at)
    changed: Mapping[str, str] = state.get("changed", {})
    weeks = max(0, (as_of - start_date).days // 7)
    for rule in protocol.progression:
        p = rule.parameter
        if rule.when == "tolerated" and p == "amplitude":
            for ch, target in state["targets"].items():
                since = changed.get(f"amplitude:{ch}")
                recent = [s for s in ended
                          if since is None or s.started_at > dt.datetime.fromisoformat(since)]
                ceiling = min(float(state["ceilings"][ch]), float(rule.limit))
                if target is None:
                    firsts = [s for s in recent if s.completed and s.felt(ch) > 0]
                    if firsts:
                        v = min(firsts[0].felt(ch), ceiling)
                        out.append(Adjustment(p, ch, None, v, f"first completed session "
                                              f"(#{firsts[0].session_id}) set the tolerated "
                                              f"intensity to {_fmt(p, v)}"))
                    continue
                last = recent[-rule.sessions:]
                if len(last) < rule.sessions or target >= ceiling - 1e-12:
                    continue
                ok = all(s.completed
                         and s.felt(ch) >= rule.min_reached * target - 1e-12
                         and (rule.min_comfort == 0
                              or (s.comfort is not None and s.comfort >= rule.min_comfort))
                         for s in last)
                if ok:
                    new = min(target + float(rule.step), ceiling)
                    ids = ", ".join(f"#{s.session_id}" for s in last)
                    out.append(Adjustment(p, ch, target, new, (
                        f"{rule.sessions} sessions ({ids}) reached >= {rule.min_reached:.0%} of "
                        f"{_fmt(p, target)} with comfort >= {rule.min_comfort}/10: raise by "
                        f"{_fmt(p, float(rule.step))} (limit {_fmt(p, ceiling)})")))
        elif rule.when == "weekly":
            steps = weeks // rule.every_weeks
            if p in ("repetitions", "minutes"):
                base, current = state["base"].get(p), state.get(p)
                if base is None or current is None:
                    continue
                want = min(float(base) + steps * float(rule.step), float(rule.limit))
                if p == "repetitions":
                    want = float(int(want))
                if want > float(current) + 1e-9:
                    out.append(Adjustment(p, None, float(current), want, (
                        f"week {weeks}: +{float(rule.step):g} every {rule.every_weeks} week(s)"
                        f" from {_fmt(p, float(base))} (limit {_fmt(p, float(rule.limit))})")))
            elif p == "off":
                for ch, current in state.get("off", {}).items():
                    base = state["base"]["off"][ch]
                    want = base + steps * float(rule.step)
                    want = max(want, float(rule.limit)) if float(rule.step) < 0 else min(
                        want, float(rule.limit))
                    if abs(want - current) > 1e-9:
                        out.append(Adjustment(p, ch, current, want, (
                            f"week {weeks}: rest {_fmt(p, float(rule.step))} every "
                            f"{rule.every_weeks} week(s) (limit {_fmt(p, float(rule.limit))})")))
    return out
