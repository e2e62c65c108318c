"""No page for any role, in German or Spanish, shows an English text of the catalogue: every
page of the admin, the clinician, the patient and the logged-out visitor is rendered in each
language and its visible text (and the texts of placeholders, labels for screen readers and
page titles) searched for the English source of every translated text."""

from __future__ import annotations

import datetime as dt
import html as htmlmod
import re

import pytest
from babel.messages.catalog import Catalog

from opennmes import i18n
from opennmes.store import Store
from opennmes.therapy import TherapyRecord
from tests.therapy.test_record import _play

_HIDDEN = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_ATTRS = re.compile(r'\b(?:placeholder|aria-label|title|alt)="([^"]*)"')


def visible_text(page: str) -> str:
    """What a person reads or hears: the text between the tags (no scripts or styles) and the
    placeholder, aria-label, title and alt attributes, with the HTML entities decoded."""
    body = _HIDDEN.sub(" ", page)
    attrs = " ".join(_ATTRS.findall(body))
    text = re.sub(r"<[^>]+>", " ", body) + " " + attrs
    return re.sub(r"\s+", " ", htmlmod.unescape(text))


def english_sources(catalog: Catalog, lang: str) -> list[str]:
    """The English texts of the catalogue whose translation in ``lang`` differs, without
    their placeholders (split into the fixed parts between them), that are long enough to
    be recognised in a page: two words or more, or one word of 5 letters or more."""
    out: set[str] = set()
    for msg in catalog:
        if not msg.id:
            continue
        ids = msg.id if isinstance(msg.id, tuple) else (msg.id,)
        for source in ids:
            translated = (i18n.translations(lang).pgettext(msg.context, source) if msg.context
                          else i18n.gettext(lang, source))
            if translated == source:
                continue
            for part in re.split(r"%\(\w+\)s|\{\w+\}|<[^>]+>", source.replace("%%", "%")):
                part = re.sub(r"\s+", " ", part).strip(" .,:;()·")
                if re.search(r"[A-Za-z]", part) and (
                        len(part.split()) >= 2 or (len(part) >= 5 and part.isalpha())):
                    out.add(part)
    return sorted(out)


# English texts that are also the right text in the language (names of things, units, the
# language switch's own names), found here by word match only
_SAME = {"de": {"English", "Status", "Browser", "Details", "Patient", "Protokoll"},
         "es": {"English", "Deutsch", "Factor", "Total"}}


def _untranslated(page: str, sources: list[str], lang: str,
                  data: tuple[str, ...] = ()) -> list[str]:
    """The ``sources`` in the visible text of ``page``, apart from the texts in ``data``
    (what the records hold in English: instrument names, program names, verdicts)."""
    text = visible_text(page)
    for item in sorted(data, key=len, reverse=True):
        text = text.replace(item, " ")
    # the language switch names each language in itself
    text = text.replace("English", " ").replace("Deutsch", " ").replace("Español", " ")
    for name in ("admin", "clin2", "clin", "pat2", "pat"):  # the user names are data
        text = re.sub(rf"(?<![\w-]){name}(?![\w-])", " ", text)
    return [s for s in sources if s not in _SAME[lang]
            and re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", text)]


def _world(store: Store) -> tuple[int, tuple[str, ...]]:
    """The patient TKA-001 of the seed with a prescription, outcomes and a finished
    session; returns the session's id and the English texts the records themselves hold
    (instrument names and ranges, the outcome verdicts and their sources, the program's
    name), which the catalogue does not translate."""
    from opennmes.therapy import INSTRUMENTS

    rec = TherapyRecord(store)
    today = dt.date.today()
    rx = rec.prescribe("TKA-001", "total-knee-arthroplasty", side="right",
                       start_date=today - dt.timedelta(days=7), by="clin",
                       notes="Twice a day.")
    rec.record_outcome("TKA-001", "mvic_torque", 85.5, measured_on=today - dt.timedelta(days=14),
                       side="right", by="clin")
    rec.record_outcome("TKA-001", "mvic_torque", 102.5, measured_on=today, side="right",
                       by="clin")
    sid = _play(store, rx.program_version_id, "TKA-001", ("quadriceps",), 0.030, comfort=7)
    data = [rx.program_name]
    for i in INSTRUMENTS.values():
        data += [i.name, f"{i.fmt(i.minimum)} .. {i.fmt(i.maximum)}"]
    for h in rec.outcome_histories("TKA-001"):
        data += [a.message for a in h.from_baseline]
        if h.threshold is not None:
            data += [h.threshold.population, h.threshold.source]
    return sid, tuple(d for d in data if d)


PAGES = {
    None: ["/login"],
    "admin": ["/patients", "/patients/TKA-001", "/admin/users", "/audit", "/account",
              "/patients/TKA-001/screening", "/patients/TKA-001/prescribe",
              "/patients/TKA-001/outcomes", "/patients/TKA-001/progress", "/sessions/{sid}"],
    "clin": ["/patients", "/patients/TKA-001", "/account", "/patients/TKA-001/screening",
             "/patients/TKA-001/prescribe", "/patients/TKA-001/outcomes",
             "/patients/TKA-001/progress", "/sessions/{sid}"],
    "pat": ["/home", "/account", "/sessions/{sid}"],
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return i18n.extract_messages()


@pytest.mark.parametrize("lang", ["de", "es"])
def test_no_page_for_any_role_shows_an_untranslated_catalogue_text(  # type: ignore[no-untyped-def]
        client_for, store: Store, catalog: Catalog, lang: str) -> None:
    sid, data = _world(store)
    sources = english_sources(catalog, lang)
    assert len(sources) > 150
    found: dict[str, list[str]] = {}
    pages = 0
    for who, urls in PAGES.items():
        client = client_for(who)
        client.headers["Accept-Language"] = lang
        for url in urls:
            r = client.get(url.format(sid=sid))
            assert r.status_code == 200, (who, url, r.status_code)
            assert r.headers["content-language"] == lang
            pages += 1
            bad = _untranslated(r.text, sources, lang, data)
            if bad:
                found[f"{who} {url}"] = bad
        missing = client.get("/no-such-page")  # the error page
        assert missing.status_code == 404
        if bad := _untranslated(missing.text, sources, lang, data):
            found[f"{who} 404"] = bad
    assert pages == 22
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())


def test_the_check_finds_an_english_text() -> None:
    """The search itself: an English catalogue text in a German page is found, a translated
    one or a part of a longer word is not."""
    sources = ["Log out", "Where the pads go", "Adherence"]
    page = ("<html><body><p>Abmelden</p><button title='x'>Where the pads go</button>"
            "<script>var s = 'Log out';</script><p>Adherences</p></body></html>")
    assert _untranslated(page, sources, "de") == ["Where the pads go"]
    assert _untranslated('<input placeholder="Log out">', sources, "de") == ["Log out"]
