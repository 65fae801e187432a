"""One i18n mechanism for every user-visible text: gettext catalogs (Babel) under ``locales/``.

The repository keeps only the ``.po`` sources; they are compiled in memory when the bot starts,
so there is no build step and no stale ``.mo`` file. The user's language is the one they chose
with /language, else their Telegram language when we have it, else English.
"""

from __future__ import annotations

import gettext
import io
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LOCALE = "en"
DOMAIN = "messages"
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}


def compile_catalogs(path: Path, domain: str = DOMAIN) -> dict[str, gettext.GNUTranslations]:
    """Every ``<locale>/LC_MESSAGES/<domain>.po`` under ``path``, compiled in memory."""
    translations: dict[str, gettext.GNUTranslations] = {}
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        po_path = folder / "LC_MESSAGES" / f"{domain}.po"
        if not po_path.is_file():
            continue
        with po_path.open("rb") as source:
            catalog = read_po(source, locale=folder.name, domain=domain)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        translations[folder.name] = gettext.GNUTranslations(compiled)
    return translations


def create_i18n(path: Path = LOCALES_DIR) -> I18n:
    """aiogram's I18n over the ``.po`` sources.

    Not a subclass (aiogram's ``gettext`` finds the instance through ``I18n``'s own context
    variable, which a subclass would not share), and not built by ``I18n.__init__``, which
    insists on compiled ``.mo`` files: the same attributes are set from the compiled catalogs.
    """
    i18n = I18n.__new__(I18n)
    i18n.path = path
    i18n.default_locale = DEFAULT_LOCALE
    i18n.domain = DOMAIN
    i18n.ctx_locale = ContextVar("aiogram_ctx_locale", default=DEFAULT_LOCALE)
    i18n.locales = compile_catalogs(path)
    return i18n


def pick_locale(stored: str | None, telegram: str | None, available: tuple[str, ...]) -> str:
    """The stored choice, else the Telegram language (``ru-RU`` -> ``ru``), else the default."""
    for candidate in (stored, telegram):
        if candidate:
            code = candidate.split("-")[0].split("_")[0].lower()
            if code in available:
                return code
    return DEFAULT_LOCALE


class UserLocaleMiddleware(I18nMiddleware):
    """Uses ``data["user_language"]`` (set by the user middleware from storage)."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user: User | None = data.get("event_from_user")
        return pick_locale(
            data.get("user_language"),
            user.language_code if user else None,
            self.i18n.available_locales,
        )
