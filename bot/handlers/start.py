"""/start (with a deep link to offers: ``?start=tg-us``), /help and the main menu (with the
user's recent service-country pairs)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, texts
from bot.callbacks import Menu, MenuAction
from bot.config import Settings
from bot.handlers import buy
from bot.handlers.common import answer, main_menu, show
from bot.handlers.links import parse_payload
from bot.providers import identifiers
from bot.services.access import AccessService
from bot.services.billing import Billing
from bot.services.catalog import CatalogService
from bot.services.offer_stats import OfferStatsService
from bot.services.offers import OfferService
from bot.services.stock_alerts import StockAlertService
from storage.models import User
from storage.orders import OrdersRepo


async def start(
    message: Message,
    state: FSMContext,
    command: CommandObject,
    billing: Billing,
    order_repo: OrdersRepo,
    catalog: CatalogService,
    offers: OfferService,
    access: AccessService,
    offer_stats: OfferStatsService,
    stock_alerts: StockAlertService,
    late_offers: buy.LateOffers,
    settings: Settings,
    stored_user: User | None = None,
) -> None:
    """The menu; with a link's payload naming a pair the catalog sells, its offers instead.
    Any other payload (hostile input) gets the menu with a short note."""
    await state.clear()
    assert message.from_user is not None
    user_id, note = message.from_user.id, None
    if command.args and command.args != "menu":  # "menu": the open-the-private-chat button
        pair = parse_payload(command.args)
        if pair is not None and await catalog.sells(*pair):
            if not access.may_buy(stored_user, user_id):
                await message.answer(texts.private_bot(), reply_markup=keyboards.ask_access())
                return
            deps = (offers, offer_stats, stock_alerts, late_offers, settings.offers_deadline)
            await _offers(message, deps, *pair)
            return
        note = texts.link_invalid()
    text = texts.welcome(message.from_user.first_name) if note is None else note
    await message.answer(text, reply_markup=await main_menu(user_id, billing, order_repo))


async def _offers(message: Message, deps: OffersDeps, service: str, country: str) -> None:
    """The deep link's offers: what answered within the deadline, the rest added when in."""
    loading = await message.answer(
        texts.loading_offers(identifiers.service_name(service), country)
    )
    offers, offer_stats, stock_alerts, late_offers, deadline = deps
    result = await offers.within(service, country, deadline)
    text, markup = await buy.offers_screen(result, offers, offer_stats, stock_alerts)
    shown = await loading.edit_text(text, reply_markup=markup)
    if not result.pending or not isinstance(shown, Message):
        return

    async def complete() -> tuple[str, InlineKeyboardMarkup]:
        full = await offers.offers(service, country)
        return await buy.offers_screen(full, offers, offer_stats, stock_alerts)

    late_offers.follow(shown, complete)


OffersDeps = tuple[OfferService, OfferStatsService, StockAlertService, buy.LateOffers, float]


async def help_command(message: Message, settings: Settings) -> None:
    text = texts.help_text(wallets=settings.wallets_on)
    await message.answer(text, reply_markup=keyboards.back_to_menu())


async def menu(
    query: CallbackQuery, state: FSMContext, billing: Billing, order_repo: OrdersRepo
) -> None:
    await state.clear()
    await answer(query)
    await show(query, texts.menu(), await main_menu(query.from_user.id, billing, order_repo))


async def help_button(query: CallbackQuery, settings: Settings) -> None:
    await answer(query)
    await show(query, texts.help_text(wallets=settings.wallets_on), keyboards.back_to_menu())


def setup() -> Router:
    router = Router(name="start")
    router.message.register(start, CommandStart())
    router.message.register(help_command, Command("help"))
    router.callback_query.register(menu, Menu.filter(F.action == MenuAction.MENU))
    router.callback_query.register(help_button, Menu.filter(F.action == MenuAction.HELP))
    return router
