"""The offers screen as a buyer reads it, and what the buyer never reads: the provider's cost.

Stories through the real Dispatcher (EN and RU), the provider emulators and the fake Bot API:
activations before rentals, a "⭐ Best" row on top that says why, offers of one provider told
apart, a Refresh that asks the providers again and says how fresh the prices are; and a whole
purchase made by a buyer whose provider account is in roubles, every text and button of which
is scanned for the provider's price and currency (which the admin's own screen still shows).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    SendInvoice,
    SendMessage,
)
from aiogram.types import InlineKeyboardMarkup, Message

from bot import texts
from bot.i18n import create_i18n
from bot.money import Money
from bot.providers.base import Offer, OrderKind
from bot.services.offers import PricedOffer, layout
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "best": "⭐ Best · ",
        "activations": "— 📲 Activations —",
        "rentals": "— 📅 Rentals —",
        "refresh": "🔄 Refresh",
        "alert": "🔔 Notify me under $0.32",  # 80% of the cheapest, rounded down
        "back": "« Back",
        "virtual": "virtual",
        "activation": "activation",
        "why": (
            "⭐ Best: $0.40 at Get-SMS, the cheapest in stock (too few recent orders to tell "
            "how well it delivers)."
        ),
        "fresh": "Prices as of {time} UTC · just now",
        "updated": "🔄 Updated. Prices as of {time} UTC · just now",
        "country": "🇺🇸 United States",
        "russia": "🇷🇺 Russia",
        "buy": "✅ Buy",
        "section_help": "Activation: a number for one code",
    },
    "ru": {
        "best": "⭐ Лучшее · ",
        "activations": "— 📲 Активации —",
        "rentals": "— 📅 Аренда —",
        "refresh": "🔄 Обновить",
        "alert": "🔔 Сообщить, когда дешевле 0,32\xa0$",
        "back": "« Назад",
        "virtual": "виртуальный",
        "activation": "активация",
        "why": (
            "⭐ Лучшее: 0,40\xa0$ у Get-SMS, самое дешёвое из тех, что в наличии (заказов "
            "пока мало, чтобы судить, как оно работает)."
        ),
        "fresh": "Цены на {time} UTC · только что",
        "updated": "🔄 Обновлено. Цены на {time} UTC · только что",
        "country": "🇺🇸 Соединенные Штаты",
        "russia": "🇷🇺 Россия",
        "buy": "✅ Купить",
        "section_help": "Активация: номер для одного кода",
    },
}


async def offers_screen(user: BotClient, country: str) -> Message:
    await user.send("/buy")
    await user.click(user.last_message(), "Telegram")
    await user.click(user.last_message(), country)
    return user.last_message()


def callback_data(message: Message) -> list[str]:
    markup = message.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    return [b.callback_data or "" for row in markup.inline_keyboard for b in row]


def total_requests(stack: Stack) -> dict[str, int]:
    return {pid: len(server.requests) for pid, server in stack.suite.servers.items()}


# --- the screen ----------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_best_on_top_then_activations_then_rentals(stack: Stack, language: str) -> None:
    words = WORDS[language]
    user = stack.client(language_code=language)
    screen = await offers_screen(user, words["country"])
    buttons = user.buttons(screen)

    # The cheapest in stock (Get-SMS's virtual US activation, $0.40) is on top, and the text
    # says why; it is not listed twice.
    assert buttons[0].startswith(words["best"])
    assert "Get-SMS" in buttons[0] and words["virtual"] in buttons[0]
    assert words["why"] in (screen.text or "")
    keys = callback_data(screen)
    assert keys.count(keys[0]) == 1
    assert all(len(key.encode()) <= 64 and "$" not in key for key in keys)

    # Then activations, then rentals, each under its heading; Refresh and Back last.
    assert buttons[1] == words["activations"]
    rentals_at = buttons.index(words["rentals"])
    activations = buttons[2:rentals_at]
    rentals = buttons[rentals_at + 1 : -3]
    assert activations and rentals
    assert all(words["activation"] in b for b in activations)
    assert not any(words["activation"] in b for b in rentals)
    # Too dear? Be told when an offer is under 80% of the cheapest; Refresh and Back last.
    assert buttons[-3:] == [words["alert"], words["refresh"], words["back"]]

    # Get-SMS sells two US activations: only "virtual" tells them apart, and it is said.
    getsms = [b.removeprefix(words["best"]) for b in buttons if "Get-SMS" in b]
    getsms_activations = [b for b in getsms if words["activation"] in b]
    assert len(getsms_activations) == 2
    assert [words["virtual"] in b for b in getsms_activations] == [True, False]

    # A tap on a heading explains the kind (and is answered, as every tap is).
    answer = await user.click(screen, words["activations"])
    assert answer is not None and (answer.text or "").startswith(words["section_help"])
    assert user.last_message().message_id == screen.message_id


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_two_rentals_of_one_provider_are_told_apart(stack: Stack, language: str) -> None:
    # SMS.online sells the US twice: SMS-Activate ids 187 and 12 ("USA (virtual)").
    stack.suite.smsonline.set_stock("tg", 12, 7, "1.30")
    words = WORDS[language]
    user = stack.client(language_code=language)
    await offers_screen(user, words["country"])
    smsonline = [b for b in user.buttons() if "SMS.online" in b]
    assert len(smsonline) == 2
    assert len(set(smsonline)) == 2
    virtual = [b for b in smsonline if words["virtual"] in b]
    assert len(virtual) == 1 and ("1.30" in virtual[0] or "1,30" in virtual[0])


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_refresh_asks_the_providers_again_and_says_how_fresh(
    stack: Stack, language: str
) -> None:
    words = WORDS[language]
    user = stack.client(language_code=language)
    screen = await offers_screen(user, words["country"])
    assert words["fresh"].format(time="12:00") in (screen.text or "")

    # Within the cache's time, tapping the country again asks no provider...
    before = total_requests(stack)
    stack.clock.advance(seconds=10)
    await user.click(screen, words["back"])
    await user.click(user.last_message(), words["country"])
    assert total_requests(stack) == before

    # ...but Refresh does: every provider is asked again, and the time is the new one.
    stack.clock.advance(minutes=3)
    stack.suite.getsms.set_stock("tg", "usavirt", price="0.35", count=20)
    answer = await user.click(user.last_message(), words["refresh"])
    after = total_requests(stack)
    assert all(after[pid] > before[pid] for pid in before), (before, after)
    assert answer is not None and answer.text == words["updated"].format(time="12:03")
    refreshed = user.last_message()
    assert refreshed.message_id == screen.message_id  # the same message, edited
    assert words["fresh"].format(time="12:03") in (refreshed.text or "")
    assert "0.35" in user.buttons()[0] or "0,35" in user.buttons()[0]  # the new price shows

    # Taps in a row within a few seconds share the list just fetched.
    stack.clock.advance(seconds=2)
    again = await user.click(user.last_message(), words["refresh"])
    assert total_requests(stack) == after
    assert again is not None and again.text == words["updated"].format(time="12:03")


async def test_refresh_of_a_forged_pair_asks_no_provider(stack: Stack) -> None:
    user = stack.client()
    await user.send("/buy")
    before = total_requests(stack)
    answer = await user.click_data(user.last_message(), "rf1:tg:ZZ")
    assert answer is not None and answer.show_alert
    assert total_requests(stack) == before


def test_freshness_counts_minutes() -> None:
    i18n = create_i18n()
    at = datetime(2026, 1, 1, 12, 3, 40, tzinfo=UTC)
    with i18n.context(), i18n.use_locale("en"):
        assert texts.freshness(at, at + timedelta(seconds=59)) == (
            "Prices as of 12:03 UTC · just now"
        )
        assert texts.freshness(at, at + timedelta(minutes=2, seconds=5)) == (
            "Prices as of 12:03 UTC · 2 min ago"
        )
    with i18n.context(), i18n.use_locale("ru"):
        assert texts.freshness(at, at + timedelta(minutes=2)) == "Цены на 12:03 UTC · 2 мин назад"


def _priced(ref: str, price: str, *, stock: int | None = 5, virtual: bool = False) -> PricedOffer:
    offer = Offer(
        "smsbus", "tg", "US", OrderKind.ACTIVATION, Money(Decimal(price), "USD"), stock, None, ref
    )
    if virtual:
        offer = Offer(**{**_fields(offer), "virtual": True})
    return PricedOffer(offer, Money(Decimal(price), "USD"))


def _fields(offer: Offer) -> dict[str, Any]:
    return {name: getattr(offer, name) for name in Offer.__dataclass_fields__}


def test_alike_offers_of_one_provider_are_numbered_by_their_ref() -> None:
    """Two SMS-BUS activations that look alike (two of its country ids for one ISO code) get
    "option 1" and "option 2", numbered by ref so a refresh keeps each its number."""
    offers = [_priced("5:1", "0.90"), _priced("12:1", "0.80"), _priced("7:1", "1.50", stock=None)]
    arranged = layout(offers)
    assert arranged.best is not None and arranged.best.priced.offer.ref == "12:1"
    options = {row.priced.offer.ref: row.option for row in arranged.rows}
    assert options == {"12:1": 1, "5:1": 2, "7:1": 3}
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        labels = [texts.offer_row(row) for row in arranged.rows]
    assert labels[1] == "$0.90 · SMS-BUS · activation · option 2 · 5 left"
    assert len(set(labels)) == 3
    # One offer alone needs no number; a virtual one is told by that instead.
    alone = layout([_priced("5:1", "0.90"), _priced("9:1", "0.95", virtual=True)])
    assert [row.option for row in alone.rows] == [None, None]


def test_best_is_the_cheapest_with_stock_the_provider_told() -> None:
    untold = _priced("1:1", "0.10", stock=None)
    told = _priced("2:1", "0.20", stock=3)
    arranged = layout([untold, told])
    assert arranged.best is not None and arranged.best.priced is told
    assert layout([untold]).best is not None  # nothing told: the cheapest still leads
    assert layout([]).best is None


# --- money as money -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "value", "shown"),
    [
        ("en", Money(Decimal("4.5"), "USD"), "$4.50"),
        ("ru", Money(Decimal("4.5"), "USD"), "4,50\xa0$"),
        ("ru", Money(Decimal("45"), "RUB"), "45,00\xa0₽"),
        ("en", Money(Decimal("45"), "RUB"), "₽45.00"),  # not "RUB45.00"
        ("en", Money(Decimal("1234.5"), "EUR"), "€1,234.50"),
        ("ru", Money(Decimal("1234.5"), "EUR"), "1\xa0234,50\xa0€"),
        ("en", Money(Decimal("3"), "UAH"), "₴3.00"),
    ],
)
def test_money_reads_as_money(language: str, value: Money, shown: str) -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale(language):
        assert texts.money(value) == shown


# --- the reseller's cost stays the reseller's ------------------------------------------------

BUYER, ADMIN = 5005, 1001
# Get-SMS's account is in roubles here; users see dollars: 1 RUB = 0.011 USD, plus 10 %.
ROUBLES: dict[str, Any] = {
    "access_mode": "public",
    "admin_ids": frozenset({ADMIN}),
    "getsms_currency": "RUB",
    "exchange_rates": "RUB=0.011",
    "price_markup_percent": 10,
}
ACTIVATION_RUB, RISEN_RUB = "83.17", "90.40"  # $1.01 and $1.10 to the buyer
RENT_RUB = {1: "271.30", 2: "402.60", 3: "530.00", 4: "650.00", 5: "770.00", 6: "880.00"}
PROVIDER_TRACES = re.compile(r"RUB|₽|руб|83[.,]17|90[.,]40|271[.,]30|402[.,]60", re.IGNORECASE)


def _markup_texts(markup: object) -> list[str]:
    if not isinstance(markup, InlineKeyboardMarkup):
        return []
    found: list[str] = []
    for row in markup.inline_keyboard:
        for button in row:
            found.append(button.text)
            found += [v for v in (button.callback_data, button.url) if v]
            if button.copy_text is not None:
                found.append(button.copy_text.text)
    return found


def seen_by(user: BotClient) -> list[str]:
    """Every text, button (label and data) and alert the bot sent to this user's chat."""
    seen: list[str] = []
    for method in user.calls():
        if isinstance(method, SendMessage | EditMessageText):
            seen.append(method.text or "")
            seen += _markup_texts(method.reply_markup)
        elif isinstance(method, EditMessageReplyMarkup):
            seen += _markup_texts(method.reply_markup)
        elif isinstance(method, AnswerCallbackQuery) and method.text:
            seen.append(method.text)
        elif isinstance(method, SendInvoice):
            seen += [method.title, method.description, method.payload]
    return seen


def _button(user: BotClient, *words: str) -> str:
    return next(b for b in user.buttons() if all(w in b for w in words))


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_a_buyer_never_sees_the_providers_price_or_currency(
    tmp_path: Path, language: str
) -> None:
    words = WORDS[language]
    rental = {"en": "rental for 1 day", "ru": "аренда на 1 день"}[language]
    renew = {"en": "⏩ Renew", "ru": "⏩ Продлить"}[language]
    check = {"en": "🔄 Check SMS", "ru": "🔄 Проверить SMS"}[language]
    async with running_stack(tmp_path, only=("getsms",), **ROUBLES) as stack:
        getsms = stack.suite.getsms
        getsms.set_balance("100000")
        getsms.set_stock("tg", "ru", price=ACTIVATION_RUB, count=7)
        getsms.set_rent_stock("tg", "ru", count=3, prices=RENT_RUB)
        admin = stack.client(ADMIN)
        buyer = stack.client(BUYER, language_code=language)
        await buyer.send("/start")
        await admin.send(f"/credit {BUYER} 50")

        # The offers, a confirmation, a price that rose meanwhile, the purchase, the card.
        await offers_screen(buyer, words["russia"])
        await buyer.click(buyer.last_message(), _button(buyer, "Get-SMS", words["activation"]))
        assert ("$1.01" if language == "en" else "1,01\xa0$") in (buyer.last_message().text or "")
        getsms.set_stock("tg", "ru", price=RISEN_RUB, count=7)
        await buyer.click(buyer.last_message(), words["buy"])
        risen = buyer.last_message().text or ""
        assert ("$1.10" if language == "en" else "1,10\xa0$") in risen
        await buyer.click(buyer.last_message(), words["buy"])
        card = buyer.last_message()
        assert (card.text or "").startswith("📱")
        [order] = await stack.app.dp["order_repo"].list_for_user(BUYER)
        getsms.inject_sms(order.provider_order_id, "Your Telegram code: 48213.")
        await buyer.click(card, check)
        await buyer.send("/numbers")
        await buyer.click(buyer.last_message(), lambda b: b.text.startswith("🟢"))

        # A one-day rental: its card, its renew menu, the reminder before it ends.
        await offers_screen(buyer, words["russia"])
        await buyer.click(buyer.last_message(), _button(buyer, "Get-SMS", rental))
        await buyer.click(buyer.last_message(), words["buy"])
        await buyer.click(buyer.last_message(), renew)
        assert any("$" in b for b in buyer.buttons())  # renew prices, in dollars
        stack.clock.advance(hours=23, minutes=30)
        await stack.app.watcher.tick()
        await stack.app.watcher.tick()
        reminder = next(m for m in buyer.messages() if (m.text or "").startswith("⏰"))
        assert any(b.startswith(renew) and "$" in b for b in buyer.buttons(reminder))

        shown = seen_by(buyer)
        assert len(shown) > 40  # the whole story was recorded
        leaks = [text for text in shown if PROVIDER_TRACES.search(text)]
        assert leaks == []

        # The admin's own screen still shows what the provider was paid, in its currency.
        await admin.send("/admin")
        panel = admin.last_message().text or ""
        assert "₽361.70" in panel, panel  # 90.40 + 271.30 RUB: what Get-SMS was paid
