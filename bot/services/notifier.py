"""Messages the bot sends on its own (SMS, reminders, notices), within Telegram's limits.

``RetryAfter`` is waited out and the message sent again; a user who blocked the bot is marked
and skipped until they write again. Nothing is dropped silently: :meth:`Notifier.send` says
whether the message went out, and callers keep what did not for a later try.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardMarkup
from aiolimiter import AsyncLimiter

from storage.users import UsersRepo

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[Any]]


class Notifier:
    def __init__(
        self,
        bot: Bot,
        users: UsersRepo,
        *,
        sleep: Sleep,
        per_second: float = 25.0,
        attempts: int = 5,
    ) -> None:
        self._bot = bot
        self._users = users
        self._sleep = sleep
        self._limiter = AsyncLimiter(per_second, 1.0)  # Telegram: about 30 messages a second
        self._attempts = attempts

    async def send(
        self, user_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> bool:
        """True once Telegram accepted the message; False if it could not be sent now."""
        user = await self._users.get(user_id)
        if user is not None and user.blocked_bot:
            return False
        for _attempt in range(self._attempts):
            async with self._limiter:
                try:
                    await self._bot.send_message(user_id, text, reply_markup=markup)
                    return True
                except TelegramRetryAfter as exc:
                    log.info("Telegram asks to wait %ss before sending again", exc.retry_after)
                    wait: float = exc.retry_after
                except TelegramForbiddenError:
                    log.info("user %s blocked the bot; their messages wait", user_id)
                    await self._users.mark_blocked_bot(user_id)
                    return False
                except TelegramBadRequest as exc:
                    if "chat not found" in exc.message.lower():
                        await self._users.mark_blocked_bot(user_id)
                    else:
                        log.error("Telegram refused a message to %s: %s", user_id, exc.message)
                    return False
                except (TelegramNetworkError, TelegramServerError) as exc:
                    log.warning("sending to %s failed (%s); retrying", user_id, exc)
                    wait = 1.0
            await self._sleep(wait)
        return False
