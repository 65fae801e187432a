"""/admin: provider balances, figures, and the access requests waiting for an answer."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import keyboards, texts
from bot.services.access import AccessService
from bot.services.admin import AdminService


async def admin_command(message: Message, access: AccessService, admin: AdminService) -> None:
    assert message.from_user is not None
    if not access.is_admin(message.from_user.id):
        await message.answer(texts.admins_only())
        return
    balances = [(line.provider, line.balance) for line in await admin.balances()]
    await message.answer(texts.admin_panel(balances, await admin.stats()))
    for user_id in await admin.requested_users():
        await message.answer(
            texts.access_request_for_admin(str(user_id), None, user_id),
            reply_markup=keyboards.decide_access(user_id),
        )


def setup() -> Router:
    router = Router(name="admin")
    router.message.register(admin_command, Command("admin"))
    return router
