"""The user's wallet: balance, history, Telegram Stars top-ups, and the admins' credit and debit.

An invoice's payload names the user, the amount and the Stars asked; pre-checkout accepts it only
if it is this user's, the amount is one the bot offers (a preset, or an exact amount within
``MAX_TOP_UP_STARS``) and the price still matches ``STARS_PER_UNIT``. A successful payment is
credited once per ``telegram_payment_charge_id``, so a repeated update changes nothing; when the
user came from "not enough money", they are taken back to that confirmation, priced again.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)

from bot import keyboards, texts
from bot.callbacks import Menu, MenuAction, TopUp, parse_row_id
from bot.config import Settings
from bot.handlers.buy import RETURN_KEY, reconfirm
from bot.handlers.common import answer, show
from bot.money import Money
from bot.services import wallet as wallet_rules
from bot.services.access import AccessService
from bot.services.billing import Billing
from bot.services.messenger import Messenger
from bot.services.offers import OfferService
from bot.services.purchase import PurchaseService
from bot.services.wallet import MAX_TOP_UP_STARS, WalletService
from storage.users import UsersRepo

log = logging.getLogger(__name__)
STARS = "XTR"
HISTORY_SIZE = 10  # operations on the wallet screen


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
    return wallet_rules.stars_for(amount, settings.stars_per_unit)


def top_up_amount(text: str, wallet: WalletService, settings: Settings) -> Decimal | None:
    """The amount a top-up button or invoice names, if the bot offers it: a preset, or an
    exact amount (the "missing" button) the wallet can hold, within ``MAX_TOP_UP_STARS``."""
    if text in keyboards.TOP_UP_AMOUNTS:
        return Decimal(text)
    raw = text.strip()
    if not raw or len(raw) > 24 or not raw.isascii() or not raw.replace(".", "", 1).isdigit():
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return None
    if not wallet.is_amount(Money(amount, wallet.currency)):
        return None
    return amount if stars_for(amount, settings) <= MAX_TOP_UP_STARS else None


async def _wallet_screen(user_id: int, wallet: WalletService) -> tuple[str, InlineKeyboardMarkup]:
    balance = await wallet.balance(user_id)
    history = await wallet.operations(user_id, HISTORY_SIZE)
    return texts.wallet(balance, history), keyboards.top_up(wallet.currency)


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
    text, markup = await _wallet_screen(message.from_user.id, wallet)
    await message.answer(text, reply_markup=markup)


async def wallet_button(query: CallbackQuery, wallet: WalletService, settings: Settings) -> None:
    """💰 Wallet in the main menu."""
    if not settings.wallets_on:
        await answer(query)
        await show(query, texts.wallets_off(), keyboards.back_to_menu())
        return
    await answer(query)
    text, markup = await _wallet_screen(query.from_user.id, wallet)
    await show(query, text, markup)


async def top_up_button(
    query: CallbackQuery, callback_data: TopUp, wallet: WalletService, settings: Settings
) -> None:
    if not settings.wallets_on:
        await answer(query, texts.wallets_off(), alert=True)
        await show(query, texts.wallets_off(), keyboards.back_to_menu())
        return
    await answer(query)
    amount = top_up_amount(callback_data.amount, wallet, settings)
    if amount is None:  # "0" (or an amount the bot does not offer): show the choices
        text, markup = await _wallet_screen(query.from_user.id, wallet)
        await show(query, text, markup)
        return
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
    query: PreCheckoutQuery,
    settings: Settings,
    access: AccessService,
    users: UsersRepo,
    wallet: WalletService,
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
        and top_up_amount(str(parsed[1]), wallet, settings) == parsed[1]
    )
    if valid:
        await query.answer(ok=True)
    else:
        await query.answer(ok=False, error_message=texts.invoice_outdated())


async def paid(
    message: Message,
    state: FSMContext,
    wallet: WalletService,
    purchases: PurchaseService,
    offers: OfferService,
    billing: Billing,
) -> None:
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
    done = texts.topped_up(amount, balance)
    # Came from "not enough money": back to that confirmation, priced again by the server.
    data = await state.get_data()
    quote_id = data.get(RETURN_KEY)
    if isinstance(quote_id, str):
        await state.update_data({RETURN_KEY: None})
        view = await reconfirm(message.from_user.id, quote_id, purchases, offers, billing)
        if view is not None:
            text, markup = view
            await message.answer(f"{done}\n\n{text}", reply_markup=markup)
            return
    await message.answer(done, reply_markup=keyboards.back_to_menu())


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
    router.callback_query.register(wallet_button, Menu.filter(F.action == MenuAction.WALLET))
    router.callback_query.register(top_up_button, TopUp.filter())
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(paid, F.successful_payment)
    router.message.register(credit_command, Command("credit", "debit"))
    return router
