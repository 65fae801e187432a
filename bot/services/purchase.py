"""Buying an offer: re-check it, buy it once, store it in one transaction.

The user confirmed a price; the offer is looked up again at the provider right before buying.
If it is gone or dearer, nothing is bought and the caller gets the remaining offers. Where the
API takes a ceiling (BEE-SMS ``max_amount``), the confirmed price is that ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import SYSTEM_CLOCK, Clock
from bot.money import Money
from bot.providers.base import (
    Capability,
    Offer,
    Order,
    OrderKind,
    Provider,
    PurchaseOutcomeUnknown,
    RemoteStatus,
)
from bot.services.billing import FREE, Billing
from bot.services.guard import OnceGuard
from bot.services.offers import OfferService, OffersResult, PricedOffer, offer_token
from bot.services.pricing import Pricing
from storage.models import StoredOrder
from storage.orders import OrdersRepo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OfferChoice:
    """What the user confirmed: one offer of one provider at one price."""

    service: str
    country: str
    provider: str
    kind: OrderKind
    duration_hours: int | None
    ref: str
    price: Money  # in the provider's currency

    @classmethod
    def of(cls, offer: Offer, price: Money) -> OfferChoice:
        """The offer, at the price the user confirmed."""
        return cls(
            service=offer.service,
            country=offer.country,
            provider=offer.provider,
            kind=offer.kind,
            duration_hours=offer.duration_hours,
            ref=offer.ref,
            price=price,
        )

    def matches(self, offer: Offer) -> bool:
        return (
            offer.kind == self.kind
            and (offer.duration_hours or None) == (self.duration_hours or None)
            and offer.ref == self.ref
        )


@dataclass(frozen=True, slots=True)
class OfferRequest:
    """What a Buy button names: an offer (by token) of one provider, at the price shown."""

    service: str
    country: str
    provider: str
    token: str
    price: Money  # in the provider's currency

    def find(self, result: OffersResult) -> PricedOffer | None:
        """The named offer among those on sale now."""
        return next(
            (
                p
                for p in result.offers
                if p.offer.provider == self.provider and offer_token(p.offer) == self.token
            ),
            None,
        )


class PurchaseRefused(Exception):
    """Nothing was bought; ``remaining`` lists what is on offer now."""

    def __init__(self, remaining: OffersResult) -> None:
        super().__init__(type(self).__name__)
        self.remaining = remaining


class OfferGone(PurchaseRefused):
    """The provider no longer sells this offer (no numbers, or the provider is disabled)."""


class PriceRose(PurchaseRefused):
    def __init__(self, remaining: OffersResult, new_price: Money) -> None:
        super().__init__(remaining)
        self.new_price = new_price


class PurchaseService:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        offers: OfferService,
        orders: OrdersRepo,
        pricing: Pricing,
        *,
        clock: Clock = SYSTEM_CLOCK,
        billing: Billing = FREE,
    ) -> None:
        """Users ``billing`` charges pay for what they buy from their wallets."""
        self._providers = providers
        self._offers = offers
        self._orders = orders
        self._pricing = pricing
        self._billing = billing
        self._clock = clock
        self.guard: OnceGuard[int] = OnceGuard()
        self._serial: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def buy(self, user_id: int, request: OfferRequest, *, tap: Hashable) -> StoredOrder:
        """Buy once per ``tap`` (one Buy button): repeats raise InProgress/AlreadyDone.

        The guard is taken before the first ``await``, so of two quick taps exactly one buys.
        Provider errors propagate as typed ProviderErrors. On PurchaseOutcomeUnknown the
        provider's order list is checked once; a found order is stored instead of raising.
        """
        async with self.guard.once(tap):
            result = await self._offers.offers(request.service, request.country)
            priced = request.find(result)
            if priced is None:
                raise OfferGone(result)
            async with self._billing.charged(user_id, priced.display_price) as charge:
                stored = await self._buy(user_id, OfferChoice.of(priced.offer, request.price))
                charge.order_id = stored.id
            self.guard.done(tap, stored.id)
            return stored

    async def _buy(self, user_id: int, choice: OfferChoice) -> StoredOrder:
        provider = self._providers.get(choice.provider)
        if provider is None:
            raise OfferGone(await self._remaining(choice))
        current = next(
            (
                o
                for o in await provider.offers(choice.service, choice.country)
                if choice.matches(o)
            ),
            None,
        )
        if current is None or current.stock == 0:
            raise OfferGone(await self._remaining(choice))
        if current.price.amount > choice.price.amount:
            raise PriceRose(await self._remaining(choice), current.price)
        ceiling = choice.price if Capability.MAX_PRICE in provider.capabilities else None
        # Where a lost answer is reconciled from the provider's order list, this bot's
        # purchases at that provider go one at a time, so a new order in the list is ours.
        serial = (
            self._serial[provider.id] if Capability.LIST_ORDERS in provider.capabilities else None
        )
        async with serial or contextlib.nullcontext():
            known = await self._known_remote_ids(provider)
            asked_at = self._clock.now()
            try:
                order = await provider.buy(current, max_price=ceiling)
            except PurchaseOutcomeUnknown:
                found = await self._reconcile(user_id, provider, choice, known, asked_at)
                if found is not None:
                    return found
                raise
            finally:
                self._offers.invalidate(choice.service, choice.country)
        price = order.price or current.price
        stored = await self._orders.create(
            user_id, order, self._pricing.user_price(price), self._clock.now()
        )
        log.info(
            "user %s bought %s order %s (%s)", user_id, provider.id, order.order_id, order.kind
        )
        return stored

    async def _remaining(self, choice: OfferChoice) -> OffersResult:
        return await self._offers.offers(choice.service, choice.country, fresh=True)

    async def _known_remote_ids(self, provider: Provider) -> frozenset[str] | None:
        """Before a purchase: the provider's current order ids, to spot a lost answer's order."""
        if Capability.LIST_ORDERS not in provider.capabilities:
            return None
        try:
            return frozenset(o.order_id for o in await provider.list_orders())
        except Exception:  # reconciliation is best effort; the purchase must not depend on it
            log.warning("could not list %s orders before a purchase", provider.id, exc_info=True)
            return None

    async def _reconcile(
        self,
        user_id: int,
        provider: Provider,
        choice: OfferChoice,
        known: frozenset[str] | None,
        asked_at: datetime,
    ) -> StoredOrder | None:
        """After a lost answer: exactly one new active order of that kind, service and country,
        and not stored already (another user's purchase that completed meanwhile), is ours."""
        if known is None:
            log.error("%s purchase outcome unknown for user %s", provider.id, user_id)
            return None
        try:
            remote = await provider.list_orders()
        except Exception:
            log.error("%s purchase outcome unknown; listing failed", provider.id, exc_info=True)
            return None
        new = [
            o
            for o in remote
            if o.order_id not in known
            and o.kind == choice.kind
            and o.status not in (RemoteStatus.CANCELLED, RemoteStatus.EXPIRED)
            and o.service in (None, choice.service)
            and o.country in (None, choice.country)
            and await self._orders.get_by_provider(provider.id, o.order_id) is None
        ]
        if len(new) != 1:
            log.error(
                "%s purchase outcome unknown for user %s: %d candidate orders",
                provider.id,
                user_id,
                len(new),
            )
            return None
        found = new[0]
        expires_at = found.expires_at
        if expires_at is None and choice.duration_hours:
            # The list does not tell the end: the rental began after we asked, so this is the
            # earliest it can end (never promise more time than there is).
            expires_at = asked_at + timedelta(hours=choice.duration_hours)
        order = Order(
            provider=provider.id,
            order_id=found.order_id,
            kind=found.kind,
            phone=found.phone,
            service=found.service or choice.service,
            country=found.country or choice.country,
            price=choice.price,
            expires_at=expires_at,
            duration_hours=choice.duration_hours,
        )
        log.warning("%s purchase answer lost; found order %s", provider.id, found.order_id)
        return await self._orders.create(
            user_id, order, self._pricing.user_price(choice.price), self._clock.now()
        )
