"""Every plural in the Russian catalog, for every count from 0 to 200.

Russian has three forms (1, 21, 31…; 2–4, 22–24…; 5–20, 25–30…, and 11–14 take the third).
Each plural message must give the right form for each count, keep every placeholder of the
English text (a translation that drops ``{n}`` or another field loses what the sentence says),
and render. The offers line is checked whole: 21, 31, 41… offers once lost "cheapest first".
"""

from __future__ import annotations

import re
import string

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot import texts
from bot.i18n import LOCALES_DIR, compile_catalogs, create_i18n

COUNTS = range(201)
RU_PO = LOCALES_DIR / "ru" / "LC_MESSAGES" / "messages.po"


def russian_form(n: int) -> int:
    """The CLDR rule for Russian, written out apart from the catalog's Plural-Forms header."""
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return 1
    return 2


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def catalog() -> Catalog:
    with RU_PO.open("rb") as source:
        return read_po(source, locale="ru")


def plurals() -> list[tuple[str, str]]:
    found = [
        (str(message.id[0]), str(message.id[1]))
        for message in catalog()
        if message.id and isinstance(message.id, tuple | list)
    ]
    assert found, "the Russian catalog has no plural messages"
    return found


def test_the_catalog_says_russian_has_three_forms() -> None:
    assert catalog().num_plurals == 3
    assert catalog().plural_expr.replace(" ", "") == (
        "(n%10==1&&n%100!=11?0:n%10>=2&&n%10<=4&&(n%100<10||n%100>=20)?1:2)"
    )


@pytest.mark.parametrize(("singular", "plural"), plurals())
def test_every_plural_renders_every_count(singular: str, plural: str) -> None:
    entry = catalog().get((singular, plural))
    assert entry is not None and isinstance(entry.string, tuple | list)
    forms = [str(form) for form in entry.string]
    assert len(forms) == 3 and all(forms), f"missing Russian forms for {singular!r}"
    wanted = fields(singular) | fields(plural)
    for form in forms:
        assert fields(form) == wanted, f"{form!r} does not keep {sorted(wanted)}"

    russian = compile_catalogs(LOCALES_DIR)["ru"]
    values = {name: f"<{name}>" for name in wanted}
    for n in COUNTS:
        chosen = russian.ngettext(singular, plural, n)
        assert chosen == forms[russian_form(n)], (n, chosen)
        rendered = chosen.format(**{**values, "n": n})
        if "n" in wanted:
            assert re.search(rf"(?<!\d){n}(?!\d)", rendered), (n, rendered)
        for name in wanted - {"n"}:
            assert f"<{name}>" in rendered, (n, rendered)


def test_the_offers_line_says_cheapest_first_for_every_count() -> None:
    i18n = create_i18n()
    for n in COUNTS:
        with i18n.context(), i18n.use_locale("ru"):
            line = texts.offers("Telegram", "US", n, [])
        if n == 0:
            assert "номеров нет" in line, line
        elif n == 1:
            assert line.endswith(": 1 предложение."), line
        else:
            noun = ("предложение", "предложения", "предложений")[russian_form(n)]
            assert line.endswith(f": {n} {noun}, сначала самые дешёвые."), line
        with i18n.context(), i18n.use_locale("en"):
            english = texts.offers("Telegram", "US", n, [])
        if n > 1:
            assert english.endswith(f": {n} offers, cheapest first."), english
