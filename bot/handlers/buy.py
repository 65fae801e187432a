"""The purchase flow: service -> country -> offers -> confirm -> buy."""

from __future__ import annotations

import logging
import secrets
from decimal import Decimal, InvalidOperation

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
    PickCountry,
    PickService,
    ServicePage,
)
from bot.handlers.common import answer, show
from bot.money import Money
from bot.providers import identifiers
from bot.providers.base import ProviderError
from bot.services.catalog import CatalogService, MergedCatalog
from bot.services.guard import AlreadyDone, InProgress
from bot.services.offers import OfferService, OffersResult
from bot.services.orders import OrderService
from bot.services.purchase import (
    OfferRequest,
    PriceRose,
    PurchaseRefused,
    PurchaseService,
)
from bot.services.wallet import NotEnoughBalance

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
    query = (message.text or "").strip()
    names = {code: merged.name(code) for code in merged.by_service}
    matches = identifiers.find_services(query, names)[:MAX_MATCHES]
    if not matches:
        await message.answer(texts.nothing_found(query))
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
    await answer(query)
    merged = await catalog.get()
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
    query = (message.text or "").strip()
    languages = tuple(dict.fromkeys((i18n.current_locale, "en")))
    sold = set(merged.countries(service))
    matches = [iso for iso in identifiers.find_countries(query, languages) if iso in sold]
    if not matches:
        await message.answer(texts.nothing_found(query))
        return
    text, markup = await _country_screen(
        merged, service, 0, i18n.current_locale, matches[:MAX_MATCHES], query
    )
    await message.answer(text, reply_markup=markup)


# --- offers ---------------------------------------------------------------------------------


def _offers_screen(
    result: OffersResult, prefix: str | None = None
) -> tuple[str, InlineKeyboardMarkup]:
    service_name = identifiers.service_name(result.service)
    text = texts.offers(
        service_name,
        result.country,
        len(result.offers),
        [failure.provider for failure in result.failures],
    )
    if prefix:
        text = f"{prefix}\n\n{text}"
    return text, keyboards.offers(result.service, result.country, result.offers)


async def pick_country(
    query: CallbackQuery, callback_data: PickCountry, state: FSMContext, offers: OfferService
) -> None:
    await answer(query)
    await state.set_state(None)
    service, country = callback_data.service, callback_data.country
    await show(query, texts.loading_offers(identifiers.service_name(service), country))
    result = await offers.offers(service, country)
    text, markup = _offers_screen(result)
    await show(query, text, markup)


def _request(key: OfferKey) -> OfferRequest | None:
    """What the button names, or None if its data was tampered with."""
    try:
        price = Money(Decimal(key.price), key.currency)
    except (InvalidOperation, ValueError):
        return None
    return OfferRequest(key.service, key.country, key.provider, key.token, price)


async def pick_offer(query: CallbackQuery, callback_data: OfferKey, offers: OfferService) -> None:
    await answer(query)
    result = await offers.offers(callback_data.service, callback_data.country)
    request = _request(callback_data)
    priced = request.find(result) if request else None
    if priced is None:
        text, markup = _offers_screen(result, texts.offer_gone(callback_data.provider))
        await show(query, text, markup)
        return
    key = keyboards.offer_key(priced)  # the price on screen now is the one confirmed
    await show(
        query,
        texts.confirm(identifiers.service_name(key.service), key.country, priced, offers.now()),
        keyboards.confirm(key, nonce=secrets.token_hex(4)),
    )


async def confirm_buy(
    query: CallbackQuery,
    callback_data: Confirm,
    purchases: PurchaseService,
    orders: OrderService,
    offers: OfferService,
) -> None:
    request = _request(callback_data)
    message = query.message
    if request is None or message is None:
        await answer(query, texts.not_yours(), alert=True)
        return
    tap = (message.chat.id, message.message_id, callback_data.nonce)
    # The callback is answered when the purchase is over (the spinner shows it is running),
    # so a repeated tap can still be told "in progress" or "already bought".
    try:
        stored = await purchases.buy(query.from_user.id, request, tap=tap)
    except InProgress:
        await answer(query, texts.in_progress())
        return
    except AlreadyDone:
        await answer(query, texts.already_bought())
        return
    except NotEnoughBalance as short:
        await answer(query)
        text = texts.not_enough_balance(short.price, short.balance, short.missing)
        await show(query, text, keyboards.need_top_up())
        return
    except PurchaseRefused as refused:
        await answer(query)
        if isinstance(refused, PriceRose):
            prefix = texts.price_rose(request.provider, texts.money(refused.new_price))
        else:
            prefix = texts.offer_gone(request.provider)
        text, markup = _offers_screen(refused.remaining, prefix)
        await show(query, text, markup)
        return
    except ProviderError as exc:
        await answer(query)
        log.warning("purchase failed: %s", exc)
        result = await offers.offers(request.service, request.country, fresh=True)
        text, markup = _offers_screen(result, "⚠️ " + texts.provider_error(exc))
        await show(query, text, markup)
        return
    await answer(query)
    view = await orders.view(stored)
    await show(
        query,
        texts.order_card(view.order, view.messages),
        keyboards.order_card(view.order, view.capabilities, has_sms=bool(view.messages)),
    )


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
    router.callback_query.register(confirm_buy, Confirm.filter())
    router.callback_query.register(pick_offer, OfferKey.filter())
    return router
