"""Keep aiogram's Bot API answer models alive between requests.

aiogram checks each answer with ``Response[<the method's result type>]``, a pydantic generic
built on first use and cached weakly: with nothing else holding it, the class was collected and
built again (schema and all) for most requests, 3 % of the bot's CPU in the updates benchmark
(issue #13). This session middleware holds one per method type the bot has called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.methods.base import Response

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.client.session.middlewares.base import NextRequestMiddlewareType
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import TelegramType


class PinResponseModels(BaseRequestMiddleware):
    def __init__(self) -> None:
        self._pinned: dict[type, Any] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        kind = type(method)
        if kind not in self._pinned:
            self._pinned[kind] = Response[method.__returning__]  # type: ignore[name-defined]
        return await make_request(bot, method)
