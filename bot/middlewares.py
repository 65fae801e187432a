"""Middlewares: know the user (and their language) before any handler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, User

from bot import texts
from bot.clock import Clock
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
        return await handler(event, data)


class BuyersOnly(BaseMiddleware):
    """Spending the operator's balance is for ``buyers`` only: anyone else is refused politely
    before the handler runs, so no provider is called on their behalf.

    Until approvals and wallets exist, the buyers are the operators (``ADMIN_IDS``).
    """

    def __init__(self, buyers: frozenset[int]) -> None:
        self._buyers = buyers

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and user.id in self._buyers:
            return await handler(event, data)
        if isinstance(event, CallbackQuery):
            await event.answer(texts.private_bot(), show_alert=True)
        elif isinstance(event, Message):
            await event.answer(texts.private_bot())
        return None
