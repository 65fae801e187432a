"""Middlewares: know the user (and their language) before any handler runs; private chats
only; a per-user flood limit; blocked users and non-buyers refused."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiogram import BaseMiddleware, Bot
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import (
    CallbackQuery,
    Chat,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    User,
)

from bot import keyboards, texts
from bot.clock import Clock
from bot.handlers.common import answer, show
from bot.services.access import AccessService
from storage.users import UsersRepo

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UserMiddleware(BaseMiddleware):
    """Records the user on first contact and hands ``user_language`` to the i18n middleware.

    The name and @username Telegram reports are written when they changed (one conditional
    UPDATE; none while they stay the same), for the admins' /user and /users."""

    def __init__(self, users: UsersRepo, clock: Clock) -> None:
        self._users = users
        self._clock = clock

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not user.is_bot:
            stored = await self._users.ensure(user.id, None, self._clock.now())
            if user.language_code and stored.telegram_language != user.language_code:
                await self._users.set_telegram_language(user.id, user.language_code)
            if (stored.full_name, stored.username) != (user.full_name, user.username):
                await self._users.set_profile(user.id, user.full_name, user.username)
                stored = replace(stored, full_name=user.full_name, username=user.username)
            data["user_language"] = stored.language
            data["stored_user"] = stored
        return await handler(event, data)


class RefuseBlocked(BaseMiddleware):
    """A user an admin blocked is refused everywhere (after the i18n middleware)."""

    def __init__(self, access: AccessService) -> None:
        self._access = access

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        # A payment Telegram completed is credited whoever sent it: its Stars are already
        # taken, and pre-checkout is where a blocked user is refused (see handlers.wallet).
        if _is_payment(event) or not self._access.is_blocked(data.get("stored_user")):
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


def _is_payment(event: TelegramObject) -> bool:
    return isinstance(event, Message) and event.successful_payment is not None


class PrivateChatsOnly(BaseMiddleware):
    """Numbers, codes and the wallet are personal: in a group, supergroup or channel a command
    is answered with one message whose button opens the private chat, and nothing else is
    done; a tap on a button there is answered with a short alert and does nothing."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        if chat is not None and chat.type == ChatType.PRIVATE:
            return await handler(event, data)
        if isinstance(event, CallbackQuery):
            await answer(event, texts.private_chat_button_only(), alert=True)
        elif isinstance(event, Message) and _is_command(event) and event.bot is not None:
            await _point_to_private(event, event.bot)
        return None


def _is_command(message: Message) -> bool:
    return bool(message.text and message.text.startswith("/"))


async def _point_to_private(message: Message, bot: Bot) -> None:
    try:
        me = await bot.me()
        if me.username:
            await message.answer(
                texts.private_chat_only(), reply_markup=keyboards.open_private_chat(me.username)
            )
    except TelegramAPIError as exc:  # no rights to write in that group: nothing to do
        log.info("could not answer in chat %s: %s", message.chat.id, type(exc).__name__)


@dataclass(slots=True)
class _Window:
    start: datetime
    count: int = 0


class RateCounter(Protocol):
    async def hit(self, user_id: int) -> tuple[int, float] | None:
        """Count one more for the user: (count in the current window, seconds until it ends),
        or None when it cannot be known now (then the update passes)."""


class MemoryRateCounter:
    """Windows in this process, from each user's first message. Memory is bounded: windows
    that ended are dropped as new ones open, and at most ``max_users`` are remembered."""

    def __init__(self, clock: Clock, window: float, max_users: int = 50_000) -> None:
        self._clock = clock
        self._window = timedelta(seconds=window)
        self._max_users = max_users
        self._windows: dict[int, _Window] = {}  # oldest window first

    def __len__(self) -> int:
        return len(self._windows)

    async def hit(self, user_id: int) -> tuple[int, float]:
        now = self._clock.now()
        window = self._open(user_id, now)
        window.count += 1
        return window.count, (window.start + self._window - now).total_seconds()

    def _open(self, user_id: int, now: datetime) -> _Window:
        window = self._windows.get(user_id)
        if window is not None and now - window.start < self._window:
            return window
        self._windows.pop(user_id, None)
        self._expire(now)
        window = self._windows[user_id] = _Window(now)
        return window

    def _expire(self, now: datetime) -> None:
        while self._windows:
            oldest_id = next(iter(self._windows))
            oldest = self._windows[oldest_id]
            if now - oldest.start < self._window and len(self._windows) < self._max_users:
                return
            del self._windows[oldest_id]


class RateLimit(BaseMiddleware):
    """At most ``limit`` messages and taps per user in each ``window``: beyond it, the first
    one is answered "slow down" once and the rest silently, and no handler runs (so no
    provider is asked). Payments always pass. The windows are counted in this process
    (:class:`MemoryRateCounter`) unless a shared ``counter`` is given (Redis)."""

    def __init__(
        self,
        clock: Clock,
        *,
        limit: int,
        window: float,
        exempt: Callable[[int], bool] = lambda _user_id: False,
        max_users: int = 50_000,
        counter: RateCounter | None = None,
    ) -> None:
        self._limit = limit
        self._exempt = exempt
        self._counter = counter or MemoryRateCounter(clock, window, max_users)

    def __len__(self) -> int:
        """Users remembered in this process (0 with a shared counter)."""
        return len(self._counter) if isinstance(self._counter, MemoryRateCounter) else 0

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if self._limit <= 0 or user is None or _is_payment(event) or self._exempt(user.id):
            return await handler(event, data)
        hit = await self._counter.hit(user.id)
        if hit is None or hit[0] <= self._limit:
            return await handler(event, data)
        count, left = hit
        first = count == self._limit + 1  # one "slow down" per window, in every replica
        if first:
            log.info("user %s is over the rate limit", user.id)
        wait = max(1, math.ceil(left))
        if isinstance(event, CallbackQuery):
            await answer(event, texts.slow_down(wait) if first else None, alert=first)
        elif isinstance(event, Message) and first:
            try:
                await event.answer(texts.slow_down(wait))
            except TelegramAPIError as exc:
                log.info("could not tell user %s to slow down: %s", user.id, type(exc).__name__)
        return None
