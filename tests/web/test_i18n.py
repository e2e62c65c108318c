"""Languages: the reader's language is chosen from the browser or the switch, the patient's
pages read in German and Spanish with numbers and dates in the locale's format, and every text
marked in the templates and the code has a translation in every catalogue."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from opennmes import i18n
from opennmes.store import Store
from opennmes.therapy import TherapyRecord


# ----------------------------------------------------------------------------- negotiation
@pytest.mark.parametrize(("accept", "chosen", "lang"), [
    ("de-DE,de;q=0.9,en;q=0.8", None, "de"),
    ("es-419, en;q=0.5", None, "es"),
    ("fr-FR, fr;q=0.9, es;q=0.4, de;q=0.3", None, "es"),  # French is not offered: next best
    ("en;q=0.2, de;q=0.9", None, "de"),  # quality, not order
    ("de;q=0", None, "en"),  # q=0 means "not German"
    ("fr", None, "en"),
    ("", None, "en"),
    (None, None, "en"),
    ("de", "es", "es"),  # the switch wins over the browser
    ("de", "xx", "de"),  # an unknown choice is ignored
])
def test_negotiate(accept: str | None, chosen: str | None, lang: str) -> None:
    assert i18n.negotiate(accept, chosen) == lang


def test_numbers_and_dates_in_the_locale() -> None:
    assert i18n.format_quantity(12.5, "mA", "de", 1) == "12,5 mA"
    assert i18n.format_quantity(12.5, "mA", "es", 1) == "12,5 mA"
    assert i18n.format_quantity(12.5, "mA", "en", 1) == "12.5 mA"
    assert i18n.format_significant(85.5, "de") == "85,5"
    assert i18n.format_significant(95.0, "de") == "95"
    assert i18n.format_number(12345.6, "de", 1) == "12.345,6"
    day = dt.datetime(2026, 12, 5, 14, 5)
    assert i18n.format_datetime(day, "de") == "05.12.2026, 14:05"
    assert i18n.format_datetime(day, "es") == "5 dic 2026, 14:05"
    assert i18n.format_datetime(day, "en") == "5 Dec 2026, 14:05"


def test_gettext_falls_back_to_english() -> None:
    assert i18n.gettext("de", "Log out") == "Abmelden"
    assert i18n.gettext("es", "Log out") == "Cerrar sesión"
    assert i18n.gettext("en", "Log out") == "Log out"
    assert i18n.gettext("xx", "Log out") == "Log out"
    assert i18n.ngettext("de", "%(count)s minute", "%(count)s minutes", 2) == "%(count)s Minuten"


# ----------------------------------------------------------------------------- the pages
def _home_with_progress(store: Store) -> None:
    rec = TherapyRecord(store)
    rec.prescribe("TKA-001", "total-knee-arthroplasty", side="right",
                  start_date=dt.date.today(), by="clin", notes="Two sessions a day.")
    rec.record_outcome("TKA-001", "mvic_torque", 85.5, measured_on=dt.date(2026, 11, 2),
                       side="right", by="clin")
    rec.record_outcome("TKA-001", "mvic_torque", 102.5, measured_on=dt.date(2026, 11, 16),
                       side="right", by="clin")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize(("accept", "words", "numbers"), [
    ("de-DE,de;q=0.9", ["Die Sitzung für heute", "Wo die Elektroden hinkommen", "Abmelden",
                        "Sitzung für heute starten", "Ihre Fortschritte", "Anspannungen"],
     ["Am Anfang 85,5 N m, jetzt 102,5 N m."]),
    ("es-ES,es;q=0.9", ["La sesión de hoy", "Dónde se ponen los electrodos", "Cerrar sesión",
                        "Empezar la sesión de hoy", "Su progreso", "contracciones"],
     ["Al principio 85,5 N m, ahora 102,5 N m."]),
    ("en-GB,en;q=0.9", ["Today's session", "Where the pads go", "Log out",
                        "Start today's session", "Your progress", "contractions"],
     ["85.5 N m at the start, 102.5 N m now."]),
])
def test_the_patient_home_page_speaks_the_browsers_language(
        client_for, store: Store, accept: str, words: list[str], numbers: list[str]) -> None:  # type: ignore[no-untyped-def]
    _home_with_progress(store)
    client = client_for("pat")
    client.headers["Accept-Language"] = accept
    r = client.get("/home")
    assert r.status_code == 200
    lang = accept[:2]
    assert r.headers["content-language"] == lang
    assert f'<html lang="{lang}">' in r.text
    text = _text(r.text)
    for w in words + numbers:
        assert w in text, (w, text[:2000])
    if lang != "en":
        for english in ("Today's session", "Where the pads go", "Log out", "Your progress"):
            assert english not in text


def test_the_language_switch_outlives_the_login(client_for, store: Store) -> None:  # type: ignore[no-untyped-def]
    _home_with_progress(store)
    client = client_for("pat")
    client.headers["Accept-Language"] = "de"
    client.page("/home")
    r = client.submit("/language", {"lang": "es", "next": "/home"})
    assert r.status_code == 303 and r.headers["location"] == "/home"
    assert "Empezar la sesión de hoy" in client.page("/home")  # the switch beats the browser
    client.submit("/logout")
    assert "Iniciar sesión" in client.page("/login")
    r = client.submit("/language", {"lang": "none", "next": "//evil.example"})
    assert r.headers["location"] == "/"  # never sent off the site
    assert "Anmelden" in client.page("/login")  # the choice forgotten: the browser's again


def test_the_live_page_and_its_script_get_the_words_and_the_format(  # type: ignore[no-untyped-def]
        client_for, store: Store, app) -> None:
    TherapyRecord(store).prescribe("TKA-001", "total-knee-arthroplasty", side="right",
                                   start_date=dt.date.today(), by="clin")
    client = client_for("pat")
    client.headers["Accept-Language"] = "de"
    client.page("/home")
    r = client.submit("/home/start")
    assert r.status_code == 303 and "/live/" in r.headers["location"]
    try:
        html = client.page(r.headers["location"])
        text = _text(html)
        assert "0,0 mA" in text and "STOPP" in text and "Stärke" in text
        assert 'data-lang="de"' in html and "Strom aus" in html
    finally:
        app.state.live.stop_all("test over")


# ----------------------------------------------------------------------------- catalogues
def _missing(extracted: Catalog, lang: str) -> list[str]:
    """Texts of ``extracted`` that the catalogue of ``lang`` lacks, leaves empty or fuzzy, or
    whose translation names other placeholders than the text."""
    path = i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    bad = []
    for msg in extracted:
        if not msg.id:
            continue
        have = catalog.get(msg.id, context=msg.context)
        ids = msg.id if isinstance(msg.id, tuple) else (msg.id,)
        strings = ((have.string if isinstance(have.string, tuple) else (have.string,))
                   if have is not None else ())
        if have is None or have.fuzzy or not strings or not all(strings):
            bad.append(f"{lang}: no translation of {ids[0]!r}")
            continue
        names = {n for i in ids for n in re.findall(r"%\((\w+)\)s|\{(\w+)\}", i)}
        for s in strings:
            if {n for n in re.findall(r"%\((\w+)\)s|\{(\w+)\}", s)} - names:
                bad.append(f"{lang}: {s!r} names a placeholder {ids[0]!r} does not have")
    return bad


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    return i18n.extract_messages()


def test_the_extraction_sees_the_pages(extracted: Catalog) -> None:
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    assert {"Log out", "Where the pads go", "Start today's session", "Too large",
            "There is no session planned for you yet."} <= ids
    assert len(ids) > 100


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != "en"])
def test_every_text_has_a_translation(extracted: Catalog, lang: str) -> None:
    assert _missing(extracted, lang) == []


def test_a_new_text_without_translation_is_found(extracted: Catalog) -> None:
    extended = Catalog()
    for msg in extracted:
        if msg.id:
            extended.add(msg.id, context=msg.context)
    extended.add("A sentence nobody has translated yet.")
    assert _missing(extended, "de") == [
        "de: no translation of 'A sentence nobody has translated yet.'"]


def test_event_words_in_each_language() -> None:
    from types import SimpleNamespace

    from opennmes.report.words import dose_head, event_words, grouped_events

    data = {"channel": "quad", "old": 0.010, "new": 0.0125, "by": "clinician"}
    assert event_words("intensity", data) == (
        "Intensity of quad raised from 10.0 mA to 12.5 mA by the physiotherapist.")
    assert event_words("intensity", data, "de") == (
        "Stärke von quad von 10,0 mA auf 12,5 mA erhöht durch den Physiotherapeuten.")
    assert event_words("intensity", data, "es") == (
        "Intensidad de quad subida de 10,0 mA a 12,5 mA por el fisioterapeuta.")
    assert event_words("pause", {"by": "patient"}, "de") == (
        "Pausiert durch den Patienten; Strom auf null.")
    assert event_words("comfort", {"score": 8, "by": "patient"}, "es") == (
        "Comodidad valorada con 8 de 10 por el paciente.")
    steps = [SimpleNamespace(t=t, kind="intensity",
                             data={"channel": "quad", "old": k * 1e-3, "new": (k + 1) * 1e-3,
                                   "by": "titration"})
             for k, t in enumerate((0.0, 1.5, 3.0))]
    assert grouped_events(steps, lang="de")[0][2] == (
        "Stärke von quad von 0,0 mA auf 3,0 mA erhöht in 3 Schritten durch den Einstellplan "
        "(0,0 bis 3,0 s).")
    assert grouped_events(steps)[0][2] == (
        "Intensity of quad raised from 0.0 mA to 3.0 mA in 3 steps by the titration plan "
        "(0.0 to 3.0 s).")
    assert dose_head("es")[:3] == ("Canal", "Pulsos", "Contracciones")


# ----------------------------------------------------------------------------- the user's own
def test_the_users_own_language_beats_the_browser_and_the_switch_beats_both(  # type: ignore[no-untyped-def]
        client_for, store: Store, app) -> None:
    client = client_for("pat")
    client.headers["Accept-Language"] = "en-GB,en;q=0.9"
    html = client.page("/account")
    assert 'action="/account/language"' in html and "My browser's language" in html
    r = client.submit("/account/language", {"lang": "de"})
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert app.state.accounts.get_user(app.state.accounts.authenticate(
        "pat", "pat-pass-1234").id).language == "de"
    # a new browser (no switch cookie) with an English Accept-Language: the account's German
    other = client_for("pat")
    other.headers["Accept-Language"] = "en-GB,en;q=0.9"
    r = other.get("/home")
    assert r.headers["content-language"] == "de" and "Ihre Fortschritte" in r.text
    assert '<option value="de" lang="de" selected>' in other.page("/account")
    # the switch still changes this one browser
    other.submit("/language", {"lang": "es", "next": "/home"})
    assert "Su progreso" in other.page("/home")
    # back to the browser's language: the setting is forgotten
    client.page("/account")
    client.submit("/account/language", {"lang": ""})
    fresh = client_for("pat")
    fresh.headers["Accept-Language"] = "en-GB,en;q=0.9"
    assert "Your progress" in fresh.page("/home")
    # a language the app does not have is refused, naming it
    r = client.submit("/account/language", {"lang": "fr"})
    assert r.status_code == 400 and "&#39;fr&#39;" in r.text


def test_the_language_column_comes_with_a_migration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Revision 0005 adds users.language to a database of revision 0004; its accounts keep
    their rows and read their browser's language (None) until they choose one."""
    import sqlalchemy as sa

    from opennmes.store._engine import head_revision, make_engine, upgrade_schema

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        upgrade_schema(engine, "0004")
        assert "language" not in {c["name"] for c in sa.inspect(engine).get_columns("users")}
        with engine.begin() as con:
            con.execute(sa.text("INSERT INTO users (username, password_hash, role, active, "
                                "created_at) VALUES ('old', 'x', 'clinician', 1, "
                                "'2026-12-01 10:00:00')"))
        assert upgrade_schema(engine)[1] == head_revision() == "0005"
        with engine.connect() as con:
            assert con.execute(sa.text("SELECT username, language FROM users")).all() == [
                ("old", None)]
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- reports
def test_the_session_report_in_german_and_spanish(store: Store) -> None:
    """The HTML session report in the reader's language: headings, dose table heads, the
    events in words, numbers with a decimal comma; English stays as it was."""
    from opennmes.report.session_report import session_report_html
    from tests.therapy.test_record import _play

    rx = TherapyRecord(store).prescribe("TKA-001", "total-knee-arthroplasty", side="right",
                                        start_date=dt.date.today(), by="clin")
    sid = _play(store, rx.program_version_id, "TKA-001", ("quadriceps",), 0.0125, comfort=7)
    # the dose summary a finished session keeps (opennmes.safety.dose_summary's keys, SI)
    dose = {"channels": [{"channel": "quadriceps", "pulses": 150, "contractions": 3,
                          "stim_time": 3.0, "tolerated_level": 0.0125, "peak_amplitude": 0.0125,
                          "max_level": 0.0125, "total_charge": 5e-4,
                          "max_charge_per_phase": 3.75e-6, "peak_current_density": 0.5,
                          "max_rms_current_density": 0.05, "area": 0.0025,
                          "time_at_intensity": [[0.0125, 3.0]]}]}
    record = dataclasses.replace(store.load_session(sid), dose=dose)
    de = session_report_html(record, "de")
    assert "<html lang='de'>" in de
    for german in ("Stromstärke und Kraft", "Ermüdung", "Abgegebene Dosis",
                   "Vertragene Stärke (mA)", "Wie sie endete", "mit 7 von 10 bewertet",
                   "Zeit je Stärke, quadriceps: 12 mA 3,0 s", "Begonnen (UTC)"):
        assert german in de, german
    for english in ("Amplitude and force", "Dose delivered", "Tolerated level", "How it ended"):
        assert english not in de, english
    assert "<td>12,5</td>" in de  # the highest delivered amplitude, mA, decimal comma
    es = session_report_html(record, "es")
    assert "Dosis administrada" in es and "<td>12,5</td>" in es
    en = session_report_html(record)
    assert "<html lang='en'>" in en and "Dose delivered" in en and "<td>12.5</td>" in en
