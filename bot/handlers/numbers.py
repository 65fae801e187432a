"""/numbers and the number card: every action on a bought number, one tap away."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, texts
from bot.callbacks import Menu, MenuAction, OrderAction, OrderCb, OrdersPage, RenewCb
from bot.handlers.common import answer, show
from bot.providers.base import ProviderError
from bot.services.guard import InProgress
from bot.services.heat import Heat
from bot.services.orders import (
    ActionUnconfirmed,
    CancelRefused,
    OrderInactive,
    OrderService,
    OrderView,
)
from bot.services.wallet import NotEnoughBalance
from storage.messages import MessagesRepo
from storage.models import StoredOrder
from storage.orders import OrdersRepo

log = logging.getLogger(__name__)
PAGE_SIZE = 8
ACTION_ERRORS = (
    InProgress,
    OrderInactive,
    ProviderError,
    NotEnoughBalance,
    CancelRefused,
    ActionUnconfirmed,
)


async def _numbers_screen(
    user_id: int, page: int, past: bool, repo: OrdersRepo, messages: MessagesRepo
) -> tuple[str, InlineKeyboardMarkup]:
    active = not past
    total = await repo.count_for_user(user_id, active=active)
    pages = keyboards.pages(total, PAGE_SIZE)
    page = min(max(page, 0), pages - 1)
    rows = await repo.list_for_user(
        user_id, active=active, limit=PAGE_SIZE, offset=page * PAGE_SIZE
    )
    codes = await asyncio.gather(*(_last_code(o, messages) for o in rows))
    active_count = total if active else await repo.count_for_user(user_id, active=True)
    empty = total == 0 and await repo.count_for_user(user_id) == 0
    return (
        texts.numbers_list(active_count, past, empty, shown=total),
        keyboards.numbers(list(zip(rows, codes, strict=True)), page, pages, past),
    )


async def _last_code(order: StoredOrder, messages: MessagesRepo) -> str | None:
    stored = await messages.list_for_order(order.id)
    return next((m.code for m in reversed(stored) if m.code), None)


async def numbers_command(
    message: Message, order_repo: OrdersRepo, messages_repo: MessagesRepo
) -> None:
    assert message.from_user is not None
    text, markup = await _numbers_screen(message.from_user.id, 0, False, order_repo, messages_repo)
    await message.answer(text, reply_markup=markup)


async def numbers_button(
    query: CallbackQuery, order_repo: OrdersRepo, messages_repo: MessagesRepo
) -> None:
    await answer(query)
    text, markup = await _numbers_screen(query.from_user.id, 0, False, order_repo, messages_repo)
    await show(query, text, markup)


async def numbers_page(
    query: CallbackQuery,
    callback_data: OrdersPage,
    order_repo: OrdersRepo,
    messages_repo: MessagesRepo,
) -> None:
    await answer(query)
    text, markup = await _numbers_screen(
        query.from_user.id, callback_data.page, callback_data.past, order_repo, messages_repo
    )
    await show(query, text, markup)


def card_screen(view: OrderView, now: datetime) -> tuple[str, InlineKeyboardMarkup]:
    """The number card: its text and its actions (as the provider's rules allow them now)."""
    return texts.order_card(view.order, view.messages, now, view.plan), keyboards.order_card(
        view.order,
        view.capabilities,
        has_sms=bool(view.messages),
        cancel=view.cancel,
        now=now,
        plan=view.plan,
    )


async def _card(query: CallbackQuery, orders: OrderService, order: StoredOrder) -> None:
    text, markup = card_screen(await orders.view(order), orders.now())
    await show(query, text, markup)


async def _explain(query: CallbackQuery, exc: Exception, what: str, now: datetime) -> bool:
    """Tell why an action did not happen; False when the card need not be shown again."""
    if isinstance(exc, InProgress):
        await answer(query, texts.in_progress())
        return False
    if isinstance(exc, OrderInactive):
        text = texts.order_not_active()
    elif isinstance(exc, NotEnoughBalance):
        text = texts.not_enough_balance(exc.price, exc.balance, exc.missing)
    elif isinstance(exc, CancelRefused):
        text = texts.cancel_refused(exc.terms, now)
    elif isinstance(exc, ActionUnconfirmed):  # the answer to cancel or renew was lost
        text = texts.action_unconfirmed()
    else:
        assert isinstance(exc, ProviderError)
        text = texts.provider_error(exc)
    log.warning("%s failed: %s", what, exc)
    await answer(query, text, alert=True)
    return True


async def order_action(
    query: CallbackQuery, callback_data: OrderCb, orders: OrderService, heat: Heat | None = None
) -> None:
    order = await orders.get(callback_data.order_id, query.from_user.id)
    if order is None:  # someone else's, or forged
        await answer(query, texts.not_yours(), alert=True)
        return
    if heat is not None:
        heat.touch(order.id)  # the user looks at it: polled every round for a while
    action = callback_data.action
    try:
        if action is OrderAction.OPEN:
            await answer(query)
        elif action is OrderAction.REFRESH:
            applied = await orders.refresh(order)
            order = applied.order
            if applied.new or not order.is_active:
                await answer(query)
            else:
                await answer(query, texts.no_new_sms(orders.now()))
        elif action is OrderAction.CANCEL:
            result = await orders.cancel(order)
            order = result.order
            await answer(query, texts.cancelled(result.refunded, unknown=result.refund_unknown))
        elif action is OrderAction.FINISH:
            order = (await orders.finish(order)).order
            await answer(query, texts.finished())
        elif action is OrderAction.BAN:
            result = await orders.ban(order)
            order = result.order
            await answer(query, texts.banned(result.refunded))
        elif action is OrderAction.ANOTHER:
            await orders.another_code(order)
            await answer(query, texts.another_code_requested())
        elif action is OrderAction.AUTO_RENEW:
            order = await orders.set_auto_renew(order, not order.auto_renew)
            await answer(query, texts.auto_renew_state(order.auto_renew))
        elif action is OrderAction.RENEW_MENU:
            options = await orders.renewal_options(order)
            await answer(query)
            priced = [(o, orders.to_display(o.price)) for o in options]
            await show(query, texts.renew_menu(order), keyboards.renew_options(order, priced))
            return
    except ACTION_ERRORS as exc:
        if not await _explain(query, exc, f"order {order.id} {action}", orders.now()):
            return
        order = await orders.get(order.id, query.from_user.id) or order  # what we learnt
    await _card(query, orders, order)


async def renew(
    query: CallbackQuery, callback_data: RenewCb, orders: OrderService, heat: Heat | None = None
) -> None:
    order = await orders.get(callback_data.order_id, query.from_user.id)
    if order is None:
        await answer(query, texts.not_yours(), alert=True)
        return
    if heat is not None:
        heat.touch(order.id)
    try:
        order, renewal = await orders.renew(order, callback_data.hours)
    except ACTION_ERRORS as exc:
        if not await _explain(query, exc, f"order {order.id} renew", orders.now()):
            return
        order = await orders.get(order.id, query.from_user.id) or order
    else:
        await answer(query, texts.renewed(renewal.expires_at or order.expires_at))
    await _card(query, orders, order)


def setup() -> Router:
    router = Router(name="numbers")
    router.message.register(numbers_command, Command("numbers"))
    router.callback_query.register(numbers_button, Menu.filter(F.action == MenuAction.NUMBERS))
    router.callback_query.register(numbers_page, OrdersPage.filter())
    router.callback_query.register(order_action, OrderCb.filter())
    router.callback_query.register(renew, RenewCb.filter())
    return router
