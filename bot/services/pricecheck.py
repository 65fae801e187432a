"""Prices far outside what the other providers ask for the same offer.

A provider whose account currency is stated wrongly (Get-SMS: the docs leave it uncertain, a
rouble price read as dollars is about 90 times too high) shows up as one provider's prices being
an order of magnitude off everyone else's. This is a pure check over one offers result; the
operator sees it in ``python -m bot doctor`` and ``python -m bot offers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from statistics import median

from bot.domain import OrderKind
from bot.money import Money
from bot.services.offers import OffersResult, PricedOffer

DEFAULT_FACTOR = Decimal(10)


@dataclass(frozen=True, slots=True)
class PriceOutlier:
    offer: PricedOffer  # the provider's cheapest offer of its kind (and duration)
    others: Money  # the reference: the median of all providers' cheapest (of two: the other's)
    ratio: Decimal  # this offer's display price / ``others``
    compared_with: tuple[str, ...]  # the other providers
    # Only one other provider to compare with: either of the two may be the wrong one.
    ambiguous: bool = False

    def describe(self) -> str:
        offer = self.offer.offer
        what = offer.kind.value + (f" {offer.duration_hours}h" if offer.duration_hours else "")
        head = f"{offer.provider} {offer.service}/{offer.country} {what}: "
        price = self.offer.display_price.quantize()
        apart = f"{self.ratio:.0f}x above" if self.ratio >= 1 else f"{1 / self.ratio:.0f}x below"
        if self.ambiguous:
            return (
                f"{head}{price}, {apart} {self.compared_with[0]}'s {self.others.quantize()} "
                "(only two providers to compare)"
            )
        return f"{head}{price}, {apart} the others' {self.others.quantize()}"


def outliers(result: OffersResult, *, factor: Decimal = DEFAULT_FACTOR) -> list[PriceOutlier]:
    """Providers whose cheapest offer of a kind (and rental duration) is at least ``factor``
    times above or below the median of every provider's cheapest. With only two providers there
    is no majority: the pair is reported once, as ambiguous. Free offers are never compared."""
    if factor <= 1:
        raise ValueError("factor must be above 1")
    groups: dict[tuple[OrderKind, int | None], dict[str, PricedOffer]] = {}
    for priced in result.offers:
        if priced.display_price.amount <= 0:
            continue
        key = (priced.offer.kind, priced.offer.duration_hours)
        cheapest = groups.setdefault(key, {})
        known = cheapest.get(priced.offer.provider)
        if known is None or priced.display_price.amount < known.display_price.amount:
            cheapest[priced.offer.provider] = priced
    found: list[PriceOutlier] = []
    for cheapest in groups.values():
        ranked = sorted(cheapest.items())
        if len(ranked) < 2:
            continue
        if len(ranked) == 2:  # no majority: the pair once
            middle = ranked[1][1].display_price.amount
        else:  # the median of every provider's cheapest: one wrong price cannot move it far
            middle = Decimal(median(p.display_price.amount for _, p in ranked))
        for provider, priced in ranked:
            ratio = priced.display_price.amount / middle
            if factor > ratio > 1 / factor:
                continue
            others = tuple(name for name, _ in ranked if name != provider)
            money = Money(middle, priced.display_price.currency)
            found.append(PriceOutlier(priced, money, ratio, others, ambiguous=len(ranked) == 2))
            if len(ranked) == 2:
                break
    return found
