"""/broadcast TEXT (admins): a preview, Send / Cancel, then a progress message.

Also the Telegram side of :class:`bot.services.broadcast.BroadcastService`: ``telegram_send``
delivers one message through the notifier (its limiter, its blocked-user marks) and
``telegram_report`` edits the admin's progress message in the admin's language.
"""

from __future__ import annotations

import logging
import re

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n

from bot import keyboards, texts
from bot.callbacks import BroadcastAction, BroadcastCb
from bot.handlers.common import answer, show
from bot.services.access import AccessService
from bot.services.broadcast import (
    BroadcastService,
    Delivery,
    Report,
    Send,
    SendOutcome,
)
from bot.services.messenger import Messenger
from bot.services.notifier import Notifier, Outcome
from storage.broadcasts import Broadcast, Progress

log = logging.getLogger(__name__)
_COMMAND = re.compile(r"^/broadcast(@\w+)?\s*", re.IGNORECASE)
_DELIVERY = {
    Outcome.SENT: Delivery.SENT,
    Outcome.BLOCKED: Delivery.BLOCKED,
    Outcome.RETRY: Delivery.RETRY,
    Outcome.REFUSED: Delivery.FAILED,
}


def telegram_send(notifier: Notifier) -> Send:
    async def send(user_id: int, text: str) -> SendOutcome:
        result = await notifier.send(user_id, text, wait=False)
        return SendOutcome(_DELIVERY[result.outcome], result.retry_after)

    return send


def progress_text(progress: Progress, done: bool) -> str:
    if done:
        return texts.broadcast_done(
            progress.total, progress.sent, progress.blocked, progress.failed
        )
    return texts.broadcast_progress(
        progress.settled, progress.total, progress.sent, progress.blocked, progress.failed
    )


def telegram_report(bot: Bot, messenger: Messenger, i18n: I18n) -> Report:
    async def report(broadcast: Broadcast, progress: Progress, done: bool) -> None:
        if broadcast.progress_chat_id is None or broadcast.progress_message_id is None:
            return
        with i18n.context(), i18n.use_locale(await messenger.locale(broadcast.admin_id)):
            text = progress_text(progress, done)
            markup = keyboards.back_to_admin() if done else None
        try:
            await bot.edit_message_text(
                text,
                chat_id=broadcast.progress_chat_id,
                message_id=broadcast.progress_message_id,
                reply_markup=markup,
            )
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message:
                log.info("broadcast %s: progress not shown: %s", broadcast.id, exc.message)
        except TelegramAPIError as exc:
            log.info("broadcast %s: progress not shown: %s", broadcast.id, type(exc).__name__)

    return report


def _text_after_command(message: Message) -> str:
    """The admin's text after ``/broadcast``, with its formatting, as Telegram HTML."""
    return _COMMAND.sub("", message.html_text, count=1).strip()


async def broadcast_command(
    message: Message,
    command: CommandObject,
    access: AccessService,
    broadcasts: BroadcastService,
) -> None:
    assert message.from_user is not None
    if not access.is_admin(message.from_user.id):
        await message.answer(texts.admins_only())
        return
    text = _text_after_command(message) if (command.args or "").strip() else ""
    if not text:
        await message.answer(texts.broadcast_usage())
        return
    draft, recipients = await broadcasts.draft(message.from_user.id, text)
    await message.answer(draft.text)  # exactly what every user will get
    await message.answer(
        texts.broadcast_question(recipients), reply_markup=keyboards.broadcast_confirm(draft.id)
    )


async def broadcast_button(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    access: AccessService,
    broadcasts: BroadcastService,
) -> None:
    if not access.is_admin(query.from_user.id):
        await answer(query, texts.admins_only(), alert=True)
        return
    broadcast_id = callback_data.broadcast_id
    if callback_data.action is BroadcastAction.CANCEL:
        if not await broadcasts.cancel(broadcast_id):
            await answer(query, texts.broadcast_gone(), alert=True)
            return
        await answer(query)
        await show(query, texts.broadcast_cancelled(), keyboards.back_to_admin())
        return
    message = query.message
    if message is None:
        await answer(query, texts.broadcast_gone(), alert=True)
        return
    progress = await broadcasts.confirm(broadcast_id, message.chat.id, message.message_id)
    if progress is None:
        await answer(query, texts.broadcast_gone(), alert=True)
        return
    await answer(query)
    await show(query, progress_text(progress, done=False))
    broadcasts.launch(broadcast_id)  # after the first progress, so it never overwrites a later


def setup() -> Router:
    router = Router(name="broadcast")
    router.message.register(broadcast_command, Command("broadcast"), F.from_user)
    router.callback_query.register(broadcast_button, BroadcastCb.filter())
    return router
