"""The PDF progress report is the HTML page laid out on A4 by headless Chromium: its pages,
rendered to PNG by PDF.js, are A4 and have no ink in the right margin (text or tables cut at
the edge); a page that is too wide is caught by the same check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from opennmes.errors import NmesError
from opennmes.report import pdf as pdfmod
from opennmes.report.progress_report import write_progress_report
from opennmes.store import Store
from opennmes.therapy import TherapyRecord
from tests.browser_tools import CHROMIUM, CHROMIUM_ARGS, ink_in_band, pdf_pages_png

from .test_record import TODAY, _play

A4_PT = (595.28, 841.89)  # 210 x 297 mm
A4_WIDTH_MM = 210.0
EDGE_MM = 210.0 - 13.0  # the report's right page margin is 13 mm; Chromium clips there
CUT = (EDGE_MM - 1.7, EDGE_MM - 0.05)  # the report keeps 2 mm before the edge free of text:
MARGIN = (EDGE_MM + 0.5, A4_WIDTH_MM)  # ink in CUT is text cut at the edge


def _cut_and_margin_ink(png: Path) -> tuple[int, int]:
    return (ink_in_band(png, *CUT, A4_WIDTH_MM), ink_in_band(png, *MARGIN, A4_WIDTH_MM))


@pytest.fixture()
def render(tmp_path: Path, _playwright):  # type: ignore[no-untyped-def]
    """render(pdf, name) -> pages as (png, width pt, height pt), by PDF.js in Chromium (of
    the process's one Playwright, which tests/web's browsers share)."""
    ctx = _playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
        args=CHROMIUM_ARGS)
    ctx.set_default_timeout(60_000)

    def go(pdf: Path, name: str) -> list[tuple[Path, float, float]]:
        return pdf_pages_png(ctx, pdf, tmp_path / "png" / name)

    yield go
    ctx.close()


def _busy_patient(store: Store, record: TherapyRecord) -> None:
    """A patient with long notes, many sessions and outcomes over two months."""
    store.add_patient("P-PDF-Pseudonym-0042", clinician="pt1")
    rx = record.prescribe("P-PDF-Pseudonym-0042", "knee-osteoarthritis", side="right",
                          start_date=TODAY - dt.timedelta(days=20), target_amplitude=0.050)
    for k in range(6):
        _play(store, rx.program_version_id, "P-PDF-Pseudonym-0042", ("quadriceps",),
              0.040 + 0.002 * k, comfort=7, status="aborted" if k == 2 else "finished")
    for days, pain in ((56, 8), (42, 7), (28, 6), (14, 4), (0, 3)):
        record.record_outcome("P-PDF-Pseudonym-0042", "pain_nrs", pain,
                              measured_on=TODAY - dt.timedelta(days=days))
    record.record_outcome("P-PDF-Pseudonym-0042", "six_minute_walk", 320.0,
                          measured_on=TODAY - dt.timedelta(days=1), population="copd")
    record.record_outcome("P-PDF-Pseudonym-0042", "six_minute_walk", 330.0, measured_on=TODAY)


@pytest.mark.browser
@pytest.mark.parametrize("use_playwright", [True, False], ids=["playwright", "chromium-cli"])
def test_pdf_pages_are_a4_and_nothing_is_cut_at_the_right_margin(
        store: Store, record: TherapyRecord, tmp_path: Path, render, use_playwright: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    _busy_patient(store, record)
    if not use_playwright:  # the path a clinic PC without the playwright package takes
        monkeypatch.setattr(pdfmod, "_with_playwright", lambda *a: False)
    out = tmp_path / "report.pdf"
    write_progress_report(store, "P-PDF-Pseudonym-0042", pdf=out, as_of=TODAY)
    assert out.read_bytes().startswith(b"%PDF")
    pages = render(out, "report")
    assert len(pages) >= 3  # outcomes and dose each start a page
    for png, w, h in pages:
        assert (w, h) == pytest.approx(A4_PT, abs=1.0), png
        assert _cut_and_margin_ink(png) == (0, 0), png
    text = ink_in_band(pages[0][0], 15.0, EDGE_MM, A4_WIDTH_MM)
    assert text > 500  # the check sees ink where there is text: the page is not blank


@pytest.mark.browser
def test_the_german_pdf_report_renders_in_german_on_a4(
        store: Store, record: TherapyRecord, tmp_path: Path, render) -> None:  # type: ignore[no-untyped-def]
    """The report in German: headings, table heads, chart labels and the protocol's title
    in German, dates as 05.12.2026 and decimals with a comma, on A4 pages with nothing cut
    at the right margin (German words are longer)."""
    import re

    _busy_patient(store, record)
    html, out = tmp_path / "bericht.html", tmp_path / "bericht.pdf"
    write_progress_report(store, "P-PDF-Pseudonym-0042", html=html, pdf=out, as_of=TODAY,
                          lang="de")
    page = html.read_text(encoding="utf-8")
    assert '<html lang="de">' in page
    for german in ("Verlaufsbericht", "Dosis und Therapietreue", "Veränderung zum Ausgangswert",
                   "Quadrizepskräftigung bei Kniearthrose", "Sitzungen gemacht"):
        assert german in page, german
    for english in ("Progress report", "Dose and adherence", "change from baseline",
                    "Quadriceps strengthening in knee osteoarthritis", "sessions done"):
        assert english not in page, english
    assert TODAY.strftime("%d.%m.%Y") in page
    pages = render(out, "bericht")
    assert len(pages) >= 3
    text = " ".join(png.with_suffix(".txt").read_text(encoding="utf-8") for png, _, _ in pages)
    assert "Verlaufsbericht" in text and "Dosis und Therapietreue" in text
    assert re.search(r"\d,\d mA|\d+,\d+", text), text[:500]  # decimal commas
    for png, w, h in pages:
        assert (round(w), round(h)) == (round(A4_PT[0]), round(A4_PT[1]))
        cut, margin = _cut_and_margin_ink(png)
        assert cut == 0 and margin == 0, (png.name, cut, margin)


@pytest.mark.browser
def test_the_margin_check_catches_a_page_too_wide_for_a4(tmp_path: Path, render) -> None:  # type: ignore[no-untyped-def]
    wide = ("<!doctype html><html><head><title>wide</title><style>@page{size:A4;margin:13mm}"
            "td{white-space:nowrap;border:1px solid #000}</style></head><body><table><tr>"
            + "".join(f"<td>column {i} 12.5 mA</td>" for i in range(30))
            + "</tr></table></body></html>")
    out = pdfmod.html_to_pdf(wide, tmp_path / "wide.pdf")
    pages = render(out, "wide")
    cut, margin = _cut_and_margin_ink(pages[0][0])
    assert cut > 20 and margin == 0  # cut at the content edge, as Chromium clips


def test_no_chromium_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdfmod, "_DEBIAN", tmp_path / "no-chromium")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("NMES_CHROMIUM", raising=False)
    with pytest.raises(NmesError, match=r"Chromium, which lays out the PDF, was not found.*"
                                        r"apt-get install chromium.*NMES_CHROMIUM"):
        pdfmod.html_to_pdf("<p>x</p>", tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()
    monkeypatch.setenv("NMES_CHROMIUM", str(tmp_path / "nothing-here"))
    with pytest.raises(NmesError, match=r"NMES_CHROMIUM='.*nothing-here' is not an executable"):
        pdfmod.find_chromium()
