"""Middlewares: know the user (and their language) before any handler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject, User

from bot import keyboards, texts
from bot.clock import Clock
from bot.handlers.common import answer, show
from bot.services.access import AccessService
from storage.users import UsersRepo

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UserMiddleware(BaseMiddleware):
    """Records the user on first contact and hands ``user_language`` to the i18n middleware."""

    def __init__(self, users: UsersRepo, clock: Clock) -> None:
        self._users = users
        self._clock = clock

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not user.is_bot:
            stored = await self._users.ensure(user.id, None, self._clock.now())
            if user.language_code and stored.telegram_language != user.language_code:
                await self._users.set_telegram_language(user.id, user.language_code)
            data["user_language"] = stored.language
            data["stored_user"] = stored
        return await handler(event, data)


class RefuseBlocked(BaseMiddleware):
    """A user an admin blocked is refused everywhere (after the i18n middleware)."""

    def __init__(self, access: AccessService) -> None:
        self._access = access

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not self._access.is_blocked(data.get("stored_user")):
            return await handler(event, data)
        await _refuse(event, texts.blocked())
        return None


class BuyersOnly(BaseMiddleware):
    """Spending the operator's balance is for those who may buy: anyone else is refused politely
    before the handler runs, so no provider is called on their behalf. In private mode the
    refusal offers to ask the admins for access.
    """

    def __init__(self, access: AccessService) -> None:
        self._access = access

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and self._access.may_buy(data.get("stored_user"), user.id):
            return await handler(event, data)
        await _refuse(event, texts.private_bot(), keyboards.ask_access())
        return None


async def _refuse(
    event: TelegramObject, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    if isinstance(event, CallbackQuery):
        await answer(event, text, alert=True)
        if markup is not None:
            await show(event, text, markup)
    elif isinstance(event, Message):
        await event.answer(text, reply_markup=markup)
