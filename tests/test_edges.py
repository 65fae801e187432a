"""Edge regressions (#8, #10): Stars only where a wallet can be spent, admin amounts and ids
checked before anything is written or queried, forged buttons answered politely, private chats
only, a per-user flood limit, bounded search texts, a cheap catalog check."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiogram.methods import AnswerPreCheckoutQuery, EditMessageText, SendInvoice, SendMessage
from aiogram.types import Chat, Message, SuccessfulPayment, Update

from bot import texts
from bot.callbacks import SQL_INT_MAX, parse_row_id
from bot.handlers.wallet import admin_amount
from bot.i18n import create_i18n
from bot.middlewares import RateLimit
from bot.money import Money
from bot.services.access import AccessMode
from bot.services.catalog import CatalogService, plausible_pair, search_query
from bot.services.wallet import WalletService
from tests.emulators.base import FakeClock
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack
from tests.test_wallet_flow import replay_payment

ADMIN = 1001
USER = 500_005  # not an admin (the stack makes 1..99999 admins unless told otherwise)
PUBLIC: dict[str, Any] = {"access_mode": "public", "admin_ids": frozenset({ADMIN})}


I18N = create_i18n()


def en(make: Callable[..., str], *args: Any) -> str:
    """A text as the bot would say it in English (outside a handler)."""
    with I18N.context(), I18N.use_locale("en"):
        return make(*args)


def wallet(stack: Stack) -> WalletService:
    found: WalletService = stack.app.dp["wallet"]
    return found


def provider_requests(stack: Stack) -> int:
    return sum(len(server.requests) for server in stack.suite.servers.values())


def handler_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What reached the last-line error handler (a traceback a user saw as "went wrong")."""
    return [r.getMessage() for r in caplog.records if r.name == "bot.handlers.errors"]


def text(user: BotClient) -> str:
    return user.last_message().text or ""


# --- Stars only when they can be credited (#8) ------------------------------------------------


async def open_invoice(user: BotClient) -> Message:
    await user.send("/wallet")
    await user.click(user.last_message(), "⭐ $5.00")
    assert len(user.calls(SendInvoice)) == 1
    return user.last_message()


def checkout_answer(user: BotClient) -> AnswerPreCheckoutQuery:
    [answer] = user.calls(AnswerPreCheckoutQuery)
    return answer


async def test_a_blocked_users_open_invoice_is_refused_at_pre_checkout(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user, admin = stack.client(USER), stack.client(ADMIN)
        invoice = await open_invoice(user)
        await admin.send(f"/block {USER}")
        assert text(admin) == f"User {USER} is blocked."
        user.reset()
        assert not await user.pay(invoice)
        answer = checkout_answer(user)
        assert (answer.ok, answer.error_message) == (False, en(texts.blocked))
        assert await wallet(stack).history(USER) == []


async def test_a_payment_telegram_completed_is_credited_once_even_if_blocked_since(
    tmp_path: Path,
) -> None:
    # Pre-checkout said yes, then an admin blocked the user before the payment arrived: the
    # Stars are taken, so the money is credited (once), not refused by the block.
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user, admin = stack.client(USER), stack.client(ADMIN)
        invoice = user.api.invoice(user.chat.id, (await open_invoice(user)).message_id)
        assert invoice is not None
        await admin.send(f"/block {USER}")
        payment = SuccessfulPayment(
            currency="XTR",
            total_amount=sum(p.amount for p in invoice.prices),
            invoice_payload=invoice.payload,
            telegram_payment_charge_id="tg-charge-late",
            provider_payment_charge_id="provider-charge-late",
        )
        for _ in range(2):  # Telegram may deliver the same payment twice
            await replay_payment(user, payment)
        [entry] = await wallet(stack).history(USER)
        assert entry.amount.amount == Decimal(5)


async def test_with_wallets_off_no_wallet_and_no_payment(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user, admin = stack.client(USER), stack.client(ADMIN)
        invoice = await open_invoice(user)
        stack.app.settings.access_mode = AccessMode.PRIVATE  # the operator turned wallets off
        assert not stack.app.settings.wallets_on
        user.reset()
        assert not await user.pay(invoice)
        answer = checkout_answer(user)
        assert (answer.ok, answer.error_message) == (False, en(texts.wallets_off))
        assert await wallet(stack).history(USER) == []

        await admin.send("/wallet")
        assert text(admin) == en(texts.wallets_off)
        assert admin.buttons() == ["« Menu"]
        admin.reset()
        reply = await admin.click_data(admin.last_message(), "tu1:5")
        assert reply is not None and reply.text == en(texts.wallets_off)
        assert admin.calls(SendInvoice) == []


# --- admin amounts and ids (#8, #10) ----------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    ["1e50", "-1", "0", "0.00", "0.001", "1.005", "abc", "NaN", "Infinity", "-Infinity", "sNaN",
     "1e2", "+5", "1,5", "١٠", "10000.01", "9" * 40],
)  # fmt: skip
def test_admin_amount_refuses(amount: str) -> None:
    assert admin_amount(amount, Decimal(10_000)) is None


def test_admin_amount_takes_cents_up_to_the_limit() -> None:
    assert admin_amount("12.3", Decimal(10_000)) == Decimal("12.30")
    assert admin_amount("10000", Decimal(10_000)) == Decimal("10000.00")
    assert admin_amount(" 0.01 ", Decimal(10_000)) == Decimal("0.01")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("5005", 5005), (str(SQL_INT_MAX), SQL_INT_MAX), (str(2**63), None), ("-5", None),
     ("0", None), ("", None), ("1e3", None), ("١٢", None), ("0" * 30 + "1", None), (None, None)],
)  # fmt: skip
def test_parse_row_id(raw: str | None, expected: int | None) -> None:
    assert parse_row_id(raw) == expected


async def test_credit_validates_before_writing_and_reports_what_was_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        admin = stack.client(ADMIN)
        await stack.client(USER).send("/start")
        refused = en(texts.credit_amount_invalid, Money(Decimal(10_000), "USD"))
        for amount in ("1e50", "-1", "0", "0.001", "abc", "NaN", "Infinity", "10000.01"):
            for command in ("credit", "debit"):
                await admin.send(f"/{command} {USER} {amount}")
                assert text(admin) == refused, (command, amount)
        for user_id in (str(2**63), "-5", "0", "x"):
            await admin.send(f"/credit {user_id} 5")
            assert text(admin).startswith("No such user:"), user_id
        await admin.send("/credit")
        assert text(admin).startswith("Usage: /credit")
        assert await wallet(stack).history(USER) == []

        await admin.send(f"/credit {USER} 12.34 welcome gift")
        assert text(admin) == f"User {USER}: $12.34; balance now $12.34."
        [entry] = await wallet(stack).history(USER)
        assert (entry.amount.amount, entry.reason) == (Decimal("12.34"), "welcome gift")
        await admin.send(f"/debit {USER} 2.34")
        assert text(admin) == f"User {USER}: -$2.34; balance now $10.00."
        assert handler_errors(caplog) == []


async def test_user_and_block_commands_with_ids_out_of_range(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        admin = stack.client(ADMIN)
        for command in ("/user", "/block", "/unblock"):
            for raw in (str(2**63), str(2**200), "-5", "0", "NaN", "x" * 4000):
                await admin.send(f"{command} {raw}")
                assert text(admin).startswith("No such user:"), (command, raw)
                assert len(text(admin)) < 120
        assert handler_errors(caplog) == []


FORGED = [
    f"x1:{2**63}:o",
    f"x1:{2**63}:c",
    "x1:-5:o",
    "x1:0:f",
    "x1:1:zz",
    f"r1:{2**64}:24",
    "r1:1:-24",
    "r1:1:99999999",
    "l1:-1:0",
    f"l1:{2**63}:1",
    "sp1:99999999999999999999",
    "sp1:NaN",
    f"cp1:tg:{2**63}",
    "cp1:" + "s" * 50 + ":0",
    f"bu1:{2**63}:1",
    "ad1:-1:1",
    f"ad1:{2**63}:0",
    "m1:zz",
    "zz9:1",
    "x1",
    "",
    "🙂" * 16,
]


@pytest.mark.parametrize("data", FORGED)
async def test_forged_callback_data_gets_a_polite_alert(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, data: str
) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        admin = stack.client(ADMIN)
        await admin.send("/start")
        before = provider_requests(stack)
        reply = await admin.click_data(admin.last_message(), data)
        assert reply is not None and reply.text == en(texts.not_yours)
        assert handler_errors(caplog) == []
        assert provider_requests(stack) == before


# --- private chats only (#10) ------------------------------------------------------------------


def in_group(stack: Stack, user_id: int, kind: str = "supergroup") -> BotClient:
    client = stack.client(user_id)
    client.chat = Chat(id=-1_000_000_000_000 - user_id, type=kind, title="Friends")
    client.api.add_chat(client.chat)
    return client


@pytest.mark.parametrize("kind", ["group", "supergroup"])
async def test_in_a_group_the_bot_points_to_the_private_chat_and_does_nothing_else(
    tmp_path: Path, kind: str
) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        owner = stack.client(ADMIN)
        await owner.send("/buy")  # the owner has a private chat with content of his own
        private_before = len(owner.messages())
        member = in_group(stack, ADMIN, kind)  # the same user, in a group
        before = provider_requests(stack)
        for command in ("/numbers", "/buy", "/wallet", "/start", "/admin", f"/user {ADMIN}"):
            member.reset()
            await member.send(command)
            sent = member.calls(SendMessage)
            assert len(sent) == 1, command
            message = member.last_message()
            assert message.text == en(texts.private_chat_only)
            markup = message.reply_markup
            assert markup is not None
            [[button]] = markup.inline_keyboard
            assert button.url == "https://t.me/numbers_test_bot?start=menu"
        member.reset()
        await member.send("hello everyone")
        assert member.calls(SendMessage) == []
        reply = await member.click_data(member.last_message(), "x1:1:o")
        assert reply is not None and reply.text == en(texts.private_chat_button_only)
        reply = await member.click_data(member.last_message(), "m1:n")
        assert reply is not None and reply.text == en(texts.private_chat_button_only)
        assert member.calls(EditMessageText) == []
        assert provider_requests(stack) == before
        assert len(owner.messages()) == private_before


# --- a per-user flood limit (#10) -------------------------------------------------------------


async def test_a_flood_gets_one_polite_message_and_no_provider_calls(tmp_path: Path) -> None:
    async with running_stack(
        tmp_path, rate_limit_count=3, rate_limit_window=10, **PUBLIC
    ) as stack:
        user = stack.client(USER)
        for _ in range(3):
            await user.send("/start")
        assert len(user.calls(SendMessage)) == 3
        user.reset()
        before = provider_requests(stack)
        for _ in range(5):
            await user.send("/buy")
        [warning] = user.calls(SendMessage)
        assert warning.text == en(texts.slow_down, 10)
        reply = await user.click_data(user.last_message(), "m1:b")
        assert reply is not None and reply.text is None  # answered, silently
        assert provider_requests(stack) == before

        stack.clock.advance(seconds=10)
        user.reset()
        await user.send("/start")
        assert [m.text for m in user.calls(SendMessage)] == [
            en(texts.welcome, user.user.first_name)
        ]
        admin = stack.client(ADMIN)  # admins are not limited
        for _ in range(10):
            await admin.send("/start")
        assert text(admin) != en(texts.slow_down, 10)


async def test_the_rate_limit_forgets_old_windows_and_is_bounded() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    limit = RateLimit(clock, limit=2, window=10, max_users=100)
    seen: list[int] = []

    async def handler(event: object, data: dict[str, Any]) -> None:
        seen.append(data["event_from_user"].id)

    from aiogram.types import User

    def data(user_id: int) -> dict[str, Any]:
        return {"event_from_user": User(id=user_id, is_bot=False, first_name="u")}

    for user_id in range(1, 1001):  # a thousand users at once: at most 100 remembered
        await limit(handler, Update(update_id=user_id), data(user_id))
    assert len(limit) <= 100
    for _ in range(3):
        await limit(handler, Update(update_id=0), data(5000))
    assert seen.count(5000) == 2
    clock.advance(seconds=11)
    await limit(handler, Update(update_id=0), data(7000))
    assert len(limit) == 1  # every ended window was dropped
    await limit(handler, Update(update_id=0), data(5000))
    assert seen.count(5000) == 3


# --- search texts and the catalog check (#10) -------------------------------------------------


def test_search_texts_are_bounded_and_echoed_short() -> None:
    assert search_query("  tele   gram ") == "tele gram"
    assert search_query("x" * 65) is None
    assert search_query("   ") is None
    assert search_query(None) is None
    echoed = en(texts.nothing_found, "A" * 4096)
    assert len(echoed) < 100
    assert "<" not in en(texts.nothing_found, "<b>" * 100)
    assert not plausible_pair("s" * 59, "RU")
    assert not plausible_pair("tg", "")
    assert not plausible_pair("tg", "\u0420")  # a Cyrillic letter


async def test_sells_answers_from_the_cached_catalog(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        catalog: CatalogService = stack.app.dp["catalog"]
        assert await catalog.sells("tg", "RU")
        assert await catalog.sells("tg", "ru")
        before = provider_requests(stack)
        for service, country in [("forged", "RU"), ("tg", "ZZ"), ("s" * 59, "RU"), ("tg", "")]:
            assert not await catalog.sells(service, country)
        assert await catalog.sells("tg", "RU")
        assert provider_requests(stack) == before
