"""Bring the translation catalogues up to date with the code.

Extracts every marked text (:func:`opennmes.i18n.extract_messages`), writes the template
``src/opennmes/locale/messages.pot`` and updates each language's
``src/opennmes/locale/<lang>/LC_MESSAGES/messages.po`` (kept translations stay, new texts
arrive untranslated, texts no longer used are dropped). Then translate the empty ``msgstr``
entries; ``tests/test_i18n.py`` fails while any is missing.

    .venv/bin/python scripts/update_catalogues.py
"""

from __future__ import annotations

from babel.messages.pofile import read_po, write_po

from opennmes.i18n import DEFAULT_LANGUAGE, LANGUAGES, LOCALE_DIR, extract_messages


def main() -> None:
    template = extract_messages()
    with (LOCALE_DIR / "messages.pot").open("wb") as fh:
        write_po(fh, template, width=100, omit_header=False, sort_output=False)
    for lang in LANGUAGES:
        if lang == DEFAULT_LANGUAGE:
            continue
        path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=lang)
        else:
            from babel.messages.catalog import Catalog

            catalog = Catalog(locale=lang, project="OpenNMES", domain="messages")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, sort_output=False, ignore_obsolete=True)
        missing = sum(1 for m in catalog if m.id and not all(_strings(m.string)))
        print(f"{path}: {len(catalog)} texts, {missing} without a translation")


def _strings(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


if __name__ == "__main__":
    main()
