"""Background delivery: SMS pushed once, restarts, reminders, renewals, expiry, outages, limits.

The watcher's rounds are run by hand (``tick``) on the shared fake clock: no real waiting.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiogram.methods import SendMessage

from bot.money import Money
from bot.providers.base import OrderKind
from bot.services.purchase import PurchaseService
from bot.services.wallet import WalletService
from storage.models import OrderStatus, StoredOrder
from storage.orders import OrdersRepo
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack


async def bought(
    stack: Stack,
    user: BotClient,
    provider: str,
    service: str = "tg",
    country: str = "RU",
    hours: int | None = None,
) -> StoredOrder:
    """A purchase made through the purchase service (the UI path is tested elsewhere)."""
    await user.send("/start")
    result = await stack.app.dp["offers"].offers(service, country, fresh=True)
    kind = OrderKind.RENTAL if hours else OrderKind.ACTIVATION
    priced = next(
        p
        for p in result.offers
        if p.offer.provider == provider
        and p.offer.kind is kind
        and (p.offer.duration_hours or None) == hours
    )
    purchases: PurchaseService = stack.app.dp["purchases"]
    quote = await purchases.quote(user.user.id, priced)
    return await purchases.buy(user.user.id, quote.id, tap=object())


def pushes(user: BotClient) -> list[SendMessage]:
    return user.calls(SendMessage)


async def order_now(stack: Stack, order: StoredOrder) -> StoredOrder:
    repo: OrdersRepo = stack.app.dp["order_repo"]
    fresh = await repo.get(order.id)
    assert fresh is not None
    return fresh


async def test_a_code_is_pushed_once_with_copy_and_actions(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms")
    user.reset()
    await stack.app.watcher.tick()
    assert pushes(user) == []  # nothing yet

    stack.suite.getsms.inject_sms(
        order.provider_order_id, "Your Telegram code 12345", code="12345"
    )
    report = await stack.app.watcher.tick()
    assert report.delivered == 1
    [push] = pushes(user)
    message = user.last_message()
    text = message.text or ""
    assert "Code: 12345" in text and "Telegram code 12345" in text
    assert user.copy_texts(message) == ["12345"]
    assert user.buttons(message) == [  # Get-SMS has no "finish" call
        "📋 Copy code 12345",
        "➕ Another code",
        "📱 Open the number",
        "🔁 Buy the same again",
    ]
    assert push.chat_id == user.chat.id

    for _ in range(3):
        await stack.app.watcher.tick()
    assert len(pushes(user)) == 1  # exactly once

    await user.click(message, "📱 Open the number")
    assert "12345" in (user.last_message().text or "")


async def test_rental_sms_each_pushed_in_the_users_language(stack: Stack) -> None:
    user = stack.client(language_code="ru")
    order = await bought(stack, user, "beesms", "tg", "US", hours=24 * 7)
    for text in ("first 111111", "second 222222"):
        stack.suite.beesms.inject_sms(order.provider_order_id, text)
    user.reset()
    await stack.app.watcher.tick()
    texts = [call.text for call in pushes(user)]
    assert len(texts) == 2
    assert "first 111111" in texts[0] and "second 222222" in texts[1]
    assert user.buttons(user.last_message())[-2:] == [
        "📱 Открыть номер",
        "🔁 Купить такой же ещё раз",
    ]


async def test_a_restart_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        user = stack.client()
        order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
        user.reset()
        stack.suite.getsms.inject_sms(order.provider_order_id, "code 11111", code="11111")
        await stack.app.watcher.tick()
        assert len(pushes(user)) == 1
        # The next SMS is stored (the user looked at the card) but the bot stops before pushing.
        stack.suite.getsms.inject_sms(order.provider_order_id, "code 22222", code="22222")
        await stack.app.dp["orders"].refresh(order)
        database = stack.app.settings.database_path
    async with running_stack(tmp_path) as again:
        assert again.app.settings.database_path == database
        user = again.client()
        await again.app.watcher.tick()
        texts = [call.text for call in pushes(user)]
        assert len(texts) == 1 and "22222" in texts[0]
        await again.app.watcher.tick()
        assert len(pushes(user)) == 1


async def test_an_activation_that_expires_without_sms_is_closed_and_told(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms")
    stack.clock.advance(minutes=16)
    user.reset()
    report = await stack.app.watcher.tick()
    assert report.ended == 1
    [notice] = pushes(user)
    assert "no code arrived in time" in notice.text and "not charged" in notice.text
    assert (await order_now(stack, order)).status is not OrderStatus.ACTIVE
    requests = len(stack.suite.getsms.requests)
    await stack.app.watcher.tick()
    assert len(stack.suite.getsms.requests) == requests  # no longer polled
    assert len(pushes(user)) == 1


async def test_reminders_once_each_then_the_end(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms", "tg", "RU", hours=48)
    assert order.expires_at is not None
    user.reset()
    await stack.app.watcher.tick()
    assert pushes(user) == []

    stack.clock.advance(hours=25)
    await stack.app.watcher.tick()
    await stack.app.watcher.tick()
    [first] = pushes(user)
    assert "the rental ends in 23 h (3 Jan 2026, 12:00 UTC)" in first.text
    assert any(b.startswith("⏩ Renew for 1 day · $") for b in user.buttons(user.last_message()))

    stack.clock.advance(hours=22, minutes=30)
    await stack.app.watcher.tick()
    await stack.app.watcher.tick()
    assert len(pushes(user)) == 2
    assert "ends in 30 min (" in pushes(user)[1].text

    stack.clock.advance(hours=1)
    await stack.app.watcher.tick()
    assert "the rental has ended" in pushes(user)[-1].text
    assert (await order_now(stack, order)).status is not OrderStatus.ACTIVE


async def test_renew_from_the_reminder(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
    assert order.expires_at is not None
    stack.clock.advance(hours=23, minutes=30)
    await stack.app.watcher.tick()
    reminder = user.last_message()
    renew = next(b for b in user.buttons(reminder) if b.startswith("⏩ Renew for 1 day"))
    answer = await user.click(reminder, renew)
    assert answer is not None and (answer.text or "").startswith("Renewed.")
    renewed = await order_now(stack, order)
    assert renewed.expires_at is not None and renewed.expires_at > order.expires_at
    assert stack.suite.getsms.rentals[order.provider_order_id].ends == renewed.expires_at
    user.reset()
    await stack.app.watcher.tick()
    assert pushes(user) == []  # a day left again: the 1 h reminder waits for the new end


async def test_auto_renew_renews_before_the_end_and_tells(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "smsonline", "tg", "US", hours=4)
    assert order.expires_at is not None
    await user.click_data(user.last_message(), f"x1:{order.id}:t")
    assert (await order_now(stack, order)).auto_renew
    stack.clock.advance(hours=3, minutes=40)
    user.reset()
    await stack.app.watcher.tick()
    assert any("renewed automatically" in call.text for call in pushes(user))
    renewed = await order_now(stack, order)
    assert renewed.expires_at is not None and renewed.expires_at > order.expires_at
    await stack.app.watcher.tick()
    assert sum("renewed automatically" in call.text for call in pushes(user)) == 1


async def test_auto_renew_failure_is_explained_once(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
    await stack.app.dp["orders"].set_auto_renew(order, True)
    stack.suite.getsms.set_balance(0)
    stack.clock.advance(hours=23, minutes=45)
    user.reset()
    await stack.app.watcher.tick()
    await stack.app.watcher.tick()
    failed = [c.text for c in pushes(user) if "automatic renewal failed" in c.text]
    assert len(failed) == 1
    assert "Get-SMS" in failed[0] and "by hand" in failed[0]
    assert (await order_now(stack, order)).expires_at == order.expires_at


async def test_a_provider_outage_is_probed_once_a_round_and_recovery_seen_at_once(
    stack: Stack,
) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms")
    again = await bought(stack, stack.client(2003), "getsms")
    emulator = stack.suite.getsms
    emulator.fail("5xx", times=1000)
    report = await stack.app.watcher.tick()
    assert report.failed == 2  # both asked, neither answered: the provider is down
    for _ in range(3):
        asked = len(emulator.requests)
        report = await stack.app.watcher.tick()
        assert report.skipped_providers == ["getsms"] and report.failed == 1  # one probe
        assert len(emulator.requests) - asked == 2  # that probe's two tries (reads retry once)
    assert again.id != order.id

    other = await bought(stack, stack.client(2002), "beesms", "tg", "US", hours=24 * 7)
    stack.suite.beesms.inject_sms(other.provider_order_id, "code 777777")
    await stack.app.watcher.tick()  # one provider's outage delays no one else
    assert any("777777" in c.text for c in stack.client(2002).calls(SendMessage))

    emulator._faults.clear()  # the provider is back: the very next round sees it
    emulator.inject_sms(order.provider_order_id, "code 55555", code="55555")
    user.reset()
    report = await stack.app.watcher.tick()
    assert report.skipped_providers == [] and report.polled == 2
    assert ["55555" in c.text for c in pushes(user)] == [True]


async def test_retry_after_is_honoured_per_chat_and_nothing_is_dropped(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms")
    stack.suite.getsms.inject_sms(order.provider_order_id, "code 33333", code="33333")
    stack.api.retry_after_next(SendMessage, 7, times=2)
    user.reset()
    await stack.app.watcher.tick()
    assert 7 not in stack.slept  # the round did not wait: only this chat is paused
    for _ in range(4):  # 4 s apart: tried at 0 s, 8 s (7 s had passed) and 16 s
        stack.clock.advance(seconds=4)
        await stack.app.watcher.tick()
    tries = [c for c in stack.api.log if c.name == "sendMessage" and "33333" in str(c.params)]
    assert [c.error is None for c in tries] == [False, False, True]  # 7 s apart, then sent
    await stack.app.watcher.tick()
    assert len(pushes(user)) == 3


async def test_a_user_who_blocked_the_bot_is_skipped_until_they_return(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms")
    stack.suite.getsms.inject_sms(order.provider_order_id, "code 44444", code="44444")
    stack.api.block(user.chat.id)
    await stack.app.watcher.tick()
    stored = await stack.app.dp["users"].get(user.user.id)
    assert stored is not None and stored.blocked_bot
    tries = len([c for c in stack.api.log if c.name == "sendMessage"])
    await stack.app.watcher.tick()
    assert len([c for c in stack.api.log if c.name == "sendMessage"]) == tries  # skipped

    stack.api.unblock(user.chat.id)
    await user.send("/start")
    user.reset()
    await stack.app.watcher.tick()
    assert any("44444" in c.text for c in pushes(user))


async def test_prices_in_reminders_use_the_display_currency(tmp_path: Path) -> None:
    rates = {"USD": Decimal("0.9")}
    async with running_stack(tmp_path, display_currency="EUR", exchange_rates=rates) as stack:
        user = stack.client()
        await bought(stack, user, "getsms", "tg", "RU", hours=24)
        stack.clock.advance(hours=23, minutes=30)
        await stack.app.watcher.tick()
        renew = [b for b in user.buttons(user.last_message()) if b.startswith("⏩")]
        assert renew and all("€" in b for b in renew)
        assert Money(Decimal("1"), "EUR")  # the display scale is EUR


async def test_the_loop_runs_rounds_until_stopped(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms")
    stack.suite.getsms.inject_sms(order.provider_order_id, "code 66666", code="66666")
    user.reset()
    watcher = stack.app.watcher
    running = asyncio.create_task(watcher.run())
    for _ in range(10_000):  # bounded: the fake sleep returns at once, rounds follow rounds
        if stack.slept.count(watcher.settings.interval) >= 3:
            break
        await asyncio.sleep(0)
    watcher.stop()
    await asyncio.wait_for(running, 10)
    assert stack.slept.count(watcher.settings.interval) >= 3
    assert ["66666" in c.text for c in pushes(user)] == [True]  # several rounds, one push


async def test_auto_renew_with_an_empty_wallet_tells_the_user_before_the_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    public: dict[str, Any] = {"access_mode": "public", "admin_ids": frozenset({1})}
    async with running_stack(tmp_path, **public) as stack:
        wallet: WalletService = stack.app.dp["wallet"]
        user, other = stack.client(5005), stack.client(5006)
        for buyer in (user, other):
            await buyer.send("/start")
            await wallet.credit(buyer.user.id, Money(Decimal("20"), "USD"), 1, "test")
        order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
        others = await bought(stack, other, "getsms", "tg", "RU", hours=48)
        await stack.app.dp["orders"].set_auto_renew(order, True)
        left = await wallet.balance(user.user.id)
        await wallet.debit(user.user.id, left, 1, "spent elsewhere")
        assert order.expires_at is not None

        stack.clock.advance(hours=23, minutes=45)
        stack.suite.getsms.inject_sms(others.provider_order_id, "code 80808", code="80808")
        user.reset()
        caplog.set_level(logging.INFO)
        await stack.app.watcher.tick()  # no traceback, and the round goes on for others
        assert not [r for r in caplog.records if r.exc_info]
        assert any("80808" in c.text for c in pushes(other))
        [notice] = [c for c in pushes(user) if "auto-renew could not be paid" in c.text]
        assert "your wallet has $0.00" in notice.text and "Top up at least $" in notice.text
        assert user.buttons(user.last_message()) == ["⭐ Top up"]
        for _ in range(2):
            await stack.app.watcher.tick()
        assert len(pushes(user)) == 1  # told once
        assert (await order_now(stack, order)).expires_at == order.expires_at

        await wallet.credit(user.user.id, Money(Decimal("20"), "USD"), 1, "top-up")
        stack.clock.advance(minutes=5)
        await stack.app.watcher.tick()
        assert any("renewed automatically" in c.text for c in pushes(user))
        renewed = await order_now(stack, order)
        assert renewed.expires_at is not None and renewed.expires_at > order.expires_at
        assert (await wallet.balance(user.user.id)).amount < Decimal("20")  # it was paid
