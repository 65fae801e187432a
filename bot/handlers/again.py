"""Buy the same again: from a closed card, an SMS push or the rental-ended message, one tap to
the confirmation of the same offer (same service, country, provider and kind, while that
provider still sells it), else to the current offers for the pair.

The confirmation is buy.py's own (its text, its quote, its Buy button): nothing is bought here.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram import Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InaccessibleMessage

from bot import keyboards, texts
from bot.callbacks import BuyAgain
from bot.config import Settings
from bot.handlers import buy
from bot.handlers.common import answer, show
from bot.providers import identifiers
from bot.providers.base import OrderKind
from bot.services.billing import Billing
from bot.services.offer_stats import OfferStatsService
from bot.services.offers import OfferService, PricedOffer
from bot.services.orders import OrderService
from bot.services.purchase import PurchaseService
from bot.services.stock_alerts import StockAlertService
from storage.models import StoredOrder


def same_offer(order: StoredOrder, offers: Sequence[PricedOffer]) -> PricedOffer | None:
    """The cheapest offer in stock from the order's provider of the order's kind (a rental of
    the same length); None when that provider sells no such thing now."""
    same = [
        p
        for p in offers
        if p.offer.provider == order.provider
        and p.offer.kind is order.kind
        and (order.kind is OrderKind.ACTIVATION or p.offer.duration_hours == order.duration_hours)
        and p.offer.stock != 0
    ]
    return min(same, key=lambda p: p.display_price.amount, default=None)


async def _screen_for(query: CallbackQuery, here: bool, loading: str) -> CallbackQuery:
    """Where the next screen goes: the card itself (``here``), else a new message under the
    push, so the SMS it shows stays readable."""
    if here:
        await show(query, loading)
        return query
    message = query.message
    if message is None or isinstance(message, InaccessibleMessage) or query.bot is None:
        return query  # ``show`` sends a new message for a message it cannot reach
    sent = await message.answer(loading)
    return query.model_copy(update={"message": sent}).as_(query.bot)


async def buy_again(
    query: CallbackQuery,
    callback_data: BuyAgain,
    state: FSMContext,
    orders: OrderService,
    offers: OfferService,
    purchases: PurchaseService,
    billing: Billing,
    offer_stats: OfferStatsService,
    stock_alerts: StockAlertService,
    late_offers: buy.LateOffers,
    settings: Settings,
) -> None:
    order = await orders.get(callback_data.order_id, query.from_user.id)
    if order is None:  # someone else's, or forged
        await answer(query, texts.not_yours(), alert=True)
        return
    await answer(query)
    await state.set_state(None)
    service_name = identifiers.service_name(order.service)
    loading = texts.loading_offers(service_name, order.country)
    target = await _screen_for(query, callback_data.here, loading)
    result = await offers.within(order.service, order.country, settings.offers_deadline)
    if order.provider in result.pending:  # the offer asked for is the one still loading
        result = await offers.offers(order.service, order.country)
    priced = same_offer(order, result.offers)
    if priced is None:
        gone = texts.buy_again_gone(order.provider)
        await buy.show_offers(target, result, offers, offer_stats, stock_alerts, late_offers, gone)
        return
    quote = await purchases.quote(query.from_user.id, priced)
    text = await buy._confirm_text(query.from_user.id, quote, priced, offers, billing)
    await show(target, text, keyboards.confirm(quote))


def setup() -> Router:
    router = Router(name="again")
    router.callback_query.register(buy_again, BuyAgain.filter())
    return router
