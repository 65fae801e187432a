"""Every CallbackData factory. Prefixes are short and versioned (``…1``) so old buttons can be
told apart from new ones if a layout changes; aiogram checks the 64-byte limit on pack."""

from __future__ import annotations

import enum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

SQL_INT_MAX = 2**63 - 1  # SQLite INTEGER is a signed 64-bit number

# Fields the bot fills from its own rows: a value no row can have fails to unpack, so the
# button matches no handler (bot.handlers.errors answers it) and never reaches storage.
RowId = Annotated[int, Field(gt=0, le=SQL_INT_MAX)]
Page = Annotated[int, Field(ge=0, le=100_000)]
Hours = Annotated[int, Field(gt=0, le=24 * 366)]
Code = Annotated[str, Field(min_length=1, max_length=40)]


def parse_row_id(text: str | None) -> int | None:
    """A command argument that must be a row id (a Telegram user id, an order id): an int in
    1..2**63-1 written in ASCII digits, else None (so no query is ever made with it)."""
    raw = (text or "").strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= SQL_INT_MAX else None


class MenuAction(enum.StrEnum):
    MENU = "m"
    BUY = "b"
    NUMBERS = "n"
    LANGUAGE = "l"
    HELP = "h"
    WALLET = "w"
    SETTINGS = "s"
    SEARCH = "q"  # type a service or country name


class Menu(CallbackData, prefix="m1"):
    action: MenuAction


class ServicePage(CallbackData, prefix="sp1"):
    page: Page


class PickService(CallbackData, prefix="s1"):
    service: Code


class CountryPage(CallbackData, prefix="cp1"):
    service: Code
    page: Page


class PickCountry(CallbackData, prefix="c1"):
    service: Code
    country: Code


class CountryServices(CallbackData, prefix="cs1"):
    """A page of the services sold in one country (a search found the country first)."""

    country: Code
    page: Page


class RefreshOffers(CallbackData, prefix="rf1"):
    """Refresh on the offers screen: the providers are asked again (not the cache)."""

    service: Code
    country: Code


class OfferSection(CallbackData, prefix="os1"):
    """A section heading on the offers screen (activations, rentals): a tap explains it."""

    rentals: bool


class OfferKey(CallbackData, prefix="o3"):
    """An offer on the offers screen: ``token`` names it (see ``offer_token``). No price: the
    price is the server's, kept in the quote the confirmation makes."""

    service: str
    country: str
    provider: str
    token: str


class Confirm(CallbackData, prefix="y4"):
    """The Buy button under a confirmation: names the quote (offer and price) the server
    showed this user. A forged one names no quote of theirs."""

    quote: str


class OrderAction(enum.StrEnum):
    OPEN = "o"
    REFRESH = "f"
    CANCEL = "c"
    ANOTHER = "a"
    FINISH = "d"
    BAN = "b"
    RENEW_MENU = "r"
    AUTO_RENEW = "t"  # toggle


class OrderCb(CallbackData, prefix="x1"):
    order_id: RowId
    action: OrderAction


class RenewCb(CallbackData, prefix="r1"):
    order_id: RowId
    hours: Hours


class OrdersPage(CallbackData, prefix="l1"):
    page: Page
    past: bool


class AskAccess(CallbackData, prefix="aa1"):
    """A user asks the admins for access (private mode)."""


class DecideAccess(CallbackData, prefix="ad1"):
    """An admin approves or denies a user's request."""

    user_id: RowId
    approve: bool


class TopUp(CallbackData, prefix="tu1"):
    """Top up the wallet by ``amount`` (display currency, as text; 0 = show the choices)."""

    amount: str


class BlockUser(CallbackData, prefix="bu1"):
    """An admin blocks or unblocks a user from the user's card."""

    user_id: RowId
    blocked: bool


class AdminAction(enum.StrEnum):
    PANEL = "p"  # the panel again, refreshed
    REQUESTS = "r"
    USERS = "u"
    PROVIDERS = "v"
    DELIVERY = "d"  # the delivery table (best and worst offers)
    SUMMARY = "s"  # turn the daily summary on or off (on the delivery screen)


class AdminCb(CallbackData, prefix="ap1"):
    """A button of the /admin panel."""

    action: AdminAction


SEARCH_IN_BUTTON = 16  # characters of a /users search kept in its page buttons (64 bytes max)


class UsersPage(CallbackData, prefix="up1"):
    """A page of /users, with the search it lists (shortened, ``:`` removed)."""

    page: Page
    query: Annotated[str, Field(max_length=SEARCH_IN_BUTTON)] = ""


class UserCard(CallbackData, prefix="uc1"):
    """Open a user's card from /users."""

    user_id: RowId


class BroadcastAction(enum.StrEnum):
    SEND = "s"
    CANCEL = "x"


class BroadcastCb(CallbackData, prefix="bc1"):
    """Send or cancel a previewed broadcast."""

    broadcast_id: RowId
    action: BroadcastAction


class SetLanguage(CallbackData, prefix="lg1"):
    code: str


class BuyAgain(CallbackData, prefix="ba1"):
    """Buy the same again, from a closed card (``here``: shown on that message) or a push (a
    new message, so the SMS stays readable): same service, country, provider and kind."""

    order_id: RowId
    here: bool


class SetZone(CallbackData, prefix="tz1"):
    """A time zone button in /settings (checked again with ``bot.timezones.parse``)."""

    zone: Annotated[str, Field(min_length=1, max_length=40)]


class AlertAsk(CallbackData, prefix="al1"):
    """Tell me when the pair gets numbers (``under`` empty), or an offer at most ``under``
    (display currency, as text; checked again by the handler)."""

    service: Code
    country: Code
    under: Annotated[str, Field(max_length=16)]


class AlertRemove(CallbackData, prefix="ar1"):
    """Remove one of the user's alerts (from /alerts)."""

    alert_id: RowId


class KeepAsk(CallbackData, prefix="kt1"):
    """Keep trying, on an activation's confirmation: choose how many tries (of ``quote``)."""

    quote: str


class KeepTries(CallbackData, prefix="kn1"):
    """Keep trying with ``tries`` tries: choose the maximum price."""

    quote: str
    tries: Annotated[int, Field(ge=1, le=10)]


class KeepMax(CallbackData, prefix="km1"):
    """The maximum price as the first price plus ``percent`` (the server computes it from the
    quote; 0: the user types an amount)."""

    quote: str
    tries: Annotated[int, Field(ge=1, le=10)]
    percent: Annotated[int, Field(ge=0, le=1000)]


class KeepStart(CallbackData, prefix="ks1"):
    """Start the plan the summary showed (kept in the FSM data, named by its quote)."""

    quote: str


class KeepStop(CallbackData, prefix="kx1"):
    """Stop trying, from the card of a try's order."""

    plan_id: RowId
