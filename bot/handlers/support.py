"""/support, /paysupport (Telegram requires it of bots that take Stars) and /terms."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import keyboards, texts
from bot.config import Settings


async def support(message: Message, settings: Settings) -> None:
    await message.answer(
        texts.support(settings.support_contact), reply_markup=keyboards.back_to_menu()
    )


async def terms(message: Message, settings: Settings) -> None:
    await message.answer(
        texts.terms(settings.terms_text, settings.terms_url, settings.wallets_on),
        reply_markup=keyboards.back_to_menu(),
    )


def setup() -> Router:
    router = Router(name="support")
    router.message.register(support, Command("support", "paysupport"))
    router.message.register(terms, Command("terms"))
    return router
