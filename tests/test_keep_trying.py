"""Keep trying (issue #12): on an activation's confirmation the user allows up to N tries within a
maximum price; a try without a code in time is cancelled (refunded as the provider returned it)
and the next-best offer bought, the user told at each step, until a code, the maximum, the
wallet or the offers end it. Told through the real Dispatcher against the emulators (Telegram in
Russia: SMS-BUS $0.25, then Get-SMS $0.50), on the fake clock; a restart between a cancel and
the next purchase loses nothing and buys nothing twice."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiogram.types import Message

from bot import texts
from bot.app import create_app
from bot.money import Money
from bot.providers.http import RetryPolicy
from bot.services.keep_trying import KeepTryingService
from bot.services.wallet import WalletService
from storage.keep_trying import EndReason, KeepTryingRepo, Plan, PlanState
from storage.ledger import LedgerRepo
from storage.models import OrderStatus, StoredOrder
from storage.orders import OrdersRepo
from tests.fakes.telegram import BotClient, FakeBotApi
from tests.stack import Stack, running_stack, stack_settings
from tests.test_flow_orders import WAIT, HeldAnswers, deliver_sms

pytestmark = pytest.mark.both_databases  # the money paths, on SQLite and PostgreSQL

ADMIN = 1001
USER = 5005
TWO = ("getsms", "smsbus")
PUBLIC: dict[str, Any] = {
    "access_mode": "public",
    "admin_ids": frozenset({ADMIN}),
    "price_markup_percent": 0,
}
KEEP = "🔁 Keep trying"
START = "▶️ Start"
STOP = "⏹ Stop trying"


def keep(stack: Stack) -> KeepTryingService:
    return stack.app.keep_trying


async def credit(stack: Stack, user: BotClient, amount: str) -> None:
    await user.send("/start")  # the user exists
    wallet: WalletService = stack.app.dp["wallet"]
    assert await wallet.credit(user.user.id, Money(Decimal(amount), "USD"), ADMIN, "test")


async def balance(stack: Stack, user: BotClient) -> Decimal:
    wallet: WalletService = stack.app.dp["wallet"]
    return (await wallet.balance(user.user.id)).amount


async def confirm_screen(user: BotClient, russian: bool = False) -> Message:
    """/buy → Telegram → Russia → the SMS-BUS activation ($0.25)."""
    await user.send("/buy")
    await user.click(user.last_message(), "Telegram")
    await user.click(user.last_message(), "🇷🇺 Россия" if russian else "🇷🇺 Russia")
    await user.click(user.last_message(), lambda b: "SMS-BUS" in b.text)
    return user.last_message()


async def start_plan(user: BotClient, tries: str, limit: str) -> Message:
    """From the confirmation: Keep trying → tries → maximum → Start; the first try's card."""
    confirm = await confirm_screen(user)
    await user.click(confirm, KEEP)
    await user.click(user.last_message(), tries)
    await user.click(user.last_message(), lambda b: b.text.startswith(limit))
    await user.click(user.last_message(), START)
    return user.last_message()


async def plans(stack: Stack, user: BotClient) -> list[Plan]:
    rows = await stack.app.db.fetchall(
        "SELECT id FROM keep_trying WHERE user_id = ? ORDER BY id", (user.user.id,)
    )
    repo = KeepTryingRepo(stack.app.db)
    found = [await repo.get(int(row[0])) for row in rows]
    return [plan for plan in found if plan is not None]


async def orders_of(stack: Stack, user: BotClient) -> list[StoredOrder]:
    return list(reversed(await OrdersRepo(stack.app.db).list_for_user(user.user.id, limit=50)))


def texts_of(user: BotClient) -> list[str]:
    return [m.text or "" for m in user.messages()]


async def test_no_code_cancel_refund_next_offer_then_the_code_ends_the_plan(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path, only=TWO, **PUBLIC) as stack:
        user = stack.client(USER)
        await credit(stack, user, "5")
        confirm = await confirm_screen(user)
        assert user.buttons(confirm) == ["✅ Buy", KEEP, "« Back"]

        await user.click(confirm, KEEP)
        screen = user.last_message()
        assert screen.message_id == confirm.message_id
        assert (screen.text or "").splitlines() == [
            "🔁 Keep trying",
            "If no code arrives within 10 min, I cancel the number (you get back what the "
            "provider returns) and buy the next best offer for Telegram in 🇷🇺 Russia, until "
            "a code arrives.",
            "",
            "How many tries at most?",
        ]
        assert user.buttons(screen) == ["2 tries", "3 tries", "« Back"]
        await user.click(screen, "3 tries")
        assert user.buttons() == [
            "$0.30 (+20%)",
            "$0.38 (+50%)",
            "$0.50 (+100%)",
            "✏️ Another amount",
            "« Back",
        ]
        await user.click(user.last_message(), "$0.50 (+100%)")
        summary = user.last_message()
        assert (summary.text or "").splitlines() == [
            "🔁 Keep trying: Telegram in 🇷🇺 Russia",
            "Tries: up to 3",
            "Price per try: at most $0.50",
            "First try: $0.25 at SMS-BUS",
            "",
            "Each try is paid when it is bought; a cancelled try gives back what the provider "
            "returns. I stop at the first code, when the tries are used, or when no offer "
            "within your price is left.",
            "Your wallet: $5.00",
        ]
        assert stack.suite.smsbus.calls("number") == 0  # nothing bought before Start

        await user.click(summary, START)
        card = user.last_message()
        assert card.message_id == confirm.message_id
        assert "🔁 Keep trying: try 1 of 3, up to $0.50" in (card.text or "")
        assert STOP in user.buttons(card)
        assert stack.suite.smsbus.calls("number") == 1
        assert await balance(stack, user) == Decimal("4.75")

        shown = len(user.messages())
        assert await keep(stack).tick() == 0  # the window is not over
        stack.clock.advance(minutes=9)
        assert await keep(stack).tick() == 0
        assert len(user.messages()) == shown

        stack.clock.advance(minutes=1)  # KEEP_TRYING_WAIT: 10 minutes without a code
        assert await keep(stack).tick() == 1
        assert stack.suite.smsbus.calls("cancel") == 1
        assert stack.suite.getsms.calls("getnumber") == 1
        first, second = await orders_of(stack, user)
        assert first.status is OrderStatus.CANCELLED
        assert second.provider == "getsms" and second.is_active
        told, new_card = user.messages()[-2:]
        assert (told.text or "").splitlines() == [
            f"↩️ Try 1 of 3: no code on {_phone(first)} in time, cancelled. $0.25 refunded "
            "to your wallet.",
            "🔁 Try 2 of 3: buying the next offer, $0.50 at Get-SMS…",
        ]
        assert (new_card.text or "").startswith("📱 ")
        assert "Get-SMS · activation" in (new_card.text or "")
        assert "🔁 Keep trying: try 2 of 3, up to $0.50" in (new_card.text or "")
        assert await balance(stack, user) == Decimal("4.50")  # 5 - 0.25 + 0.25 - 0.50

        await deliver_sms(stack.suite, "getsms", second.provider_order_id, "12345")
        await stack.app.watcher.tick()  # the code reaches the chat
        assert any("12345" in text for text in texts_of(user))
        assert await keep(stack).tick() == 1
        assert user.last_message().text == "✅ The code came on try 2 of 3: keep trying is done."
        [plan] = await plans(stack, user)
        assert (plan.state, plan.reason, plan.tries_used) == (PlanState.DONE, EndReason.CODE, 2)

        stack.clock.advance(minutes=30)
        assert await keep(stack).tick() == 0  # done: nothing more is bought or cancelled
        assert stack.suite.getsms.calls("getnumber") == 1
        assert stack.suite.getsms.calls("refusenumber") == 0
        assert await balance(stack, user) == Decimal("4.50")


def _phone(order: StoredOrder) -> str:
    return texts.phone(order.phone)  # as the messages write it


async def test_max_price_reached_stops_and_says_so_in_russian(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=TWO, **PUBLIC) as stack:
        user = stack.client(USER, language_code="ru")
        await credit(stack, user, "5")
        confirm = await confirm_screen(user, russian=True)
        await user.click(confirm, "🔁 Пробовать дальше")
        assert (user.last_message().text or "").endswith("Сколько попыток максимум?")
        await user.click(user.last_message(), "2 попытки")
        await user.click(user.last_message(), lambda b: b.text.startswith("0,30"))
        assert "Цена попытки: не больше 0,30\xa0$" in (user.last_message().text or "")
        await user.click(user.last_message(), "▶️ Начать")
        card = user.last_message()
        assert "🔁 Пробую дальше: попытка 1 из 2, до 0,30\xa0$" in (card.text or "")

        stack.clock.advance(minutes=10)
        assert await keep(stack).tick() == 1
        assert stack.suite.smsbus.calls("cancel") == 1
        assert stack.suite.getsms.calls("getnumber") == 0  # $0.50 is above the maximum
        [first] = await orders_of(stack, user)
        assert (user.last_message().text or "").splitlines() == [
            f"↩️ Попытка 1 из 2: на {_phone(first)} код не пришёл вовремя, номер отменён. "
            "На кошелёк возвращено 0,25\xa0$.",
            "⏹ Пробовать дальше больше не буду: остальные предложения дороже вашего "
            "максимума 0,30\xa0$ (самое дешёвое: 0,50\xa0$).",
        ]
        assert await balance(stack, user) == Decimal("5.00")
        [plan] = await plans(stack, user)
        assert (plan.state, plan.reason) == (PlanState.GAVE_UP, EndReason.MAX_PRICE)


async def test_an_empty_wallet_stops_and_says_so(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=TWO, **PUBLIC) as stack:
        user = stack.client(USER)
        await credit(stack, user, "0.30")
        confirm = await confirm_screen(user)
        await user.click(confirm, KEEP)
        await user.click(user.last_message(), "3 tries")
        await user.click(user.last_message(), "✏️ Another amount")
        assert user.last_message().text == (
            "Type the most you would pay per try, in USD: at least $0.25, e.g. 0.38."
        )
        await user.send("a lot")
        assert user.last_message().text == (
            "That is not an amount I can use: type a number from $0.25 to $2.50, e.g. 0.38."
        )
        await user.send("0.10")  # below the first price
        assert (user.last_message().text or "").startswith("That is not an amount")
        await user.send("1")
        assert "Price per try: at most $1.00" in (user.last_message().text or "")
        await user.click(user.last_message(), START)
        assert await balance(stack, user) == Decimal("0.05")

        stack.clock.advance(minutes=10)
        assert await keep(stack).tick() == 1
        assert stack.suite.getsms.calls("getnumber") == 0  # the wallet has $0.30 of $0.50
        assert (user.last_message().text or "").splitlines()[-1] == (
            "⏹ Keep trying has ended: the next offer costs $0.50 and your wallet has $0.30. "
            "Top up and start again."
        )
        assert user.buttons() == ["⭐ Top up"]
        assert await balance(stack, user) == Decimal("0.30")
        [plan] = await plans(stack, user)
        assert plan.reason is EndReason.WALLET


async def test_a_code_on_the_current_try_ends_the_plan(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=TWO) as stack:  # an operator: no wallet
        user = stack.client()
        card = await start_plan(user, "2 tries", "$0.50")
        [order] = await orders_of(stack, user)
        assert "try 1 of 2" in (card.text or "")
        await deliver_sms(stack.suite, "smsbus", order.provider_order_id, "55555")
        await stack.app.watcher.tick()
        assert await keep(stack).tick() == 1
        assert user.last_message().text == "✅ The code came on try 1 of 2: keep trying is done."
        stack.clock.advance(minutes=10)
        assert await keep(stack).tick() == 0
        assert stack.suite.smsbus.calls("cancel") == 0
        assert stack.suite.getsms.calls("getnumber") == 0


async def test_no_other_offer_ends_the_plan(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=TWO) as stack:
        user = stack.client()
        await start_plan(user, "3 tries", "$0.50")
        stack.clock.advance(minutes=10)
        assert await keep(stack).tick() == 1  # SMS-BUS cancelled, Get-SMS bought
        stack.clock.advance(minutes=10)
        assert await keep(stack).tick() == 1
        assert stack.suite.getsms.calls("refusenumber") == 1
        first, second = await orders_of(stack, user)
        assert (first.status, second.status) == (OrderStatus.CANCELLED, OrderStatus.CANCELLED)
        assert (user.last_message().text or "").splitlines() == [
            f"↩️ Try 2 of 3: no code on {_phone(second)} in time, cancelled.",
            "⏹ Keep trying has ended: there is no other offer for Telegram in 🇷🇺 Russia now.",
        ]
        assert user.buttons() == ["« Menu"]
        [plan] = await plans(stack, user)
        assert (plan.reason, plan.tries_used) == (EndReason.NO_OFFER, 2)
        assert stack.suite.smsbus.calls("number") == 1
        assert stack.suite.getsms.calls("getnumber") == 1


async def test_stop_trying_keeps_the_number_and_buys_nothing_more(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=TWO) as stack:
        user = stack.client()
        card = await start_plan(user, "3 tries", "$0.50")
        answer = await user.click(card, STOP)
        assert answer is not None and answer.text == (
            "Stopped: no more tries. This number stays yours."
        )
        card = user.last_message()
        assert "Keep trying" not in (card.text or "")
        assert STOP not in user.buttons(card)
        [plan] = await plans(stack, user)
        assert (plan.state, plan.reason) == (PlanState.STOPPED, EndReason.STOPPED)
        [order] = await orders_of(stack, user)
        assert order.is_active

        stack.clock.advance(minutes=10)
        assert await keep(stack).tick() == 0
        assert stack.suite.smsbus.calls("cancel") == 0
        assert stack.suite.getsms.calls("getnumber") == 0

        stranger = stack.client(1002)  # another user's Stop button does nothing
        await stranger.send("/start")
        forged = await stranger.click_data(stranger.last_message(), f"kx1:{plan.id}")
        assert forged is not None and forged.show_alert


async def test_a_restart_between_the_cancel_and_the_next_purchase(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=TWO, **PUBLIC) as stack:
        user = stack.client(USER)
        await credit(stack, user, "5")
        await start_plan(user, "3 tries", "$0.50")
        stack.clock.advance(minutes=10)

        # The cancel is confirmed; the process dies while the next offers are being fetched.
        held = HeldAnswers(
            stack.app.http, lambda r: r.url.path.endswith("/list/prices"), lose=True
        )
        stepping = asyncio.create_task(keep(stack).tick())
        await held.wait_arrived()
        assert stack.suite.smsbus.calls("cancel") == 1
        [first] = await orders_of(stack, user)
        assert first.status is OrderStatus.CANCELLED
        assert await balance(stack, user) == Decimal("5.00")  # refunded with the cancel
        stepping.cancel()
        held.release()
        await asyncio.gather(stepping, return_exceptions=True)
        await asyncio.wait_for(stack.app.dp["offers"].offers("tg", "RU", fresh=True), WAIT)
        told_before = texts_of(user)
        assert not any("Try 1 of 3" in text for text in told_before)
        await stack.app.close()

        api = FakeBotApi(clock=stack.clock)
        again = await create_app(
            stack_settings(
                stack.suite,
                tmp_path / "bot.sqlite3",
                TWO,
                database_url=stack.app.settings.database_url,  # the same database
                **PUBLIC,
            ),
            session=api,
            clock=stack.clock,
            retry=RetryPolicy(attempts=2, initial_delay=0.001, max_delay=0.01),
        )
        try:
            back = BotClient(again.dp, again.bot, user_id=USER)
            api.add_chat(back.chat)
            assert await again.keep_trying.tick() == 1
            assert await again.keep_trying.tick() == 0
            assert stack.suite.smsbus.calls("cancel") == 1
            assert stack.suite.smsbus.calls("number") == 1
            assert stack.suite.getsms.calls("getnumber") == 1  # the next try, once
            said = [m.text or "" for m in back.messages()]
            assert sum("Try 1 of 3: no code" in text for text in said) == 1
            assert any("$0.25 refunded" in text for text in said)
            assert "🔁 Keep trying: try 2 of 3, up to $0.50" in said[-1]
            wallet: WalletService = again.dp["wallet"]
            assert (await wallet.balance(USER)).amount == Decimal("4.50")
            assert await LedgerRepo(again.db).open_holds() == []
            [plan] = await KeepTryingRepo(again.db).live()
            assert (plan.state, plan.tries_used) == (PlanState.WAITING, 2)
        finally:
            await again.close()


async def test_forged_choices_start_nothing(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=TWO) as stack:
        user = stack.client()
        confirm = await confirm_screen(user)
        await user.click(confirm, KEEP)
        quote = _quote_of(user)
        for forged in (f"kn1:{quote}:7", f"km1:{quote}:3:33", "kt1:0123456789abcdef"):
            answer = await user.click_data(user.last_message(), forged)
            assert answer is not None and answer.show_alert, forged
        answer = await user.click_data(user.last_message(), f"ks1:{quote}")  # no summary seen
        assert answer is not None and answer.show_alert
        assert await plans(stack, user) == []
        assert stack.suite.smsbus.calls("number") == 0


def _quote_of(user: BotClient) -> str:
    data = next(
        b.callback_data
        for row in (user.last_message().reply_markup or _no_markup()).inline_keyboard
        for b in row
        if b.callback_data and b.callback_data.startswith("kn1:")
    )
    return data.split(":")[1]


def _no_markup() -> Any:
    raise AssertionError("no keyboard")
