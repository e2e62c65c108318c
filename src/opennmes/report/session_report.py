"""The session report: one self-contained HTML file to attach to the patient's file.

Sections: what was run (patient, program version, device, status and why it ended), the
amplitude delivered and the force over time, fatigue (peak force of each contraction), the
dose table per channel and the events. Figures are Matplotlib PNGs embedded in the page.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.i18n import (
    N_,
    format_datetime,
    format_number,
    format_percent,
    format_quantity,
    gettext,
)

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.signals import Signals
    from opennmes.store import SessionRecord

__all__ = ["write_session_report", "contraction_peaks", "session_report_html", "event_details"]

# the records' session statuses, as the reader's language shows them
_STATUS = {"finished": N_("finished"), "aborted": N_("stopped early"),
           "interrupted": N_("interrupted"), "running": N_("running")}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;
margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ddd;
padding:.3em .6em;text-align:left;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.ok{color:#1a7f37}.bad{color:#b42318;font-weight:bold}img{max-width:100%}
.small{color:#666;font-size:.9em}
"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _force(streams: dict[str, Signals]) -> tuple[np.ndarray, np.ndarray, str] | None:
    for sig in streams.values():
        for i, n in enumerate(sig.names):
            if n.endswith(".force"):
                return sig.t, sig.data[i], n
    return None


def _model_state(streams: dict[str, Signals], suffix: str) -> tuple[np.ndarray, np.ndarray] | None:
    for sig in streams.values():
        for i, n in enumerate(sig.names):
            if n.endswith(suffix):
                return sig.t, sig.data[i]
    return None


def contraction_peaks(record: SessionRecord) -> list[tuple[float, float]]:
    """(start s, peak force N) of each delivered pulse train, from the force stream."""
    from opennmes.session import channel_trains

    f = _force(record.streams)
    p = record.pulses
    if f is None or not len(p):
        return []
    t, force, _ = f
    periods = np.diff(p.t)
    period = float(np.median(periods[periods > 0])) if (periods > 0).any() else 0.02
    out = []
    for a, b in channel_trains(p.t, period):
        m = (t >= a) & (t < b + 0.5)
        if m.any():
            out.append((a, float(force[m].max())))
    return out


def _figures(record: SessionRecord) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs: dict[str, str] = {}
    p = record.pulses
    f = _force(record.streams)
    fig, axes = plt.subplots(2 if f else 1, 1, figsize=(10, 5.5 if f else 3.2), sharex=True,
                             constrained_layout=True, squeeze=False)
    ax = axes[0, 0]
    for i, name in enumerate(p.channel_names):
        m = p.channel == i
        ax.plot(p.t[m], p.amplitude[m] * 1e3, ".", ms=1.5, label=name)
    for ev in record.events:
        if ev.kind in ("pause", "resume", "stop", "watchdog", "device_error"):
            ax.axvline(ev.t, color="0.6", lw=0.8, ls="--")
            ax.text(ev.t, ax.get_ylim()[1], ev.kind, rotation=90, va="top", fontsize=7)
    ax.set_ylabel("amplitude delivered (mA)")
    if len(p.channel_names) > 1:
        ax.legend(fontsize=8, markerscale=5)
    if f:
        t, force, name = f
        axes[1, 0].plot(t, force, lw=0.8, color="C3")
        axes[1, 0].set_ylabel(f"{name.replace('.', ' ')} (N)")
    axes[-1, 0].set_xlabel("session time (s)")
    figs["amplitude"] = _png(fig)
    peaks = contraction_peaks(record)
    if len(peaks) >= 2:
        fig, ax = plt.subplots(figsize=(10, 3.2), constrained_layout=True)
        k = np.arange(1, len(peaks) + 1)
        pk = np.array([x[1] for x in peaks])
        ref = pk.max() if pk.max() > 0 else 1.0
        ax.plot(k, 100 * pk / ref, "o-", label="peak force (% of the session's best)")
        a = _model_state(record.streams, ".A")
        if a is not None:  # Ding force model: A (force scaling factor) falls with fatigue
            t_a, val = a
            starts = np.array([x[0] for x in peaks])
            idx = np.clip(np.searchsorted(t_a, starts), 0, t_a.size - 1)
            if val[0] > 0:
                ax.plot(k, 100 * val[idx] / val[0], "s--", ms=4,
                        label="model fatigue state A (% of rest; Ding 2003)")
        ax.set_xlabel("contraction")
        ax.set_ylabel("%")
        ax.set_ylim(0, 105)
        ax.legend(fontsize=8, loc="lower left")
        ax.grid(alpha=0.3)
        figs["fatigue"] = _png(fig)
    for name, sig in record.streams.items():
        if name.startswith("control.") and sig.n_samples:
            figs[name] = _tracking_figure(sig, name)
    return figs


def event_details(kind: str, data: dict[str, Any]) -> str:
    """One readable line for a stored event (:func:`opennmes.report.words.event_words`)."""
    from opennmes.report.words import event_words

    return event_words(kind, data)


def _functional_section(record: SessionRecord, figs: dict[str, str]) -> list[str]:
    """Triggers and closed loops: counts per channel, tracking figure and RMSE."""
    e = html.escape
    trig = [ev for ev in record.events if ev.kind == "trigger"]
    loops = [ev for ev in record.events if ev.kind == "loop"]
    controls = [n for n in record.streams if n.startswith("control.")]
    if not (trig or loops or controls):
        return []
    out = ["<h2>Functional stimulation</h2>"]
    chans = sorted({str(ev.data.get("channel")) for ev in trig})
    if chans:
        out.append("<table><tr><th>Triggered channel</th><th>bursts</th><th>ignored</th>"
                   "<th>ended early</th><th>sensor silences</th></tr>")
        for c in chans:
            got = [ev.data.get("result") for ev in trig if ev.data.get("channel") == c]
            out.append(f"<tr><td>{e(c)}</td><td>{got.count('burst')}</td>"
                       f"<td>{got.count('ignored')}</td><td>{got.count('end')}</td>"
                       f"<td>{got.count('silent')}</td></tr>")
        out.append("</table>")
    reps = [ev for ev in loops if ev.data.get("what") == "repetition"]
    if reps:
        out.append("<table><tr><th>Closed-loop channel</th><th>repetition</th>"
                   "<th>tracking RMSE</th></tr>")
        count: dict[str, int] = {}
        for ev in reps:
            c = str(ev.data.get("channel"))
            count[c] = count.get(c, 0) + 1
            v = ev.data.get("value")
            rad = str(ev.data.get("detail", "")).endswith("(rad)")
            val = "-" if not isinstance(v, int | float) else (
                f"{math.degrees(v):.2f} deg" if rad else f"{v:.4g}")
            out.append(f"<tr><td>{e(c)}</td><td>{count[c]}</td><td>{val}</td></tr>")
        out.append("</table>")
    for ev in loops:
        if ev.data.get("what") in ("saturated", "silent"):
            out.append(f"<p class='bad'>{ev.t:.1f} s: {e(event_details('loop', ev.data))}</p>")
    for name in controls:
        if name in figs:
            out.append(f"<img alt='closed-loop tracking, {e(name[8:])}' "
                       f"src='data:image/png;base64,{figs[name]}'>")
    return out


def _tracking_figure(sig: Signals, name: str) -> str:
    import matplotlib.pyplot as plt

    ch = name[len("control."):]
    tgt, meas, amp = (sig[f"{ch}.{k}"] for k in ("target", "measured", "amplitude"))
    unit = sig.unit(f"{ch}.target")
    scale, label = (180.0 / math.pi, "deg") if unit == "rad" else (1.0, unit)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, constrained_layout=True)
    t = sig.t
    a1.plot(t, tgt * scale, lw=1.2, color="k", label="target")
    a1.plot(t, meas * scale, lw=0.9, color="C0", label="measured")
    a1.set_ylabel(f"{ch} ({label})")
    a1.legend(fontsize=8)
    a2.plot(t, amp * 1e3, lw=0.8, color="C3")
    a2.set_ylabel("amplitude (mA)")
    a2.set_xlabel("session time (s)")
    return _png(fig)


def _fmt(v: Any, scale: float = 1.0, digits: int = 2, lang: str = "en") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format_number(v * scale, lang, digits)


def session_report_html(record: SessionRecord, lang: str = "en") -> str:
    """The report as an HTML string, in ``lang`` (one of :data:`opennmes.i18n.LANGUAGES`:
    headings, table heads, the events in words, numbers and dates in its locale; the
    figures' labels and the functional section are English)."""
    def _(text: str) -> str:
        return gettext(lang, text)

    e = html.escape
    info = record.info
    figs = _figures(record)
    ok = info.status == "finished"
    rows = [
        (_("Patient"), info.patient_id),
        (_("Program"), _("%(name)s (version %(version)s)") % {
            "name": info.program_name, "version": info.program_version}),
        (_("Device"), info.device_url),
        (_("Started (UTC)"), format_datetime(info.started_at, lang)),
        (_("Ended (UTC)"), format_datetime(info.ended_at, lang) if info.ended_at else "-"),
        (_("Status"), _(_STATUS.get(info.status, info.status))),
        (_("How it ended"), info.end_reason or "-"),
        (_("Software"), f"OpenNMES {info.software_version}"),
    ]
    title = _("Session %(id)s: %(name)s") % {"id": info.id, "name": info.program_name}
    out = [f"<!doctype html><html lang='{e(lang)}'><head><meta charset='utf-8'><title>"
           f"{e(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{e(title)}</h1>",
           f"<p class='{'ok' if ok else 'bad'}'>"
           f"{e(_(_STATUS.get(info.status, info.status)).upper())}: "
           f"{e(info.end_reason or '')}</p><table>"]
    out += [f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows]
    out.append("</table>")
    head, alt = _("Amplitude and force"), _("amplitude and force over time")
    out.append(f"<h2>{e(head)}</h2>")
    out.append(f"<img alt='{e(alt)}' src='data:image/png;base64,{figs['amplitude']}'>")
    peaks = contraction_peaks(record)
    head = _("Fatigue")
    out.append(f"<h2>{e(head)}</h2>")
    if "fatigue" in figs:
        pk = [x[1] for x in peaks]
        drop = 100 * (1 - pk[-1] / max(pk)) if max(pk) > 0 else 0.0
        sentence = _("%(count)s contractions; the last reached %(percent)s of the session's "
                     "strongest (%(force)s).") % {
            "count": len(pk), "percent": format_percent((100 - drop) / 100, lang),
            "force": format_quantity(max(pk), "N", lang)}
        out.append(f"<p>{e(sentence)}</p>")
        alt = _("peak force per contraction")
        out.append(f"<img alt='{e(alt)}' src='data:image/png;base64,{figs['fatigue']}'>")
    else:
        none = _("No force recording with two or more contractions.")
        out.append(f"<p class='small'>{e(none)}</p>")
    head = _("Dose delivered")
    out.append(f"<h2>{e(head)}</h2>")
    dose = record.dose or {}
    chans = dose.get("channels", [])
    if chans:
        cols = [(N_("Channel"), "channel", None, 0), (N_("Pulses"), "pulses", None, 0),
                (N_("Contractions"), "contractions", None, 0),
                (N_("Stimulation time (s)"), "stim_time", 1.0, 1),
                (N_("Tolerated level (mA)"), "tolerated_level", 1e3, 1),
                (N_("Highest delivered (mA)"), "peak_amplitude", 1e3, 1),
                (N_("Highest set (mA)"), "max_level", 1e3, 1),
                (N_("Total charge (mC)"), "total_charge", 1e3, 2),
                (N_("Max charge/phase (µC)"), "max_charge_per_phase", 1e6, 1),
                (N_("Peak current density (mA/cm²)"), "peak_current_density", 0.1, 2),
                (N_("Max rms current density (mA/cm²)"), "max_rms_current_density", 0.1, 3),
                (N_("Electrode area (cm²)"), "area", 1e4, 1)]
        out.append("<table><tr>" + "".join(f"<th>{e(_(c[0]))}</th>" for c in cols) + "</tr>")
        for ch in chans:
            cells = []
            for _head, key, scale, digits in cols:
                v = ch.get(key)
                cells.append(e(str(v)) if scale is None else _fmt(v, scale, digits, lang))
            out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        out.append("</table>")
        out.append("<p class='small'>" + e(_(
            "From the pulses the device acknowledged (not the plan). Current density: IEC "
            "60601-2-10 asks for the operator's attention above 2 mA rms/cm² (CPS §4.1).")) +
            "</p>")
        for ch in chans:
            tai = [x for x in ch.get("time_at_intensity", []) if x[1] > 0]
            if tai:
                top = sorted(tai, key=lambda x: -x[1])[:8]
                head = _("Time at intensity, %(channel)s:") % {"channel": ch["channel"]}
                out.append(f"<p class='small'>{e(head)} " + ", ".join(
                    f"{format_quantity(a * 1e3, 'mA', lang)} {format_quantity(s, 's', lang, 1)}"
                    for a, s in sorted(top)) + "</p>")
    else:
        none = _("No dose summary was recorded.")
        out.append(f"<p class='small'>{e(none)}</p>")
    out += _functional_section(record, figs)
    from opennmes.report.words import grouped_events

    heads = (_("Events"), _("Time"), _("What happened"))
    out.append(f"<h2>{e(heads[0])}</h2><table><tr><th>{e(heads[1])}</th>"
               f"<th>{e(heads[2])}</th></tr>")
    for t, _kind, words in grouped_events(record.events, lang=lang):
        out.append(f"<tr><td>{format_quantity(t, 's', lang, 1)}</td><td>{e(words)}</td></tr>")
    out.append("</table>")
    streams = ", ".join(f"{st.name} ({st.n_samples} samples at {st.sfreq:g} Hz)"
                        for st in info.streams) or "none"
    out.append(f"<p class='small'>Session uid {e(info.uid)}; streams: {e(streams)}.</p>")
    out.append("</body></html>")
    return "\n".join(out)


def write_session_report(record: SessionRecord, path: str | Path, lang: str = "en") -> Path:
    """Write the HTML report of a stored session in ``lang``; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(session_report_html(record, lang), encoding="utf-8")
    return out
