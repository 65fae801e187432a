"""/language: the user's choice is stored and wins over the Telegram language."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n

from bot import keyboards, texts
from bot.callbacks import Menu, MenuAction, SetLanguage
from bot.handlers.common import answer, main_menu, show
from bot.services.billing import Billing
from storage.orders import OrdersRepo
from storage.users import UsersRepo


async def language_command(message: Message, i18n: I18n) -> None:
    await message.answer(
        texts.language_prompt(), reply_markup=keyboards.languages(i18n.current_locale)
    )


async def language_button(query: CallbackQuery, i18n: I18n) -> None:
    await answer(query)
    await show(query, texts.language_prompt(), keyboards.languages(i18n.current_locale))


async def set_language(
    query: CallbackQuery,
    callback_data: SetLanguage,
    users: UsersRepo,
    i18n: I18n,
    billing: Billing,
    order_repo: OrdersRepo,
) -> None:
    if callback_data.code not in i18n.available_locales:
        await answer(query, texts.not_yours(), alert=True)
        return
    await users.set_language(query.from_user.id, callback_data.code)
    with i18n.use_locale(callback_data.code):
        await answer(query, texts.language_set())
        await show(query, texts.menu(), await main_menu(query.from_user.id, billing, order_repo))


def setup() -> Router:
    router = Router(name="language")
    router.message.register(language_command, Command("language"))
    router.callback_query.register(language_button, Menu.filter(F.action == MenuAction.LANGUAGE))
    router.callback_query.register(set_language, SetLanguage.filter())
    return router
