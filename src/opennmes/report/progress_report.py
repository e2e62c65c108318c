"""The progress report of a patient: outcomes over time with MCID bands, dose and adherence,
progression steps and sessions, as one self-contained HTML page and as a PDF; and the
printable prescription sheet with the electrode placement picture.

HTML is rendered with Jinja2 (``report/templates/progress.html``) with the figures embedded
as base64 PNGs; the PDF is the same page laid out on A4 by headless Chromium
(:func:`opennmes.report.pdf.html_to_pdf`) with the page's print CSS.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opennmes.i18n import (
    N_,
    format_date,
    format_datetime,
    format_number,
    format_percent,
    format_quantity,
    format_significant,
    gettext,
    install_jinja,
    protocol_gettext,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from opennmes.store import Patient, Store
    from opennmes.therapy import (
        Adherence,
        AdjustmentRecord,
        OutcomeHistory,
        Prescription,
        TherapyRecord,
    )


__all__ = ["ProgressData", "RxProgress", "collect_progress", "outcome_figure",
           "adherence_figure", "progress_html", "write_progress_pdf", "write_progress_report",
           "prescription_sheet_html"]

# the records' English values, as the reader's language shows them
_WORDS = {"finished": N_("finished"), "aborted": N_("stopped early"),
          "interrupted": N_("interrupted"), "running": N_("running"), "active": N_("active"),
          "ended": N_("ended"), "left": N_("left"), "right": N_("right"),
          "bilateral": N_("both sides")}


@dataclass(frozen=True)
class RxProgress:
    """One prescription with its adherence and progression steps."""

    prescription: Prescription
    adherence: Adherence
    adjustments: list[AdjustmentRecord]


@dataclass(frozen=True)
class ProgressData:
    """Everything a progress report shows (see :func:`collect_progress`)."""

    patient: Patient
    as_of: dt.date
    generated_at: dt.datetime
    prescriptions: list[RxProgress]
    histories: list[OutcomeHistory]


def collect_progress(store: Store, patient_id: str, as_of: dt.date | None = None,
                     record: TherapyRecord | None = None) -> ProgressData:
    """Gather a patient's prescriptions, adherence, adjustments and outcome histories."""
    from opennmes.therapy import TherapyRecord

    rec = record or TherapyRecord(store)
    patient = store.get_patient(patient_id)
    day = as_of or dt.datetime.now(dt.UTC).date()
    rxs = [RxProgress(rx, rec.adherence(rx.id, day), rec.adjustments(rx.id))
           for rx in reversed(rec.list_prescriptions(patient_id))]
    return ProgressData(patient, day, dt.datetime.now(dt.UTC), rxs,
                        rec.outcome_histories(patient_id))


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def outcome_figure(history: OutcomeHistory, lang: str = "en") -> Figure:
    """Values over time (display units) with the threshold's band (MCID, MDC or published
    effect, named with its population) above and below the baseline.

    The darker band is the published threshold range in the direction of improvement
    (baseline + low .. baseline + high); the lighter one mirrors it for worsening; a
    cut-off is a dashed line. ``lang``: the language of the labels and dates.
    """
    from opennmes.therapy import threshold_label

    plt = _plt()
    inst = history.instrument
    fig, ax = plt.subplots(figsize=(6.4, 3.2), constrained_layout=True)
    ms = history.measurements
    days = [m.measured_on for m in ms]
    vals = [m.value * inst.scale for m in ms]
    ax.plot(days, vals, "o-", color="#1f4e79", zorder=3)
    if days:
        _date_axis(ax, min(days), max(days), lang)
    t = history.threshold
    if ms and t is not None and t.low is not None and t.high is not None:
        base = ms[0].value * inst.scale
        lo, hi = t.low * inst.scale, max(t.high, t.low) * inst.scale
        d = inst.direction
        span = [min(days), max(days) if len(days) > 1 else min(days) + dt.timedelta(days=1)]
        band_lo = (base + d * lo, base + d * hi)
        name = f"{threshold_label(t)} ({t.population})"
        better, worse = gettext(lang, "improvement"), gettext(lang, "worsening")
        ax.fill_between(span, min(band_lo), max(band_lo), color="#2e7d32", alpha=0.18,
                        label=f"{name}: {better}")
        ax.fill_between(span, base - d * lo, base - d * hi, color="#c62828", alpha=0.10,
                        label=f"{name}: {worse}")
        ax.axhline(base, color="#777", lw=0.8, ls=":", label=gettext(lang, "baseline"))
    cutoff = gettext(lang, "cut-off")
    for c in inst.thresholds:
        if c.kind == "cutoff" and c.low is not None:
            ax.axhline(c.low * inst.scale, color="#b26a00", ls="--", lw=1,
                       label=f"{cutoff} {format_significant(c.low * inst.scale, lang)}")
    side = f" ({gettext(lang, _WORDS.get(history.side, history.side))})" if history.side else ""
    ax.set_title(f"{inst.name}{side}", fontsize=10)
    ax.set_ylabel(inst.unit)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    return fig


def _date_axis(ax: Any, first: dt.date, last: dt.date, lang: str = "en") -> None:
    """Ticks on whole days (never hours), at most about seven, labelled as dates in the
    locale of ``lang``; the axis spans at least a week so one measurement sits in the
    middle of a readable range."""
    import matplotlib.dates as mdates
    from matplotlib.ticker import FixedLocator, FuncFormatter

    span = (last - first).days
    pad = dt.timedelta(days=max(1, span // 20))
    if span < 7:
        lo = first - dt.timedelta(days=(7 - span) // 2 + 1)
        hi = lo + dt.timedelta(days=8)
    else:
        lo, hi = first - pad, last + pad
    ax.set_xlim(mdates.date2num(lo), mdates.date2num(hi))
    step = max(1, -(-(hi - lo).days // 7))  # whole days between ticks, at most ~7 ticks
    ticks = [lo + dt.timedelta(days=d) for d in range(0, (hi - lo).days + 1, step)]
    ax.xaxis.set_major_locator(FixedLocator([mdates.date2num(d) for d in ticks]))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _pos: (f"{format_date(mdates.num2date(x).date(), lang, 'd MMM')}\n"
                         f"{mdates.num2date(x).year}")))
    ax.xaxis.set_minor_locator(FixedLocator([]))
    ax.set_xlabel(gettext(lang, "date"))


def adherence_figure(item: RxProgress, lang: str = "en") -> Figure:
    """Top: sessions done and aborted per week against prescribed. Bottom: peak amplitude per
    session with the target, and comfort ratings. ``lang``: the language of the labels."""
    def _(text: str) -> str:
        return gettext(lang, text)

    plt = _plt()
    adh = item.adherence
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(6.4, 5.0), constrained_layout=True)
    weeks = [w.week for w in adh.weeks]
    a1.bar(weeks, [w.prescribed for w in adh.weeks], color="#ddd", label=_("prescribed"))
    a1.bar(weeks, [w.done for w in adh.weeks], width=0.5, color="#2e7d32", label=_("done"))
    a1.bar(weeks, [w.partial for w in adh.weeks], width=0.5,
           bottom=[w.done for w in adh.weeks], color="#e0a100", label=_("stopped early"))
    from matplotlib.ticker import FixedLocator

    a1.xaxis.set_major_locator(FixedLocator(weeks or [1]))  # whole weeks only
    if weeks:
        a1.set_xlim(min(weeks) - 0.6, max(weeks) + 0.6)
    a1.set_xlabel(_("programme week"))
    a1.set_ylabel(_("sessions"))
    a1.legend(fontsize=7)
    a1.set_title(protocol_gettext(lang, item.prescription.document.get("protocol_title", "")),
                 fontsize=10)
    ss = adh.sessions
    if ss:
        x = list(range(1, len(ss) + 1))
        for ch in item.prescription.ceilings:
            a2.plot(x, [s.reached.get(ch, 0.0) * 1e3 for s in ss], "o-", label=f"{ch} (mA)")
            target = item.prescription.targets.get(ch)
            if target:
                a2.axhline(target * 1e3, ls="--", lw=0.8, color="#555",
                           label=_("%(channel)s target now") % {"channel": ch})
        a2.set_xlabel(_("session"))
        a2.set_ylabel(_("peak amplitude, mA"))
        comf = [(i, s.comfort) for i, s in zip(x, ss, strict=True) if s.comfort is not None]
        if comf:
            b = a2.twinx()
            b.plot([c[0] for c in comf], [c[1] for c in comf], "s", color="#8e24aa",
                   label=_("comfort (0-10)"))
            b.set_ylim(0, 10.5)
            b.set_ylabel(_("comfort 0-10"))
        a2.legend(fontsize=7, loc="lower right")
    else:
        a2.text(0.5, 0.5, _("no sessions yet"), ha="center", va="center")
        a2.set_axis_off()
    return fig


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _context(data: ProgressData, lang: str = "en") -> dict[str, Any]:
    from opennmes.therapy import threshold_text, verdict_text

    def _(text: str) -> str:
        return gettext(lang, text)

    def percent(share: float | None) -> str:
        return "-" if share is None else format_percent(share, lang)

    def ma(amps: float) -> str:
        return format_quantity(amps * 1e3, "mA", lang)

    outcomes = []
    for h in data.histories:
        inst = h.instrument
        rows = []
        for i, m in enumerate(h.measurements):
            a = h.from_baseline[i - 1] if i else None
            rows.append({"date": format_date(m.measured_on, lang), "value": inst.fmt(m.value),
                         "change": f"{'+' if a and a.change >= 0 else '-' if a else ''}"
                                   f"{inst.fmt(abs(a.change)) if a else ''}",
                         "status": verdict_text(a.status, a.threshold) if a else _("baseline"),
                         "css": a.status if a else ""})
        t = h.threshold
        outcomes.append({"name": inst.name,
                         "side": _(_WORDS.get(h.side, h.side)) if h.side else h.side,
                         "rows": rows,
                         "latest": h.latest.message if h.latest else None,
                         "threshold": threshold_text(t),
                         "png": _png(outcome_figure(h, lang))})
    rxs = []
    ceiling = _("ceiling %(amplitude)s")
    for item in data.prescriptions:
        rx, adh = item.prescription, item.adherence
        side = rx.document.get("side")
        rxs.append({
            "id": rx.id,
            "title": protocol_gettext(lang, rx.document.get("protocol_title", rx.protocol_id)),
            "status": _(_WORDS.get(rx.status, rx.status)),
            "side": _(_WORDS.get(side, side)) if side else "-",
            "start": format_date(rx.schedule.start_date, lang),
            "end": format_date(rx.schedule.end_date, lang),
            "schedule": _("%(per_day)s/day, %(per_week)s/week for %(weeks)s weeks") % {
                "per_day": rx.schedule.sessions_per_day,
                "per_week": rx.schedule.sessions_per_week, "weeks": rx.schedule.weeks},
            "targets": ", ".join(
                f"{k}: {'-' if v is None else ma(v)} "
                f"({ceiling % {'amplitude': ma(rx.ceilings[k])}})"
                for k, v in rx.targets.items()),
            "expected": adh.expected, "done": adh.done, "partial": adh.partial,
            "rate": percent(adh.rate), "reached": percent(adh.mean_reached),
            "comfort": ("-" if adh.mean_comfort is None
                        else f"{format_number(adh.mean_comfort, lang, 1)}/10"),
            "minutes": format_number(adh.minutes, lang), "findings": rx.findings,
            "contractions": adh.contractions,
            "adjustments": [{"at": format_date(a.at, lang), "what": a.parameter,
                             "channel": a.channel or "", "reason": a.reason}
                            for a in item.adjustments],
            "sessions": [{"id": s.session_id,
                          "date": format_datetime(s.started_at, lang, "short"),
                          "status": _(_WORDS.get(s.status, s.status)),
                          "minutes": format_number(s.duration / 60, lang, 1),
                          "contractions": s.contractions,
                          "charge": format_number(s.charge * 1e3, lang, 1),
                          "stim": format_number(s.stim_time / 60, lang, 1),
                          "reached": ", ".join(f"{k} {ma(v)}" for k, v in s.reached.items()),
                          "comfort": ("-" if s.comfort is None
                                      else format_significant(s.comfort, lang)),
                          "notes": "; ".join(s.notes)}
                         for s in adh.sessions],
            "png": _png(adherence_figure(item, lang)),
        })
    return {"patient": data.patient, "as_of": format_date(data.as_of, lang),
            "generated": f"{format_datetime(data.generated_at, lang)} UTC",
            "outcomes": outcomes, "prescriptions": rxs, "lang": lang}


def progress_html(data: ProgressData, lang: str = "en") -> str:
    """The report as one self-contained HTML page, in ``lang`` (one of
    :data:`opennmes.i18n.LANGUAGES`: texts, numbers and dates in its locale)."""

    return str(_env().get_template("progress.html").render(**_context(data, lang)))


def write_progress_pdf(data: ProgressData, path: str | Path, lang: str = "en") -> None:
    """The report as an A4 PDF in ``lang``: the HTML page laid out by headless Chromium.

    Raises
    ------
    NmesError
        When Chromium is not installed (the message says how to install it).
    """
    from opennmes.report.pdf import html_to_pdf

    html_to_pdf(progress_html(data, lang), path)


def write_progress_report(store: Store, patient_id: str, *, html: str | Path | None = None,
                          pdf: str | Path | None = None, as_of: dt.date | None = None,
                          lang: str = "en") -> ProgressData:
    """Write the progress report of a patient as HTML and/or PDF in ``lang``; returns the
    data shown."""
    data = collect_progress(store, patient_id, as_of)
    if html is not None:
        Path(html).write_text(progress_html(data, lang), encoding="utf-8")
    if pdf is not None:
        write_progress_pdf(data, pdf, lang)
    return data


def _env() -> Any:
    """The reports' Jinja2 environment, with the gettext callables and locale filters of
    :func:`opennmes.i18n.install_jinja` (the language is each render's ``lang``)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("opennmes.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    install_jinja(env)
    return env


def prescription_sheet_html(record: TherapyRecord, prescription_id: int) -> str:
    """A printable prescription: what, how often, where the pads go (with the placement
    picture), the intensity instruction, precautions and progression, for the patient's
    file and for the patient at home."""
    import markupsafe

    from opennmes.therapy import DIAGRAMS, diagram_svg, get_protocol

    rx = record.get_prescription(prescription_id)
    proto = get_protocol(rx.protocol_id)
    program = record.program(prescription_id)
    doc = rx.document
    chans = []
    for c in program.channels:
        env = ("continuous" if c.on is None else
               f"ramp up {c.ramp_up:g} s, on {c.on:g} s, ramp down {c.ramp_down:g} s, "
               f"rest {c.off:g} s")
        pw = "-" if c.waveform == "sine" else f"{c.pulse_width_s * 1e6:.0f} us"
        target = rx.targets.get(c.name)
        chans.append({"name": c.name, "site": c.electrode.site, "side": c.electrode.side or "-",
                      "area": f"{c.electrode.area_m2 * 1e4:.0f} cm2",
                      "waveform": f"{c.waveform}, {c.train.kind} train",
                      "frequency": f"{c.frequency:g} Hz", "pulse_width": pw, "envelope": env,
                      "ceiling": f"{c.amplitude * 1e3:.0f} mA",
                      "target": "set at the first session" if target is None
                      else f"{target * 1e3:.0f} mA"})
    d = proto.dose
    if proto.mode == "triggered":
        minutes = rx.state.get("minutes") or proto.dose.minutes_per_session
        per = f"{minutes:g} minutes of use, one burst per trigger"
    elif program.repetitions:
        per = f"{program.repetitions} contractions"
    else:
        per = f"{program.duration_s / 60:.0f} minutes"
    progression = []
    for r in proto.progression:
        if r.when == "tolerated":
            progression.append(
                f"{r.parameter}: +{float(r.step) * 1e3:g} mA after {r.sessions} finished "
                f"sessions at >= {r.min_reached:.0%} of the target with comfort >= "
                f"{r.min_comfort}/10" if r.parameter == "amplitude" else
                f"{r.parameter}: {float(r.step):+g} after {r.sessions} tolerated sessions")
        else:
            progression.append(f"{r.parameter}: {float(r.step):+g} every {r.every_weeks} "
                               f"week(s), up to {float(r.limit):g}")
    ctx = {
        "rx": rx, "proto": proto, "side": doc.get("side") or "-",
        "schedule": f"{rx.schedule.sessions_per_day} a day, {rx.schedule.sessions_per_week} a "
                    f"week, for {rx.schedule.weeks} weeks",
        "start": rx.schedule.start_date.isoformat(), "end": rx.schedule.end_date.isoformat(),
        "per_session": per, "program_minutes": f"{program.duration_s / 60:.1f}",
        "channels": chans, "diagram": markupsafe.Markup(diagram_svg(proto.placement.diagram)),
        "diagram_text": DIAGRAMS[proto.placement.diagram],
        "intensity": proto.intensity, "progression": progression,
        "findings": rx.findings, "sources": proto.evidence.sources,
        "dose_note": f"{d.sessions_per_week} sessions a week in the protocol",
        "trigger": proto.trigger,
    }
    return str(_env().get_template("progress_prescription.html").render(**ctx))
