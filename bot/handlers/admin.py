"""/admin: the panel (figures, balances, requests, users, providers, the delivery table and
the daily summary's toggle); /user and /users."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, texts
from bot.callbacks import AdminAction, AdminCb, BlockUser, UserCard, UsersPage
from bot.handlers.common import answer, show
from bot.services.access import AccessService
from bot.services.admin import AdminService, find_user
from bot.services.daily_summary import DailySummary, SendSummary, Summary
from bot.services.messenger import Messenger
from bot.services.offer_stats import OfferStatsService
from bot.services.wallet import WalletService
from storage.orders import OrdersRepo
from storage.users import UsersRepo

USERS_PER_PAGE = 10
CARD_ORDERS = 5  # the latest orders on a user's card
CARD_HISTORY = 5  # the latest wallet operations on it


async def _panel(admin: AdminService) -> tuple[str, InlineKeyboardMarkup]:
    balances = [(line.provider, line.balance) for line in await admin.balances()]
    stats = await admin.stats()
    return texts.admin_panel(balances, stats), keyboards.admin_panel(stats.requested)


async def _delivery(
    admin_id: int, offer_stats: OfferStatsService, daily_summary: DailySummary
) -> tuple[str, InlineKeyboardMarkup]:
    on = await daily_summary.enabled(admin_id)
    text = texts.delivery_screen(await offer_stats.table(), on, daily_summary.hour)
    return text, keyboards.admin_delivery(on)


def summary_sender(messenger: Messenger) -> SendSummary:
    """The daily summary as a message in the admin's language."""

    async def send(admin_id: int, summary: Summary) -> bool:
        return await messenger.tell(admin_id, lambda: (texts.daily_summary(summary), None))

    return send


async def admin_command(message: Message, access: AccessService, admin: AdminService) -> None:
    assert message.from_user is not None
    if not access.is_admin(message.from_user.id):
        await message.answer(texts.admins_only())
        return
    text, markup = await _panel(admin)
    await message.answer(text, reply_markup=markup)


async def admin_button(
    query: CallbackQuery,
    callback_data: AdminCb,
    access: AccessService,
    admin: AdminService,
    users: UsersRepo,
    offer_stats: OfferStatsService,
    daily_summary: DailySummary,
) -> None:
    if not access.is_admin(query.from_user.id):
        await answer(query, texts.admins_only(), alert=True)
        return
    action = callback_data.action
    if action is AdminAction.DELIVERY:
        await answer(query)
        await show(query, *await _delivery(query.from_user.id, offer_stats, daily_summary))
        return
    if action is AdminAction.SUMMARY:
        on = not await daily_summary.enabled(query.from_user.id)
        await daily_summary.set_enabled(query.from_user.id, on)
        await answer(query, texts.summary_turned(on, daily_summary.hour))
        await show(query, *await _delivery(query.from_user.id, offer_stats, daily_summary))
        return
    if action is AdminAction.PANEL:
        await answer(query)
        await show(query, *await _panel(admin))
    elif action is AdminAction.PROVIDERS:
        await answer(query)
        balances = [(line.provider, line.balance) for line in await admin.balances()]
        text = texts.admin_providers(balances, await admin.stats())
        await show(query, text, keyboards.back_to_admin())
    elif action is AdminAction.USERS:
        await answer(query)
        await show(query, *await _users_screen(users, 0, None))
    else:
        waiting = await admin.requested_users()
        await answer(query, None if waiting else texts.no_requests(), alert=not waiting)
        for user_id in waiting:
            user = await users.get(user_id)
            name = user.full_name if user is not None and user.full_name else str(user_id)
            if query.bot is not None:
                await query.bot.send_message(
                    query.from_user.id,
                    texts.access_request_for_admin(name, user.username if user else None, user_id),
                    reply_markup=keyboards.decide_access(user_id),
                )


async def _users_screen(
    users: UsersRepo, page: int, search: str | None
) -> tuple[str, InlineKeyboardMarkup]:
    found, total = await users.page(search, limit=USERS_PER_PAGE, offset=page * USERS_PER_PAGE)
    pages = keyboards.pages(total, USERS_PER_PAGE)
    if not found and page > 0:  # a page that emptied since: the last one there is
        page = pages - 1
        found, total = await users.page(search, limit=USERS_PER_PAGE, offset=page * USERS_PER_PAGE)
    text = texts.users_list(found, total, page, pages, search)
    labels = [(user.id, texts.user_label(user)) for user in found]
    return text, keyboards.users_list(labels, page, pages, search)


async def users_command(
    message: Message, command: CommandObject, access: AccessService, users: UsersRepo
) -> None:
    """Every user, newest first, ten a page; ``/users TEXT`` searches names, @usernames, ids."""
    assert message.from_user is not None
    if not access.is_admin(message.from_user.id):
        await message.answer(texts.admins_only())
        return
    search = (command.args or "").strip() or None
    text, markup = await _users_screen(users, 0, search)
    await message.answer(text, reply_markup=markup)


async def users_page(
    query: CallbackQuery, callback_data: UsersPage, access: AccessService, users: UsersRepo
) -> None:
    if not access.is_admin(query.from_user.id):
        await answer(query, texts.admins_only(), alert=True)
        return
    await answer(query)
    search = callback_data.query or None
    await show(query, *await _users_screen(users, callback_data.page, search))


async def _user_screen(
    user_id: int, users: UsersRepo, wallet: WalletService, order_repo: OrdersRepo
) -> tuple[str, InlineKeyboardMarkup] | None:
    user = await users.get(user_id)
    if user is None:
        return None
    text = texts.user_card(
        user,
        await wallet.balance(user_id),
        await order_repo.count_for_user(user_id),
        await order_repo.list_for_user(user_id, limit=CARD_ORDERS),
        await wallet.operations(user_id, CARD_HISTORY),
    )
    if texts.utf16_len(text) > texts.MAX_MESSAGE:  # long names and many currencies
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
    """One user's card (by id or @username): access, wallet and its latest operations, the
    latest orders, with Approve / Deny / Block buttons."""
    assert message.from_user is not None
    if not access.is_admin(message.from_user.id):
        await message.answer(texts.admins_only())
        return
    raw = (command.args or "").strip()
    found = await find_user(users, raw) if raw else None
    screen = await _user_screen(found.id, users, wallet, order_repo) if found else None
    if screen is None:
        await message.answer(texts.unknown_user(raw) if raw else texts.user_usage())
        return
    await message.answer(screen[0], reply_markup=screen[1])


async def user_card_button(
    query: CallbackQuery,
    callback_data: UserCard,
    access: AccessService,
    users: UsersRepo,
    wallet: WalletService,
    order_repo: OrdersRepo,
) -> None:
    if not access.is_admin(query.from_user.id):
        await answer(query, texts.admins_only(), alert=True)
        return
    screen = await _user_screen(callback_data.user_id, users, wallet, order_repo)
    if screen is None:
        await answer(query, texts.unknown_user(str(callback_data.user_id)), alert=True)
        return
    await answer(query)
    await show(query, *screen)


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
    router.message.register(users_command, Command("users"))
    router.callback_query.register(admin_button, AdminCb.filter())
    router.callback_query.register(users_page, UsersPage.filter())
    router.callback_query.register(user_card_button, UserCard.filter())
    router.callback_query.register(block_button, BlockUser.filter())
    return router
