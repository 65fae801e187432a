""" "Tell me when" (issue #12): a user asks to hear when a sold-out pair has numbers or an offer
gets under a price; the slow check fires each alert once, with a Buy button, even with two
checks racing on one database; /alerts lists and removes them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from aiogram.types import InlineKeyboardButton, Message

from bot import keyboards
from bot.callbacks import AlertAsk, AlertRemove, PickCountry
from bot.i18n import create_i18n
from bot.money import Money
from bot.services.offers import PricedOffer
from bot.services.stock_alerts import Created, SendAlert, StockAlertService
from storage.db import Database
from storage.stock_alerts import StockAlert, StockAlertsRepo
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack

GETSMS_ONLY = ("getsms",)
NO_NUMBERS = "Google (Gmail, YouTube) in 🇷🇺 Russia: no numbers right now. Try later."


def alerts_of(stack: Stack) -> StockAlertService:
    service = stack.app.dp["stock_alerts"]
    assert isinstance(service, StockAlertService)
    return service


def button(locale: str, service: str, country: str, under: Money | None) -> InlineKeyboardButton:
    """The button the offers screen shows (``keyboards.alert_button``), in ``locale``."""
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale(locale):
        return keyboards.alert_button(service, country, under)


async def google_in_russia(user: BotClient) -> Message:
    """/buy, then the offers of Google in Russia (sold out at Get-SMS)."""
    await user.send("/buy")
    await user.click_data(user.last_message(), PickCountry(service="go", country="RU").pack())
    return user.last_message()


async def ask(user: BotClient, screen: Message, pressed: InlineKeyboardButton) -> str | None:
    assert pressed.callback_data is not None
    answer = await user.click_data(screen, pressed.callback_data)
    assert answer is not None, "the tap was not answered"
    return answer.text


async def test_an_empty_pair_alert_fires_once_with_a_buy_button(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=GETSMS_ONLY) as stack:
        user = stack.client()
        screen = await google_in_russia(user)
        assert (screen.text or "").startswith(NO_NUMBERS)

        pressed = button("en", "go", "RU", None)
        assert pressed.text == "🔔 Notify me when available"
        assert await ask(user, screen, pressed) == (
            "🔔 Done: I'll tell you once, when numbers are available, for Google (Gmail, "
            "YouTube) in Russia (until 8 Jan 2026, 12:00 UTC)."
        )
        assert await ask(user, screen, pressed) == (
            "🔔 You asked for this already: I'll tell you once it happens."
        )
        shown = len(user.messages())

        assert await alerts_of(stack).tick() == 0  # still sold out
        assert len(user.messages()) == shown

        stack.suite.getsms.set_stock("go", "ru", price="0.30", count=5)
        stack.clock.advance(minutes=5)  # the next slow check
        assert await alerts_of(stack).tick() == 1
        told = user.last_message()
        assert (told.text or "").splitlines() == [
            "🔔 Google (Gmail, YouTube) in 🇷🇺 Russia: numbers are available now, $0.30 at "
            "Get-SMS.",
            "Tap the offer to buy it: the price is checked again before you pay.",
        ]
        buttons = user.buttons(told)
        assert buttons[0].startswith("$0.30 · Get-SMS · activation")
        assert buttons[1:] == ["📋 All offers", "« Menu"]

        stack.clock.advance(minutes=5)
        assert await alerts_of(stack).tick() == 0  # once only
        assert sum("numbers are available now" in (m.text or "") for m in user.messages()) == 1

        await user.click(told, buttons[0])  # to the confirmation, where the price is quoted
        assert (user.last_message().text or "").startswith("Confirm your purchase")
        await user.send("/alerts")
        assert (user.last_message().text or "").startswith("🔔 You have no alerts.")


async def test_a_price_alert_waits_until_an_offer_is_under_its_price(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=GETSMS_ONLY) as stack:
        user = stack.client()
        await user.send("/buy")
        await user.click_data(user.last_message(), PickCountry(service="tg", country="RU").pack())
        screen = user.last_message()  # Telegram in Russia: from $0.50
        pressed = button("en", "tg", "RU", Money(Decimal("0.40"), "USD"))
        assert pressed.text == "🔔 Notify me under $0.40"
        answer = await ask(user, screen, pressed)
        assert answer is not None and "when an offer is at most $0.40" in answer

        assert await alerts_of(stack).tick() == 0
        stack.suite.getsms.set_stock("tg", "ru", price="0.45", count=50)
        stack.clock.advance(minutes=5)
        assert await alerts_of(stack).tick() == 0  # cheaper, not cheap enough
        stack.suite.getsms.set_stock("tg", "ru", price="0.35", count=50)
        stack.clock.advance(minutes=5)
        assert await alerts_of(stack).tick() == 1
        assert (user.last_message().text or "").startswith(
            "🔔 Telegram in 🇷🇺 Russia: an offer at $0.35 at Get-SMS, within your $0.40."
        )


async def test_two_checks_racing_on_one_database_fire_each_alert_once(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=GETSMS_ONLY) as stack:
        first = alerts_of(stack)
        for user_id in range(2001, 2006):
            await stack.client(user_id).send("/start")
            result = await first.create(user_id, "tg", "RU")  # in stock now
            assert result.outcome is Created.CREATED

        other_db = await Database.open(stack.app.settings.database_path)  # another process
        try:
            second = StockAlertService(
                StockAlertsRepo(other_db), stack.app.dp["offers"], stack.clock, currency="USD"
            )
            sent: list[tuple[str, int]] = []

            def recorder(name: str) -> SendAlert:
                async def send(alert: StockAlert, priced: PricedOffer) -> bool:
                    sent.append((name, alert.id))
                    await asyncio.sleep(0)
                    return True

                return send

            first.attach(recorder("first"))
            second.attach(recorder("second"))
            fired = await asyncio.gather(first.tick(), second.tick())
            assert sum(fired) == 5
            assert sorted(alert for _, alert in sent) == sorted({alert for _, alert in sent})
            assert len(sent) == 5
            assert list(await asyncio.gather(first.tick(), second.tick())) == [0, 0]
        finally:
            await other_db.close()


async def test_alerts_are_listed_and_removed(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=GETSMS_ONLY) as stack:
        user = stack.client()
        await user.send("/alerts")
        empty = user.last_message()
        assert (empty.text or "").startswith("🔔 You have no alerts.")
        assert user.buttons(empty) == ["« Menu"]

        screen = await google_in_russia(user)
        await ask(user, screen, button("en", "go", "RU", None))
        await ask(user, screen, button("en", "go", "RU", Money(Decimal("0.25"), "USD")))
        await user.send("/alerts")
        listed = user.last_message()
        assert (listed.text or "").splitlines() == [
            "🔔 Your alerts",
            "1. Google (Gmail, YouTube) in 🇷🇺 Russia: when numbers are available",
            "2. Google (Gmail, YouTube) in 🇷🇺 Russia: when an offer is at most $0.25",
            "",
            "Each one tells you once, then ends. ✖️ removes one.",
        ]
        assert user.buttons(listed) == ["✖️ 1", "✖️ 2", "« Menu"]
        first_id = (await alerts_of(stack).pending(user.user.id))[0].id

        # Someone else's alert cannot be removed.
        stranger = stack.client(1002)
        await stranger.send("/alerts")
        forged = AlertRemove(alert_id=first_id).pack()
        answer = await stranger.click_data(stranger.last_message(), forged)
        assert answer is not None and answer.text == "That alert is no longer there."
        assert len(await alerts_of(stack).pending(user.user.id)) == 2

        answer = await user.click(listed, "✖️ 1")
        assert answer is not None and answer.text == "Alert removed."
        edited = user.last_message()
        assert edited.message_id == listed.message_id
        assert (edited.text or "").splitlines()[1:2] == [
            "1. Google (Gmail, YouTube) in 🇷🇺 Russia: when an offer is at most $0.25"
        ]
        answer = await user.click_data(edited, forged)  # a stale button
        assert answer is not None and answer.text == "That alert is no longer there."


async def test_alerts_in_russian(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=GETSMS_ONLY) as stack:
        user = stack.client(language_code="ru")
        await user.send("/alerts")
        assert (user.last_message().text or "").startswith("🔔 У вас нет оповещений.")
        screen = await google_in_russia(user)
        pressed = button("ru", "go", "RU", None)
        assert pressed.text == "🔔 Сообщить, когда появятся"
        answer = await ask(user, screen, pressed)
        assert answer is not None and answer.startswith("🔔 Готово: я сообщу один раз")
        await user.send("/alerts")
        assert (user.last_message().text or "").splitlines()[:2] == [
            "🔔 Ваши оповещения",
            "1. Google (Gmail, YouTube), 🇷🇺 Россия: когда появятся номера",
        ]
        stack.suite.getsms.set_stock("go", "ru", price="0.30", count=5)
        stack.clock.advance(minutes=5)
        assert await alerts_of(stack).tick() == 1
        assert (user.last_message().text or "").startswith(
            "🔔 Google (Gmail, YouTube), 🇷🇺 Россия: номера появились"
        )


async def test_forged_or_unsold_asks_store_nothing(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=GETSMS_ONLY) as stack:
        user = stack.client()
        screen = await google_in_russia(user)
        for forged in (
            AlertAsk(service="go", country="RU", under="-1"),
            AlertAsk(service="go", country="RU", under="1e9"),
            AlertAsk(service="go", country="RU", under="0"),
            AlertAsk(service="zz", country="RU", under=""),  # nobody sells it
        ):
            answer = await user.click_data(screen, forged.pack())
            assert answer is not None and answer.show_alert
        assert await alerts_of(stack).pending(user.user.id) == []


async def test_too_many_alerts_and_lapsed_ones(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=GETSMS_ONLY) as stack:
        user = stack.client()
        screen = await google_in_russia(user)
        service = alerts_of(stack)
        for cents in range(10, 10 + service.per_user):
            price = Money(Decimal(cents) / 100, "USD")
            assert (await service.create(user.user.id, "go", "RU", price)).outcome is (
                Created.CREATED
            )
        answer = await ask(user, screen, button("en", "go", "RU", None))
        assert answer == "You have 10 alerts already: remove one in /alerts first."

        stack.clock.advance(days=7, seconds=1)  # STOCK_ALERT_LIFETIME's default: 7 days
        assert await service.pending(user.user.id) == []
        stack.suite.getsms.set_stock("go", "ru", price="0.05", count=5)
        assert await service.tick() == 0  # lapsed alerts never fire
        shown = await stack.app.db.fetchone("SELECT COUNT(*) FROM stock_alerts")
        assert shown is not None and shown[0] == 0  # and are forgotten
        assert stack.app.settings.stock_alert_lifetime == timedelta(days=7)
