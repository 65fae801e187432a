"""What a user pays: the provider's price in the display currency, plus the operator's markup,
rounded up to a whole minor unit (a cent) so it can be charged exactly."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.money import CurrencyConverter, Money
from bot.services.wallet import price_with_markup


@dataclass(frozen=True, slots=True)
class Pricing:
    converter: CurrencyConverter
    markup_percent: Decimal = Decimal(0)

    @property
    def currency(self) -> str:
        return self.converter.display

    def user_price(self, provider_price: Money) -> Money:
        """Raises ``MissingExchangeRate`` when the provider's currency has no rate."""
        return price_with_markup(self.converter.to_display(provider_price), self.markup_percent)
