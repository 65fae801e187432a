"""The wallet where the money is (issue #11): a Wallet button, the balance on the confirmation,
"not enough" with an exact top-up that leads back to the confirmation (priced again), and the
wallet's history. Amounts are rendered with ``texts.money`` in the user's locale, as the bot
renders them, so a change of money format does not break the story."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from aiogram.methods import SendInvoice
from aiogram.types import Message

from bot import texts
from bot.callbacks import TopUp
from bot.money import Money
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack
from tests.test_wallet_flow import ADMIN, PUBLIC, balance, confirm_screen, wallet

BUY = "✅ Buy"
BUYER = 5005


def money(stack: Stack, amount: str, locale: str = "en") -> str:
    """``amount`` USD as the bot shows it in ``locale``."""
    with stack.app.i18n.context(), stack.app.i18n.use_locale(locale):
        return texts.money(Money(Decimal(amount), "USD"))


def when(stack: Stack, moment: datetime, locale: str = "en") -> str:
    with stack.app.i18n.context(), stack.app.i18n.use_locale(locale):
        return texts.when(moment)


def text(message: Message) -> str:
    return message.text or ""


def buy_data(message: Message) -> str:
    markup = message.reply_markup
    assert markup is not None
    [data] = [b.callback_data for row in markup.inline_keyboard for b in row if b.text == BUY]
    assert data is not None
    return data


async def short_buyer(stack: Stack, has: str) -> BotClient:
    """User 5005 with ``has`` USD in the wallet (an admin's credit)."""
    user = stack.client(BUYER)
    await user.send("/start")
    await wallet(stack).credit(BUYER, Money(Decimal(has), "USD"), ADMIN, "test")
    return user


# --- the menu and /help -------------------------------------------------------------------


async def test_the_wallet_button_and_help_line_are_there_only_when_wallets_are_on(
    tmp_path: Path, stack: Stack
) -> None:
    private = stack.client()  # default private mode: nobody pays, no wallet anywhere
    await private.send("/start")
    assert "💰 Wallet" not in private.buttons()
    await private.send("/help")
    assert "/wallet" not in text(private.last_message())

    async with running_stack(tmp_path / "public", **PUBLIC) as public:
        user = public.client(BUYER)
        await user.send("/help")
        assert "/wallet — 💰 Wallet" in text(user.last_message())
        await user.send("/start")
        assert user.buttons()[:3] == ["📲 Buy a number", "📋 My numbers", "💰 Wallet"]
        menu = user.last_message()
        await user.click(menu, "💰 Wallet")
        screen = user.last_message()
        assert screen.message_id == menu.message_id  # the menu message becomes the wallet
        assert text(screen).startswith(f"Your wallet: {money(public, '0')}")
        assert "No operations yet." in text(screen)
        presets = [f"⭐ {money(public, a)}" for a in ("1", "5", "10", "25")]
        assert user.buttons() == [*presets, "« Menu"]
        await user.click(screen, "« Menu")
        assert "💰 Wallet" in user.buttons()


# --- the confirmation ---------------------------------------------------------------------


async def test_the_confirmation_shows_the_balance_and_what_is_left(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        await short_buyer(stack, "1.00")
        confirm = await confirm_screen(stack.client(BUYER))
        assert text(confirm).endswith(
            f"💰 Your wallet: {money(stack, '1.00')}. "
            f"Left after purchase: {money(stack, '0.45')}"  # $0.50 + 10 % = $0.55
        )
        admin = stack.client(ADMIN)  # admins do not pay: no wallet on their confirmation
        assert "Your wallet" not in text(await confirm_screen(admin))


async def test_short_exact_top_up_returns_to_the_confirmation_priced_again(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = await short_buyer(stack, "0.20")
        confirm = await confirm_screen(user)
        assert text(confirm).endswith(
            f"💰 Your wallet: {money(stack, '0.20')}. "
            f"Not enough: {money(stack, '0.35')} more is needed."
        )
        old_buy = buy_data(confirm)
        await user.click(confirm, BUY)
        short = user.last_message()
        assert text(short).startswith("Not enough money in your wallet")
        exact = f"⭐ Top up {money(stack, '0.35')}"
        presets = [f"⭐ {money(stack, a)}" for a in ("1", "5", "10", "25")]
        assert user.buttons() == [exact, *presets, "« Back"]

        await user.click(short, exact)
        [invoice] = user.calls(SendInvoice)
        assert [p.amount for p in invoice.prices] == [28]  # $0.35 at 80 Stars per $1
        asked_before = len(stack.suite.getsms.requests)
        assert await user.pay(user.last_message())

        back = user.last_message()
        assert text(back).startswith(
            f"✅ {money(stack, '0.35')} added. Your balance: {money(stack, '0.55')}"
        )
        assert "Confirm your purchase" in text(back)
        assert text(back).endswith(f"Left after purchase: {money(stack, '0.00')}")
        assert len(stack.suite.getsms.requests) > asked_before  # asked the provider again
        assert buy_data(back) != old_buy  # a fresh quote, made by the server
        assert stack.suite.getsms.calls("getnumber") == 0

        await user.click(back, BUY)
        assert text(user.last_message()).startswith("📱 ")
        assert await balance(stack, user) == Decimal("0.00")
        assert stack.suite.getsms.calls("getnumber") == 1

        # Bought: a later top-up leads back to no confirmation.
        await user.send("/wallet")
        await user.click(user.last_message(), presets[0])
        assert await user.pay(user.last_message())
        assert "Confirm your purchase" not in text(user.last_message())
        assert user.buttons() == ["« Menu"]


async def test_a_price_that_rose_during_the_top_up_is_asked_again(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = await short_buyer(stack, "0.20")
        await user.click(await confirm_screen(user), BUY)
        short = user.last_message()
        stack.suite.getsms.set_stock("tg", "ru", price="0.60", count=49)  # $0.66 marked up
        await user.click(short, f"⭐ Top up {money(stack, '0.35')}")
        assert await user.pay(user.last_message())

        again = user.last_message()
        assert f"raised the price to {money(stack, '0.66')}" in text(again)
        assert text(again).endswith(
            f"💰 Your wallet: {money(stack, '0.55')}. "
            f"Not enough: {money(stack, '0.11')} more is needed."
        )
        await user.click(again, BUY)  # nothing is bought at a price the wallet cannot cover
        assert text(user.last_message()).startswith("Not enough money in your wallet")
        assert user.buttons()[0] == f"⭐ Top up {money(stack, '0.11')}"
        assert stack.suite.getsms.calls("getnumber") == 0
        assert await balance(stack, user) == Decimal("0.55")


async def test_back_from_not_enough_shows_the_offers(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = await short_buyer(stack, "0.20")
        await user.click(await confirm_screen(user), BUY)
        await user.click(user.last_message(), "« Back")
        assert any("Get-SMS · activation" in b for b in user.buttons())


async def test_a_top_up_amount_the_bot_did_not_offer_sends_no_invoice(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = stack.client(BUYER)
        await user.send("/wallet")
        screen = user.last_message()
        for amount in ("0.355", "-1", "1e3", "31.26", "NaN"):  # 31.26: over 2,500 Stars
            await user.click_data(screen, TopUp(amount=amount).pack())
        assert user.calls(SendInvoice) == []
        await user.click_data(screen, TopUp(amount="31.25").pack())  # exactly 2,500 Stars
        [invoice] = user.calls(SendInvoice)
        assert [p.amount for p in invoice.prices] == [2500]
        assert await user.pay(user.last_message())

        await user.click_data(screen, TopUp(amount="0.35").pack())
        sent = stack.api.invoice(user.chat.id, user.last_message().message_id)
        assert sent is not None
        sent.payload = "topup:5005:0.355:29"  # an amount the bot never offers
        assert not await user.pay(user.last_message())
        assert await balance(stack, user) == Decimal("31.25")


# --- the history --------------------------------------------------------------------------


def history(message: Message) -> list[list[str]]:
    """The history lines of a wallet screen, each split into date, amount and label."""
    body = text(message).split("\n\n")[1].splitlines()[1:]  # after the header line
    return [line.split(" · ") for line in body]


async def test_the_history_lists_operations_newest_first(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = stack.client(BUYER)
        admin = stack.client(ADMIN)
        await admin.send("/start")
        await user.send("/wallet")
        await user.click(user.last_message(), f"⭐ {money(stack, '1')}")
        assert await user.pay(user.last_message())
        t_top_up = stack.clock.now()
        stack.clock.advance(minutes=1)
        await user.click(await confirm_screen(user), BUY)
        t_bought = stack.clock.now()
        stack.clock.advance(minutes=1)
        cancelled = await user.click(user.last_message(), "✖️ Cancel")
        t_refund = stack.clock.now()
        assert cancelled is not None  # the refund is told with its amount
        assert cancelled.text == f"Cancelled. {money(stack, '0.55')} is back in your wallet."
        stack.clock.advance(minutes=1)
        await admin.send("/credit 5005 2 welcome gift")
        stack.clock.advance(minutes=1)
        await admin.send("/debit 5005 0.50")
        t_admin = stack.clock.now()

        await user.send("/wallet")
        screen = user.last_message()
        assert text(screen).startswith(f"Your wallet: {money(stack, '2.50')}")
        what = "Telegram, 🇷🇺 Russia"
        assert [row[1:] for row in history(screen)] == [
            [f"−{money(stack, '0.50')}", "💰 Taken by the operator"],
            [f"+{money(stack, '2.00')}", "💰 Added by the operator"],
            [f"+{money(stack, '0.55')}", f"↩️ Refund: {what}"],
            [f"−{money(stack, '0.55')}", f"📲 Purchase: {what}"],
            [f"+{money(stack, '1.00')}", "⭐ Top-up"],
        ]
        dates = [row[0] for row in history(screen)]
        assert dates[0] == when(stack, t_admin)
        assert dates[2:] == [when(stack, t) for t in (t_refund, t_bought, t_top_up)]

        # The menu's Wallet button shows the same history.
        await user.send("/start")
        await user.click(user.last_message(), "💰 Wallet")
        assert history(user.last_message()) == history(screen)


async def test_the_history_only_keeps_the_last_ten(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = stack.client(BUYER)
        await user.send("/start")
        for cents in range(1, 13):
            amount = Money(Decimal(cents).scaleb(-2), "USD")
            await wallet(stack).credit(BUYER, amount, ADMIN, "test")
        await user.send("/wallet")
        rows = history(user.last_message())
        assert [row[1] for row in rows] == [
            f"+{money(stack, str(Decimal(c).scaleb(-2)))}" for c in range(12, 2, -1)
        ]


async def test_the_wallet_in_russian(tmp_path: Path) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = stack.client(BUYER, language_code="ru")
        await user.send("/start")
        assert "💰 Кошелёк" in user.buttons()
        await user.send("/wallet")
        assert "Операций пока нет." in text(user.last_message())
        await user.click(user.last_message(), f"⭐ {money(stack, '1', 'ru')}")
        assert await user.pay(user.last_message())
        await user.click(await russian_confirm(user), "✅ Купить")
        assert text(user.last_message()).startswith("📱 ")

        await user.send("/wallet")
        screen = user.last_message()
        assert text(screen).startswith(f"Ваш кошелёк: {money(stack, '0.45', 'ru')}")
        assert "Последние операции, сначала новые:" in text(screen)
        assert [row[1:] for row in history(screen)] == [
            [f"−{money(stack, '0.55', 'ru')}", "📲 Покупка: Telegram, 🇷🇺 Россия"],
            [f"+{money(stack, '1.00', 'ru')}", "⭐ Пополнение"],
        ]


async def russian_confirm(user: BotClient) -> Message:
    """The Get-SMS activation's confirmation, in Russian."""
    await user.send("/buy")
    await user.click(user.last_message(), "Telegram")
    await user.click(user.last_message(), "🇷🇺 Россия")
    await user.click(user.last_message(), lambda b: "Get-SMS" in b.text and "актив" in b.text)
    confirm = user.last_message()
    assert "💰 Ваш кошелёк" in text(confirm)
    return confirm


async def test_a_released_hold_is_no_operation_and_an_open_one_is_in_progress(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path, **PUBLIC) as stack:
        user = await short_buyer(stack, "1.00")
        service = wallet(stack)
        failed = await service.hold(BUYER, Money(Decimal("0.30"), "USD"))
        assert failed is not None and await service.release(failed)  # gave everything back
        assert await service.hold(BUYER, Money(Decimal("0.40"), "USD")) is not None
        await user.send("/wallet")
        assert [row[1:] for row in history(user.last_message())] == [
            [f"−{money(stack, '0.40')}", "📲 Purchase: — (in progress)"],
            [f"+{money(stack, '1.00')}", "💰 Added by the operator"],
        ]
