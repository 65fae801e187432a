"""The user's wallet in the display currency: the bot-facing API over the ledger.

A purchase holds the marked-up price before calling the provider, then captures the hold on
success or releases it on failure; a confirmed cancel (or an expiry without SMS) refunds the
order once. Amounts must be positive, in the wallet's currency and whole minor units
(cents for USD), so a balance is always something a user can be shown exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Context, Decimal, Inexact, InvalidOperation

from babel.numbers import get_currency_precision

from bot.clock import SYSTEM_CLOCK, Clock
from bot.money import Money
from storage.ledger import HistoryItem, LedgerEntry, LedgerRepo

_EXACT = Context(prec=100, traps=[Inexact, InvalidOperation])  # raises rather than rounds
_WIDE = Context(prec=100, traps=[InvalidOperation])  # for the one deliberate rounding
_HUNDRED = Decimal(100)
STARS_REF_PREFIX = "stars:"


@dataclass(frozen=True, slots=True)
class Hold:
    """Money reserved for one purchase until it is captured or released."""

    id: int
    user_id: int
    amount: Money


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency``: ``0.01`` for USD, ``1`` for JPY."""
    return Decimal(1).scaleb(-int(get_currency_precision(currency)))


def price_with_markup(price: Money, percent: Decimal) -> Money:
    """``price`` plus ``percent`` %, rounded up to the currency's minor unit."""
    if not percent.is_finite() or percent < 0:
        raise ValueError(f"markup must be a non-negative percentage: {percent}")
    if not price.amount.is_finite() or price.amount < 0:
        raise ValueError(f"price must not be negative: {price}")
    factor = _EXACT.add(Decimal(1), _EXACT.divide(percent, _HUNDRED))
    marked = _EXACT.multiply(price.amount, factor)
    rounded = marked.quantize(minor_unit(price.currency), rounding=ROUND_CEILING, context=_WIDE)
    return Money(rounded, price.currency)


# The bot's own ceiling for one top-up of an exact amount (the "missing" button, $31.25 at the
# default 80 Stars per unit); above it only the preset amounts are offered.
MAX_TOP_UP_STARS = 2500


def stars_for(amount: Decimal, stars_per_unit: Decimal) -> int:
    """The Stars asked for ``amount`` of the wallet's currency, rounded up to a whole Star."""
    return int((amount * stars_per_unit).to_integral_value(rounding=ROUND_CEILING))


class NotEnoughBalance(Exception):
    """The user's wallet does not cover the price; nothing was bought or held."""

    def __init__(self, price: Money, balance: Money) -> None:
        super().__init__(f"price {price}, balance {balance}")
        self.price = price
        self.balance = balance

    @property
    def missing(self) -> Money:
        return Money(self.price.amount - self.balance.amount, self.price.currency)


class WalletService:
    """Balances, holds and payments of users, all in one ``currency``."""

    def __init__(self, ledger: LedgerRepo, currency: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self._ledger = ledger
        self._clock = clock
        self.currency = currency
        self._minor = minor_unit(currency)

    async def balance(self, user_id: int) -> Money:
        """What the user can spend now (open holds already taken)."""
        return await self._ledger.balance(user_id, self.currency)

    async def hold(self, user_id: int, amount: Money) -> Hold | None:
        """Reserve the price of a purchase; None if the balance does not cover it."""
        self._check(amount)
        hold_id = await self._ledger.hold(user_id, amount, self._clock.now())
        return None if hold_id is None else Hold(hold_id, user_id, amount)

    async def capture(self, hold: Hold, order_id: int) -> bool:
        """The purchase succeeded: the held money pays for ``order_id``.

        True only for the first settlement of the hold (a released hold is never captured).
        """
        self._check(hold.amount)
        return await self._ledger.capture(hold.id, order_id, self._clock.now())

    async def release(self, hold: Hold) -> bool:
        """The purchase failed: give the held money back (True only the first time)."""
        self._check(hold.amount)
        return await self._ledger.release(hold.id, self._clock.now())

    async def refund(self, order_id: int) -> Money | None:
        """Refund what the order cost, once; call only after the provider confirmed it.

        None if the order was never captured or is already refunded.
        """
        return await self._ledger.refund(order_id, self._clock.now())

    async def top_up_stars(self, user_id: int, amount: Money, charge_id: str) -> bool:
        """Credit a Telegram Stars payment once per charge id (False for a repeat)."""
        self._check(amount)
        if not charge_id:
            raise ValueError("a Stars top-up needs its telegram_payment_charge_id")
        return await self._ledger.top_up(
            user_id, amount, STARS_REF_PREFIX + charge_id, self._clock.now()
        )

    async def credit(self, user_id: int, amount: Money, actor: int, reason: str) -> bool:
        """An admin adds ``amount``; recorded with who did it and why."""
        self._check(amount)
        return await self._ledger.adjust(user_id, amount, actor, reason, self._clock.now())

    async def debit(self, user_id: int, amount: Money, actor: int, reason: str) -> bool:
        """An admin takes ``amount``; False (nothing taken) if the balance is smaller."""
        self._check(amount)
        debit = Money(amount.amount.copy_negate(), amount.currency)
        return await self._ledger.adjust(user_id, debit, actor, reason, self._clock.now())

    async def history(self, user_id: int, limit: int = 20) -> list[LedgerEntry]:
        """The user's latest ledger rows, newest first."""
        return await self._ledger.entries(user_id, limit)

    async def operations(self, user_id: int, limit: int = 10) -> list[HistoryItem]:
        """The user's latest operations as they would tell them, newest first."""
        return await self._ledger.history(user_id, self.currency, limit)

    def missing(self, price: Money, balance: Money) -> Money | None:
        """What a top-up must add for ``balance`` to cover ``price``; None if it does."""
        self._check(price)
        if balance.currency != self.currency:
            raise ValueError(f"balance in {balance.currency}, wallet in {self.currency}")
        short = price.amount - balance.amount
        return Money(short, self.currency) if short > 0 else None

    def is_amount(self, amount: Money) -> bool:
        """Whether ``amount`` is something the wallet can hold: positive, in its currency,
        whole minor units."""
        try:
            self._check(amount)
        except (ValueError, ArithmeticError):
            return False
        return True

    def price_with_markup(self, display_price: Money, percent: Decimal) -> Money:
        """The price the user pays for an offer shown at ``display_price``."""
        if display_price.currency != self.currency:
            raise ValueError(f"price in {display_price.currency}, wallet in {self.currency}")
        return price_with_markup(display_price, percent)

    def _check(self, amount: Money) -> None:
        if amount.currency != self.currency:
            raise ValueError(f"amount in {amount.currency}, wallet in {self.currency}")
        if not amount.amount.is_finite() or amount.amount <= 0:
            raise ValueError(f"amount must be positive: {amount}")
        if _EXACT.remainder(amount.amount, self._minor) != 0:
            raise ValueError(f"{amount} is not a whole number of {self._minor} {self.currency}")
