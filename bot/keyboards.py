"""Pure functions that build inline keyboards."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from aiogram.filters.callback_data import CallbackData
from aiogram.types import CopyTextButton, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot import texts
from bot.callbacks import (
    SEARCH_IN_BUTTON,
    AdminAction,
    AdminCb,
    AlertAsk,
    AlertRemove,
    AskAccess,
    BlockUser,
    BroadcastAction,
    BroadcastCb,
    BuyAgain,
    Confirm,
    CountryPage,
    CountryServices,
    DecideAccess,
    KeepAsk,
    KeepStop,
    Menu,
    MenuAction,
    OfferKey,
    OfferSection,
    OrderAction,
    OrderCb,
    OrdersPage,
    PickCountry,
    PickService,
    RefreshOffers,
    RenewCb,
    ServicePage,
    SetLanguage,
    SetZone,
    TopUp,
    UserCard,
    UsersPage,
)
from bot.i18n import LANGUAGE_NAMES
from bot.keyboard_builder import InlineKeyboardBuilder
from bot.money import Money
from bot.providers import identifiers
from bot.providers.base import CancelTerms, Capability, OrderKind, RenewalOption
from bot.services.offer_stats import Badge, ref_of
from bot.services.offers import OfferRow, OffersLayout, PricedOffer, offer_token
from bot.timezones import COMMON_ZONES
from storage.keep_trying import Plan
from storage.models import StoredOrder
from storage.offer_stats import OfferRef
from storage.quotes import Quote
from storage.stock_alerts import StockAlert

SERVICES_PER_PAGE = 10
COUNTRIES_PER_PAGE = 10


def pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def main_menu(
    *, wallet: bool = False, recent: Sequence[tuple[str, str]] = ()
) -> InlineKeyboardMarkup:
    """The main menu; ``wallet``: users pay from wallets here (a Wallet button); ``recent``:
    the user's latest (service, country) pairs, one tap to their offers, under Buy."""
    kb = InlineKeyboardBuilder()
    kb.button(text=_("📲 Buy a number"), callback_data=Menu(action=MenuAction.BUY))
    kb.button(text=_("📋 My numbers"), callback_data=Menu(action=MenuAction.NUMBERS))
    if wallet:
        kb.button(text=_("💰 Wallet"), callback_data=Menu(action=MenuAction.WALLET))
    kb.button(text=_("🌐 Language"), callback_data=Menu(action=MenuAction.LANGUAGE))
    kb.button(text=_("⚙️ Settings"), callback_data=Menu(action=MenuAction.SETTINGS))
    kb.button(text=_("❓ Help"), callback_data=Menu(action=MenuAction.HELP))
    kb.adjust(1, 2 if wallet else 1, 2)
    markup = kb.as_markup()
    markup.inline_keyboard[1:1] = [[_recent_button(s, c)] for s, c in recent[:RECENT_PAIRS]]
    return markup


RECENT_PAIRS = 3


def _recent_button(service: str, country: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=f"🔁 {identifiers.service_name(service)} · {texts.country(country)}",
        callback_data=PickCountry(service=service, country=country).pack(),
    )


def buy_again(order: StoredOrder, *, here: bool) -> InlineKeyboardButton:
    """Same service and country (and provider and kind while sold) straight to confirm."""
    return InlineKeyboardButton(
        text=_("🔁 Buy the same again"),
        callback_data=BuyAgain(order_id=order.id, here=here).pack(),
    )


def time_zones(current: str | None) -> InlineKeyboardMarkup:
    """/settings: the common zones (the user's own marked), and back to the menu."""
    kb = InlineKeyboardBuilder()
    for zone in COMMON_ZONES:
        mark = "✓ " if zone == (current or "") else ""
        kb.button(text=f"{mark}{zone}", callback_data=SetZone(zone=zone))
    kb.adjust(2)
    kb.row(
        InlineKeyboardButton(text=_("« Menu"), callback_data=Menu(action=MenuAction.MENU).pack())
    )
    return kb.as_markup()


def open_private_chat(bot_username: str) -> InlineKeyboardMarkup:
    """One URL button that opens the private chat with the bot (at its main menu)."""
    url = f"https://t.me/{bot_username}?start=menu"
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=texts.open_private_chat(), url=url)]]
    )


def back_to_menu() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("« Menu"), callback_data=Menu(action=MenuAction.MENU))
    return kb.as_markup()


def _nav_row(
    kb: InlineKeyboardBuilder, page: int, total_pages: int, target: Callable[[int], CallbackData]
) -> None:
    """◀ ▶ buttons to the neighbouring pages that exist."""
    buttons = [
        InlineKeyboardButton(text=label, callback_data=target(to).pack())
        for to, label in ((page - 1, "◀"), (page + 1, "▶"))
        if 0 <= to < total_pages
    ]
    if buttons:
        kb.row(*buttons)


def services(codes: Sequence[str], page: int, names: dict[str, str]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    start = page * SERVICES_PER_PAGE
    for code in codes[start : start + SERVICES_PER_PAGE]:
        kb.button(text=names.get(code, code), callback_data=PickService(service=code))
    kb.adjust(2)
    _nav_row(kb, page, pages(len(codes), SERVICES_PER_PAGE), lambda p: ServicePage(page=p))
    kb.row(
        InlineKeyboardButton(text=_("« Back"), callback_data=Menu(action=MenuAction.MENU).pack())
    )
    return kb.as_markup()


def countries(service: str, isos: Sequence[str], page: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    start = page * COUNTRIES_PER_PAGE
    for iso in isos[start : start + COUNTRIES_PER_PAGE]:
        kb.button(text=texts.country(iso), callback_data=PickCountry(service=service, country=iso))
    kb.adjust(2)
    _nav_row(
        kb,
        page,
        pages(len(isos), COUNTRIES_PER_PAGE),
        lambda p: CountryPage(service=service, page=p),
    )
    kb.row(InlineKeyboardButton(text=_("« Back"), callback_data=ServicePage(page=0).pack()))
    return kb.as_markup()


def offer_key(priced: PricedOffer) -> OfferKey:
    offer = priced.offer
    return OfferKey(
        service=offer.service,
        country=offer.country,
        provider=offer.provider,
        token=offer_token(offer),
    )


def offers(
    service: str,
    country: str,
    arranged: OffersLayout,
    *,
    badges: Mapping[OfferRef, Badge] | None = None,
    alert: InlineKeyboardButton | None = None,
) -> InlineKeyboardMarkup:
    """The best pick, then a section per kind (activations first), then the "tell me when"
    button (``alert``, see :func:`alert_button`), then Refresh and Back. Each offer button
    names the offer (``OfferKey``), never its price, and shows its badge (``badges`` by
    ``offer_stats.ref_of``) where its recent orders earned one."""
    kb = InlineKeyboardBuilder()
    known = badges or {}

    def offer(row: OfferRow, *, best: bool = False) -> None:
        text = texts.offer_row(row, best=best, badge=known.get(ref_of(row.priced)))
        kb.row(InlineKeyboardButton(text=text, callback_data=offer_key(row.priced).pack()))

    if arranged.best is not None:
        offer(arranged.best, best=True)
    for rentals, rows in ((False, arranged.activations), (True, arranged.rentals)):
        if not rows:
            continue
        heading = texts.offer_section(rentals)
        kb.row(
            InlineKeyboardButton(text=heading, callback_data=OfferSection(rentals=rentals).pack())
        )
        for row in rows:
            offer(row)
    if alert is not None:
        kb.row(alert)
    kb.row(
        InlineKeyboardButton(
            text=_("🔄 Refresh"),
            callback_data=RefreshOffers(service=service, country=country).pack(),
        ),
        InlineKeyboardButton(
            text=_("« Back"), callback_data=CountryPage(service=service, page=0).pack()
        ),
    )
    return kb.as_markup()


def confirm(quote: Quote) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("✅ Buy"), callback_data=Confirm(quote=quote.id))
    if quote.kind is OrderKind.ACTIVATION:  # no code in time: cancel, buy the next offer
        kb.button(text=_("🔁 Keep trying"), callback_data=KeepAsk(quote=quote.id))
    kb.button(
        text=_("« Back"),
        callback_data=PickCountry(service=quote.service, country=quote.country),
    )
    kb.adjust(1)
    return kb.as_markup()


def order_card(
    order: StoredOrder,
    caps: frozenset[Capability],
    *,
    has_sms: bool,
    cancel: CancelTerms | None = None,
    now: datetime | None = None,
    plan: Plan | None = None,
) -> InlineKeyboardMarkup:
    """The number's actions; "another code" only once a first SMS came; Cancel only where the
    provider's rules (``cancel``) let it succeed, saying so when it returns nothing; Stop
    trying while the order is a try of a live keep-trying ``plan``."""
    kb = InlineKeyboardBuilder()
    kb.row(
        InlineKeyboardButton(
            text=_("📋 Copy number"), copy_text=CopyTextButton(text="+" + order.phone)
        )
    )

    def action(text: str, what: OrderAction) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            text=text, callback_data=OrderCb(order_id=order.id, action=what).pack()
        )

    if order.is_active:
        row: list[InlineKeyboardButton] = [action(_("🔄 Check SMS"), OrderAction.REFRESH)]
        if order.kind is OrderKind.ACTIVATION:
            # Once a code came, finishing is what is left to do: first, on a row of its own.
            finish_first = Capability.FINISH in caps and has_sms
            if finish_first:
                kb.row(action(_("✅ Finish"), OrderAction.FINISH))
            if Capability.ANOTHER_CODE in caps and has_sms:
                row.append(action(_("➕ Another code"), OrderAction.ANOTHER))
            kb.row(*row)
            row = []
            if Capability.FINISH in caps and not finish_first:
                row.append(action(_("✅ Finish"), OrderAction.FINISH))
            if label := _cancel_label(cancel, now):
                row.append(action(label, OrderAction.CANCEL))
            if Capability.BAN in caps:
                row.append(action(_("⛔ Number doesn't work"), OrderAction.BAN))
        else:
            if Capability.RENEW in caps:
                row.append(action(_("⏩ Renew"), OrderAction.RENEW_MENU))
            kb.row(*row)
            if Capability.RENEW in caps:
                label = _("🔁 Auto-renew: on") if order.auto_renew else _("🔁 Auto-renew: off")
                kb.row(action(label, OrderAction.AUTO_RENEW))
            row = []
            if Capability.FINISH in caps:
                row.append(action(_("✅ Finish"), OrderAction.FINISH))
            if label := _cancel_label(cancel, now):
                row.append(action(label, OrderAction.CANCEL))
        if row:
            kb.row(*row)
    else:
        kb.row(buy_again(order, here=True))
    if plan is not None and plan.live and order.is_active:
        stop = KeepStop(plan_id=plan.id).pack()
        kb.row(InlineKeyboardButton(text=_("⏹ Stop trying"), callback_data=stop))
    kb.row(
        InlineKeyboardButton(
            text=_("« My numbers"), callback_data=OrdersPage(page=0, past=False).pack()
        )
    )
    return kb.as_markup()


def _cancel_label(terms: CancelTerms | None, now: datetime | None) -> str | None:
    if terms is None:
        return None
    if now is None:
        raise ValueError("cancel terms need the time they are shown at")
    return texts.cancel_button(terms, now)


def renew_options(
    order: StoredOrder, options: Sequence[tuple[RenewalOption, Money | None]]
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for option, shown in options:
        kb.row(_renew_button(order, option, shown, texts.duration(option.duration_hours)))
    kb.row(
        InlineKeyboardButton(
            text=_("« Back"),
            callback_data=OrderCb(order_id=order.id, action=OrderAction.OPEN).pack(),
        )
    )
    return kb.as_markup()


def _renew_button(
    order: StoredOrder, option: RenewalOption, shown: Money | None, label: str
) -> InlineKeyboardButton:
    price = f" · {texts.money(shown)}" if shown else ""
    return InlineKeyboardButton(
        text=f"{label}{price}",
        callback_data=RenewCb(order_id=order.id, hours=option.duration_hours).pack(),
    )


def numbers(
    orders: Sequence[tuple[StoredOrder, str | None]], page: int, total_pages: int, past: bool
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for order, last_code in orders:
        kb.row(
            InlineKeyboardButton(
                text=texts.order_button(order, last_code),
                callback_data=OrderCb(order_id=order.id, action=OrderAction.OPEN).pack(),
            )
        )
    nav: list[InlineKeyboardButton] = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(
                text="◀", callback_data=OrdersPage(page=page - 1, past=past).pack()
            )
        )
    if page + 1 < total_pages:
        nav.append(
            InlineKeyboardButton(
                text="▶", callback_data=OrdersPage(page=page + 1, past=past).pack()
            )
        )
    if nav:
        kb.row(*nav)
    switch = (
        InlineKeyboardButton(
            text=_("Active numbers"), callback_data=OrdersPage(page=0, past=False).pack()
        )
        if past
        else InlineKeyboardButton(
            text=_("Past numbers"), callback_data=OrdersPage(page=0, past=True).pack()
        )
    )
    kb.row(
        switch,
        InlineKeyboardButton(text=_("« Menu"), callback_data=Menu(action=MenuAction.MENU).pack()),
    )
    return kb.as_markup()


def languages(current: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for code, name in LANGUAGE_NAMES.items():
        mark = "✓ " if code == current else ""
        kb.button(text=f"{mark}{name}", callback_data=SetLanguage(code=code))
    kb.button(text=_("« Menu"), callback_data=Menu(action=MenuAction.MENU))
    kb.adjust(len(LANGUAGE_NAMES), 1)
    return kb.as_markup()


def service_names(codes: Sequence[str], merged_name: dict[str, str]) -> dict[str, str]:
    return {code: identifiers.service_name(code, merged_name.get(code)) for code in codes}


def _open_card(order: StoredOrder) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=_("📱 Open the number"),
        callback_data=OrderCb(order_id=order.id, action=OrderAction.OPEN).pack(),
    )


def sms_push(
    order: StoredOrder, code: str | None, caps: frozenset[Capability]
) -> InlineKeyboardMarkup:
    """Under a pushed SMS: copy the code; for activations, finish or ask for another code."""
    kb = InlineKeyboardBuilder()
    if code:
        kb.row(
            InlineKeyboardButton(
                text=_("📋 Copy code {code}").format(code=code),
                copy_text=CopyTextButton(text=code),
            )
        )
    row: list[InlineKeyboardButton] = []
    if order.is_active and order.kind is OrderKind.ACTIVATION:
        for capability, text, what in (
            (Capability.FINISH, _("✅ Finish"), OrderAction.FINISH),
            (Capability.ANOTHER_CODE, _("➕ Another code"), OrderAction.ANOTHER),
        ):
            if capability in caps:
                row.append(
                    InlineKeyboardButton(
                        text=text, callback_data=OrderCb(order_id=order.id, action=what).pack()
                    )
                )
    kb.row(*row, _open_card(order)) if row else kb.row(_open_card(order))
    kb.row(buy_again(order, here=False))
    return kb.as_markup()


def reminder(
    order: StoredOrder, options: Sequence[tuple[RenewalOption, Money | None]]
) -> InlineKeyboardMarkup:
    """Under a rental reminder: one Renew button per duration (with its price), and the card."""
    kb = InlineKeyboardBuilder()
    for option, shown in options:
        label = _("⏩ Renew for {duration}").format(duration=texts.duration(option.duration_hours))
        kb.row(_renew_button(order, option, shown, label))
    kb.row(_open_card(order))
    return kb.as_markup()


def open_order(order: StoredOrder) -> InlineKeyboardMarkup:
    """The card of ``order``; once it is over (the rental-ended message), buy it again too."""
    kb = InlineKeyboardBuilder()
    kb.row(_open_card(order))
    if not order.is_active:
        kb.row(buy_again(order, here=False))
    return kb.as_markup()


def ask_access() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("🙋 Ask for access"), callback_data=AskAccess())
    kb.button(text=_("« Menu"), callback_data=Menu(action=MenuAction.MENU))
    kb.adjust(1)
    return kb.as_markup()


def decide_access(user_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("✅ Approve"), callback_data=DecideAccess(user_id=user_id, approve=True))
    kb.button(text=_("🚫 Deny"), callback_data=DecideAccess(user_id=user_id, approve=False))
    return kb.as_markup()


TOP_UP_AMOUNTS = ("1", "5", "10", "25")


def top_up(currency: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for amount in TOP_UP_AMOUNTS:
        kb.button(
            text=f"⭐ {texts.money(Money(Decimal(amount), currency))}",
            callback_data=TopUp(amount=amount),
        )
    kb.button(text=_("« Menu"), callback_data=Menu(action=MenuAction.MENU))
    kb.adjust(len(TOP_UP_AMOUNTS), 1)
    return kb.as_markup()


def need_top_up() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("⭐ Top up"), callback_data=TopUp(amount="0"))
    return kb.as_markup()


def not_enough(missing: Money, service: str, country: str, *, exact: bool) -> InlineKeyboardMarkup:
    """Not enough money: top up exactly ``missing`` (when ``exact``), a preset, or go back to
    the offers. The exact amount only chooses what to pay in Stars: the price stays the
    server's, checked again after the payment."""
    kb = InlineKeyboardBuilder()
    if exact:
        kb.button(
            text=_("⭐ Top up {amount}").format(amount=texts.money(missing)),
            callback_data=TopUp(amount=str(missing.amount)),
        )
    for amount in TOP_UP_AMOUNTS:
        kb.button(
            text=f"⭐ {texts.money(Money(Decimal(amount), missing.currency))}",
            callback_data=TopUp(amount=amount),
        )
    kb.button(text=_("« Back"), callback_data=PickCountry(service=service, country=country))
    kb.adjust(*((1,) if exact else ()), len(TOP_UP_AMOUNTS), 1)
    return kb.as_markup()


def user_card(user_id: int, blocked: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("✅ Approve"), callback_data=DecideAccess(user_id=user_id, approve=True))
    kb.button(text=_("🚫 Deny"), callback_data=DecideAccess(user_id=user_id, approve=False))
    label = _("🔓 Unblock") if blocked else _("⛔ Block")
    kb.button(text=label, callback_data=BlockUser(user_id=user_id, blocked=not blocked))
    kb.button(text=_("« Users"), callback_data=UsersPage(page=0))
    kb.adjust(2, 1, 1)
    return kb.as_markup()


def admin_panel(requests: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("🔄 Refresh"), callback_data=AdminCb(action=AdminAction.PANEL))
    kb.button(
        text=texts.requests_button(requests), callback_data=AdminCb(action=AdminAction.REQUESTS)
    )
    kb.button(text=_("👥 Users"), callback_data=AdminCb(action=AdminAction.USERS))
    kb.button(text=_("🏭 Providers"), callback_data=AdminCb(action=AdminAction.PROVIDERS))
    kb.button(text=_("📊 Delivery"), callback_data=AdminCb(action=AdminAction.DELIVERY))
    kb.adjust(2, 2, 1)
    return kb.as_markup()


def admin_delivery(summary_on: bool) -> InlineKeyboardMarkup:
    """The delivery table's screen: the daily summary's toggle, and back to the panel."""
    kb = InlineKeyboardBuilder()
    kb.button(
        text=texts.summary_toggle(summary_on), callback_data=AdminCb(action=AdminAction.SUMMARY)
    )
    kb.button(text=_("« Admin"), callback_data=AdminCb(action=AdminAction.PANEL))
    kb.adjust(1)
    return kb.as_markup()


def access_decided(user_id: int) -> InlineKeyboardMarkup:
    """Under a decided request: the user's card, or the panel."""
    kb = InlineKeyboardBuilder()
    kb.button(text=_("👤 User card"), callback_data=UserCard(user_id=user_id))
    kb.button(text=_("« Admin"), callback_data=AdminCb(action=AdminAction.PANEL))
    return kb.as_markup()


def back_to_admin() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("« Admin"), callback_data=AdminCb(action=AdminAction.PANEL))
    return kb.as_markup()


def search_in_button(query: str | None) -> str:
    """The part of a /users search a page button can carry (``:`` separates the fields)."""
    return (query or "").replace(":", " ").strip()[:SEARCH_IN_BUTTON]


def users_list(
    users: Sequence[tuple[int, str]], page: int, pages: int, query: str | None
) -> InlineKeyboardMarkup:
    """A button per user (id, label), ◀ ▶ between pages, and back to the panel."""
    kb = InlineKeyboardBuilder()
    for user_id, label in users:
        kb.button(text=label, callback_data=UserCard(user_id=user_id))
    kb.adjust(1)
    carried = search_in_button(query)
    _nav_row(kb, page, pages, lambda to: UsersPage(page=to, query=carried))
    kb.row(
        InlineKeyboardButton(
            text=_("« Admin"), callback_data=AdminCb(action=AdminAction.PANEL).pack()
        )
    )
    return kb.as_markup()


def broadcast_confirm(broadcast_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("✅ Send"),
        callback_data=BroadcastCb(broadcast_id=broadcast_id, action=BroadcastAction.SEND),
    )
    kb.button(
        text=_("✖️ Cancel"),
        callback_data=BroadcastCb(broadcast_id=broadcast_id, action=BroadcastAction.CANCEL),
    )
    return kb.as_markup()


def start_buying() -> InlineKeyboardMarkup:
    """What an approved user is told with: the way to their first number."""
    kb = InlineKeyboardBuilder()
    kb.button(text=_("📲 Buy a number"), callback_data=Menu(action=MenuAction.BUY))
    kb.button(text=_("« Menu"), callback_data=Menu(action=MenuAction.MENU))
    kb.adjust(1)
    return kb.as_markup()


# --- search anywhere (bot.handlers.search) --------------------------------------------------

SEARCH_RESULTS = 10  # of each kind: more is a spelling to refine


def _search_again_row(kb: InlineKeyboardBuilder) -> None:
    kb.row(
        InlineKeyboardButton(
            text=_("🔍 Search again"), callback_data=Menu(action=MenuAction.SEARCH).pack()
        ),
        InlineKeyboardButton(text=_("« Menu"), callback_data=Menu(action=MenuAction.MENU).pack()),
    )


def nothing_found() -> InlineKeyboardMarkup:
    """Under "nothing matches": type another name, or go to the menu."""
    kb = InlineKeyboardBuilder()
    _search_again_row(kb)
    return kb.as_markup()


def search_results(
    services: Sequence[str], names: dict[str, str], countries: Sequence[str]
) -> InlineKeyboardMarkup:
    """A search that found several things: a button for each service (to its countries) and
    each country (to the services sold there)."""
    kb = InlineKeyboardBuilder()
    for code in services[:SEARCH_RESULTS]:
        kb.button(text=names.get(code, code), callback_data=PickService(service=code))
    for iso in countries[:SEARCH_RESULTS]:
        kb.button(text=texts.country(iso), callback_data=CountryServices(country=iso, page=0))
    kb.adjust(2)
    _search_again_row(kb)
    return kb.as_markup()


def country_services(
    country: str, codes: Sequence[str], page: int, names: dict[str, str]
) -> InlineKeyboardMarkup:
    """The services sold in ``country``: each goes straight to its offers there."""
    kb = InlineKeyboardBuilder()
    start = page * SERVICES_PER_PAGE
    for code in codes[start : start + SERVICES_PER_PAGE]:
        kb.button(
            text=names.get(code, code), callback_data=PickCountry(service=code, country=country)
        )
    kb.adjust(2)
    _nav_row(
        kb,
        page,
        pages(len(codes), SERVICES_PER_PAGE),
        lambda p: CountryServices(country=country, page=p),
    )
    _search_again_row(kb)
    return kb.as_markup()


# --- "tell me when" alerts ------------------------------------------------------------------


def alert_button(service: str, country: str, under: Money | None = None) -> InlineKeyboardButton:
    """For the offers screen: be told once when the pair has numbers (``under`` None) or an
    offer at most ``under`` (display currency)."""
    ask = AlertAsk(
        service=service,
        country=country,
        under="" if under is None else format(under.amount.normalize(), "f"),
    )
    return InlineKeyboardButton(text=texts.alert_button(under), callback_data=ask.pack())


def alerts(pending: Sequence[StockAlert]) -> InlineKeyboardMarkup:
    """/alerts: a ✖️ per alert (numbered as listed), then the menu."""
    kb = InlineKeyboardBuilder()
    for place, alert in enumerate(pending, start=1):
        kb.button(text=f"✖️ {place}", callback_data=AlertRemove(alert_id=alert.id))
    kb.adjust(5)
    kb.row(
        InlineKeyboardButton(text=_("« Menu"), callback_data=Menu(action=MenuAction.MENU).pack())
    )
    return kb.as_markup()


def alert_fired(priced: PricedOffer) -> InlineKeyboardMarkup:
    """Under a fired alert: the offer (to its confirmation), all offers there, the menu."""
    offer = priced.offer
    kb = InlineKeyboardBuilder()
    kb.row(
        InlineKeyboardButton(
            text=texts.offer_button(priced), callback_data=offer_key(priced).pack()
        )
    )
    kb.row(
        InlineKeyboardButton(
            text=_("📋 All offers"),
            callback_data=PickCountry(service=offer.service, country=offer.country).pack(),
        ),
        InlineKeyboardButton(text=_("« Menu"), callback_data=Menu(action=MenuAction.MENU).pack()),
    )
    return kb.as_markup()
