"""outliers(): a provider whose prices are an order of magnitude off the others' is flagged."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.domain import OrderKind
from bot.money import Money
from bot.providers.base import Offer
from bot.services.offers import OffersResult, PricedOffer
from bot.services.pricecheck import outliers


def priced(
    provider: str, price: str, kind: OrderKind = OrderKind.ACTIVATION, hours: int | None = None
) -> PricedOffer:
    amount = Money(Decimal(price), "USD")
    offer = Offer(provider, "tg", "RU", kind, amount, 5, duration_hours=hours)
    return PricedOffer(offer, amount)


def result(*offers: PricedOffer) -> OffersResult:
    return OffersResult("tg", "RU", offers)


def test_a_rouble_price_read_as_dollars_is_flagged_among_three() -> None:
    found = outliers(
        result(priced("getsms", "45"), priced("smsbus", "0.50"), priced("beesms", "0.60"))
    )
    assert [(o.offer.offer.provider, o.ambiguous) for o in found] == [("getsms", False)]
    (flag,) = found
    assert flag.others == Money(Decimal("0.60"), "USD")  # the median of the three
    assert flag.compared_with == ("beesms", "smsbus")
    assert "75x above the others' 0.60 USD" in flag.describe()


def test_two_providers_apart_are_reported_once_as_ambiguous() -> None:
    (flag,) = outliers(result(priced("getsms", "0.005"), priced("smsbus", "0.25")))
    assert flag.ambiguous and "only two providers" in flag.describe()
    assert "50x below smsbus's 0.25 USD" in flag.describe()


def test_comparable_only_by_kind_and_duration_and_cheapest_per_provider() -> None:
    offers = result(
        priced("getsms", "0.50"),
        priced("getsms", "90"),  # a dearer variant of the same provider is not compared
        priced("smsbus", "0.40"),
        priced("smsonline", "8", OrderKind.RENTAL, 24),  # a rental vs activations: no
        priced("getsms", "7", OrderKind.RENTAL, 24),
        priced("getsms", "0.10", OrderKind.RENTAL, 168),
    )
    assert outliers(offers) == []


def test_within_the_factor_nothing_and_free_offers_ignored() -> None:
    assert outliers(result(priced("a", "1"), priced("b", "9.99"), priced("c", "0"))) == []
    assert len(outliers(result(priced("a", "1"), priced("b", "10")))) == 1
    assert outliers(result(priced("a", "1"), priced("b", "10")), factor=Decimal(11)) == []
    assert outliers(result(priced("a", "1"))) == []
    with pytest.raises(ValueError):
        outliers(result(), factor=Decimal(1))
