"""Placement pictures and the printable prescription sheet."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from opennmes.report.progress_report import prescription_sheet_html
from opennmes.store import Store
from opennmes.therapy import DIAGRAMS, TherapyError, TherapyRecord, diagram_svg, list_protocols

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("diagram", sorted(DIAGRAMS))
def test_every_diagram_is_valid_svg_with_pads_and_legend(diagram: str) -> None:
    root = ET.fromstring(diagram_svg(diagram))
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title") is not None
    pads = [r for r in root.iter(f"{SVG}rect") if r.get("rx") == "4"]
    assert len(pads) >= 2  # at least one pad pair
    colours = {r.get("fill") for r in pads}
    legend = [r for r in root.iter(f"{SVG}rect") if r.get("width") == "10"]
    assert len(legend) == len(colours)


def test_every_protocol_has_a_picture() -> None:
    for p in list_protocols():
        assert "<svg" in diagram_svg(p.placement.diagram, p.program.channel_names)
    with pytest.raises(TherapyError, match="unknown placement diagram 'leg'"):
        diagram_svg("leg")


def test_legend_uses_channel_names_when_they_match() -> None:
    svg = diagram_svg("shoulder-2channel", ["supra <L>", "deltoid <L>"])
    assert "supra &lt;L&gt;" in svg  # escaped
    assert "left quadriceps" in diagram_svg("quadriceps-calf-bilateral", ["a", "b", "c"])


def test_prescription_sheet(store: Store, record: TherapyRecord) -> None:
    store.add_patient("P1")
    rx = record.prescribe("P1", "stroke-shoulder-subluxation", side="left",
                          start_date=dt.date(2026, 11, 24), by="pt1")
    page = prescription_sheet_html(record, rx.id)
    assert "Shoulder subluxation after stroke" in page and "Patient <b>P1</b>" in page
    assert "<svg" in page and "supraspinatus (left)" in page
    assert "2026-11-24 to 2027-01-04: 1 a day, 5 a week, for 6 weeks" in page
    assert "minutes: +15 every 1 week(s), up to 60" in page
    assert "Every session starts at zero" in page
