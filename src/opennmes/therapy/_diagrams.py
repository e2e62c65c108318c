"""Electrode placement pictures: schematic SVG drawings, one per ``placement.diagram`` id.

Each drawing shows the body part in outline, anatomical landmarks (kneecap, fibular head,
spine of the scapula, epicondyle) and the pads of each channel in one colour per channel,
with a legend. They are schematic, for orientation; the protocol's ``landmarks`` text says
where exactly the pads go.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["diagram_svg"]

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_SKIN = 'fill="#f6e3d3" stroke="#8a6d5a" stroke-width="1.5"'

Pad = tuple[float, float, float, float, int]  # x, y, width, height, channel index


def _pads(pads: Sequence[Pad]) -> str:
    out = []
    for x, y, w, h, k in pads:
        c = _COLOURS[k % len(_COLOURS)]
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="{c}" '
                   f'fill-opacity="0.75" stroke="#333" stroke-width="1"/>')
    return "".join(out)


def _label(x: float, y: float, text: str, size: int = 9) -> str:
    return (f'<text x="{x}" y="{y}" font-size="{size}" font-family="sans-serif" '
            f'fill="#333">{html.escape(text)}</text>')


def _thigh_front(dx: float, pads_on: int | None, ta_on: int | None = None) -> str:
    """A right-leg-style front view: thigh, kneecap, lower leg."""
    s = (f'<path d="M{dx + 20},20 L{dx + 90},20 L{dx + 80},190 L{dx + 75},300 L{dx + 40},300 '
         f'L{dx + 35},190 Z" {_SKIN}/>'
         f'<ellipse cx="{dx + 58}" cy="195" rx="13" ry="15" fill="#e8cdb8" stroke="#8a6d5a"/>')
    pads: list[Pad] = []
    if pads_on is not None:
        pads += [(dx + 50, 45, 30, 45, pads_on), (dx + 35, 135, 30, 40, pads_on)]
    if ta_on is not None:
        pads += [(dx + 62, 215, 16, 20, ta_on), (dx + 60, 250, 16, 22, ta_on)]
    return s + _pads(pads)


def _svg(body: str, legend: Sequence[str], title: str, width: int = 260) -> str:
    items = "".join(
        f'<rect x="8" y="{318 + 14 * i}" width="10" height="10" fill="{_COLOURS[i % 6]}" '
        f'fill-opacity="0.75"/>' + _label(24, 327 + 14 * i, name)
        for i, name in enumerate(legend))
    height = 326 + 14 * max(1, len(legend))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">'
            f'<title>{html.escape(title)}</title>{body}{items}</svg>')


def diagram_svg(diagram: str, channels: Sequence[str] = ()) -> str:
    """The placement picture of ``diagram`` as an SVG document (a string).

    Parameters
    ----------
    diagram : str
        A key of :data:`opennmes.therapy.DIAGRAMS`.
    channels : sequence of str
        Channel names for the legend, used when there is one per pad colour of the drawing
        (in its colour order); otherwise the drawing's own legend is shown.
    """
    from opennmes.therapy._errors import TherapyError
    from opennmes.therapy._library import DIAGRAMS

    if diagram not in DIAGRAMS:
        raise TherapyError(f"unknown placement diagram {diagram!r}; known: {sorted(DIAGRAMS)}")
    names = list(channels)

    def legend(default: Sequence[str]) -> list[str]:
        return names if len(names) == len(default) else list(default)

    if diagram == "quadriceps-2pad":
        body = _thigh_front(70, 0) + _label(150, 200, "kneecap") + _label(70, 15, "thigh, front")
        return _svg(body, legend(["quadriceps"]), "Quadriceps: two pads")
    if diagram == "quadriceps-hamstrings":
        back = ('<path d="M150,20 L220,20 L215,190 L205,300 L170,300 L160,190 Z" '
                f'{_SKIN}/>' + _pads([(165, 50, 30, 45, 1), (170, 125, 30, 40, 1)]))
        body = (_thigh_front(10, 0) + back + _label(10, 15, "front") + _label(150, 15, "back"))
        return _svg(body, legend(["quadriceps", "hamstrings"]), "Quadriceps and hamstrings")
    if diagram == "quadriceps-calf-bilateral":
        body = (_thigh_front(10, 0, 2) + _thigh_front(130, 1, 3) + _label(20, 15, "left leg")
                + _label(140, 15, "right leg"))
        default = ["left quadriceps", "right quadriceps",
                   "left lower leg (TA front, gastrocnemius back)",
                   "right lower leg (TA front, gastrocnemius back)"]
        return _svg(body, legend(default), "Both legs: quadriceps and lower-leg pads")
    if diagram == "shoulder-2channel":
        body = ('<path d="M20,40 Q130,0 240,40 L240,300 L20,300 Z" ' + _SKIN + '/>'
                '<path d="M120,70 L200,60 L190,200 L130,170 Z" fill="#ecd5c3" stroke="#8a6d5a"/>'
                '<line x1="120" y1="95" x2="215" y2="75" stroke="#5a4636" stroke-width="3"/>'
                '<circle cx="222" cy="72" r="8" fill="#e8cdb8" stroke="#8a6d5a"/>'
                + _pads([(140, 58, 26, 22, 0), (178, 50, 26, 22, 0),
                         (205, 95, 26, 30, 1), (200, 140, 26, 30, 1)])
                + _label(60, 110, "spine of scapula") + _label(200, 30, "acromion")
                + _label(20, 30, "back view"))
        return _svg(body, legend(["supraspinatus", "posterior deltoid"]),
                    "Shoulder: supraspinatus and posterior deltoid")
    if diagram == "forearm-extensors":
        body = ('<path d="M90,20 L170,20 L160,240 L100,240 Z" ' + _SKIN + '/>'
                '<path d="M95,240 L165,240 L175,300 L85,300 Z" fill="#f1d9c6" stroke="#8a6d5a"/>'
                '<circle cx="100" cy="32" r="7" fill="#e8cdb8" stroke="#8a6d5a"/>'
                + _pads([(105, 60, 45, 35, 0), (110, 170, 40, 35, 0)])
                + _label(20, 35, "lateral epicondyle") + _label(20, 245, "wrist")
                + _label(20, 290, "hand (back)") + _label(20, 15, "forearm, back view"))
        return _svg(body, legend(["wrist and finger extensors"]), "Forearm extensors")
    if diagram == "peroneal-drop-foot":
        body = ('<path d="M80,20 L170,20 L160,250 L150,280 L200,300 L80,300 L95,250 Z" '
                + _SKIN + '/>'
                '<circle cx="150" cy="55" r="9" fill="#e8cdb8" stroke="#8a6d5a"/>'
                + _pads([(140, 70, 26, 26, 0), (110, 120, 26, 30, 0)])
                + _label(170, 58, "fibular head") + _label(20, 15, "lower leg, outer side")
                + _label(20, 135, "tibialis anterior"))
        return _svg(body, legend(["peroneal nerve (active) + tibialis anterior"]),
                    "Drop foot: common peroneal nerve")
    # tens-bracket
    body = ('<rect x="40" y="30" width="180" height="260" rx="30" ' + _SKIN + '/>'
            '<ellipse cx="130" cy="160" rx="40" ry="28" fill="#d62728" fill-opacity="0.2" '
            'stroke="#d62728" stroke-dasharray="4 3"/>'
            + _pads([(60, 140, 30, 40, 0), (170, 140, 30, 40, 0)])
            + _label(105, 165, "pain area") + _label(40, 20, "pads bracket the painful area"))
    return _svg(body, legend(["pain area"]), "TENS: pads around the painful area")
