"""The purchase flow: service -> country -> offers -> confirm -> buy."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n

from bot import keyboards, texts
from bot.callbacks import (
    Confirm,
    CountryPage,
    Menu,
    MenuAction,
    OfferKey,
    OfferSection,
    PickCountry,
    PickService,
    RefreshOffers,
    ServicePage,
)
from bot.config import Settings
from bot.handlers.common import answer, main_menu, show
from bot.handlers.numbers import card_screen
from bot.providers import identifiers
from bot.providers.base import ProviderError
from bot.services.billing import Billing
from bot.services.catalog import CatalogService, MergedCatalog, search_query
from bot.services.guard import AlreadyDone, InProgress
from bot.services.offers import OfferService, OffersResult, PricedOffer, offer_token
from bot.services.offers import layout as offer_layout
from bot.services.orders import OrderService
from bot.services.purchase import (
    PriceRose,
    PurchaseRefused,
    PurchaseService,
    PurchaseUnconfirmed,
    QuoteInvalid,
    matches,
)
from bot.services.wallet import MAX_TOP_UP_STARS, NotEnoughBalance, stars_for
from storage.intents import QuoteUsed
from storage.orders import OrdersRepo
from storage.quotes import Quote

log = logging.getLogger(__name__)
MAX_MATCHES = keyboards.SERVICES_PER_PAGE  # one page: page buttons would drop the filter


class BuyFlow(StatesGroup):
    service = State()  # typing filters services
    country = State()  # typing filters countries; data: service


# --- services -------------------------------------------------------------------------------


def _service_names(catalog: MergedCatalog, codes: list[str]) -> dict[str, str]:
    return {code: catalog.name(code) for code in codes}


async def _service_screen(
    catalog: MergedCatalog, page: int, codes: list[str] | None = None, query: str | None = None
) -> tuple[str, InlineKeyboardMarkup]:
    codes = codes if codes is not None else catalog.services()
    total = keyboards.pages(len(codes), keyboards.SERVICES_PER_PAGE)
    page = min(max(page, 0), total - 1)
    return (
        texts.choose_service(page, total, query),
        keyboards.services(codes, page, _service_names(catalog, codes)),
    )


async def buy_command(message: Message, state: FSMContext, catalog: CatalogService) -> None:
    merged = await catalog.get()
    await state.set_state(BuyFlow.service)
    text, markup = await _service_screen(merged, 0)
    await message.answer(text, reply_markup=markup)


async def service_page(
    query: CallbackQuery, state: FSMContext, catalog: CatalogService, page: int = 0
) -> None:
    await answer(query)
    merged = await catalog.get()
    await state.set_state(BuyFlow.service)
    text, markup = await _service_screen(merged, page)
    await show(query, text, markup)


async def buy_button(query: CallbackQuery, state: FSMContext, catalog: CatalogService) -> None:
    await service_page(query, state, catalog)


async def service_page_button(
    query: CallbackQuery, callback_data: ServicePage, state: FSMContext, catalog: CatalogService
) -> None:
    await service_page(query, state, catalog, callback_data.page)


async def filter_services(message: Message, catalog: CatalogService) -> None:
    merged = await catalog.get()
    query = search_query(message.text)
    names = {code: merged.name(code) for code in merged.by_service}
    matches = identifiers.find_services(query, names)[:MAX_MATCHES] if query else []
    if not query or not matches:  # the whole list stays under the answer: pick or retype
        text, markup = await _service_screen(merged, 0)
        await message.answer(
            texts.nothing_found(message.text or "") + "\n\n" + text, reply_markup=markup
        )
        return
    text, markup = await _service_screen(merged, 0, matches, query)
    await message.answer(text, reply_markup=markup)


# --- countries ------------------------------------------------------------------------------


async def _country_screen(
    merged: MergedCatalog,
    service: str,
    page: int,
    language: str,
    isos: list[str] | None = None,
    query: str | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    isos = isos if isos is not None else merged.countries(service, language)
    total = keyboards.pages(len(isos), keyboards.COUNTRIES_PER_PAGE)
    page = min(max(page, 0), total - 1)
    return (
        texts.choose_country(merged.name(service), page, total, query),
        keyboards.countries(service, isos, page),
    )


async def country_page(
    query: CallbackQuery,
    callback_data: CountryPage | PickService,
    state: FSMContext,
    catalog: CatalogService,
    i18n: I18n,
) -> None:
    """A page of countries (the first one when a service was just picked)."""
    merged = await catalog.get()
    if callback_data.service not in merged.by_service:  # a button the bot did not make
        await answer(query, texts.not_yours(), alert=True)
        return
    await answer(query)
    await state.set_state(BuyFlow.country)
    await state.update_data(service=callback_data.service)
    page = callback_data.page if isinstance(callback_data, CountryPage) else 0
    text, markup = await _country_screen(merged, callback_data.service, page, i18n.current_locale)
    await show(query, text, markup)


async def filter_countries(
    message: Message, state: FSMContext, catalog: CatalogService, i18n: I18n
) -> None:
    service = (await state.get_data()).get("service")
    merged = await catalog.get()
    if not isinstance(service, str):
        await state.set_state(BuyFlow.service)
        text, markup = await _service_screen(merged, 0)
        await message.answer(text, reply_markup=markup)
        return
    query = search_query(message.text)
    languages = tuple(dict.fromkeys((i18n.current_locale, "en")))
    sold = set(merged.countries(service))
    found = identifiers.find_countries(query, languages) if query else []
    matches = [iso for iso in found if iso in sold]
    if not query or not matches:  # the whole list stays under the answer: pick or retype
        text, markup = await _country_screen(merged, service, 0, i18n.current_locale)
        await message.answer(
            texts.nothing_found(message.text or "") + "\n\n" + text, reply_markup=markup
        )
        return
    text, markup = await _country_screen(
        merged, service, 0, i18n.current_locale, matches[:MAX_MATCHES], query
    )
    await message.answer(text, reply_markup=markup)


# --- offers ---------------------------------------------------------------------------------


def _offers_screen(
    result: OffersResult, prefix: str | None = None, *, now: datetime | None = None
) -> tuple[str, InlineKeyboardMarkup]:
    """The offers: the best pick, activations, rentals, and how fresh the prices are (as of
    ``now``; by default the moment they were fetched)."""
    arranged = offer_layout(result.offers)
    text = texts.offers(
        identifiers.service_name(result.service),
        result.country,
        len(result.offers),
        [failure.provider for failure in result.failures],
        best=arranged.best.priced if arranged.best else None,
        hidden=arranged.hidden,
        fetched_at=result.fetched_at,
        now=now or result.fetched_at,
    )
    if prefix:
        text = f"{prefix}\n\n{text}"
    return text, keyboards.offers(result.service, result.country, arranged)


async def pick_country(
    query: CallbackQuery,
    callback_data: PickCountry,
    state: FSMContext,
    offers: OfferService,
    catalog: CatalogService,
) -> None:
    service, country = callback_data.service, callback_data.country
    if not await catalog.sells(service, country):  # forged: no provider is asked
        await answer(query, texts.not_yours(), alert=True)
        return
    await answer(query)
    await state.set_state(None)
    await show(query, texts.loading_offers(identifiers.service_name(service), country))
    result = await offers.offers(service, country)
    text, markup = _offers_screen(result, now=offers.now())
    await show(query, text, markup)


async def refresh_offers(
    query: CallbackQuery,
    callback_data: RefreshOffers,
    state: FSMContext,
    offers: OfferService,
    catalog: CatalogService,
) -> None:
    """Refresh: the providers are asked again (not the cache); the answer says how fresh."""
    service, country = callback_data.service, callback_data.country
    if not await catalog.sells(service, country):  # forged: no provider is asked
        await answer(query, texts.not_yours(), alert=True)
        return
    await state.set_state(None)
    result = await offers.refresh(service, country)  # the tap's spinner shows meanwhile
    now = offers.now()
    await answer(query, texts.offers_refreshed(result.fetched_at or now, now))
    text, markup = _offers_screen(result, now=now)
    await show(query, text, markup)


async def offer_section(query: CallbackQuery, callback_data: OfferSection) -> None:
    """A section heading: tells what the kind means."""
    await answer(query, texts.offer_section_help(callback_data.rentals))


async def pick_offer(
    query: CallbackQuery,
    callback_data: OfferKey,
    offers: OfferService,
    purchases: PurchaseService,
    catalog: CatalogService,
    billing: Billing,
) -> None:
    """The confirmation: the server keeps the price it shows here; Buy names that quote."""
    if not await catalog.sells(callback_data.service, callback_data.country):
        await answer(query, texts.not_yours(), alert=True)
        return
    await answer(query)
    result = await offers.offers(callback_data.service, callback_data.country)
    priced = next(
        (
            p
            for p in result.offers
            if p.offer.provider == callback_data.provider
            and offer_token(p.offer) == callback_data.token
        ),
        None,
    )
    if priced is None:
        text, markup = _offers_screen(result, texts.offer_gone(callback_data.provider))
        await show(query, text, markup)
        return
    quote = await purchases.quote(query.from_user.id, priced)
    text = await _confirm_text(query.from_user.id, quote, priced, offers, billing)
    await show(query, text, keyboards.confirm(quote))


# --- confirm and buy ------------------------------------------------------------------------

RETURN_KEY = "wallet_return"  # FSM data: the quote a short wallet left; a top-up returns there
RETURN_WINDOW = timedelta(hours=1)  # a top-up later than this leads back to no confirmation


async def _confirm_text(
    user_id: int, quote: Quote, priced: PricedOffer, offers: OfferService, billing: Billing
) -> str:
    """The confirmation; a user who pays also sees the wallet and what is left after."""
    service_name = identifiers.service_name(quote.service)
    text = texts.confirm(service_name, quote.country, priced, offers.now())
    if billing.charges(user_id):
        balance = await billing.balance(user_id)
        text += "\n\n" + texts.confirm_wallet(quote.display_price, balance)
    return text


async def reconfirm(
    user_id: int,
    quote_id: str,
    purchases: PurchaseService,
    offers: OfferService,
    billing: Billing,
) -> tuple[str, InlineKeyboardMarkup] | None:
    """After a top-up: the confirmation the user was short on, priced again from the providers
    with a fresh quote (a higher price says so; a gone offer shows the offers). None when that
    quote is not the user's or too old to come back to."""
    old = await purchases.get_quote(quote_id, user_id)
    if old is None or offers.now() - old.created_at > RETURN_WINDOW:
        return None
    result = await offers.offers(old.service, old.country, fresh=True)
    priced = next((p for p in result.offers if matches(old, p.offer)), None)
    if priced is None:
        return _offers_screen(result, texts.offer_gone(old.provider))
    quote = await purchases.quote(user_id, priced)
    text = await _confirm_text(user_id, quote, priced, offers, billing)
    was, now = old.display_price, quote.display_price
    if now.currency != was.currency or now.amount > was.amount:
        text = texts.price_rose(quote.provider, texts.money(now)) + "\n\n" + text
    return text, keyboards.confirm(quote)


async def confirm_buy(
    query: CallbackQuery,
    callback_data: Confirm,
    state: FSMContext,
    purchases: PurchaseService,
    orders: OrderService,
    offers: OfferService,
    billing: Billing,
    settings: Settings,
    order_repo: OrdersRepo,
) -> None:
    # The callback is answered when the purchase is over (the spinner shows it is running),
    # so a repeated tap can still be told "in progress" or "already bought".
    tap = callback_data.quote
    try:
        stored = await purchases.buy(query.from_user.id, callback_data.quote, tap=tap)
    except InProgress:
        await answer(query, texts.in_progress())
        return
    except (AlreadyDone, QuoteUsed):
        await answer(query, texts.already_bought())
        return
    except NotEnoughBalance as short:
        await answer(query)
        text = texts.not_enough_balance(short.price, short.balance, short.missing)
        quote = await purchases.get_quote(callback_data.quote, query.from_user.id)
        if quote is None:  # cannot happen: the purchase found it
            await show(query, text, keyboards.top_up(short.price.currency))
            return
        await state.update_data({RETURN_KEY: quote.id})  # a top-up comes back here
        exact = stars_for(short.missing.amount, settings.stars_per_unit) <= MAX_TOP_UP_STARS
        markup = keyboards.not_enough(short.missing, quote.service, quote.country, exact=exact)
        await show(query, text, markup)
        return
    except PriceRose as rose:
        await answer(query)
        shown = next(
            (p for p in rose.remaining.offers if matches(rose.quote, p.offer)),
            None,
        )
        if shown is None:  # cannot happen: the new quote was made from these offers
            text, markup = _offers_screen(rose.remaining, texts.offer_gone(rose.quote.provider))
            await show(query, text, markup)
            return
        notice = texts.price_rose(rose.quote.provider, texts.money(rose.quote.display_price))
        text = await _confirm_text(query.from_user.id, rose.quote, shown, offers, billing)
        await show(query, notice + "\n\n" + text, keyboards.confirm(rose.quote))
        return
    except PurchaseRefused as refused:
        await answer(query)
        if isinstance(refused, QuoteInvalid):
            prefix = texts.quote_invalid()
        else:
            prefix = texts.offer_gone(refused.provider)
        if not refused.remaining.service:  # a forged quote: nothing to show but the menu
            menu = await main_menu(query.from_user.id, billing, order_repo)
            await show(query, texts.quote_invalid(), menu)
            return
        text, markup = _offers_screen(refused.remaining, prefix)
        await show(query, text, markup)
        return
    except PurchaseUnconfirmed as lost:
        await answer(query)
        intent = lost.intent
        log.warning("purchase unconfirmed: intent %s at %s", intent.id, intent.provider)
        text = texts.purchase_unconfirmed(intent.provider, lost.listed, lost.settles_by)
        await show(query, text, await main_menu(query.from_user.id, billing, order_repo))
        return
    except ProviderError as exc:
        await answer(query)
        log.warning("purchase failed: %s", exc)
        quote = await purchases.get_quote(callback_data.quote, query.from_user.id)
        if quote is None:
            menu = await main_menu(query.from_user.id, billing, order_repo)
            await show(query, "⚠️ " + texts.provider_error(exc), menu)
            return
        result = await offers.offers(quote.service, quote.country, fresh=True)
        text, markup = _offers_screen(result, "⚠️ " + texts.provider_error(exc))
        await show(query, text, markup)
        return
    await answer(query)
    if (await state.get_data()).get(RETURN_KEY) is not None:
        await state.update_data({RETURN_KEY: None})  # bought: a later top-up returns nowhere
    text, markup = card_screen(await orders.view(stored), orders.now())
    await show(query, text, markup)


def setup() -> Router:
    router = Router(name="buy")
    router.message.register(buy_command, Command("buy"))
    router.callback_query.register(buy_button, Menu.filter(F.action == MenuAction.BUY))
    router.callback_query.register(service_page_button, ServicePage.filter())
    router.message.register(filter_services, BuyFlow.service, F.text, ~F.text.startswith("/"))
    router.callback_query.register(country_page, PickService.filter())
    router.callback_query.register(country_page, CountryPage.filter())
    router.message.register(filter_countries, BuyFlow.country, F.text, ~F.text.startswith("/"))
    router.callback_query.register(pick_country, PickCountry.filter())
    router.callback_query.register(refresh_offers, RefreshOffers.filter())
    router.callback_query.register(offer_section, OfferSection.filter())
    router.callback_query.register(confirm_buy, Confirm.filter())
    router.callback_query.register(pick_offer, OfferKey.filter())
    return router
