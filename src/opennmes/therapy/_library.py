"""The protocol library: YAML files in ``opennmes/therapy/protocols``, looked up by id."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import ValidationError

from opennmes.stim import read_yaml, validation_lines
from opennmes.therapy._errors import TherapyError
from opennmes.therapy._protocol import Protocol

__all__ = ["PROTOCOL_DIR", "DIAGRAMS", "load_protocol", "load_protocol_text", "list_protocols",
           "get_protocol"]

PROTOCOL_DIR = Path(__file__).parent / "protocols"

DIAGRAMS: dict[str, str] = {
    "quadriceps-2pad": "Thigh, front view: one pad over the proximal rectus femoris / femoral "
                       "triangle side of the thigh, one over the vastus medialis motor point "
                       "just above and medial to the kneecap.",
    "quadriceps-hamstrings": "Thigh, front and back views: quadriceps pads as in "
                             "quadriceps-2pad; hamstrings pads on the back of the thigh.",
    "quadriceps-calf-bilateral": "Both legs, front and back views: quadriceps pads as in "
                                 "quadriceps-2pad and pads over the calf or tibialis anterior.",
    "shoulder-2channel": "Shoulder, back and side views: pad pair over supraspinatus (above "
                         "the spine of the scapula) and pad pair over the posterior deltoid.",
    "forearm-extensors": "Forearm, back (dorsal) view: pads over the wrist and finger "
                         "extensors on the upper third of the forearm, elbow side and wrist "
                         "side.",
    "peroneal-drop-foot": "Lower leg, side view: active pad over the common peroneal nerve "
                          "just below and behind the head of the fibula, second pad over the "
                          "tibialis anterior motor point.",
    "tens-bracket": "Area of pain: the two pads of a channel bracket the painful area, at "
                    "least 3 cm apart, never over the front of the neck, the chest or the "
                    "head.",
}
"""Placement diagram ids and what each picture shows (the web app maps an id to its image)."""



def load_protocol_text(text: str, *, source: str = "<text>") -> Protocol:
    """Parse a protocol from YAML text; TherapyError naming the source and field on error."""
    too_deep = (f"{source}: lists or mappings are nested too deeply to read (hundreds of "
                "levels); a protocol file is a mapping a few levels deep (docs/protocols.md)")
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        raise TherapyError(f"{source}: not valid YAML: {exc}") from exc
    except RecursionError:
        raise TherapyError(too_deep) from None
    if not isinstance(data, dict):
        raise TherapyError(f"{source}: a protocol file holds a mapping (id, title, program, ...)")
    try:
        proto = Protocol.model_validate(data, context={"from_file": True})
    except ValidationError as exc:
        lines = validation_lines(exc, "docs/protocols.md")
        raise TherapyError(f"{source}: " + "; ".join(lines)) from exc
    except RecursionError:
        raise TherapyError(too_deep) from None
    if proto.placement.diagram not in DIAGRAMS:
        raise TherapyError(f"{source}: placement.diagram {proto.placement.diagram!r} is unknown;"
                           f" known: {sorted(DIAGRAMS)}")
    return proto


def load_protocol(path: str | Path) -> Protocol:
    """Load a protocol file; its ``id`` must equal the file name without ``.yaml``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TherapyError(f"cannot open protocol file {p}: {exc.strerror}") from exc
    proto = load_protocol_text(text, source=str(p))
    if proto.id != p.stem:
        raise TherapyError(f"{p}: id {proto.id!r} must equal the file name {p.stem!r}")
    return proto


@functools.cache
def _library() -> dict[str, Protocol]:
    return {p.stem: load_protocol(p) for p in sorted(PROTOCOL_DIR.glob("*.yaml"))}


def list_protocols(*, mode: str | None = None, tag: str | None = None) -> list[Protocol]:
    """Every protocol of the library (filtered by ``mode`` or ``tag``), sorted by id."""
    out = list(_library().values())
    if mode is not None:
        out = [p for p in out if p.mode == mode]
    if tag is not None:
        out = [p for p in out if tag in p.tags]
    return out


def get_protocol(protocol_id: str) -> Protocol:
    """The protocol with this id; TherapyError listing the ids when unknown."""
    lib = _library()
    if protocol_id not in lib:
        raise TherapyError(f"unknown protocol {protocol_id!r}; known: {sorted(lib)} "
                           "(`nmes protocols list`)")
    return lib[protocol_id]
