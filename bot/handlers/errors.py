"""The last line: a button the bot could not have made is answered politely, and an
unexpected error is logged and the user gets a polite message."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, ErrorEvent, Message

from bot import texts
from bot.handlers.common import answer, main_menu
from bot.services.billing import Billing
from storage.orders import OrdersRepo

log = logging.getLogger(__name__)


async def on_error(event: ErrorEvent) -> bool:
    log.exception("update %s failed", event.update.update_id, exc_info=event.exception)
    update = event.update
    with suppress(TelegramAPIError):
        if update.callback_query is not None:
            await update.callback_query.answer(texts.unexpected_error(), show_alert=True)
        elif update.message is not None:
            await update.message.answer(texts.unexpected_error())
    return True


async def unknown_button(query: CallbackQuery) -> None:
    """No handler took this callback: its data does not unpack into any factory (a forged or
    outdated button, an id out of range, an unknown action). A short alert, nothing else."""
    log.info("unknown callback data from %s (%d bytes)", query.from_user.id, len(query.data or ""))
    await answer(query, texts.not_yours(), alert=True)


async def unknown_message(message: Message, billing: Billing, order_repo: OrdersRepo) -> None:
    """No handler took this message (free text outside a step, an unknown command, a photo):
    never silence; an answer with the way forward."""
    text = message.text or ""
    reply = texts.unknown_command() if text.startswith("/") else texts.not_understood()
    user_id = message.from_user.id if message.from_user else message.chat.id
    await message.answer(reply, reply_markup=await main_menu(user_id, billing, order_repo))


def setup() -> Router:
    """Include it last: its handlers take whatever no other router did."""
    router = Router(name="errors")
    router.callback_query.register(unknown_button)
    router.message.register(unknown_message)
    router.errors.register(on_error)
    return router
