"""The user's wallet: balance, Telegram Stars top-ups, and the admins' credit and debit.

An invoice's payload names the user, the amount and the Stars asked; pre-checkout accepts it only
if it is this user's and the price still matches ``STARS_PER_UNIT``. A successful payment is
credited once per ``telegram_payment_charge_id``, so a repeated update changes nothing.
"""

from __future__ import annotations

import logging
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, LabeledPrice, Message, PreCheckoutQuery

from bot import keyboards, texts
from bot.callbacks import TopUp, parse_row_id
from bot.config import Settings
from bot.handlers.common import answer, show
from bot.money import Money
from bot.services.access import AccessService
from bot.services.messenger import Messenger
from bot.services.wallet import WalletService
from storage.users import UsersRepo

log = logging.getLogger(__name__)
STARS = "XTR"


_CENT = Decimal("0.01")


def admin_amount(text: str, limit: Decimal) -> Decimal | None:
    """An amount an admin typed for /credit or /debit: a plain positive decimal with at most
    two decimals (the display currency's cents), at most ``limit``; else None, before anything
    is written. No exponents, NaN, Infinity, signs or digits of other scripts."""
    raw = text.strip()
    if not raw or len(raw) > 24 or not raw.isascii() or not raw.replace(".", "", 1).isdigit():
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount <= 0 or amount > limit:
        return None
    if amount != amount.quantize(_CENT):
        return None
    return amount.quantize(_CENT)


def stars_for(amount: Decimal, settings: Settings) -> int:
    return int((amount * settings.stars_per_unit).to_integral_value(rounding=ROUND_CEILING))


def _payload(user_id: int, amount: Decimal, stars: int) -> str:
    return f"topup:{user_id}:{amount}:{stars}"


def _parse_payload(payload: str) -> tuple[int, Decimal, int] | None:
    try:
        kind, user_id, amount, stars = payload.split(":")
        parsed = (int(user_id), Decimal(amount), int(stars))
    except (ValueError, InvalidOperation):
        return None
    return parsed if kind == "topup" and parsed[1].is_finite() and parsed[1] > 0 else None


async def wallet_command(message: Message, wallet: WalletService, settings: Settings) -> None:
    assert message.from_user is not None
    if not settings.wallets_on:  # nothing a wallet could pay for: no invoice either
        await message.answer(texts.wallets_off(), reply_markup=keyboards.back_to_menu())
        return
    balance = await wallet.balance(message.from_user.id)
    await message.answer(texts.wallet(balance), reply_markup=keyboards.top_up(wallet.currency))


async def top_up_button(
    query: CallbackQuery, callback_data: TopUp, wallet: WalletService, settings: Settings
) -> None:
    if not settings.wallets_on:
        await answer(query, texts.wallets_off(), alert=True)
        await show(query, texts.wallets_off(), keyboards.back_to_menu())
        return
    await answer(query)
    if callback_data.amount not in keyboards.TOP_UP_AMOUNTS:  # "0": show the choices
        balance = await wallet.balance(query.from_user.id)
        await show(query, texts.wallet(balance), keyboards.top_up(wallet.currency))
        return
    amount = Decimal(callback_data.amount)
    stars = stars_for(amount, settings)
    price = Money(amount, wallet.currency)
    assert query.bot is not None
    await query.bot.send_invoice(
        chat_id=query.from_user.id,
        title=texts.invoice_title(price),
        description=texts.invoice_description(price, stars),
        payload=_payload(query.from_user.id, amount, stars),
        currency=STARS,
        prices=[LabeledPrice(label=texts.invoice_title(price), amount=stars)],
    )


async def pre_checkout(
    query: PreCheckoutQuery, settings: Settings, access: AccessService, users: UsersRepo
) -> None:
    """The last moment a payment can be refused: after it, Telegram has taken the Stars and
    the bot credits them (``paid``), so anyone who could not spend them is refused here."""
    if not settings.wallets_on:
        await query.answer(ok=False, error_message=texts.wallets_off())
        return
    if access.is_blocked(await users.get(query.from_user.id)):
        await query.answer(ok=False, error_message=texts.blocked())
        return
    parsed = _parse_payload(query.invoice_payload)
    valid = (
        parsed is not None
        and parsed[0] == query.from_user.id
        and query.currency == STARS
        and query.total_amount == parsed[2] == stars_for(parsed[1], settings)
        and str(parsed[1]) in keyboards.TOP_UP_AMOUNTS
    )
    if valid:
        await query.answer(ok=True)
    else:
        await query.answer(ok=False, error_message=texts.invoice_outdated())


async def paid(message: Message, wallet: WalletService) -> None:
    payment = message.successful_payment
    assert payment is not None and message.from_user is not None
    parsed = _parse_payload(payment.invoice_payload)
    if parsed is None or parsed[0] != message.from_user.id or payment.currency != STARS:
        log.error("a payment with an unexpected payload from %s", message.from_user.id)
        return
    amount = Money(parsed[1], wallet.currency)
    if not await wallet.top_up_stars(
        message.from_user.id, amount, payment.telegram_payment_charge_id
    ):
        log.info("payment %s was credited before", payment.telegram_payment_charge_id)
        return
    log.info("user %s topped up %s with Stars", message.from_user.id, amount)
    balance = await wallet.balance(message.from_user.id)
    await message.answer(texts.topped_up(amount, balance))


async def credit_command(
    message: Message,
    command: CommandObject,
    access: AccessService,
    users: UsersRepo,
    wallet: WalletService,
    settings: Settings,
    messenger: Messenger,
) -> None:
    assert message.from_user is not None
    if not access.is_admin(message.from_user.id):
        await message.answer(texts.admins_only())
        return
    parts = (command.args or "").split(maxsplit=2)
    if len(parts) < 2:
        await message.answer(texts.credit_usage())
        return
    user_id = parse_row_id(parts[0])
    if user_id is None or await users.get(user_id) is None:
        await message.answer(texts.unknown_user(parts[0]))
        return
    value = admin_amount(parts[1], settings.admin_credit_max)
    if value is None:
        limit = Money(settings.admin_credit_max, wallet.currency)
        await message.answer(texts.credit_amount_invalid(limit))
        return
    amount = Money(value, wallet.currency)
    reason = texts.excerpt(parts[2], 200) if len(parts) > 2 else ""
    if command.command == "credit":
        done = await wallet.credit(user_id, amount, message.from_user.id, reason)
    else:
        done = await wallet.debit(user_id, amount, message.from_user.id, reason)
    balance = await wallet.balance(user_id)
    if not done:
        await message.answer(texts.debit_refused(user_id, balance))
        return
    log.info("admin %s: %s %s to user %s", message.from_user.id, command.command, amount, user_id)
    signed = amount if command.command == "credit" else Money(-amount.amount, amount.currency)
    await message.answer(texts.credited(user_id, signed, balance))
    await messenger.tell(user_id, lambda: (texts.wallet_adjusted(signed, balance), None))


def setup() -> Router:
    router = Router(name="wallet")
    router.message.register(wallet_command, Command("wallet"))
    router.callback_query.register(top_up_button, TopUp.filter())
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(paid, F.successful_payment)
    router.message.register(credit_command, Command("credit", "debit"))
    return router
