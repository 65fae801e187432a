"""The last line: an unexpected error is logged and the user gets a polite message."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent

from bot import texts

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


def setup() -> Router:
    router = Router(name="errors")
    router.errors.register(on_error)
    return router
