"""Asking for access (private mode), the admins' answer, and admin blocks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n

from bot import keyboards, texts
from bot.callbacks import AskAccess, DecideAccess, parse_row_id
from bot.handlers.common import answer, show
from bot.i18n import pick_locale
from bot.services.access import AccessService, RequestOutcome
from storage.users import UsersRepo

log = logging.getLogger(__name__)


async def _locale_of(user_id: int, users: UsersRepo, i18n: I18n) -> str:
    user = await users.get(user_id)
    if user is None:
        return i18n.default_locale
    return pick_locale(user.language, user.telegram_language, i18n.available_locales)


Build = Callable[[], tuple[str, InlineKeyboardMarkup | None]]


async def _tell(bot: Bot, user_id: int, users: UsersRepo, i18n: I18n, build: Build) -> None:
    """Send ``build()`` (text, markup) to a user in their language; a failure is skipped."""
    with i18n.use_locale(await _locale_of(user_id, users, i18n)):
        text, markup = build()
    with suppress(TelegramAPIError):
        await bot.send_message(user_id, text, reply_markup=markup)


async def ask_access(
    query: CallbackQuery, bot: Bot, access: AccessService, users: UsersRepo, i18n: I18n
) -> None:
    outcome = await access.request(query.from_user.id)
    replies = {
        RequestOutcome.SENT: texts.access_sent,
        RequestOutcome.PENDING: texts.access_pending,
        RequestOutcome.DENIED: texts.access_denied,
        RequestOutcome.APPROVED: texts.access_granted,
    }
    await answer(query, replies[outcome](), alert=True)
    await show(query, replies[outcome](), keyboards.back_to_menu())
    if outcome is not RequestOutcome.SENT:
        return
    who = query.from_user
    log.info("user %s asks for access", who.id)
    for admin in sorted(access.admins):
        await _tell(
            bot,
            admin,
            users,
            i18n,
            lambda: (
                texts.access_request_for_admin(who.full_name, who.username, who.id),
                keyboards.decide_access(who.id),
            ),
        )


async def decide_access(
    query: CallbackQuery,
    callback_data: DecideAccess,
    bot: Bot,
    access: AccessService,
    users: UsersRepo,
    i18n: I18n,
) -> None:
    if not access.is_admin(query.from_user.id):
        await answer(query, texts.admins_only(), alert=True)
        return
    target, approve = callback_data.user_id, callback_data.approve
    changed = await access.decide(target, approve)
    await answer(query)
    decided = texts.access_decided(
        await users.get(target), target, approve, query.from_user.full_name, changed
    )
    # The request turns into its outcome; its buttons now lead to the user and the panel.
    await show(query, decided, keyboards.access_decided(target))
    if not changed:
        return
    log.info(
        "admin %s %s user %s", query.from_user.id, "approved" if approve else "denied", target
    )
    if approve:
        await _tell(
            bot,
            target,
            users,
            i18n,
            lambda: (texts.access_approved_push(), keyboards.start_buying()),
        )
    else:
        await _tell(bot, target, users, i18n, lambda: (texts.access_denied(), None))


async def block_command(
    message: Message, command: CommandObject, access: AccessService, users: UsersRepo
) -> None:
    assert message.from_user is not None
    if not access.is_admin(message.from_user.id):
        await message.answer(texts.admins_only())
        return
    blocking = command.command == "block"
    raw = (command.args or "").strip()
    user_id = parse_row_id(raw)  # in SQLite's range before any query
    if user_id is None or await users.get(user_id) is None:
        await message.answer(texts.unknown_user(raw or "—"))
        return
    await access.block(user_id, blocking)
    log.info("admin %s %s user %s", message.from_user.id, command.command, user_id)
    await message.answer(texts.user_blocked(user_id, blocking))


def setup() -> Router:
    router = Router(name="access")
    router.callback_query.register(ask_access, AskAccess.filter())
    router.callback_query.register(decide_access, DecideAccess.filter())
    router.message.register(block_command, Command("block", "unblock"), F.from_user)
    return router
