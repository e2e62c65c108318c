"""The progress report: outcomes with MCID verdicts, adherence and sessions, HTML and PDF."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from opennmes.report.progress_report import collect_progress, write_progress_report
from opennmes.store import Store
from opennmes.therapy import TherapyRecord

from .test_record import TODAY, _play


def test_report_html_and_pdf(store: Store, record: TherapyRecord, tmp_path: Path) -> None:
    store.add_patient("P7", clinician="pt1")
    rx = record.prescribe("P7", "knee-osteoarthritis", side="right", start_date=TODAY,
                          target_amplitude=0.050)
    _play(store, rx.program_version_id, "P7", ("quadriceps",), 0.052, comfort=8)
    _play(store, rx.program_version_id, "P7", ("quadriceps",), 0.030, comfort=2,
          status="aborted")
    d0 = TODAY - dt.timedelta(days=14)
    record.record_outcome("P7", "pain_nrs", 7, measured_on=d0)
    record.record_outcome("P7", "pain_nrs", 4, measured_on=TODAY)
    record.record_outcome("P7", "six_minute_walk", 320.0, measured_on=d0, population="copd")
    record.record_outcome("P7", "six_minute_walk", 330.0, measured_on=TODAY)
    html, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    data = write_progress_report(store, "P7", html=html, pdf=pdf, as_of=TODAY)
    assert len(data.prescriptions) == 1 and len(data.histories) == 2
    text = html.read_text()
    assert "Patient <b>P7</b>" in text and "clinician pt1" in text
    assert "Pain numeric rating scale: -3 points from baseline 7 points: improved beyond the " \
           "MCID 2 points or 30%" in text  # Farrar 2001
    assert "below the MCID 25 m (copd; Holland AE" in text
    assert "1 of 1 due (100%)" in text
    assert "stopped early</th><td>1" in text
    assert text.count("data:image/png;base64,") == 3
    assert "<script" not in text
    raw = pdf.read_bytes()  # laid out by Chromium (pages checked in test_progress_pdf.py)
    assert raw.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", raw)) >= 2  # outcomes, then dose, on new pages


def test_report_of_a_new_patient_is_empty_but_valid(store: Store, tmp_path: Path) -> None:
    store.add_patient("P8")
    data = collect_progress(store, "P8")
    assert data.prescriptions == [] and data.histories == []
    write_progress_report(store, "P8", html=tmp_path / "a.html", pdf=tmp_path / "a.pdf")
    assert "No outcome measurements yet." in (tmp_path / "a.html").read_text()


def test_verdicts_name_their_threshold_and_fit_the_diagnosis(store: Store,
                                                             record: TherapyRecord,
                                                             tmp_path: Path) -> None:
    """A primary knee replacement: Timed Up and Go is judged against the knee-OA MDC (named
    as an MDC, with its population: the population before the operation), MVIC torque gets
    no verdict (its only published threshold is for revision TKA), unless the population is
    recorded with the measurement."""
    store.add_patient("P10")
    record.prescribe("P10", "total-knee-arthroplasty", side="right", start_date=TODAY)
    d0 = TODAY - dt.timedelta(days=21)
    record.record_outcome("P10", "tug", 14.0, measured_on=d0)
    record.record_outcome("P10", "tug", 11.0, measured_on=TODAY)
    record.record_outcome("P10", "mvic_torque", 60.0, measured_on=d0, side="right")
    record.record_outcome("P10", "mvic_torque", 100.0, measured_on=TODAY, side="right")
    hist = {h.instrument.key: h for h in record.outcome_histories("P10")}
    tug, torque = hist["tug"], hist["mvic_torque"]
    assert tug.threshold is not None and tug.threshold.population == "knee-oa"
    assert tug.latest is not None and tug.latest.status == "improved"
    assert torque.threshold is None and torque.latest is not None
    assert torque.latest.status == "no-threshold"
    assert "no verdict: no threshold published for this patient's condition (published for: " \
           "revision-tka" in torque.latest.message
    html = tmp_path / "r.html"
    write_progress_report(store, "P10", html=html, as_of=TODAY)
    text = html.read_text()
    assert "improved (beyond the MDC, knee-oa)" in text
    assert "no verdict: no published threshold" in text
    assert "beyond MCID" not in text
    assert "MDC (minimal detectable change: a real change, not necessarily an important one) " \
           "for knee-oa" in text
    # a population recorded with the measurement is the clinician's word: it is used
    record.record_outcome("P10", "mvic_torque", 105.0, measured_on=TODAY, side="right",
                          population="revision-tka")
    again = {h.instrument.key: h for h in record.outcome_histories("P10")}["mvic_torque"]
    assert again.threshold is not None and again.threshold.population == "revision-tka"
