"""Deep links to the offers of one service in one country (``t.me/<bot>?start=tg-us``), and
``/link SERVICE COUNTRY`` with which an admin makes them.

A start payload is whatever the person who made the link wrote (or what a user typed after
``/start``): it is read strictly, and only a pair the catalog sells opens anything.
"""

from __future__ import annotations

import re

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot import keyboards, texts
from bot.providers import identifiers
from bot.services.access import AccessService
from bot.services.catalog import CatalogService

MAX_PAYLOAD = 64  # Telegram's limit for a start parameter
_PAYLOAD = re.compile(r"([a-z0-9_]{1,40})-([A-Za-z]{2})")


def parse_payload(payload: str | None) -> tuple[str, str] | None:
    """``tg-us`` -> ("tg", "US"); None for anything else (the catalog is asked after this)."""
    if not payload or len(payload) > MAX_PAYLOAD:
        return None
    found = _PAYLOAD.fullmatch(payload)
    return None if found is None else (found.group(1), found.group(2).upper())


def make_payload(service: str, country: str) -> str:
    return f"{service}-{country.lower()}"


async def link_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    access: AccessService,
    catalog: CatalogService,
) -> None:
    assert message.from_user is not None
    if not access.is_admin(message.from_user.id):
        await message.answer(texts.admins_only(), reply_markup=keyboards.back_to_menu())
        return
    words = (command.args or "").split()
    if len(words) != 2:
        await message.answer(texts.link_usage(), reply_markup=keyboards.back_to_menu())
        return
    pair = parse_payload(make_payload(words[0].lower(), words[1]))
    if pair is None or not await catalog.sells(*pair):
        await message.answer(
            texts.link_unknown(words[0], words[1]), reply_markup=keyboards.back_to_menu()
        )
        return
    service, country = pair
    me = await bot.me()  # asked once: aiogram keeps the answer
    url = f"https://t.me/{me.username}?start={make_payload(service, country)}"
    await message.answer(
        texts.link_made(identifiers.service_name(service), country, url),
        reply_markup=keyboards.back_to_menu(),
    )


def setup() -> Router:
    router = Router(name="links")
    router.message.register(link_command, Command("link"))
    return router
