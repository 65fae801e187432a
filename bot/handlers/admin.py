"""/admin: provider balances, figures, waiting access requests; /user ID: one user's card."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, texts
from bot.callbacks import BlockUser, parse_row_id
from bot.handlers.common import answer, show
from bot.services.access import AccessService
from bot.services.admin import AdminService
from bot.services.wallet import WalletService
from storage.orders import OrdersRepo
from storage.users import UsersRepo


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


async def _user_screen(
    user_id: int, users: UsersRepo, wallet: WalletService, order_repo: OrdersRepo
) -> tuple[str, InlineKeyboardMarkup] | None:
    user = await users.get(user_id)
    if user is None:
        return None
    text = texts.user_card(
        user, await wallet.balance(user_id), await order_repo.count_for_user(user_id)
    )
    return text, keyboards.user_card(user_id, user.blocked)


async def user_command(
    message: Message,
    command: CommandObject,
    access: AccessService,
    users: UsersRepo,
    wallet: WalletService,
    order_repo: OrdersRepo,
) -> None:
    """One user's card: access, wallet, orders, with Approve / Deny / Block buttons."""
    assert message.from_user is not None
    if not access.is_admin(message.from_user.id):
        await message.answer(texts.admins_only())
        return
    raw = (command.args or "").strip()
    user_id = parse_row_id(raw)  # in SQLite's range before any query
    screen = await _user_screen(user_id, users, wallet, order_repo) if user_id else None
    if screen is None:
        await message.answer(texts.unknown_user(raw) if raw else texts.user_usage())
        return
    await message.answer(screen[0], reply_markup=screen[1])


async def block_button(
    query: CallbackQuery,
    callback_data: BlockUser,
    access: AccessService,
    users: UsersRepo,
    wallet: WalletService,
    order_repo: OrdersRepo,
) -> None:
    if not access.is_admin(query.from_user.id):
        await answer(query, texts.admins_only(), alert=True)
        return
    await access.block(callback_data.user_id, callback_data.blocked)
    await answer(query, texts.user_blocked(callback_data.user_id, callback_data.blocked))
    screen = await _user_screen(callback_data.user_id, users, wallet, order_repo)
    if screen is not None:
        await show(query, *screen)


def setup() -> Router:
    router = Router(name="admin")
    router.message.register(admin_command, Command("admin"))
    router.message.register(user_command, Command("user"))
    router.callback_query.register(block_button, BlockUser.filter())
    return router
