"""Money follows the provider: refunds are what it returned, charges what the server showed,
and a lost answer ends with the user's money back or their number found (issue #8)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.cli import doctor
from bot.money import Money
from bot.services.reconcile import Reconciler
from bot.services.wallet import WalletService
from storage.intents import IntentsRepo
from storage.ledger import LedgerRepo
from tests.fakes.bot_server import FakeBotServer
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack, stack_settings
from tests.test_flow_orders import (
    BEESMS,
    BUY,
    GETSMS_ACTIVATION,
    GETSMS_RENTAL,
    SMSBUS,
    SMSONLINE,
    HeldAnswers,
    Purchase,
    alert_text,
    buy,
    confirm_screen,
    deliver_sms,
    getsms_request,
    lines,
    newest_order,
    requests_named,
    stored_orders,
)

pytestmark = pytest.mark.both_databases  # the money paths, on SQLite and PostgreSQL

ADMIN = 1001
BUYER = 5005
PUBLIC: dict[str, Any] = {"access_mode": "public", "admin_ids": frozenset({ADMIN})}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """Public mode: user 5005 pays from a wallet holding $10.00 (no markup)."""
    async with running_stack(tmp_path, **PUBLIC) as running:
        await running.client(BUYER).send("/start")
        await wallet(running).credit(BUYER, Money(Decimal("10.00"), "USD"), ADMIN, "test")
        yield running


def wallet(stack: Stack) -> WalletService:
    found: WalletService = stack.app.dp["wallet"]
    return found


async def balance(stack: Stack) -> Decimal:
    return (await wallet(stack).balance(BUYER)).amount


async def buyer(stack: Stack) -> BotClient:
    user = stack.client(BUYER)
    await user.send("/start")
    return user


async def reconcile(stack: Stack, *, minutes: float) -> Reconciler:
    stack.clock.advance(minutes=minutes)
    reconciler: Reconciler = stack.app.reconciler
    await reconciler.tick()
    return reconciler


# --- refunds ----------------------------------------------------------------------------------


async def test_cancel_before_any_sms_gives_the_whole_payment_back(stack: Stack) -> None:
    user = await buyer(stack)
    card, _ = await buy(stack, user, GETSMS_ACTIVATION)
    assert await balance(stack) == Decimal("9.50")

    answer = await user.click(card, "✖️ Cancel")

    assert answer is not None and answer.text == "Cancelled. $0.50 is back in your wallet."
    assert await balance(stack) == Decimal("10.00")
    assert (await newest_order(stack, user)).status == "cancelled"


async def test_cancel_after_the_code_came_says_no_refund_and_gives_none(stack: Stack) -> None:
    user = await buyer(stack)
    card, order = await buy(stack, user, GETSMS_ACTIVATION)
    await deliver_sms(stack.suite, "getsms", order.provider_order_id, "12345")
    await user.click(card, "🔄 Check SMS")
    card = user.last_message()
    # Get-SMS keeps the money once an SMS came: the button says so before anyone taps it.
    assert "✖️ Cancel (no refund)" in user.buttons(card)
    assert "✖️ Cancel" not in user.buttons(card)

    answer = await user.click(card, "✖️ Cancel (no refund)")

    assert (answer.text if answer else "") == "Cancelled."
    assert await balance(stack) == Decimal("9.50")  # nothing given that the provider kept
    entries = await wallet(stack).history(BUYER)
    assert not any(e.kind == "refund" for e in entries)


async def test_a_refused_cancel_is_not_sent_and_names_the_reason(stack: Stack) -> None:
    user = await buyer(stack)
    card, order = await buy(stack, user, GETSMS_RENTAL)
    await deliver_sms(stack.suite, "getsms", order.provider_order_id, "777")
    await stack.app.watcher.tick()  # the SMS is pushed: the bot knows of it
    refusals = requests_named(stack.suite, "getsms", lambda r: r.query.get("method") == "refuse")

    answer = await user.click(card, "✖️ Cancel")  # the card as it was shown before the SMS

    assert alert_text(answer) == (
        "An SMS already arrived on this number, so it can no longer be cancelled."
    )
    after = requests_named(stack.suite, "getsms", lambda r: r.query.get("method") == "refuse")
    assert after == refusals  # the provider would refuse: it was not asked
    assert await balance(stack) == Decimal("8.00")
    assert "✖️ Cancel" not in user.buttons(card.message_id)  # the card as it is now


# --- the server's price -----------------------------------------------------------------------


async def test_the_charge_the_order_and_the_receipt_are_the_confirmed_price(stack: Stack) -> None:
    user = await buyer(stack)
    confirm = await confirm_screen(user, GETSMS_ACTIVATION)
    assert "Price: $0.50" in lines(confirm)
    # The provider gets cheaper meanwhile: the user pays what they were shown, and the order
    # and the card say the same number.
    stack.suite.getsms.set_stock("tg", "ru", price="0.40", count=49)

    await user.click(confirm, BUY)

    order = await newest_order(stack, user)
    assert order.display_price == Money(Decimal("0.50"), "USD")
    assert await balance(stack) == Decimal("9.50")
    assert "Price: $0.50" in lines(user.last_message())


async def test_a_dearer_price_is_asked_again_and_charged_only_when_confirmed(
    stack: Stack,
) -> None:
    user = await buyer(stack)
    confirm = await confirm_screen(user, GETSMS_ACTIVATION)
    stack.suite.getsms.set_stock("tg", "ru", price="0.90", count=49)

    await user.click(confirm, BUY)

    assert await balance(stack) == Decimal("10.00")
    assert await stored_orders(stack, user) == []
    again = user.last_message()
    assert "Price: $0.90" in lines(again)
    await user.click(again, BUY)
    assert await balance(stack) == Decimal("9.10")
    assert (await newest_order(stack, user)).display_price == Money(Decimal("0.90"), "USD")


async def test_a_forged_buy_button_buys_nothing(stack: Stack) -> None:
    user = await buyer(stack)
    other = stack.client(6006)
    await other.send("/start")
    their_confirm = await confirm_screen(other, GETSMS_ACTIVATION)
    their_buy = next(
        b.callback_data
        for row in (
            their_confirm.reply_markup.inline_keyboard if their_confirm.reply_markup else []
        )
        for b in row
        if b.text == BUY
    )
    assert their_buy is not None and their_buy.startswith("y4:")
    mine = await confirm_screen(user, GETSMS_ACTIVATION)
    purchases_before = stack.suite.getsms.calls("getnumber")

    for forged in (their_buy, "y4:0000000000000000", "y4:" + "f" * 16):
        await user.click_data(mine, forged)
        assert (user.last_message().text or "").startswith("That confirmation is no longer valid.")

    assert stack.suite.getsms.calls("getnumber") == purchases_before
    assert await balance(stack) == Decimal("10.00")
    assert await stored_orders(stack, user) == []


# --- lost answers -----------------------------------------------------------------------------


async def lose_next_purchase(stack: Stack, purchase: Purchase) -> None:
    if purchase.provider == "smsbus":
        stack.suite.smsbus.force("number", "<html>502 Bad Gateway</html>", status=502)
    else:
        stack.suite.getsms.raw_reply("getnumber", "<html>maintenance</html>", api="v2")


async def test_a_lost_activation_purchase_is_released_when_its_window_is_over(
    stack: Stack,
) -> None:
    user = await buyer(stack)
    confirm = await confirm_screen(user, SMSBUS)
    await lose_next_purchase(stack, SMSBUS)

    await user.click(confirm, BUY)

    assert (user.last_message().text or "").startswith("SMS-BUS did not confirm the purchase")
    assert await balance(stack) == Decimal("8.90")  # held while the provider may still charge
    intents = IntentsRepo(stack.app.db)
    [intent] = await intents.list_open()
    await reconcile(stack, minutes=10)  # not yet: the provider's window is still open
    assert await balance(stack) == Decimal("8.90")
    assert [i.id for i in await intents.list_open()] == [intent.id]

    await reconcile(stack, minutes=120)

    assert await balance(stack) == Decimal("10.00")
    assert await intents.list_open() == []
    assert await LedgerRepo(stack.app.db).open_holds() == []
    told = user.last_message().text or ""
    assert told == (
        "The purchase you tried earlier did not go through: no number was bought, and "
        "$1.10 is back in your wallet."
    )


async def test_a_lost_rental_purchase_is_found_even_after_the_provider_was_down(
    stack: Stack,
) -> None:
    user = await buyer(stack)
    confirm = await confirm_screen(user, GETSMS_RENTAL)
    HeldAnswers(stack.app.http, getsms_request("v2", "getnumber"), lose=True, hold=False)
    for _ in range(4):  # the listing before the purchase, then the first reconciliation's
        stack.suite.getsms.raw_reply("getorders", "<html>502</html>", api="v2", http_status=502)

    await user.click(confirm, BUY)
    assert await stored_orders(stack, user) == []
    assert stack.suite.getsms.calls("getnumber") == 1

    await reconcile(stack, minutes=5)
    assert await stored_orders(stack, user) == []
    assert await balance(stack) == Decimal("8.00")  # still held: nothing is known yet

    await reconcile(stack, minutes=3)

    [order] = await stored_orders(stack, user)
    assert order.provider == "getsms" and order.kind == "rental"
    assert await balance(stack) == Decimal("8.00")  # captured for the order found
    assert (user.last_message().text or "").startswith("✅ Your purchase went through after all")
    assert await LedgerRepo(stack.app.db).open_holds() == []


async def test_a_lost_renewal_answer_is_settled_from_the_providers_end_date(
    stack: Stack,
) -> None:
    user = await buyer(stack)
    card, order = await buy(stack, user, GETSMS_RENTAL)
    assert await balance(stack) == Decimal("8.00")
    HeldAnswers(stack.app.http, getsms_request("v2", "prolong"), lose=True, hold=False)
    await user.click(card, "⏩ Renew")

    answer = await user.click(user.last_message(), "2 days · $3.50")

    assert alert_text(answer) == (
        "The provider did not confirm this in time. We are checking and will tell you the "
        "outcome here; please don't repeat it meanwhile."
    )
    assert await balance(stack) == Decimal("4.50")  # held: the provider may have renewed
    # A second tap meanwhile is not a second renewal.
    again = await user.click_data(user.last_message(), f"r1:{order.id}:48")
    assert (again.text if again else "") == "Already in progress, one moment…"

    await reconcile(stack, minutes=5)

    renewed = await newest_order(stack, user)
    assert renewed.expires_at == stack.suite.getsms.rentals[order.provider_order_id].ends
    assert await balance(stack) == Decimal("4.50")  # captured: it did renew
    assert (user.last_message().text or "").endswith(
        "the renewal went through; it is yours until 4 Jan 2026, 12:00 UTC."
    )
    assert await IntentsRepo(stack.app.db).list_open() == []


# --- the operator's audit ---------------------------------------------------------------------


async def test_doctor_ledger_agrees_then_reports_a_stray_hold(stack: Stack) -> None:
    user = await buyer(stack)
    await buy(stack, user, GETSMS_ACTIVATION)
    telegram = FakeBotServer()  # doctor asks getMe: never the real Telegram
    await telegram.start()
    try:
        await _doctor_finds_the_stray_hold(stack, telegram.base_url)
    finally:
        await telegram.stop()


async def _doctor_finds_the_stray_hold(stack: Stack, telegram_url: str) -> None:
    settings = stack_settings(
        stack.suite,
        stack.app.settings.database_path,
        telegram_api_url=telegram_url,
        database_url=stack.app.settings.database_url,  # the same database
        **PUBLIC,
    )
    out = io.StringIO()
    assert await doctor(settings, out, ledger=True) == 0, out.getvalue()
    assert "the ledger, the orders and the providers' lists agree" in out.getvalue()

    # A hold with no purchase behind it (what a crash without write-ahead would leave).
    await LedgerRepo(stack.app.db).hold(BUYER, Money(Decimal("1.00"), "USD"), stack.clock.now())

    out = io.StringIO()
    assert await doctor(settings, out, ledger=True) == 1
    assert "is neither settled nor part of an open purchase" in out.getvalue()


async def test_renew_then_cancel_refunds_the_last_charge_only(stack: Stack) -> None:
    user = await buyer(stack)
    card, _ = await buy(stack, user, BEESMS)  # 7 days, $4.90
    await user.click(card, "⏩ Renew")
    await user.click(user.last_message(), "7 days · $4.90")
    assert await balance(stack) == Decimal("0.20")

    answer = await user.click(user.last_message(), "✖️ Cancel")

    # BEE-SMS gives back the last charge at most: the renewal, not the purchase as well.
    assert answer is not None and answer.text == "Cancelled. $4.90 is back in your wallet."
    assert await balance(stack) == Decimal("5.10")


async def test_an_order_nobody_owns_is_reported_to_the_admins(stack: Stack) -> None:
    admin = stack.client(ADMIN)
    await admin.send("/start")
    user = await buyer(stack)
    confirm = await confirm_screen(user, GETSMS_RENTAL)
    HeldAnswers(stack.app.http, getsms_request("v2", "getnumber"), lose=True, hold=False)
    for _ in range(2):  # the listing before the purchase fails: the answer cannot be matched
        stack.suite.getsms.raw_reply("getorders", "<html>502</html>", api="v2", http_status=502)
    await user.click(confirm, BUY)
    # Meanwhile the operator rents a number on the same account, outside the bot.
    provider = stack.app.providers["getsms"]
    offer = next(o for o in await provider.offers("tg", "RU") if o.kind == "rental")
    manual = await provider.buy(offer)

    await reconcile(stack, minutes=5)

    [mine] = await stored_orders(stack, user)
    assert mine.provider_order_id != manual.order_id  # the older new order is the user's
    told = [m.text or "" for m in admin.messages() if "no user of the bot owns" in (m.text or "")]
    assert told == [
        f"⚠️ Get-SMS has an active order {manual.order_id} ({manual.phone}) that no user of "
        "the bot owns. Check it in the provider's account."
    ]


async def test_a_cancel_whose_refund_the_provider_leaves_open_refunds_nothing_and_says_so(
    stack: Stack,
) -> None:
    user = await buyer(stack)
    card, order = await buy(stack, user, SMSONLINE)
    await deliver_sms(stack.suite, "smsonline", order.provider_order_id, "777000")
    await stack.app.watcher.tick()
    paid = await balance(stack)
    await user.click(card.message_id, "🔄 Check SMS")  # the card now tells the rule

    answer = await user.click(card.message_id, "✖️ Cancel (refund not certain)")

    assert answer is not None and (answer.text or "").startswith(
        "Cancelled. The provider did not say what it gave back"
    )
    assert await balance(stack) == paid  # nothing given on a guess
