"""Messages the bot sends on its own (SMS, reminders, notices), within Telegram's limits.

:meth:`Notifier.send` says what happened, as a :class:`SendResult` (true only when sent):

* ``SENT``: Telegram accepted the message;
* ``RETRY``: a transient failure (429 flood control, 5xx, a network error, an answer that is not
  the Bot API's JSON, such as a proxy's HTML 502 page, or one that cannot even be decoded): the
  same message can go later;
* ``REFUSED``: Telegram refused this content (too long, entities it cannot parse, a bad
  keyboard): sending it again as it is would fail again, so the caller sends another form or
  gives up;
* ``BLOCKED``: the user blocked the bot (or the chat is gone): marked, and skipped until they
  write again.

With ``wait=True`` (one-off notices without a queue of their own) a ``RetryAfter`` is waited out
and transient failures are tried again a few times. The watcher passes ``wait=False``: it keeps
undelivered SMS in the database and parks only the chat Telegram asked to wait (its own queue,
:mod:`bot.services.outbox`), so one chat's flood control never delays another chat's code.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardMarkup
from aiolimiter import AsyncLimiter

from bot.logs import log_context
from bot.metrics import NO_METRICS, Metrics
from storage.users import UsersRepo

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[Any]]
TRANSIENT_PAUSE = 1.0  # seconds before another try after a 5xx or a network error


class Outcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"
    REFUSED = "refused"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    detail: str = ""  # Telegram's words (never a token: aiogram's messages do not carry it)
    retry_after: float | None = None  # RETRY: how long Telegram asked to wait, if it said

    def __bool__(self) -> bool:
        return self.outcome is Outcome.SENT


SENT = SendResult(Outcome.SENT)


class Notifier:
    def __init__(
        self,
        bot: Bot,
        users: UsersRepo,
        *,
        sleep: Sleep,
        per_second: float = 25.0,
        attempts: int = 5,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.metrics = metrics  # the watcher counts the SMS it delivers here too
        self._bot = bot
        self._users = users
        self._sleep = sleep
        self._limiter = AsyncLimiter(per_second, 1.0)  # Telegram: about 30 messages a second
        self._attempts = attempts

    async def send(
        self,
        user_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
        *,
        plain: bool = False,
        wait: bool = True,
    ) -> SendResult:
        """Send ``text`` (HTML, or as it is with ``plain``); see the module docstring."""
        user = await self._users.get(user_id)
        if user is not None and user.blocked_bot:
            return SendResult(Outcome.BLOCKED)
        result = SendResult(Outcome.RETRY)
        for _attempt in range(self._attempts if wait else 1):
            async with self._limiter:
                with log_context(user_id=user_id):
                    result = await self._try(user_id, text, markup, plain)
            if result.outcome is not Outcome.RETRY or not wait:
                return result
            await self._sleep(
                result.retry_after if result.retry_after is not None else TRANSIENT_PAUSE
            )
        return result

    async def _try(
        self, user_id: int, text: str, markup: InlineKeyboardMarkup | None, plain: bool
    ) -> SendResult:
        try:
            await self._send(user_id, text, markup, plain)
        except TelegramRetryAfter as exc:
            log.info("Telegram asks to wait %ss before sending to %s", exc.retry_after, user_id)
            return SendResult(Outcome.RETRY, exc.message, float(exc.retry_after))
        except TelegramForbiddenError:
            log.info("user %s blocked the bot; their messages wait", user_id)
            await self._users.mark_blocked_bot(user_id)
            return SendResult(Outcome.BLOCKED)
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower():
                await self._users.mark_blocked_bot(user_id)
                return SendResult(Outcome.BLOCKED, exc.message)
            log.warning("Telegram refused a message to %s: %s", user_id, exc.message)
            return SendResult(Outcome.REFUSED, exc.message)
        except TelegramEntityTooLarge as exc:  # a NetworkError subclass, but about the content
            return SendResult(Outcome.REFUSED, exc.message)
        except (TelegramNetworkError, TelegramServerError) as exc:
            log.warning("sending to %s failed (%s); it will be tried again", user_id, exc)
            return SendResult(Outcome.RETRY, exc.message)
        except TelegramAPIError as exc:  # 401, 404, 409...: not this message's fault
            log.error("Telegram answered %s to a message for %s", exc.message, user_id)
            return SendResult(Outcome.RETRY, exc.message)
        except AiogramError as exc:  # ClientDecodeError: an HTML error page, a broken body
            log.warning("sending to %s: not a Bot API answer (%s)", user_id, type(exc).__name__)
            return SendResult(Outcome.RETRY, type(exc).__name__)
        except (OSError, TimeoutError, UnicodeError) as exc:
            # What a session may raise past aiogram's own errors: a socket error, a timeout,
            # an error page in an encoding other than the one it declares.
            log.warning("sending to %s: transport error (%s)", user_id, type(exc).__name__)
            return SendResult(Outcome.RETRY, type(exc).__name__)
        return SENT

    async def _send(
        self, user_id: int, text: str, markup: InlineKeyboardMarkup | None, plain: bool
    ) -> None:
        try:
            if plain:
                await self._bot.send_message(user_id, text, reply_markup=markup, parse_mode=None)
            else:
                await self._bot.send_message(user_id, text, reply_markup=markup)
        except Exception as exc:
            self.metrics.telegram_send_failed(exc)  # by kind: retry_after, forbidden...
            raise
