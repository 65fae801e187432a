"""Public mode: users pay from wallets topped up with Telegram Stars; admins credit and debit."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiogram.methods import SendInvoice, SetMyCommands
from aiogram.types import Message, SuccessfulPayment, Update

from bot.app import set_commands
from bot.money import Money
from bot.services.wallet import WalletService
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack

pytestmark = pytest.mark.both_databases  # the money paths, on SQLite and PostgreSQL

ADMIN = 1001
PUBLIC: dict[str, Any] = {
    "access_mode": "public",
    "admin_ids": frozenset({ADMIN}),
    "price_markup_percent": 10,
}


def wallet(stack: Stack) -> WalletService:
    found: WalletService = stack.app.dp["wallet"]
    return found


async def balance(stack: Stack, user: BotClient) -> Decimal:
    return (await wallet(stack).balance(user.user.id)).amount


async def confirm_screen(user: BotClient) -> Message:
    """/buy → Telegram → Russia → the Get-SMS activation ($0.50 at the provider)."""
    await user.send("/buy")
    await user.click(user.last_message(), "Telegram")
    await user.click(user.last_message(), "🇷🇺 Russia")
    await user.click(user.last_message(), lambda b: "Get-SMS · activation" in b.text)
    return user.last_message()


async def replay_payment(user: BotClient, payment: SuccessfulPayment) -> None:
    """The same successful_payment delivered again (Telegram may repeat updates)."""
    message = Message(
        message_id=user.api.next_message_id(user.chat.id),
        date=user.api.clock.now(),
        chat=user.chat,
        from_user=user.user,
        successful_payment=payment,
    )
    update = Update(update_id=user.api.next_update_id(), message=message)
    await user.dp.feed_update(user.bot, update)


async def test_short_wallet_stars_top_up_then_buy_and_refund(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = stack.client(5005)
        confirm = await confirm_screen(user)
        assert "Price: $0.55" in (confirm.text or "")  # $0.50 + 10 %
        await user.click(confirm, "✅ Buy")
        assert (user.last_message().text or "") == (
            "Not enough money in your wallet: this costs $0.55, you have $0.00. "
            "Top up at least $0.55."
        )
        assert stack.suite.getsms.calls("getnumber") == 0  # no provider call without money

        assert user.buttons()[1:5] == ["⭐ $1.00", "⭐ $5.00", "⭐ $10.00", "⭐ $25.00"]
        await user.click(user.last_message(), "⭐ $5.00")
        [invoice] = user.calls(SendInvoice)
        assert (invoice.currency, [p.amount for p in invoice.prices]) == ("XTR", [400])
        assert await user.pay(user.last_message())
        # Back on the confirmation (tests/test_wallet_screens.py tells that story).
        assert (user.last_message().text or "").startswith("✅ $5.00 added. Your balance: $5.00")
        entries = await wallet(stack).history(user.user.id)
        [top_up] = entries
        assert top_up.ref is not None and top_up.ref.startswith("stars:")

        confirm = await confirm_screen(user)
        await user.click(confirm, "✅ Buy")
        assert (user.last_message().text or "").startswith("📱 ")
        assert await balance(stack, user) == Decimal("4.45")
        assert stack.suite.getsms.calls("getnumber") == 1

        await user.click(user.last_message(), "✖️ Cancel")
        assert await balance(stack, user) == Decimal("5.00")  # refunded once
        assert (
            len([e for e in await wallet(stack).history(user.user.id) if e.kind == "refund"]) == 1
        )


async def test_a_repeated_payment_update_is_credited_once(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = stack.client(5005)
        await user.send("/wallet")
        await user.click(user.last_message(), "⭐ $1.00")
        assert await user.pay(user.last_message())
        [entry] = await wallet(stack).history(user.user.id)
        assert entry.ref is not None
        payment = SuccessfulPayment(
            currency="XTR",
            total_amount=80,
            invoice_payload="topup:5005:1:80",
            telegram_payment_charge_id=entry.ref.removeprefix("stars:"),
            provider_payment_charge_id="provider-charge",
        )
        await replay_payment(user, payment)
        await replay_payment(user, payment)
        assert await balance(stack, user) == Decimal("1.00")


async def test_pre_checkout_refuses_someone_elses_or_stale_invoice(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = stack.client(5005)
        await user.send("/wallet")
        await user.click(user.last_message(), "⭐ $1.00")
        invoice = stack.api.invoice(user.chat.id, user.last_message().message_id)
        assert invoice is not None
        invoice.payload = "topup:6006:1:80"  # an invoice made for another user
        assert not await user.pay(user.last_message())
        assert await balance(stack, user) == Decimal(0)


async def test_concurrent_purchases_never_overdraw(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        admin = stack.client(ADMIN)
        await admin.send("/start")
        user = stack.client(5005)
        await user.send("/start")
        await admin.send("/credit 5005 0.60 first purchase")
        assert (admin.last_message().text or "") == "User 5005: $0.60; balance now $0.60."
        first = await confirm_screen(user)
        await user.send("/start")
        second = await confirm_screen(user)
        await asyncio.gather(user.click(first, "✅ Buy"), user.click(second, "✅ Buy"))
        assert stack.suite.getsms.calls("getnumber") == 1
        assert await balance(stack, user) == Decimal("0.05")
        texts = [m.text or "" for m in user.messages()]
        assert sum(t.startswith("Not enough money") for t in texts) == 1


async def test_admin_credit_and_debit_are_admin_only_and_never_overdraw(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        admin = stack.client(ADMIN)
        user = stack.client(5005)
        for client in (admin, user):
            await client.send("/start")
        await user.send("/credit 5005 100")
        assert (user.last_message().text or "") == "This command is for the bot's admins."
        await admin.send("/credit 5005 2.50 welcome gift")
        await admin.send("/debit 5005 5")
        assert (admin.last_message().text or "") == "Not taken: user 5005 has only $2.50."
        await admin.send("/debit 5005 1")
        assert await balance(stack, user) == Decimal("1.50")
        await admin.send("/credit x")
        assert (admin.last_message().text or "").startswith("Usage: /credit")
        [credit, debit] = sorted(
            (e for e in await wallet(stack).history(user.user.id) if e.kind == "adjust"),
            key=lambda e: e.id,
        )
        assert (credit.actor, credit.reason) == (ADMIN, "welcome gift")
        assert debit.amount == Money(Decimal(-1), "USD")
        told = [m.text or "" for m in user.messages() if "wallet" in (m.text or "")]
        assert told == [
            "💰 The operator added $2.50 to your wallet. Balance: $2.50.",
            "The operator took $1.00 from your wallet. Balance: $1.50.",
        ]


async def test_an_activation_that_expires_without_sms_is_refunded(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = stack.client(5005)
        await user.send("/start")
        await wallet(stack).credit(user.user.id, Money(Decimal(1), "USD"), ADMIN, "test")
        await user.click(await confirm_screen(user), "✅ Buy")
        assert await balance(stack, user) == Decimal("0.45")
        stack.clock.advance(minutes=16)
        await stack.app.watcher.tick()
        await stack.app.watcher.tick()
        assert await balance(stack, user) == Decimal("1.00")


async def test_admins_and_private_mode_do_not_pay(stack: Stack) -> None:
    user = stack.client()  # an operator in the default private mode
    await user.click(await confirm_screen(user), "✅ Buy")
    assert (user.last_message().text or "").startswith("📱 ")
    assert await balance(stack, user) == Decimal(0)


async def test_the_wallet_command_is_in_the_menu_when_users_pay(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        stack.api.log.clear()
        await set_commands(stack.app.bot, stack.app.i18n, wallets=stack.app.settings.wallets_on)
        menus = [c.method for c in stack.api.log if isinstance(c.method, SetMyCommands)]
        assert menus and all(
            [c.command for c in m.commands][-2:] == ["wallet", "paysupport"] for m in menus
        )
