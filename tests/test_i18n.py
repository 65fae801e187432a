"""The catalogs: every user-visible string is extracted, translated, and keeps its placeholders."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR, create_i18n, pick_locale

BOT = Path(__file__).resolve().parents[1] / "bot"
PLACEHOLDER = re.compile(r"\{(\w*)\}")
TAG = re.compile(r"</?(\w+)")


def catalog(path: Path) -> Catalog:
    with path.open("rb") as source:
        return read_po(source)


def source_messages() -> set[str]:
    """First arguments of every ``_("...")`` call in the bot's code."""
    found: set[str] = set()
    for module in BOT.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def singular(message_id: str | tuple[str, ...] | list[str]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def test_the_template_holds_every_string_in_the_code() -> None:
    template = {singular(m.id) for m in catalog(LOCALES_DIR / "messages.pot") if m.id}
    assert source_messages() - template == set(), "run `make i18n`"


@pytest.mark.parametrize("language", ["ru"])
def test_every_string_is_translated_with_its_placeholders_and_tags(language: str) -> None:
    template = {singular(m.id) for m in catalog(LOCALES_DIR / "messages.pot") if m.id}
    translated = catalog(LOCALES_DIR / language / "LC_MESSAGES" / "messages.po")
    seen = set()
    for message in translated:
        if not message.id:
            continue
        seen.add(singular(message.id))
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = (
            [message.string] if isinstance(message.string, str) else list(message.string or ())
        )
        assert all(strings), f"untranslated: {ids[0]!r}"
        assert not message.fuzzy, ids[0]
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) == wanted, (ids[0], text)
            assert sorted(TAG.findall(text)) == sorted(TAG.findall(ids[0])), (ids[0], text)
    assert template <= seen


def test_languages_load_and_pick() -> None:
    i18n = create_i18n()
    assert set(i18n.available_locales) == {"en", "ru"}
    with i18n.context(), i18n.use_locale("ru"):
        assert i18n.gettext("Cancelled.") != "Cancelled."
        assert i18n.gettext("{n} day", "{n} days", 5).format(n=5) == "5 дней"
        assert i18n.gettext("{n} day", "{n} days", 21).format(n=21) == "21 день"
    assert pick_locale(None, "ru-RU", ("en", "ru")) == "ru"
    assert pick_locale("en", "ru", ("en", "ru")) == "en"  # the choice wins
    assert pick_locale(None, "de", ("en", "ru")) == "en"
