"""/export (admins): every order and every wallet ledger row, as two CSV documents."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import FSInputFile, Message

from bot import keyboards, texts
from bot.services.access import AccessService
from bot.services.admin import AdminService
from bot.services.export import remove

log = logging.getLogger(__name__)


async def export_command(message: Message, access: AccessService, admin: AdminService) -> None:
    assert message.from_user is not None
    if not access.is_admin(message.from_user.id):
        await message.answer(texts.admins_only())
        return
    files = await admin.export()
    try:
        orders, ledger = files
        log.info(
            "admin %s exports %s orders, %s ledger rows",
            message.from_user.id,
            orders.rows,
            ledger.rows,
        )
        captions = (
            texts.export_orders_caption(orders.rows),
            texts.export_ledger_caption(ledger.rows),
        )
        for file, caption, markup in zip(
            files, captions, (None, keyboards.back_to_admin()), strict=True
        ):
            # Streamed from the file: the export is never held in memory whole.
            await message.answer_document(
                FSInputFile(file.path, filename=file.filename),
                caption=caption,
                reply_markup=markup,
            )
    finally:
        remove(files)


def setup() -> Router:
    router = Router(name="export")
    router.message.register(export_command, Command("export"), F.from_user)
    return router
