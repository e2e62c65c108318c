"""Languages: the texts people read in English, German and Spanish, numbers and dates in the
reader's own format.

The catalogues are gettext ``.po`` files in ``opennmes/locale/<lang>/LC_MESSAGES/messages.po``
(English is the source language and needs none). They are compiled in memory the first time a
language is used (Babel's ``read_po`` and ``write_mo``), so a fresh clone or an installed wheel
works without a build step and a ``.po`` file is never out of step with a compiled copy.

- :func:`negotiate` picks the language: the user's own choice when it is one of
  :data:`LANGUAGES`, else the best match of the browser's ``Accept-Language`` header, else
  English.
- :func:`translations` gives the ``gettext``/``ngettext``/``pgettext`` of a language;
  :func:`gettext` and :func:`ngettext` are short cuts.
- :func:`format_number`, :func:`format_quantity`, :func:`format_date` and
  :func:`format_datetime` write numbers and dates the way the reader's locale does
  (``format_quantity(0.0125 * 1e3, "mA", "de", 1)`` is ``"12,5 mA"``).

Babel (the ``web`` extra) reads the catalogues and knows the locales' formats. Without it
every text is English and numbers are written the English way.

This is a base module: it imports nothing from the packages above it.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from gettext import GNUTranslations, NullTranslations
from pathlib import Path
from typing import Any

__all__ = ["LANGUAGES", "DEFAULT_LANGUAGE", "LANGUAGE_NAMES", "LOCALE_DIR", "negotiate",
           "translations", "gettext", "ngettext", "format_number", "format_significant",
           "format_percent",
           "format_quantity", "format_date", "format_datetime", "install_jinja", "N_",
           "extract_messages", "PYTHON_KEYWORDS", "PROTOCOL_CONTEXT", "protocol_gettext",
           "protocol_texts"]

LANGUAGES: tuple[str, ...] = ("en", "de", "es")
"""The languages of the app and the reports (English is the source language)."""
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "de": "Deutsch", "es": "Español"}
"""Each language's name in itself (what a language switch shows)."""
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
_FORMATS = {"en": "en_GB"}  # day month year and 24-hour time, as European clinics write them


def negotiate(accept_language: str | None = None, chosen: str | None = None) -> str:
    """The language to use: ``chosen`` when it is one of :data:`LANGUAGES`, else the first
    of the ``Accept-Language`` header's languages (by quality, then order) that is one,
    matching on the primary tag (``de-AT`` is German), else :data:`DEFAULT_LANGUAGE`."""
    if chosen in LANGUAGES:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().replace("_", "-").split("-")[0]
        if primary and quality > 0:
            ranked.append((-quality, order, primary))
    for _, _, primary in sorted(ranked):
        if primary in LANGUAGES:
            return primary
        if primary == "*":
            return DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def _lang(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


@functools.cache
def translations(lang: str | None) -> NullTranslations:
    """The gettext translations of ``lang`` (compiled from its ``.po`` once per process);
    English, an unknown language or a missing catalogue give the source texts."""
    lang = _lang(lang)
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang == DEFAULT_LANGUAGE or not po.exists():
        return NullTranslations()
    try:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po
    except ImportError:  # pragma: no cover - babel comes with the web extra
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return GNUTranslations(buf)


def gettext(lang: str | None, message: str) -> str:
    """``message`` in ``lang``."""
    return translations(lang).gettext(message)


def ngettext(lang: str | None, singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message for ``n``, in ``lang``."""
    return translations(lang).ngettext(singular, plural, n)


@functools.cache
def _locale(lang: str | None) -> Any:
    """Babel's locale for ``lang``, or None without Babel."""
    try:
        from babel import Locale
    except ImportError:  # pragma: no cover - babel comes with the web extra
        return None
    return Locale.parse(_FORMATS.get(_lang(lang), _lang(lang)))


def format_number(value: float, lang: str | None, digits: int = 0) -> str:
    """``value`` with ``digits`` decimals in the locale's way (``12.5`` -> ``"12,5"`` in
    German, ``"12.5"`` in English); no grouping below 10 000 (Spanish style)."""
    locale = _locale(lang)
    if locale is None:  # pragma: no cover - babel comes with the web extra
        return f"{value:{',' if abs(value) >= 10_000 else ''}.{max(digits, 0)}f}"
    from babel.numbers import format_decimal

    pattern = "0" if digits <= 0 else "0." + "0" * digits
    if abs(value) >= 10_000:
        pattern = "#,##" + pattern
    return format_decimal(value, format=pattern, locale=locale)


def format_significant(value: float, lang: str | None, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, without trailing zeros, in the locale's
    way (``95.0`` -> ``"95"``, ``1.254`` -> ``"1,254"`` in German)."""
    rounded = float(f"{value:.{digits}g}")
    decimals = 0
    while decimals < 9 and round(rounded, decimals) != rounded:
        decimals += 1
    return format_number(rounded, lang, decimals)


def format_percent(share: float, lang: str | None, digits: int = 0) -> str:
    """A share (``0.5`` is half) as a percentage the locale's way: ``"50%"`` in English,
    ``"50 %"`` in German and Spanish."""
    locale = _locale(lang)
    if locale is None:  # pragma: no cover - babel comes with the web extra
        return f"{share * 100:.{max(digits, 0)}f}%"
    from babel.numbers import format_percent as babel_percent

    pattern = locale.percent_formats[None].pattern  # "#,##0%" or "#,##0\u00a0%"
    if digits > 0:
        pattern = pattern.replace("0", "0." + "0" * digits, 1)
    return str(babel_percent(share, format=pattern, locale=locale))


def format_quantity(value: float, unit: str, lang: str | None, digits: int = 0) -> str:
    """A number and its unit for a person (``"12,5 mA"`` in German); the unit is a symbol
    people know (mA, us, Hz, s, min, N, deg) and is not translated."""
    return f"{format_number(value, lang, digits)} {unit}"


def format_date(value: dt.date | dt.datetime, lang: str | None, form: str = "medium") -> str:
    """A date in the locale's ``form`` (``short``, ``medium``, ``long``, ``full`` or a CLDR
    pattern): ``5 Dec 2026``, ``05.12.2026``, ``5 dic 2026``."""
    locale = _locale(lang)
    if locale is None:  # pragma: no cover - babel comes with the web extra
        return f"{value:%d %b %Y}"
    from babel.dates import format_date as babel_date

    return str(babel_date(value, format=form, locale=locale))


def format_datetime(value: dt.datetime, lang: str | None, form: str = "medium") -> str:
    """A date in the locale's ``form`` and the 24-hour time (``5 Dec 2026, 14:05``,
    ``05.12.2026, 14:05``); no time-zone conversion: the value is written as it is."""
    return f"{format_date(value, lang, form)}, {value:%H:%M}"


def install_jinja(env: object) -> None:
    """Give a Jinja2 environment the ``i18n`` extension (``{% trans %}``, ``_()``) and the
    filters ``number``, ``significant``, ``percent``, ``quantity``, ``date``, ``datetime``
    and ``protocol_text`` (:func:`protocol_gettext`), all in the
    language of the template's ``lang`` variable (English when it has none). The callables
    read the language from each render's context, so one environment serves every language
    at once."""
    from jinja2 import Environment, pass_context
    from jinja2.runtime import Context

    assert isinstance(env, Environment)

    def lang_of(ctx: Context) -> str:
        return _lang(ctx.get("lang"))

    @pass_context
    def _gettext(ctx: Context, message: str) -> str:
        return gettext(lang_of(ctx), message)

    @pass_context
    def _ngettext(ctx: Context, singular: str, plural: str, n: int) -> str:
        return ngettext(lang_of(ctx), singular, plural, n)

    @pass_context
    def _pgettext(ctx: Context, context: str, message: str) -> str:
        return translations(lang_of(ctx)).pgettext(context, message)

    @pass_context
    def _npgettext(ctx: Context, context: str, singular: str, plural: str, n: int) -> str:
        return translations(lang_of(ctx)).npgettext(context, singular, plural, n)

    @pass_context
    def protocol_text(ctx: Context, text: str) -> str:
        return protocol_gettext(lang_of(ctx), text)

    @pass_context
    def number(ctx: Context, value: float, digits: int = 0) -> str:
        return format_number(value, lang_of(ctx), digits)

    @pass_context
    def significant(ctx: Context, value: float, digits: int = 4) -> str:
        return format_significant(value, lang_of(ctx), digits)

    @pass_context
    def percent(ctx: Context, share: float, digits: int = 0) -> str:
        return format_percent(share, lang_of(ctx), digits)

    @pass_context
    def quantity(ctx: Context, value: float, unit: str, digits: int = 0) -> str:
        return format_quantity(value, unit, lang_of(ctx), digits)

    @pass_context
    def date(ctx: Context, value: dt.date, form: str = "medium") -> str:
        return format_date(value, lang_of(ctx), form)

    @pass_context
    def datetime(ctx: Context, value: dt.datetime, form: str = "medium") -> str:
        return format_datetime(value, lang_of(ctx), form)

    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext)
    env.filters.update(number=number, significant=significant, quantity=quantity, date=date,
                       datetime=datetime, protocol_text=protocol_text, percent=percent)


PYTHON_KEYWORDS: dict[str, tuple[int, ...]] = {
    "gettext": (2,), "ngettext": (2, 3), "translate": (2,), "N_": (1,), "_": (1,)}
"""How the Python code marks its texts: ``gettext(lang, "text")``, ``ngettext(lang, one,
many, n)``, the web's ``translate(request, "text")``, ``N_("text")`` (a text marked for
the catalogue and translated later), and ``_("text")`` (a function's own short cut to
``gettext`` in its language)."""


def N_(message: str) -> str:  # noqa: N802 - the gettext convention's name
    """Mark ``message`` for the catalogue without translating it (translated where shown)."""
    return message


PROTOCOL_CONTEXT = "protocol"
"""The gettext context of the protocol library's texts (see :func:`protocol_texts`)."""
_PROTOCOL_DIR = Path(__file__).parent / "therapy" / "protocols"
# texts kept as dict literals in modules above this one: (module, the dict's name)
_LITERAL_TEXTS = ((Path(__file__).parent / "therapy" / "_library.py", "DIAGRAMS"),
                  (Path(__file__).parent / "safety" / "_screening.py", "FACTORS"))


def protocol_gettext(lang: str | None, text: str) -> str:
    """A text of the protocol library a person reads (title, position, where each pad goes,
    pad size, the placement picture's caption) or a contraindication of the screening, in
    ``lang``; a text the catalogue does not have (a clinic's own protocol) stays as
    written."""
    return translations(lang).pgettext(PROTOCOL_CONTEXT, text)


def protocol_texts() -> list[tuple[str, str]]:
    """The library protocols' texts that patients and clinicians read, as (text, where):
    ``title``, ``placement.position``, each electrode's ``landmarks`` and ``size`` from
    ``opennmes/therapy/protocols/*.yaml``, the captions of the placement pictures
    (``DIAGRAMS`` in ``opennmes/therapy/_library.py``) and the contraindications of the
    screening (``FACTORS`` in ``opennmes/safety/_screening.py``); the two dicts are read as
    literals so that this base module imports nothing above it."""
    import ast

    import yaml

    found: list[tuple[str, str]] = []
    for path in sorted(_PROTOCOL_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        where = f"therapy/protocols/{path.name}"
        placement = doc.get("placement") or {}
        texts = [doc.get("title"), placement.get("position")]
        for electrode in placement.get("electrodes") or []:
            texts += [electrode.get("landmarks"), electrode.get("size")]
        found += [(str(t), where) for t in texts if t]
    for module, name in _LITERAL_TEXTS:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and node.target.id == name and node.value is not None):
                where = f"{module.parent.name}/{module.name}"
                found += [(str(v), where) for v in ast.literal_eval(node.value).values()]
    return found


def extract_messages() -> Any:
    """Every text marked for translation in the package: the ``templates/*.html`` of the web
    app and the reports (Jinja2's ``{% trans %}`` and ``_()``), the Python modules
    (:data:`PYTHON_KEYWORDS`) and the protocol library's texts (:func:`protocol_texts`, in
    the context :data:`PROTOCOL_CONTEXT`), as a Babel ``Catalog`` (the catalogues'
    template)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

    root = Path(__file__).parent
    catalog = Catalog(project="OpenNMES", domain=DOMAIN)
    runs: list[tuple[list[tuple[str, str]], dict[str, Any], dict[str, Any]]] = [
        ([("**/templates/**.html", "jinja2")], dict(DEFAULT_KEYWORDS),
         {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}),
        ([("**.py", "python")], dict(PYTHON_KEYWORDS), {}),
    ]
    for method_map, keywords, options in runs:
        for filename, lineno, message, comments, context in extract_from_dir(
                root, method_map, options, keywords=keywords, comment_tags=("TRANSLATORS:",),
                strip_comment_tags=True):
            catalog.add(message, None, [(filename, lineno)], auto_comments=comments,
                        context=context)
    for text, where in protocol_texts():
        catalog.add(text, None, [(where, 0)], context=PROTOCOL_CONTEXT)
    return catalog
