"""Small helpers shared by handlers."""

from __future__ import annotations

from contextlib import suppress

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.services.billing import Billing
from storage.orders import OrdersRepo


async def show(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> Message | None:
    """Edit the message the button is on (send a new one if it is too old to edit)."""
    message = query.message
    if message is None or isinstance(message, InaccessibleMessage):
        if query.bot is None:
            return None
        return await query.bot.send_message(query.from_user.id, text, reply_markup=markup)
    try:
        edited = await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        if "message is not modified" in exc.message:
            return message
        return await message.answer(text, reply_markup=markup)
    return edited if isinstance(edited, Message) else message


async def answer(query: CallbackQuery, text: str | None = None, *, alert: bool = False) -> None:
    """Answer a callback query; a too-old query can't be answered, which is fine."""
    with suppress(TelegramBadRequest):
        await query.answer(text, show_alert=alert)


async def main_menu(
    user_id: int, billing: Billing, order_repo: OrdersRepo
) -> InlineKeyboardMarkup:
    """The main menu as this user sees it: Wallet if they pay from one, their recent pairs."""
    recent = await order_repo.recent_pairs(user_id, keyboards.RECENT_PAIRS)
    return keyboards.main_menu(wallet=billing.charges(user_id), recent=recent)
