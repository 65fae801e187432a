"""Every CallbackData factory. Prefixes are short and versioned (``…1``) so old buttons can be
told apart from new ones if a layout changes; aiogram checks the 64-byte limit on pack."""

from __future__ import annotations

import enum

from aiogram.filters.callback_data import CallbackData


class MenuAction(enum.StrEnum):
    MENU = "m"
    BUY = "b"
    NUMBERS = "n"
    LANGUAGE = "l"
    HELP = "h"


class Menu(CallbackData, prefix="m1"):
    action: MenuAction


class ServicePage(CallbackData, prefix="sp1"):
    page: int


class PickService(CallbackData, prefix="s1"):
    service: str


class CountryPage(CallbackData, prefix="cp1"):
    service: str
    page: int


class PickCountry(CallbackData, prefix="c1"):
    service: str
    country: str


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
    order_id: int
    action: OrderAction


class RenewCb(CallbackData, prefix="r1"):
    order_id: int
    hours: int


class OrdersPage(CallbackData, prefix="l1"):
    page: int
    past: bool


class AskAccess(CallbackData, prefix="aa1"):
    """A user asks the admins for access (private mode)."""


class DecideAccess(CallbackData, prefix="ad1"):
    """An admin approves or denies a user's request."""

    user_id: int
    approve: bool


class TopUp(CallbackData, prefix="tu1"):
    """Top up the wallet by ``amount`` (display currency, as text; 0 = show the choices)."""

    amount: str


class BlockUser(CallbackData, prefix="bu1"):
    """An admin blocks or unblocks a user from the user's card."""

    user_id: int
    blocked: bool


class SetLanguage(CallbackData, prefix="lg1"):
    code: str
