"""Stories of buying a number and using its card, told through the real Dispatcher.

A Telegram user (``BotClient``) drives the whole bot (``tests.stack``) against the four provider
emulators over real HTTP on 127.0.0.1. Each story checks what the user read, what SQLite holds
and which requests reached the providers (money-moving ones exactly once).

Concurrency ("the request is in flight") is made with :class:`HeldAnswers`: an httpx response
hook on the bot's own client keeps the provider's real answer until the test releases it, so the
provider has acted while the bot is still waiting. Waits are event-based and bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import phonenumbers
import pytest
from aiogram.methods import AnswerCallbackQuery
from aiogram.types import InlineKeyboardButton, Message

from bot.callbacks import OrderAction, OrderCb, RenewCb
from bot.money import Money
from storage.models import OrderStatus, StoredOrder
from storage.orders import OrdersRepo
from tests.emulators.base import RecordedRequest
from tests.emulators.beesms import DEFAULT_TOKEN as BEESMS_TOKEN
from tests.emulators.smsbus import DEFAULT_TOKEN as SMSBUS_TOKEN
from tests.emulators.smsonline import DEFAULT_KEY as SMSONLINE_KEY
from tests.emulators.suite import GETSMS_KEY, EmulatorSuite
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack

WAIT = 10.0  # seconds: the bound of every wait for something that happens in milliseconds
PROVIDER_KEYS = (GETSMS_KEY, SMSBUS_TOKEN, BEESMS_TOKEN, SMSONLINE_KEY)
# What a user must never read: internals of a failure.
INTERNALS = ("Traceback", "Error", "Exception", "HTTP", "<html", "maintenance", "Something went")

BUY = "✅ Buy"
COPY = "📋 Copy number"
CHECK = "🔄 Check SMS"
ANOTHER = "➕ Another code"
CANCEL = "✖️ Cancel"
BAN = "⛔ Number doesn't work"
RENEW = "⏩ Renew"
FINISH = "✅ Finish"
AUTO_RENEW_OFF = "🔁 Auto-renew: off"
MY_NUMBERS = "« My numbers"
AGAIN = "🔁 Buy the same again"  # on a closed card
IN_PROGRESS = "Already in progress, one moment…"


# --- what each provider sells and how a purchase looks at its emulator ------------------------


def _getsms_v1(method: str) -> Callable[[RecordedRequest], bool]:
    return lambda r: r.path.startswith("/api/v1") and r.query.get("method") == method


def _getsms_v2(method: str) -> Callable[[RecordedRequest], bool]:
    return lambda r: r.path.startswith("/api/v2/rent") and r.query.get("method") == method


# Every money-moving purchase request, by name: (emulator, request predicate).
PURCHASE_REQUESTS: dict[str, tuple[str, Callable[[RecordedRequest], bool]]] = {
    "getsms-activation": ("getsms", _getsms_v1("getnumber")),
    "getsms-rental": ("getsms", _getsms_v2("getnumber")),
    "smsbus": ("smsbus", lambda r: r.path.endswith("/get/number")),
    "beesms": ("beesms", lambda r: r.path.endswith("/rental/purchase")),
    "smsonline": ("smsonline", lambda r: r.query.get("action") == "getRentNumber"),
}


@dataclass(frozen=True)
class Purchase:
    """One offer bought through the menus, and how its card must look."""

    name: str  # key of PURCHASE_REQUESTS
    provider: str
    title: str
    kind: str  # as the card and the offer button say it
    country: str  # the country button
    typed: str | None  # typed to filter countries; None: clicked in the list
    price: Decimal  # USD at the provider
    until: str | None  # the card's "Until" line as bought at 12:00 (None: not told)
    actions: tuple[str, ...]  # buttons between "Copy number" and "My numbers"
    service: str = "Telegram"

    def offer(self, button: InlineKeyboardButton) -> bool:
        return f" · {self.title} · {self.kind} · " in button.text


GETSMS_ACTIVATION = Purchase(
    name="getsms-activation",
    provider="getsms",
    title="Get-SMS",
    kind="activation",
    country="🇷🇺 Russia",
    typed=None,
    price=Decimal("0.50"),
    until="1 Jan 2026, 12:15 UTC (in 15 min)",
    actions=(CHECK, CANCEL, BAN),  # "another code" comes with the first SMS
)
GETSMS_RENTAL = Purchase(
    name="getsms-rental",
    provider="getsms",
    title="Get-SMS",
    kind="rental for 1 day",
    country="🇷🇺 Russia",
    typed="russ",
    price=Decimal("2.00"),
    until="2 Jan 2026, 12:00 UTC (in 1 d)",
    actions=(CHECK, RENEW, AUTO_RENEW_OFF, CANCEL),
)
SMSBUS = Purchase(
    name="smsbus",
    provider="smsbus",
    title="SMS-BUS",
    kind="activation",
    country="🇺🇸 United States",
    typed="united",
    price=Decimal("1.10"),
    until=None,
    actions=(CHECK, CANCEL),
)
BEESMS = Purchase(
    name="beesms",
    provider="beesms",
    title="BEE-SMS",
    kind="rental for 7 days",
    country="🇺🇸 United States",
    typed=None,
    price=Decimal("4.90"),
    until="8 Jan 2026, 12:00 UTC (in 7 d)",
    actions=(CHECK, RENEW, AUTO_RENEW_OFF, CANCEL),
)
SMSONLINE = Purchase(
    name="smsonline",
    provider="smsonline",
    title="SMS.online",
    kind="rental for 4 hours",
    country="🇺🇸 United States",
    typed="states",
    price=Decimal("1.20"),
    until="1 Jan 2026, 16:00 UTC (in 4 h)",
    actions=(CHECK, RENEW, AUTO_RENEW_OFF, FINISH, CANCEL),
)
EVERY_PURCHASE = (GETSMS_ACTIVATION, GETSMS_RENTAL, SMSBUS, BEESMS, SMSONLINE)


def purchase_counts(suite: EmulatorSuite) -> dict[str, int]:
    """How many purchase requests reached each emulator, by kind."""
    servers = suite.servers
    return {
        name: sum(1 for r in servers[server].requests if wanted(r))
        for name, (server, wanted) in PURCHASE_REQUESTS.items()
    }


def only_purchase(name: str) -> dict[str, int]:
    return {key: int(key == name) for key in PURCHASE_REQUESTS}


def requests_named(
    suite: EmulatorSuite, server: str, wanted: Callable[[RecordedRequest], bool]
) -> int:
    return sum(1 for r in suite.servers[server].requests if wanted(r))


def issued_phone(suite: EmulatorSuite, provider: str, order_id: str) -> str:
    """The number the emulator gave for the order (digits with the calling code)."""
    if provider == "getsms":
        activation = suite.getsms.activations.get(order_id)
        return activation.phone if activation else suite.getsms.rentals[order_id].phone
    if provider == "smsbus":
        return suite.smsbus.orders[int(order_id)].number
    if provider == "beesms":
        rental = suite.beesms.rental(order_id)
        return rental.dialing_code + rental.mobile_number
    return suite.smsonline.rentals[int(order_id)].phone


async def deliver_sms(suite: EmulatorSuite, provider: str, order_id: str, code: str) -> None:
    """An SMS with ``code`` arrives at the provider for the order."""
    text = f"Your Telegram code: {code}. Do not share it."
    if provider == "getsms":
        suite.getsms.inject_sms(order_id, text)
    elif provider == "smsbus":
        suite.smsbus.inject_code(order_id, code)
    elif provider == "beesms":
        suite.beesms.inject_sms(order_id, text)
    else:
        await suite.smsonline.inject_sms(order_id, text)


def international(digits: str) -> str:
    parsed = phonenumbers.parse("+" + digits)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# --- the user's side ------------------------------------------------------------------------


async def offers_screen(user: BotClient, purchase: Purchase) -> Message:
    """/buy -> service -> country (typed or clicked): the offers list."""
    await user.send("/buy")
    await user.click(user.last_message(), purchase.service)
    if purchase.typed is not None:
        await user.send(purchase.typed)  # the matches come as a new message
    await user.click(user.last_message(), purchase.country)
    screen = user.last_message()
    assert "cheapest first" in (screen.text or "")
    return screen


async def confirm_screen(user: BotClient, purchase: Purchase) -> Message:
    screen = await offers_screen(user, purchase)
    await user.click(screen, purchase.offer)
    confirm = user.last_message()
    assert confirm.message_id == screen.message_id  # navigation edits one message
    text = confirm.text or ""
    assert text.startswith("Confirm your purchase")
    assert f"Provider: {purchase.title}" in text
    assert f"Type: {purchase.kind}" in text
    assert user.buttons(confirm)[0] == BUY
    return confirm


async def buy(stack: Stack, user: BotClient, purchase: Purchase) -> tuple[Message, StoredOrder]:
    """The whole purchase; returns the card and the stored order."""
    confirm = await confirm_screen(user, purchase)
    await user.click(confirm, BUY)
    card = user.last_message()
    assert card.message_id == confirm.message_id
    assert (card.text or "").startswith("📱 "), card.text
    return card, await newest_order(stack, user)


async def newest_order(stack: Stack, user: BotClient) -> StoredOrder:
    orders = await OrdersRepo(stack.app.db).list_for_user(user.user.id, limit=1)
    assert orders, "nothing stored"
    return orders[0]


async def stored_orders(stack: Stack, user: BotClient) -> list[StoredOrder]:
    return await OrdersRepo(stack.app.db).list_for_user(user.user.id, limit=100)


def lines(message: Message) -> list[str]:
    return (message.text or "").splitlines()


def card_buttons(actions: tuple[str, ...]) -> list[str]:
    return [COPY, *actions, MY_NUMBERS]


def user_texts(stack: Stack) -> list[str]:
    """Every text the bot sent, edited or answered, in every chat."""
    return [str(c.params["text"]) for c in stack.api.log if "text" in c.params]


def assert_no_internals(stack: Stack) -> None:
    for text in user_texts(stack):
        for fragment in INTERNALS:
            assert fragment not in text, f"the user read {fragment!r}: {text!r}"


def assert_no_keys(stack: Stack) -> None:
    """No provider key in anything the bot sent to Telegram (texts, buttons, answers)."""
    for call in stack.api.log:
        wire = repr(call.params)
        for key in PROVIDER_KEYS:
            assert key not in wire, f"{call.name} carried a provider key"


def answer_text(answer: AnswerCallbackQuery | None) -> str | None:
    assert answer is not None, "the callback query was not answered"
    return answer.text


def alert_text(answer: AnswerCallbackQuery | None) -> str | None:
    assert answer is not None, "the callback query was not answered"
    assert answer.show_alert, f"not an alert: {answer.text!r}"
    return answer.text


class HeldAnswers:
    """Keeps the provider's answer to the next request matching ``wanted`` inside the bot's HTTP
    client until :meth:`release`: the provider has acted, the bot still waits (the request is in
    flight). Later matching requests pass.

    With ``lose=True`` that answer is then lost on the way back (a read timeout), the way a
    purchase whose outcome is unknown happens in production.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        wanted: Callable[[httpx.Request], bool],
        *,
        lose: bool = False,
        hold: bool = True,
    ) -> None:
        self.arrived = asyncio.Event()
        self._released = asyncio.Event()
        if not hold:
            self._released.set()
        self._wanted = wanted
        self._lose = lose
        hooks = client.event_hooks
        client.event_hooks = {**hooks, "response": [*hooks["response"], self._on_response]}

    async def _on_response(self, response: httpx.Response) -> None:
        if self.arrived.is_set() or not self._wanted(response.request):
            return
        self.arrived.set()
        await self._released.wait()
        if self._lose:
            raise httpx.ReadTimeout("the answer was lost", request=response.request)

    async def wait_arrived(self) -> None:
        await asyncio.wait_for(self.arrived.wait(), WAIT)

    def release(self) -> None:
        self._released.set()


def getsms_request(api: str, method: str) -> Callable[[httpx.Request], bool]:
    prefix = "/api/v1" if api == "v1" else "/api/v2/rent"
    return lambda r: r.url.path.startswith(prefix) and r.url.params.get("method") == method


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The whole bot; afterwards, no provider key reached Telegram in any test."""
    async with running_stack(tmp_path) as running:
        yield running
        assert_no_keys(running)


# --- 1. a purchase from each provider, end to end ----------------------------------------------


@pytest.mark.parametrize("purchase", EVERY_PURCHASE, ids=lambda p: p.name)
async def test_purchase_from_each_provider_shows_a_complete_card(
    tmp_path: Path, purchase: Purchase
) -> None:
    # Prices shown in EUR (1 USD = 0.90 EUR): the stored provider price and display price differ.
    async with running_stack(tmp_path, display_currency="EUR", exchange_rates="USD=0.9") as stack:
        user = stack.client()
        card, order = await buy(stack, user, purchase)

        digits = issued_phone(stack.suite, purchase.provider, order.provider_order_id)
        shown = (purchase.price * Decimal("0.9")).quantize(Decimal("0.01"))
        expected = [
            f"📱 {international(digits)}",
            f"{purchase.service} · {purchase.country}",
            f"{purchase.title} · {purchase.kind}",
            "Status: 🟢 active",
            *([f"Until: {purchase.until}"] if purchase.until else []),
            f"Price: €{shown}",
            "",
            "Waiting for SMS… codes appear here.",
        ]
        assert lines(card) == expected
        assert user.copy_texts(card) == [f"+{digits}"]
        assert user.buttons(card) == card_buttons(purchase.actions)

        assert order.user_id == user.user.id
        assert (order.provider, order.phone, order.status) == (
            purchase.provider,
            digits,
            OrderStatus.ACTIVE,
        )
        assert order.price == Money(purchase.price, "USD")
        assert order.display_price == Money(shown, "EUR")
        assert purchase_counts(stack.suite) == only_purchase(purchase.name)

        # The code arrives at the provider; "Check SMS" shows it on the card.
        await deliver_sms(stack.suite, purchase.provider, order.provider_order_id, "482913")
        assert answer_text(await user.click(card, CHECK)) is None
        card = user.last_message()
        assert "Messages" in lines(card)
        assert any(line.startswith("• 482913") for line in lines(card)), card.text
        assert "Waiting for SMS… codes appear here." not in lines(card)
        assert purchase_counts(stack.suite) == only_purchase(purchase.name)
        assert_no_internals(stack)
        assert_no_keys(stack)


# --- 2. actions on the card ----------------------------------------------------------------

# The provider's cancel request, per provider.
CANCEL_REQUESTS: dict[str, Callable[[RecordedRequest], bool]] = {
    "getsms-activation": _getsms_v1("refusenumber"),
    "getsms-rental": _getsms_v2("refuse"),
    "smsbus": lambda r: r.path.endswith("/control/cancel"),
    "beesms": lambda r: r.path.endswith("/rental/cancel"),
    "smsonline": lambda r: r.query.get("action") == "setRentStatus" and r.query["status"] == "2",
}


def cancelled_at_provider(suite: EmulatorSuite, purchase: Purchase, order_id: str) -> bool:
    if purchase.name == "getsms-activation":
        return suite.getsms.activations[order_id].status == "cancelled"
    if purchase.name == "getsms-rental":
        return suite.getsms.rentals[order_id].status == 2
    if purchase.name == "smsbus":
        return suite.smsbus.orders[int(order_id)].status == "cancelled"
    if purchase.name == "beesms":
        return suite.beesms.rental(order_id).cancelled
    return suite.smsonline.rentals[int(order_id)].status == "cancelled"


@pytest.mark.parametrize(
    "purchase", (GETSMS_ACTIVATION, GETSMS_RENTAL, SMSBUS, BEESMS, SMSONLINE), ids=lambda p: p.name
)
async def test_cancel_closes_the_number_at_the_provider(stack: Stack, purchase: Purchase) -> None:
    user = stack.client()
    card, order = await buy(stack, user, purchase)

    assert answer_text(await user.click(card, CANCEL)) == "Cancelled."

    card = user.last_message()
    assert "Status: ↩️ cancelled" in lines(card)
    assert user.buttons(card) == [COPY, AGAIN, MY_NUMBERS]  # a closed number: only buy again
    assert (await newest_order(stack, user)).status is OrderStatus.CANCELLED
    assert cancelled_at_provider(stack.suite, purchase, order.provider_order_id)
    server = PURCHASE_REQUESTS[purchase.name][0]
    assert requests_named(stack.suite, server, CANCEL_REQUESTS[purchase.name]) == 1


@dataclass(frozen=True)
class Refusal:
    purchase: Purchase
    why: str  # what makes the provider refuse
    sms_first: bool = False
    minutes_later: float = 0

    @property
    def told(self) -> str:
        if self.sms_first:
            return "An SMS already arrived on this number, so it can no longer be cancelled."
        return "The time to cancel this number is over."

    @property
    def asked(self) -> int:
        """Cancel requests sent: an SMS the bot had not seen yet only the provider knows of;
        a window the rules say is over is not even asked."""
        return 1 if self.sms_first else 0


REFUSALS = (
    Refusal(GETSMS_RENTAL, "an SMS came", sms_first=True),
    Refusal(BEESMS, "an SMS came", sms_first=True),
    Refusal(SMSONLINE, "past the 20-minute window", minutes_later=21),
)


async def test_cancel_of_an_expired_activation_shows_it_expired(stack: Stack) -> None:
    user = stack.client()
    card, order = await buy(stack, user, GETSMS_ACTIVATION)
    stack.clock.advance(minutes=16)  # past the 15-minute lifetime

    cancels_before = requests_named(stack.suite, "getsms", _getsms_v1("refusenumber"))
    assert alert_text(await user.click(card, CANCEL)) == "The time to cancel this number is over."
    # The provider's rules said no: nothing was sent to it.
    assert requests_named(stack.suite, "getsms", _getsms_v1("refusenumber")) == cancels_before

    card = user.last_message()
    assert "Status: ⌛ expired" in lines(card)
    assert user.buttons(card) == [COPY, AGAIN, MY_NUMBERS]  # no more buttons that cannot work
    assert (await newest_order(stack, user)).status is OrderStatus.EXPIRED
    assert stack.suite.getsms.activations[order.provider_order_id].status == "expired"


async def test_smsbus_cancel_after_the_code_closes_the_card_with_the_code(
    stack: Stack,
) -> None:
    user = stack.client()
    card, order = await buy(stack, user, SMSBUS)
    stack.suite.smsbus.inject_code(order.provider_order_id, "12345")

    answer = await user.click(card, CANCEL)

    assert requests_named(stack.suite, "smsbus", CANCEL_REQUESTS["smsbus"]) == 1
    assert alert_text(answer) == "This number is already closed at SMS-BUS."
    shown = lines(user.last_message())
    assert any(line.startswith("• 12345") for line in shown)  # the code is kept and shown
    assert "Status: ✅ finished" in shown  # SMS-BUS closes a request with its code
    assert CANCEL not in user.buttons(user.last_message())
    assert (await newest_order(stack, user)).status is OrderStatus.FINISHED


async def test_a_lost_answer_to_cancel_is_not_worded_as_a_purchase(stack: Stack) -> None:
    user = stack.client()
    card, _ = await buy(stack, user, GETSMS_ACTIVATION)
    stack.suite.getsms.raw_reply("refusenumber", "<html>502 Bad Gateway</html>")

    answer = await user.click(card, CANCEL)

    assert requests_named(stack.suite, "getsms", _getsms_v1("refusenumber")) == 1
    text = alert_text(answer) or ""
    assert "purchase" not in text
    assert "issued" not in text


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda r: f"{r.purchase.name}: {r.why}")
async def test_a_refused_cancel_says_why_and_keeps_the_number(
    stack: Stack, refusal: Refusal
) -> None:
    purchase = refusal.purchase
    user = stack.client()
    card, order = await buy(stack, user, purchase)
    if refusal.sms_first:
        await deliver_sms(stack.suite, purchase.provider, order.provider_order_id, "551177")
    stack.clock.advance(minutes=refusal.minutes_later)

    assert alert_text(await user.click(card, CANCEL)) == refusal.told

    card = user.last_message()
    assert "Status: 🟢 active" in lines(card)
    # The number is still usable; the card no longer offers a cancel that cannot succeed.
    assert user.buttons(card) == [b for b in card_buttons(purchase.actions) if b != CANCEL]
    assert (await newest_order(stack, user)).status is OrderStatus.ACTIVE
    assert not cancelled_at_provider(stack.suite, purchase, order.provider_order_id)
    server = PURCHASE_REQUESTS[purchase.name][0]
    assert requests_named(stack.suite, server, CANCEL_REQUESTS[purchase.name]) == refusal.asked
    assert_no_internals(stack)


async def test_finish_closes_an_smsonline_rental(stack: Stack) -> None:
    user = stack.client()
    card, order = await buy(stack, user, SMSONLINE)

    assert answer_text(await user.click(card, FINISH)) == "Done. The number is closed."

    card = user.last_message()
    assert "Status: ✅ finished" in lines(card)
    assert user.buttons(card) == [COPY, AGAIN, MY_NUMBERS]
    assert (await newest_order(stack, user)).status is OrderStatus.FINISHED
    assert stack.suite.smsonline.rentals[int(order.provider_order_id)].status == "finished"
    finish = lambda r: r.query.get("action") == "setRentStatus" and r.query["status"] == "1"  # noqa: E731
    assert requests_named(stack.suite, "smsonline", finish) == 1


async def test_ban_reports_a_getsms_number_that_does_not_work(stack: Stack) -> None:
    user = stack.client()
    card, order = await buy(stack, user, GETSMS_ACTIVATION)

    assert answer_text(await user.click(card, BAN)) == "Reported. The number is closed."

    card = user.last_message()
    assert "Status: ⛔ reported and closed" in lines(card)
    assert user.buttons(card) == [COPY, AGAIN, MY_NUMBERS]
    assert (await newest_order(stack, user)).status is OrderStatus.BANNED
    assert stack.suite.getsms.activations[order.provider_order_id].status == "banned"
    assert stack.suite.getsms.reserved_of() == 0  # the reserve went back to the account
    assert requests_named(stack.suite, "getsms", _getsms_v1("bannumber")) == 1


async def test_another_code_asks_getsms_for_one_more_sms(stack: Stack) -> None:
    user = stack.client()
    card, order = await buy(stack, user, GETSMS_ACTIVATION)
    emulator = stack.suite.getsms
    first_sms = emulator.inject_sms(order.provider_order_id, "Telegram code 11111")
    await user.click(card, CHECK)

    assert answer_text(await user.click(card, ANOTHER)) == (
        "Asked for another code: it will appear here when it arrives."
    )
    wrongcode = [r for r in emulator.requests if _getsms_v1("wrongcode")(r)]
    assert [r.query["last_id"] for r in wrongcode] == [first_sms]

    emulator.inject_sms(order.provider_order_id, "Telegram code 22222")
    await user.click(card, CHECK)
    card = user.last_message()
    codes = [line.split(" — ")[0] for line in lines(card) if line.startswith("• ")]
    assert codes == ["• 11111", "• 22222"]
    assert "Status: 🟢 active" in lines(card)


async def test_another_code_is_offered_only_after_the_first_sms(stack: Stack) -> None:
    user = stack.client()
    card, order = await buy(stack, user, GETSMS_ACTIVATION)
    assert ANOTHER not in user.buttons(card)

    stack.suite.getsms.inject_sms(order.provider_order_id, "Telegram code 11111")
    await user.click(card, CHECK)
    assert ANOTHER in user.buttons(user.last_message())
    assert requests_named(stack.suite, "getsms", _getsms_v1("wrongcode")) == 0


@dataclass(frozen=True)
class Renewal:
    purchase: Purchase
    menu: tuple[str, ...]  # the duration buttons, with prices
    pick: str
    until: str
    request: Callable[[RecordedRequest], bool]

    def ends_at_provider(self, suite: EmulatorSuite, order_id: str) -> datetime:
        if self.purchase.provider == "getsms":
            return suite.getsms.rentals[order_id].ends
        if self.purchase.provider == "beesms":
            return suite.beesms.rental(order_id).end
        return suite.smsonline.rentals[int(order_id)].end_date


RENEWALS = (
    Renewal(
        GETSMS_RENTAL,
        (
            "1 day · $2.00",
            "2 days · $3.50",
            "3 days · $5.00",
            "4 days · $6.50",
            "5 days · $8.00",
            "6 days · $9.50",
            "7 days · $11.00",
        ),
        "2 days · $3.50",
        "4 Jan 2026, 12:00 UTC",
        _getsms_v2("prolong"),
    ),
    Renewal(
        BEESMS,
        ("7 days · $4.90", "30 days · $14.25"),
        "30 days · $14.25",
        "7 Feb 2026, 12:00 UTC",
        lambda r: r.path.endswith("/rental/renew"),
    ),
    Renewal(
        SMSONLINE,
        (
            "4 hours · $1.20",
            "8 hours · $1.80",
            "12 hours · $2.40",
            "1 day · $3.60",
            "3 days · $7.20",
            "7 days · $12.00",
            "15 days · $21.60",
            "30 days · $36.00",
            "90 days · $90.00",
        ),
        "1 day · $3.60",
        "2 Jan 2026, 16:00 UTC",
        lambda r: r.query.get("action") == "continueRentNumber",
    ),
)


@pytest.mark.parametrize("renewal", RENEWALS, ids=lambda r: r.purchase.name)
async def test_renew_lists_durations_with_prices_and_moves_the_end(
    stack: Stack, renewal: Renewal
) -> None:
    purchase = renewal.purchase
    user = stack.client()
    card, order = await buy(stack, user, purchase)

    await user.click(card, RENEW)
    menu = user.last_message()
    assert menu.message_id == card.message_id
    assert menu.text == f"Renew {international(order.phone)} for how long?"
    assert user.buttons(menu) == [*renewal.menu, "« Back"]
    server = PURCHASE_REQUESTS[purchase.name][0]
    assert requests_named(stack.suite, server, renewal.request) == 0  # listing moves no money

    answer = await user.click(menu, renewal.pick)
    assert answer_text(answer) == f"Renewed. The number is yours until {renewal.until}."

    card = user.last_message()
    assert any(line.startswith(f"Until: {renewal.until} (in ") for line in lines(card))
    # After a renewal SMS.online's docs leave a cancel's refund open: the button says so.
    uncertain = "✖️ Cancel (refund not certain)" if purchase is SMSONLINE else CANCEL
    expected = [uncertain if b == CANCEL else b for b in card_buttons(purchase.actions)]
    assert user.buttons(card) == expected
    stored = await newest_order(stack, user)
    assert stored.expires_at == renewal.ends_at_provider(stack.suite, order.provider_order_id)
    assert stored.expires_at is not None
    until = f"Until: {stored.expires_at:%-d %b %Y, %H:%M} UTC (in "
    assert any(line.startswith(until) for line in lines(card))
    assert requests_named(stack.suite, server, renewal.request) == 1


async def test_renew_menu_back_returns_to_the_card(stack: Stack) -> None:
    user = stack.client()
    card, _ = await buy(stack, user, BEESMS)
    before = card.text
    await user.click(card, RENEW)
    await user.click(user.last_message(), "« Back")
    assert user.last_message().text == before
    assert user.buttons() == card_buttons(BEESMS.actions)
    assert requests_named(stack.suite, "beesms", lambda r: r.path.endswith("/renew")) == 0


async def test_numbers_lists_active_orders_with_last_code_and_past_ones(stack: Stack) -> None:
    user = stack.client()
    coded_card, coded = await buy(stack, user, GETSMS_ACTIVATION)
    await deliver_sms(stack.suite, "getsms", coded.provider_order_id, "730461")
    await user.click(coded_card, CHECK)
    closed_card, closed = await buy(stack, user, SMSBUS)
    await user.click(closed_card, CANCEL)
    _, rented = await buy(stack, user, BEESMS)

    await user.send("/numbers")
    listing = user.last_message()
    assert listing.text == "Your numbers (2 active). Tap one to open it."
    assert user.buttons(listing) == [
        f"🟢 {international(rented.phone)} · Telegram",  # newest first
        f"🟢 {international(coded.phone)} · Telegram · 730461",
        "Past numbers",
        "« Menu",
    ]

    for order, button in ((rented, 0), (coded, 1)):
        await user.click(listing, user.buttons(listing)[button])
        card = user.last_message()
        assert card.message_id == listing.message_id
        assert lines(card)[0] == f"📱 {international(order.phone)}"
        assert user.copy_texts(card) == [f"+{order.phone}"]
        await user.click(card, MY_NUMBERS)
        assert user.last_message().text == listing.text

    await user.click(listing, "Past numbers")
    past = user.last_message()
    assert past.text == "Your past numbers"
    assert user.buttons(past) == [
        f"↩️ {international(closed.phone)} · Telegram",
        "Active numbers",
        "« Menu",
    ]
    await user.click(past, user.buttons(past)[0])
    card = user.last_message()
    assert lines(card)[0] == f"📱 {international(closed.phone)}"
    assert "Status: ↩️ cancelled" in lines(card)
    assert user.buttons(card) == [COPY, AGAIN, MY_NUMBERS]


async def test_numbers_when_nothing_was_bought(stack: Stack) -> None:
    user = stack.client()
    await user.send("/numbers")
    assert user.last_message().text == "You have no numbers yet. Buy one from the menu: /buy"


# --- 3. ownership ----------------------------------------------------------------------------


async def test_someone_elses_order_buttons_are_refused_politely(stack: Stack) -> None:
    owner = stack.client(user_id=1001)
    _, order = await buy(stack, owner, GETSMS_RENTAL)
    stranger = stack.client(user_id=2002)
    await stranger.send("/start")
    screen = stranger.last_message()
    before = (screen.text, stranger.buttons(screen))
    requests_before = {name: len(s.requests) for name, s in stack.suite.servers.items()}

    forged = [OrderCb(order_id=order.id, action=action).pack() for action in OrderAction]
    forged.append(RenewCb(order_id=order.id, hours=24).pack())
    for data in forged:
        answer = await stranger.click_data(screen, data)
        assert alert_text(answer) == "This button is no longer valid.", data

    shown = stranger.last_message()
    assert (shown.text, stranger.buttons(shown)) == before  # nothing of the owner's shown
    phone = order.phone
    assert all(phone not in repr(c.params) for c in stack.api.log if c.chat_id == 2002)
    assert {n: len(s.requests) for n, s in stack.suite.servers.items()} == requests_before
    assert await newest_order(stack, owner) == order  # untouched
    assert await stored_orders(stack, stranger) == []


# --- 4. double taps --------------------------------------------------------------------------


async def test_buy_tapped_twice_buys_one_number(stack: Stack) -> None:
    user = stack.client()
    confirm = await confirm_screen(user, GETSMS_ACTIVATION)
    buy_button = user.buttons(confirm).index(BUY)
    buy_data = confirm.reply_markup.inline_keyboard[buy_button][0].callback_data  # type: ignore[union-attr]
    assert buy_data is not None
    held = HeldAnswers(stack.app.http, getsms_request("v1", "getnumber"))

    first = asyncio.create_task(user.click(confirm, BUY))
    try:
        await held.wait_arrived()  # Get-SMS has sold the number; the bot awaits its answer
        assert purchase_counts(stack.suite) == only_purchase("getsms-activation")
        second = await user.click(confirm, BUY)  # still on screen: the user taps again
    finally:
        held.release()
    await asyncio.wait_for(first, WAIT)

    assert answer_text(second) == IN_PROGRESS
    card = user.last_message()
    assert (card.text or "").startswith("📱 ")
    assert len(await stored_orders(stack, user)) == 1

    # A tap that was on its way when the card replaced the confirmation buys nothing either.
    await user.click_data(confirm, buy_data)
    assert user.last_message().text == card.text
    assert purchase_counts(stack.suite) == only_purchase("getsms-activation")
    assert len(await stored_orders(stack, user)) == 1


async def test_a_late_buy_tap_is_told_the_number_is_already_bought(stack: Stack) -> None:
    user = stack.client()
    confirm = await confirm_screen(user, GETSMS_ACTIVATION)
    buy_data = confirm.reply_markup.inline_keyboard[0][0].callback_data  # type: ignore[union-attr]
    assert buy_data is not None
    await user.click(confirm, BUY)

    late = await user.click_data(confirm, buy_data)

    assert purchase_counts(stack.suite) == only_purchase("getsms-activation")
    assert answer_text(late) == "Already bought: see your numbers."


async def test_a_second_purchase_from_the_same_message_goes_through(stack: Stack) -> None:
    user = stack.client()
    card, _ = await buy(stack, user, GETSMS_ACTIVATION)
    await user.click(card, MY_NUMBERS)
    await user.click(card, "« Menu")
    await user.click(card, "📲 Buy a number")
    await user.click(card, "Telegram")
    await user.click(card, GETSMS_ACTIVATION.country)
    await user.click(card, GETSMS_ACTIVATION.offer)  # the same offer once more: a second number

    await user.click(card, BUY)

    assert (user.last_message().text or "").startswith("📱 ")
    assert purchase_counts(stack.suite)["getsms-activation"] == 2
    assert len(await stored_orders(stack, user)) == 2


async def test_cancel_tapped_twice_cancels_once(stack: Stack) -> None:
    user = stack.client()
    card, order = await buy(stack, user, GETSMS_ACTIVATION)
    held = HeldAnswers(stack.app.http, getsms_request("v1", "refusenumber"))

    first = asyncio.create_task(user.click(card, CANCEL))
    try:
        await held.wait_arrived()
        second = await user.click(card, CANCEL)
    finally:
        held.release()
    first_answer = await asyncio.wait_for(first, WAIT)

    assert answer_text(second) == IN_PROGRESS
    assert answer_text(first_answer) == "Cancelled."
    assert "Status: ↩️ cancelled" in lines(user.last_message())
    assert requests_named(stack.suite, "getsms", _getsms_v1("refusenumber")) == 1
    assert stack.suite.getsms.activations[order.provider_order_id].status == "cancelled"

    # Once it is closed, a further tap is told so and reaches no provider.
    late = await user.click_data(
        card, OrderCb(order_id=order.id, action=OrderAction.CANCEL).pack()
    )
    assert alert_text(late) == "This number is no longer active."
    assert requests_named(stack.suite, "getsms", _getsms_v1("refusenumber")) == 1


# --- 5. provider errors become advice in the user's language -----------------------------------

NOT_ANSWERING = "is not answering. Try again in a minute or pick another offer."
CANT_SELL = "can't sell this right now. Pick another offer or try later."
LOST = (  # where the provider lists such orders: the reconciler will look
    "did not confirm the purchase, so no number was confirmed yet. We are checking its "
    "records: if the number was issued you will get it here, otherwise your money comes "
    "back. Please don't buy again right away."
)
LOST_UNLISTED = (  # where it cannot: the money comes back once the provider's window is over
    "did not confirm the purchase: no number was confirmed. If you paid, the money is held "
    "until {until} and then comes back (the provider charges nothing for a number that "
    "received no SMS)."
)


def _revoke_smsbus_token(suite: EmulatorSuite) -> None:
    suite.smsbus.token = "revoked-token"


def _getsms_maintenance(suite: EmulatorSuite) -> None:
    suite.getsms.maintenance = True


@dataclass(frozen=True)
class Failure:
    name: str
    purchase: Purchase
    arrange: Callable[[EmulatorSuite], None]
    says: str  # the first line of the screen the user gets instead of a card
    purchase_requests: int  # purchase requests that reached the provider
    afterwards: Purchase  # what another user buys next, to show the bot keeps serving


FAILURES = (
    Failure(
        "no numbers",
        GETSMS_ACTIVATION,
        lambda s: s.getsms.force_status("getnumber", 500),
        "⚠️ Get-SMS has no numbers left for this. Pick another offer.",
        1,
        GETSMS_ACTIVATION,
    ),
    Failure(
        "no numbers (SMS.online)",
        SMSONLINE,
        lambda s: s.smsonline.queue_error("getRentNumber", "NO_NUMBERS"),
        "⚠️ SMS.online has no numbers left for this. Pick another offer.",
        1,
        SMSONLINE,
    ),
    Failure(
        "provider balance",
        GETSMS_ACTIVATION,
        lambda s: s.getsms.set_balance(0),
        f"⚠️ Get-SMS {CANT_SELL}",
        1,
        SMSBUS,
    ),
    Failure(
        "provider balance (BEE-SMS)",
        BEESMS,
        lambda s: s.beesms.set_balance(0),
        f"⚠️ BEE-SMS {CANT_SELL}",
        1,
        SMSONLINE,
    ),
    Failure(
        "price above the ceiling at purchase",
        BEESMS,
        lambda s: s.beesms.queue_error("purchase", 50115),
        "⚠️ BEE-SMS raised the price. Pick an offer again.",
        1,
        BEESMS,
    ),
    Failure(
        "bad key",
        SMSBUS,
        _revoke_smsbus_token,
        f"⚠️ SMS-BUS {CANT_SELL}",
        0,
        GETSMS_ACTIVATION,
    ),
    Failure(
        "bad key at purchase",
        GETSMS_RENTAL,
        lambda s: s.getsms.force_status("getnumber", 401, api="v2"),
        f"⚠️ Get-SMS {CANT_SELL}",
        1,
        GETSMS_RENTAL,
    ),
    Failure(
        "5xx",
        SMSBUS,
        lambda s: s.smsbus.fail("5xx", times=2),  # both tries of the offer re-check
        f"⚠️ SMS-BUS {NOT_ANSWERING}",
        0,
        SMSBUS,
    ),
    Failure(
        "garbage",
        SMSBUS,
        lambda s: s.smsbus.fail("garbage", times=2),
        f"⚠️ SMS-BUS {NOT_ANSWERING}",
        0,
        SMSBUS,
    ),
    Failure(
        "maintenance",
        GETSMS_ACTIVATION,
        _getsms_maintenance,
        f"⚠️ Get-SMS {NOT_ANSWERING}",
        1,
        SMSBUS,
    ),
    Failure(
        "provider's own try-again",
        SMSONLINE,
        lambda s: s.smsonline.queue_error("getRentNumber", "ERROR_SQL"),
        f"⚠️ SMS.online {NOT_ANSWERING}",
        1,
        SMSONLINE,
    ),
)


def assert_offers_follow(user: BotClient, screen: Message) -> None:
    """After the advice: the offers on sale now, to pick from."""
    text = screen.text or ""
    assert "\n\nTelegram in " in text, text
    buttons = user.buttons(screen)
    assert buttons[-2:] == ["🔄 Refresh", "« Back"]
    assert len(buttons) > 2, "no offer to pick from"


@pytest.mark.parametrize("failure", FAILURES, ids=lambda f: f.name)
async def test_a_provider_error_is_advice_and_the_bot_keeps_serving(
    stack: Stack, failure: Failure
) -> None:
    user = stack.client()
    confirm = await confirm_screen(user, failure.purchase)
    failure.arrange(stack.suite)

    await user.click(confirm, BUY)

    screen = user.last_message()
    assert screen.message_id == confirm.message_id
    assert lines(screen)[0] == failure.says
    assert_offers_follow(user, screen)
    assert await stored_orders(stack, user) == []
    counts = purchase_counts(stack.suite)
    assert counts == {
        k: failure.purchase_requests * v for k, v in only_purchase(failure.purchase.name).items()
    }

    other = stack.client(user_id=2002)
    card, order = await buy(stack, other, failure.afterwards)
    assert order.provider == failure.afterwards.provider
    assert "Status: 🟢 active" in lines(card)
    assert_no_internals(stack)


async def test_advice_in_russian_and_the_user_buys_another_offer(stack: Stack) -> None:
    user = stack.client(language_code="ru")
    await user.send("/buy")
    await user.click(user.last_message(), "Telegram")
    await user.send("росс")
    await user.click(user.last_message(), "🇷🇺 Россия")
    screen = user.last_message()
    await user.click(screen, lambda b: "Get-SMS" in b.text and b.text.startswith("0,50"))
    stack.suite.getsms.force_status("getnumber", 500)

    await user.click(screen, "✅ Купить")

    screen = user.last_message()
    assert lines(screen)[0] == (
        "⚠️ У Get-SMS закончились номера для этого сервиса. Выберите другое предложение."
    )
    assert user.buttons(screen)[-2:] == ["🔄 Обновить", "« Назад"]
    assert await stored_orders(stack, user) == []

    # The advice is followed: another offer from the list, bought.
    await user.click(screen, lambda b: "SMS-BUS" in b.text)
    await user.click(screen, "✅ Купить")
    card = user.last_message()
    assert lines(card)[2].startswith("SMS-BUS · ")
    order = await newest_order(stack, user)
    assert order.provider == "smsbus"
    assert purchase_counts(stack.suite) == {
        **only_purchase("smsbus"),
        "getsms-activation": 1,
    }
    assert_no_internals(stack)


async def test_a_dearer_offer_is_not_bought_and_the_new_price_is_shown(stack: Stack) -> None:
    user = stack.client()
    confirm = await confirm_screen(user, GETSMS_ACTIVATION)
    stack.suite.getsms.set_stock("tg", "ru", price="0.90", count=49)

    await user.click(confirm, BUY)

    screen = user.last_message()
    assert lines(screen)[0] == "Get-SMS raised the price to $0.90. Buy at the new price?"
    assert "Price: $0.90" in lines(screen)
    assert user.buttons(screen) == ["✅ Buy", "🔁 Keep trying", "« Back"]
    assert purchase_counts(stack.suite)["getsms-activation"] == 0
    assert await stored_orders(stack, user) == []

    # Accepting the new price buys at it.
    await user.click(screen, BUY)
    assert "Price: $0.90" in lines(user.last_message())
    assert (await newest_order(stack, user)).price == Money(Decimal("0.90"), "USD")
    assert purchase_counts(stack.suite) == only_purchase("getsms-activation")


async def test_a_sold_out_offer_is_not_bought_and_the_rest_are_shown(stack: Stack) -> None:
    user = stack.client()
    confirm = await confirm_screen(user, SMSBUS)
    stack.suite.smsbus.set_stock(5, 1, 0)  # United States, Telegram

    await user.click(confirm, BUY)

    screen = user.last_message()
    assert lines(screen)[0] == "That offer from SMS-BUS is gone. Here are the current ones:"
    assert_offers_follow(user, screen)
    assert not any("SMS-BUS" in b for b in user.buttons(screen))
    assert purchase_counts(stack.suite)["smsbus"] == 0
    assert await stored_orders(stack, user) == []


async def test_a_provider_that_times_out_is_reported_not_answering(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=("getsms", "smsbus"), provider_timeout=0.5) as stack:
        user = stack.client()
        confirm = await confirm_screen(user, SMSBUS)
        stack.suite.smsbus.fail("timeout", times=2)  # held until the bot gives up, twice

        await user.click(confirm, BUY)

        screen = user.last_message()
        assert lines(screen)[0] == f"⚠️ SMS-BUS {NOT_ANSWERING}"
        assert_offers_follow(user, screen)
        assert purchase_counts(stack.suite)["smsbus"] == 0
        _, order = await buy(stack, stack.client(user_id=2002), SMSBUS)
        assert order.provider == "smsbus"
        assert_no_internals(stack)
        assert_no_keys(stack)


# (purchase, its purchase request in the bot's client, the order-list request at the emulator)
LOSABLE = (
    pytest.param(
        GETSMS_RENTAL,
        getsms_request("v2", "getnumber"),
        _getsms_v2("getorders"),
        id=GETSMS_RENTAL.name,
    ),
    pytest.param(
        BEESMS,
        lambda r: r.url.path.endswith("/rental/purchase"),
        lambda r: r.path.endswith("/rental/numbers"),
        id=BEESMS.name,
    ),
    pytest.param(
        SMSONLINE,
        lambda r: r.url.params.get("action") == "getRentNumber",
        lambda r: r.query.get("action") == "getRentList",
        id=SMSONLINE.name,
    ),
)


@pytest.mark.parametrize(("purchase", "buy_request", "list_request"), LOSABLE)
async def test_a_lost_purchase_answer_is_reconciled_from_the_order_list(
    stack: Stack,
    purchase: Purchase,
    buy_request: Callable[[httpx.Request], bool],
    list_request: Callable[[RecordedRequest], bool],
) -> None:
    user = stack.client()
    confirm = await confirm_screen(user, purchase)
    HeldAnswers(stack.app.http, buy_request, lose=True, hold=False)

    await user.click(confirm, BUY)

    card = user.last_message()
    order = await newest_order(stack, user)
    digits = issued_phone(stack.suite, purchase.provider, order.provider_order_id)
    assert order.phone == digits
    assert lines(card)[:4] == [
        f"📱 {international(digits)}",
        f"Telegram · {purchase.country}",
        f"{purchase.title} · {purchase.kind}",
        "Status: 🟢 active",
    ]
    assert f"Until: {purchase.until}" in lines(card)
    assert f"Price: ${purchase.price}" in lines(card)
    assert user.copy_texts(card) == [f"+{digits}"]
    assert order.price == Money(purchase.price, "USD")
    assert purchase_counts(stack.suite) == only_purchase(purchase.name)  # never bought twice
    server = PURCHASE_REQUESTS[purchase.name][0]
    assert requests_named(stack.suite, server, list_request) >= 2  # before and after
    assert_no_internals(stack)


async def test_a_lost_purchase_answer_with_nothing_to_find_says_so(stack: Stack) -> None:
    user = stack.client()
    confirm = await confirm_screen(user, GETSMS_RENTAL)
    stack.suite.getsms.raw_reply("getnumber", "<html>maintenance</html>", api="v2")
    lists_before = requests_named(stack.suite, "getsms", _getsms_v2("getorders"))

    await user.click(confirm, BUY)

    screen = user.last_message()
    assert lines(screen)[0] == f"Get-SMS {LOST}"
    assert await stored_orders(stack, user) == []
    assert purchase_counts(stack.suite) == only_purchase("getsms-rental")  # not retried
    # The account's orders were read before and after the purchase, to look for it.
    assert requests_named(stack.suite, "getsms", _getsms_v2("getorders")) == lists_before + 2
    assert_no_internals(stack)


async def test_a_lost_purchase_answer_at_a_provider_without_order_list(stack: Stack) -> None:
    user = stack.client()
    confirm = await confirm_screen(user, SMSBUS)
    stack.suite.smsbus.force("number", "<html>502 Bad Gateway</html>", status=502)

    await user.click(confirm, BUY)

    until = "1 Jan 2026, 13:00 UTC"  # bought at 12:00; SMS-BUS's window for an unused number
    assert lines(user.last_message())[0] == "SMS-BUS " + LOST_UNLISTED.format(until=until)
    assert await stored_orders(stack, user) == []
    assert purchase_counts(stack.suite) == only_purchase("smsbus")  # sent once, not retried
    assert stack.suite.smsbus.orders == {}
    assert_no_internals(stack)


async def test_reconciling_does_not_take_another_users_concurrent_purchase(stack: Stack) -> None:
    first = stack.client(user_id=1001)
    confirm = await confirm_screen(first, BEESMS)
    lost = HeldAnswers(
        stack.app.http, lambda r: r.url.path.endswith("/rental/purchase"), lose=True
    )

    task = asyncio.create_task(first.click(confirm, BUY))
    try:
        await lost.wait_arrived()  # BEE-SMS rented the first user a number; the answer is late
        # Meanwhile another user buys the same: purchases at a provider whose order list
        # reconciles lost answers go one at a time, so this one waits for the first.
        second = asyncio.create_task(buy(stack, stack.client(user_id=2002), BEESMS))
        for _ in range(100):
            await asyncio.sleep(0)
        assert purchase_counts(stack.suite)["beesms"] == 1
    finally:
        lost.release()  # ...and then the first answer is lost
    await asyncio.wait_for(task, WAIT)
    _, seconds = await asyncio.wait_for(second, WAIT)

    card = first.last_message()
    order = await newest_order(stack, first)
    assert order.provider_order_id != seconds.provider_order_id
    assert set(stack.suite.beesms.rentals) == {order.provider_order_id, seconds.provider_order_id}
    assert lines(card)[0] == f"📱 {international(order.phone)}"
    assert purchase_counts(stack.suite)["beesms"] == 2


# --- 6. provider keys stay out of Telegram -------------------------------------------------


async def test_keys_echoed_by_providers_never_reach_the_user(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    suite = stack.suite
    echo = {
        "getsms": lambda: suite.getsms.raw_reply(
            "getnumber", json.dumps({"status": 401, "data": {"msg": f"bad key {GETSMS_KEY}"}})
        ),
        "smsbus": lambda: suite.smsbus.force(
            "number", {"code": 401, "message": f"Wrong token {SMSBUS_TOKEN}!"}, status=401
        ),
        "beesms": lambda: suite.beesms.queue_response(
            "purchase", {"code": 59999, "message": f"token {BEESMS_TOKEN} unknown"}
        ),
        "smsonline": lambda: suite.smsonline.queue_error(
            "getRentNumber", f"BANNED:'{SMSONLINE_KEY}'", text=True
        ),
    }
    for user_id, purchase in enumerate((GETSMS_ACTIVATION, SMSBUS, BEESMS, SMSONLINE), 3001):
        user = stack.client(user_id=user_id)
        confirm = await confirm_screen(user, purchase)
        echo[purchase.provider]()
        await user.click(confirm, BUY)
        first = lines(user.last_message())[0]
        # A refusal is advice; an undocumented answer to a purchase is an unknown outcome.
        assert first.startswith((f"⚠️ {purchase.title} ", f"{purchase.title} did not confirm"))

    assert_no_keys(stack)
    assert_no_internals(stack)
    for key in PROVIDER_KEYS:
        assert key not in caplog.text  # nor in the bot's logs
