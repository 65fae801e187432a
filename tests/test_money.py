from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.money import CurrencyConverter, MissingExchangeRate, Money, to_decimal


@pytest.mark.parametrize(
    ("wire", "expected"),
    [(100, "100"), (0.1, "0.1"), ("2.52", "2.52"), ("100,00", "100.00"), (" 7 ", "7")],
)
def test_wire_numbers_parse_exactly(wire: object, expected: str) -> None:
    assert to_decimal(wire) == Decimal(expected)


@pytest.mark.parametrize("wire", [None, True, "abc", "", "nan", "inf"])
def test_garbage_is_refused(wire: object) -> None:
    with pytest.raises(ValueError):
        to_decimal(wire)


def test_money_requires_decimal_and_currency() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(Decimal(1), "usd")


def test_conversion_uses_rates_and_refuses_missing_ones() -> None:
    converter = CurrencyConverter("USD", {"RUB": Decimal("0.011")})
    assert converter.to_display(Money(Decimal("100"), "RUB")) == Money(Decimal("1.100"), "USD")
    assert converter.to_display(Money(Decimal("2"), "USD")) == Money(Decimal("2"), "USD")
    with pytest.raises(MissingExchangeRate, match="EXCHANGE_RATES"):
        converter.to_display(Money(Decimal("1"), "EUR"))


@given(st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False))
def test_round_trip_through_the_display_currency(amount: Decimal) -> None:
    converter = CurrencyConverter("USD", {"EUR": Decimal("1.08")})
    back = converter.from_display(converter.to_display(Money(amount, "EUR")), "EUR")
    assert back.quantize().amount == amount.quantize(Decimal("0.01"))
