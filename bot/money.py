"""Money as ``Decimal`` with its currency, and conversion to the display currency."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount: Decimal
    currency: str  # ISO 4217 alphabetic, upper case

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money.amount must be a Decimal")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"bad currency code: {self.currency!r}")

    @classmethod
    def parse(cls, value: object, currency: str) -> Money:
        """Build from a wire value (int, float, ``"1.5"``, ``"100,00"``) without float error."""
        return cls(to_decimal(value), currency)

    def quantize(self, places: int = 2) -> Money:
        exp = Decimal(1).scaleb(-places)
        return Money(self.amount.quantize(exp, rounding=ROUND_HALF_UP), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def to_decimal(value: object) -> Decimal:
    """Parse a number from a provider's JSON: int, float, ``"1.5"``, ``"100,00"``."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        return value
    text = str(value).strip().replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        result = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


class MissingExchangeRate(LookupError):
    """No rate configured to turn this currency into the display currency."""

    def __init__(self, currency: str, display: str) -> None:
        self.currency = currency
        self.display = display
        super().__init__(
            f"no exchange rate for {currency} -> {display}: add {currency}=<value of one "
            f"{currency} in {display}> to EXCHANGE_RATES"
        )


@dataclass(frozen=True, slots=True)
class CurrencyConverter:
    """Turns provider money into the display currency with operator-given rates.

    ``rates[X]`` is the value of one unit of X in the display currency. A missing rate is an
    error, never a silent 1:1.
    """

    display: str
    rates: Mapping[str, Decimal]

    def to_display(self, money: Money) -> Money:
        if money.currency == self.display:
            return money
        rate = self.rates.get(money.currency)
        if rate is None:
            raise MissingExchangeRate(money.currency, self.display)
        return Money(money.amount * rate, self.display)

    def from_display(self, money: Money, currency: str) -> Money:
        """The inverse: how much of ``currency`` a display-currency amount is worth."""
        if money.currency != self.display:
            raise ValueError("from_display takes display-currency money")
        if currency == self.display:
            return money
        rate = self.rates.get(currency)
        if rate is None:
            raise MissingExchangeRate(currency, self.display)
        return Money(money.amount / rate, currency)
