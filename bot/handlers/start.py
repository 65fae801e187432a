"""/start, /help and the main menu."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import keyboards, texts
from bot.callbacks import Menu, MenuAction
from bot.config import Settings
from bot.handlers.common import answer, show


async def start(message: Message, state: FSMContext, settings: Settings) -> None:
    await state.clear()
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(
        texts.welcome(name), reply_markup=keyboards.main_menu(wallet=settings.wallets_on)
    )


async def help_command(message: Message, settings: Settings) -> None:
    text = texts.help_text(wallets=settings.wallets_on)
    await message.answer(text, reply_markup=keyboards.back_to_menu())


async def menu(query: CallbackQuery, state: FSMContext, settings: Settings) -> None:
    await state.clear()
    await answer(query)
    await show(query, texts.menu(), keyboards.main_menu(wallet=settings.wallets_on))


async def help_button(query: CallbackQuery, settings: Settings) -> None:
    await answer(query)
    await show(query, texts.help_text(wallets=settings.wallets_on), keyboards.back_to_menu())


def setup() -> Router:
    router = Router(name="start")
    router.message.register(start, CommandStart())
    router.message.register(help_command, Command("help"))
    router.callback_query.register(menu, Menu.filter(F.action == MenuAction.MENU))
    router.callback_query.register(help_button, Menu.filter(F.action == MenuAction.HELP))
    return router
