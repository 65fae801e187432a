"""The purchase flow: service -> country -> offers -> confirm -> buy."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram import Bot, F, Router
from aiogram.client.session.middlewares.base import NextRequestMiddlewareType
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.methods import (
    DeleteMessage,
    EditMessageCaption,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    Response,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
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
from bot.services.guard import AlreadyDone, GuardUnavailable, InProgress
from bot.services.offer_stats import Badge, Best, BestReason, OfferStatsService, ref_of
from bot.services.offers import (
    OfferService,
    OffersResult,
    PricedOffer,
    best_offer,
    lower_price,
    offer_token,
)
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
from bot.services.stock_alerts import StockAlertService
from bot.services.wallet import MAX_TOP_UP_STARS, NotEnoughBalance, stars_for
from storage.intents import QuoteUsed
from storage.offer_stats import OfferRef
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


@dataclass(frozen=True, slots=True)
class Ranking:
    """How the offers on a screen deliver: their badges and the best pick (and why)."""

    best: Best | None
    badges: Mapping[OfferRef, Badge]


async def rank(result: OffersResult, offer_stats: OfferStatsService) -> Ranking:
    badges = await offer_stats.badges(result.offers)
    best = offer_stats.pick(result.offers, badges)
    if best is not None and best.reason is BestReason.UNKNOWN:
        # Nothing known to deliver well: the cheapest unknown one with a stock told, if any.
        unknown = best_offer([p for p in result.offers if ref_of(p) not in badges])
        best = Best(unknown, best.reason, None) if unknown is not None else best
    return Ranking(best, badges)


def _alert(result: OffersResult, currency: str | None) -> InlineKeyboardButton | None:
    """A "tell me when" button: when available on an empty screen (nothing still loading),
    else when under a sensible lower price than the cheapest (in the alerts' currency)."""
    if currency is None:
        return None
    if not result.offers:
        if result.pending:
            return None  # the late answers may bring offers: the final screen decides
        return keyboards.alert_button(result.service, result.country)
    cheapest = min(result.offers, key=lambda p: p.display_price.amount).display_price
    under = lower_price(cheapest) if cheapest.currency == currency else None
    return keyboards.alert_button(result.service, result.country, under) if under else None


def _offers_screen(
    result: OffersResult,
    prefix: str | None = None,
    *,
    now: datetime | None = None,
    ranking: Ranking | None = None,
    alert_currency: str | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    """The offers: the best pick, activations, rentals, and how fresh the prices are (as of
    ``now``; by default the moment they were fetched); with a ``ranking``, badges and the
    best pick among those that deliver well; with ``alert_currency``, a "tell me when"."""
    chosen = ranking.best if ranking else None
    arranged = offer_layout(result.offers, best=chosen.priced if chosen else None)
    best: Best | PricedOffer | None = arranged.best.priced if arranged.best else None
    if chosen is not None and arranged.best is not None and arranged.best.priced is chosen.priced:
        best = chosen
    text = texts.offers(
        identifiers.service_name(result.service),
        result.country,
        len(result.offers),
        [failure.provider for failure in result.failures],
        best=best,
        hidden=arranged.hidden,
        fetched_at=result.fetched_at,
        now=now or result.fetched_at,
        pending=list(result.pending),
    )
    if prefix:
        text = f"{prefix}\n\n{text}"
    markup = keyboards.offers(
        result.service,
        result.country,
        arranged,
        badges=ranking.badges if ranking else None,
        alert=_alert(result, alert_currency),
    )
    return text, markup


async def offers_screen(
    result: OffersResult,
    offers: OfferService,
    offer_stats: OfferStatsService,
    stock_alerts: StockAlertService,
    prefix: str | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    """The offers screen as users see it: badges, the best pick that delivers, alerts."""
    ranking = await rank(result, offer_stats)
    return _offers_screen(
        result, prefix, now=offers.now(), ranking=ranking, alert_currency=stock_alerts.currency
    )


class LateOffers:
    """Offers screens drawn before every provider answered: each one's message is edited once
    the rest answer, unless the bot drew something else on it meanwhile.

    It is also a Bot API request middleware (``bot.session.middleware(late)``): any edit or
    deletion of a message forgets the screen it showed, so a late answer never clobbers the
    screen a user moved on to. Bounded: at most ``limit`` messages are followed (the oldest
    forgotten), each for at most ``bound`` seconds."""

    def __init__(self, *, bound: float, limit: int = 1000) -> None:
        self._bound = bound
        self._limit = limit
        self._shown: OrderedDict[tuple[int, int], str] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def follow(self, message: Message, render: Render) -> None:
        """``message`` shows a partial offers screen; ``render`` waits for the complete one."""
        if message.bot is None:
            return
        key = (message.chat.id, message.message_id)
        token = secrets.token_hex(8)
        self._shown[key] = token
        self._shown.move_to_end(key)
        while len(self._shown) > self._limit:
            self._shown.popitem(last=False)
        task = asyncio.create_task(self._complete(message.bot, key, token, render))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def following(self, chat_id: int, message_id: int) -> bool:
        return (chat_id, message_id) in self._shown

    async def drain(self) -> None:
        """Wait for every late edit still running (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _complete(self, bot: Bot, key: tuple[int, int], token: str, render: Render) -> None:
        try:
            text, markup = await asyncio.wait_for(render(), self._bound)
        except TimeoutError:
            self._release(key, token)
            log.warning("late offers for message %s not complete within %s s", key, self._bound)
            return
        except Exception:
            self._release(key, token)
            log.exception("late offers for message %s failed", key)
            return
        if not self._release(key, token):
            return  # the user moved on (or a newer screen follows its own answers)
        try:
            await bot.edit_message_text(
                text=text, chat_id=key[0], message_id=key[1], reply_markup=markup
            )
        except TelegramAPIError as exc:  # deleted, too old, not modified: nothing to add
            log.info("late offers not shown in message %s: %s", key, exc.message)

    def _release(self, key: tuple[int, int], token: str) -> bool:
        """Stop following ``key``; whether it still showed the screen ``token`` names."""
        if self._shown.get(key) != token:
            return False
        del self._shown[key]
        return True

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        message_id = getattr(method, "message_id", None)
        if isinstance(method, _DRAWS_OVER) and isinstance(chat_id, int) and message_id:
            self._shown.pop((chat_id, message_id), None)
        return await make_request(bot, method)


Render = Callable[[], Awaitable[tuple[str, InlineKeyboardMarkup]]]
_DRAWS_OVER = (
    EditMessageText,
    EditMessageReplyMarkup,
    EditMessageCaption,
    EditMessageMedia,
    DeleteMessage,
)


async def show_offers(
    query: CallbackQuery,
    result: OffersResult,
    offers: OfferService,
    offer_stats: OfferStatsService,
    stock_alerts: StockAlertService,
    late_offers: LateOffers,
    prefix: str | None = None,
) -> None:
    """Show what answered; with providers still asked, follow the message until they do."""
    text, markup = await offers_screen(result, offers, offer_stats, stock_alerts, prefix)
    shown = await show(query, text, markup)
    if not result.pending or shown is None:
        return
    service, country = result.service, result.country

    async def complete() -> tuple[str, InlineKeyboardMarkup]:
        full = await offers.offers(service, country)  # joins the round still in flight
        return await offers_screen(full, offers, offer_stats, stock_alerts)

    late_offers.follow(shown, complete)


async def pick_country(
    query: CallbackQuery,
    callback_data: PickCountry,
    state: FSMContext,
    offers: OfferService,
    catalog: CatalogService,
    offer_stats: OfferStatsService,
    stock_alerts: StockAlertService,
    late_offers: LateOffers,
    settings: Settings,
) -> None:
    service, country = callback_data.service, callback_data.country
    if not await catalog.sells(service, country):  # forged: no provider is asked
        await answer(query, texts.not_yours(), alert=True)
        return
    await answer(query)
    await state.set_state(None)
    await show(query, texts.loading_offers(identifiers.service_name(service), country))
    result = await offers.within(service, country, settings.offers_deadline)
    await show_offers(query, result, offers, offer_stats, stock_alerts, late_offers)


async def refresh_offers(
    query: CallbackQuery,
    callback_data: RefreshOffers,
    state: FSMContext,
    offers: OfferService,
    catalog: CatalogService,
    offer_stats: OfferStatsService,
    stock_alerts: StockAlertService,
    late_offers: LateOffers,
    settings: Settings,
) -> None:
    """Refresh: the providers are asked again (not the cache); the answer says how fresh."""
    service, country = callback_data.service, callback_data.country
    if not await catalog.sells(service, country):  # forged: no provider is asked
        await answer(query, texts.not_yours(), alert=True)
        return
    await state.set_state(None)
    # The tap's spinner shows meanwhile.
    result = await offers.refresh(service, country, settings.offers_deadline)
    now = offers.now()
    await answer(query, texts.offers_refreshed(result.fetched_at or now, now))
    await show_offers(query, result, offers, offer_stats, stock_alerts, late_offers)


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
    settings: Settings,
) -> None:
    """The confirmation: the server keeps the price it shows here; Buy names that quote."""
    if not await catalog.sells(callback_data.service, callback_data.country):
        await answer(query, texts.not_yours(), alert=True)
        return
    await answer(query)
    # A provider still asked does not hold the tap: its offers were not on the screen.
    result = await offers.within(
        callback_data.service, callback_data.country, settings.offers_deadline
    )
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
    except GuardUnavailable:  # Redis does not answer: nothing was done (see redis_backends)
        await answer(query, texts.try_again_shortly(), alert=True)
        return
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
