"""Alerts ("tell me when"): /alerts lists the user's alerts with a remove button each; the
offers screen's button (``keyboards.alert_button``) creates one. :func:`sender` is how a fired
alert reaches its user (the app attaches it to the service)."""

from __future__ import annotations

import re
from decimal import Decimal

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, texts
from bot.callbacks import AlertAsk, AlertRemove
from bot.handlers.common import answer, show
from bot.money import Money
from bot.services.catalog import CatalogService
from bot.services.messenger import Messenger
from bot.services.offers import PricedOffer
from bot.services.stock_alerts import Created, SendAlert, StockAlertService
from storage.stock_alerts import StockAlert

_AMOUNT = re.compile(r"^\d{1,9}(\.\d{1,4})?$")


def parse_under(text: str, currency: str, alerts: StockAlertService) -> Money | None:
    """The button's price: None for "when available", else a Money. ValueError for a price
    this bot could not have made (a forged button)."""
    if not text:
        return None
    if not _AMOUNT.match(text) or not alerts.valid_under(Decimal(text)):
        raise ValueError("not an alert price")
    return Money(Decimal(text), currency)


async def _screen(user_id: int, alerts: StockAlertService) -> tuple[str, InlineKeyboardMarkup]:
    pending = await alerts.pending(user_id)
    return texts.alerts_list(pending), keyboards.alerts(pending)


async def alerts_command(message: Message, stock_alerts: StockAlertService) -> None:
    if message.from_user is None:
        return
    text, markup = await _screen(message.from_user.id, stock_alerts)
    await message.answer(text, reply_markup=markup)


async def ask(
    query: CallbackQuery,
    callback_data: AlertAsk,
    stock_alerts: StockAlertService,
    catalog: CatalogService,
) -> None:
    try:
        under = parse_under(callback_data.under, stock_alerts.currency, stock_alerts)
    except ValueError:
        under, forged = None, True
    else:
        forged = not await catalog.sells(callback_data.service, callback_data.country)
    if forged:
        await answer(query, texts.not_yours(), alert=True)  # nothing is stored
        return
    result = await stock_alerts.create(
        query.from_user.id, callback_data.service, callback_data.country, under
    )
    if result.outcome is Created.TOO_MANY:
        await answer(query, texts.alert_too_many(stock_alerts.per_user), alert=True)
    elif result.outcome is Created.EXISTS or result.alert is None:
        await answer(query, texts.alert_exists(), alert=True)
    else:
        await answer(query, texts.alert_created(result.alert), alert=True)


async def remove(
    query: CallbackQuery, callback_data: AlertRemove, stock_alerts: StockAlertService
) -> None:
    removed = await stock_alerts.remove(query.from_user.id, callback_data.alert_id)
    await answer(query, texts.alert_removed() if removed else texts.alert_gone())
    text, markup = await _screen(query.from_user.id, stock_alerts)
    await show(query, text, markup)


def sender(messenger: Messenger) -> SendAlert:
    """A fired alert as a message in its user's language, with the offer's button."""

    async def send(alert: StockAlert, priced: PricedOffer) -> bool:
        return await messenger.tell(
            alert.user_id,
            lambda: (texts.alert_fired(alert, priced), keyboards.alert_fired(priced)),
        )

    return send


def setup() -> Router:
    router = Router(name="alerts")
    router.message.register(alerts_command, Command("alerts"))
    router.callback_query.register(ask, AlertAsk.filter())
    router.callback_query.register(remove, AlertRemove.filter())
    return router
