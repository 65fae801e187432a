"""Buying an offer: the server's price, re-checked, bought once, written ahead.

The offers screen shows prices; a Buy button names a *quote* (kept server-side: the offer and
the price the user was shown), never a price. Right before buying, the offer is looked up again
at its provider: gone, dearer or in another currency, nothing is bought and the user is asked
again. The user pays exactly the quote's price; that is the price the order stores.

Every purchase is written ahead (:mod:`storage.intents`): the intent and the user's hold are one
transaction before the provider is called, the order and the capture one transaction after its
answer; a definite refusal releases the hold. A lost answer leaves the intent open: it is looked
for at once in the provider's order list (where the provider lists that kind), and otherwise
left to the :mod:`reconciler <bot.services.reconcile>`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Hashable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from bot.clock import SYSTEM_CLOCK, Clock
from bot.failpoints import crash_point
from bot.logs import log_context
from bot.metrics import NO_METRICS, Metrics, kind_of
from bot.money import Money
from bot.providers.base import (
    Capability,
    Offer,
    Order,
    Provider,
    ProviderError,
    PurchaseOutcomeUnknown,
    RemoteOrder,
    RemoteStatus,
)
from bot.services.billing import FREE, Billing
from bot.services.guard import Guard, LocalLocks, Locks, OnceGuard
from bot.services.offers import OfferService, OffersResult, PricedOffer
from bot.services.wallet import NotEnoughBalance
from storage.intents import Intent, IntentAction, IntentsRepo, Purpose
from storage.models import StoredOrder
from storage.orders import OrdersRepo
from storage.quotes import Quote, QuotesRepo

log = logging.getLogger(__name__)
QUOTE_TTL = timedelta(minutes=15)  # a confirmation older than this is shown again


class PurchaseRefused(Exception):
    """Nothing was bought; ``remaining`` lists what is on offer now."""

    def __init__(self, remaining: OffersResult, provider: str = "") -> None:
        super().__init__(type(self).__name__)
        self.remaining = remaining
        self.provider = provider  # whose offer it was, where known


class OfferGone(PurchaseRefused):
    """The provider no longer sells this offer (no numbers, or the provider is disabled)."""


class QuoteInvalid(PurchaseRefused):
    """The Buy button names no quote of this user (forged, or forgotten after a long time)."""


class PriceRose(PurchaseRefused):
    """The provider's price is higher (or in another currency) than when the user confirmed:
    ``quote`` is the new price, for the user to confirm again."""

    def __init__(self, remaining: OffersResult, quote: Quote) -> None:
        super().__init__(remaining, quote.provider)
        self.quote = quote


class PurchaseUnconfirmed(Exception):
    """The provider's answer was lost and the order was not found (yet). Nothing is stored;
    the hold stays until the reconciler resolves the intent: by ``settles_by`` at the latest
    where the provider cannot list such orders."""

    def __init__(self, intent: Intent, *, listed: bool, settles_by: datetime) -> None:
        super().__init__("purchase unconfirmed")
        self.intent = intent
        self.listed = listed
        self.settles_by = settles_by


def matches(quote: Quote, offer: Offer) -> bool:
    return (
        offer.provider == quote.provider
        and offer.kind == quote.kind
        and (offer.duration_hours or None) == (quote.duration_hours or None)
        and offer.ref == quote.ref
    )


class PurchaseService:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        offers: OfferService,
        orders: OrdersRepo,
        intents: IntentsRepo,
        quotes: QuotesRepo,
        *,
        clock: Clock = SYSTEM_CLOCK,
        billing: Billing = FREE,
        guard: Guard[int] | None = None,
        locks: Locks | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        """Users ``billing`` charges pay for what they buy from their wallets. ``guard`` tells
        repeated taps apart and ``locks`` serialise purchases per provider: in this process
        unless given (Redis ones are shared by every replica)."""
        self._metrics = metrics
        self._providers = providers
        self._offers = offers
        self._orders = orders
        self._intents = intents
        self._quotes = quotes
        self._billing = billing
        self._clock = clock
        self.guard: Guard[int] = guard or OnceGuard()
        self._locks: Locks = locks or LocalLocks()  # one purchase at a time per provider

    async def quote(self, user_id: int, priced: PricedOffer) -> Quote:
        """Keep the price shown to ``user_id`` for this offer; the Buy button names it."""
        offer = priced.offer
        return await self._quotes.add(
            user_id,
            provider=offer.provider,
            service=offer.service,
            country=offer.country,
            kind=offer.kind,
            duration_hours=offer.duration_hours,
            ref=offer.ref,
            price=offer.price,
            display_price=priced.display_price,
            now=self._clock.now(),
        )

    async def get_quote(self, quote_id: str, user_id: int) -> Quote | None:
        return await self._quotes.get(quote_id, user_id)

    async def buy(self, user_id: int, quote_id: str, *, tap: Hashable) -> StoredOrder:
        """Buy the quoted offer once per ``tap``: repeats raise InProgress/AlreadyDone (and a
        second process's repeat raises QuoteUsed, from the database).

        Raises PurchaseRefused (nothing bought), NotEnoughBalance, a typed ProviderError
        (nothing bought, hold released) or PurchaseUnconfirmed (answer lost).
        """
        async with self.guard.once(tap):
            quote = await self._quotes.get(quote_id, user_id)
            if quote is None or self._clock.now() - quote.created_at > QUOTE_TTL:
                if quote is None:
                    raise QuoteInvalid(await self._nothing())
                raise QuoteInvalid(
                    await self._remaining(quote.service, quote.country), quote.provider
                )
            stored = await self._buy(user_id, quote)
            await self.guard.done(tap, stored.id)
            return stored

    async def _buy(self, user_id: int, quote: Quote) -> StoredOrder:
        provider = self._providers.get(quote.provider)
        if provider is None:
            raise OfferGone(await self._remaining(quote.service, quote.country), quote.provider)
        offers = await provider.offers(quote.service, quote.country)
        current = next((o for o in offers if matches(quote, o)), None)
        if current is None or current.stock == 0:
            raise OfferGone(await self._remaining(quote.service, quote.country), quote.provider)
        if (
            current.price.currency != quote.price.currency
            or current.price.amount > quote.price.amount
        ):
            remaining = await self._remaining(quote.service, quote.country)
            again = next(
                (p for p in remaining.offers if matches(quote, p.offer)),
                None,
            )
            if again is None:
                raise OfferGone(remaining, quote.provider)
            raise PriceRose(remaining, await self.quote(user_id, again))
        purpose = Purpose(
            provider=provider.id,
            service=quote.service,
            country=quote.country,
            kind=quote.kind,
            duration_hours=quote.duration_hours,
            ref=quote.ref,
            cost=current.price,
            display_price=quote.display_price,
        )
        listed = quote.kind in provider.listed_kinds
        # Where a lost answer is looked for in the provider's order list, purchases at that
        # provider go one at a time (in every replica, with Redis), so a new order in the list
        # is ours. Held before the intent: a lock that cannot be had leaves the quote unused.
        serial = self._locks.hold(provider.id) if listed else contextlib.nullcontext()
        async with serial, log_context(provider=provider.id):
            return await self._call(user_id, quote, provider, current, purpose, listed=listed)

    async def _call(
        self,
        user_id: int,
        quote: Quote,
        provider: Provider,
        current: Offer,
        purpose: Purpose,
        *,
        listed: bool,
    ) -> StoredOrder:
        """Written ahead: the intent and the hold, the provider's purchase, the order."""
        pays = self._billing.charges(user_id)
        intent = await self._intents.open(
            IntentAction.BUY, user_id, purpose, self._clock.now(), pays=pays, quote_id=quote.id
        )
        if intent is None:
            raise NotEnoughBalance(quote.display_price, await self._billing.balance(user_id))
        crash_point("after_hold")
        ceiling = quote.price if Capability.MAX_PRICE in provider.capabilities else None
        known = await self._known_remote_ids(provider) if listed else None
        try:
            order = await provider.buy(current, max_price=ceiling)
        except PurchaseOutcomeUnknown:
            found = await self.find_lost(provider, intent, known)
            if found is None:
                log.error("%s purchase outcome unknown (intent %s)", provider.id, intent.id)
                self._metrics.purchase(provider.id, quote.kind, "unconfirmed")
                raise PurchaseUnconfirmed(
                    intent,
                    listed=listed,
                    settles_by=intent.created_at + provider.unclaimed_window(quote.kind),
                ) from None
            order = found
        except ProviderError as exc:
            self._metrics.purchase(provider.id, quote.kind, kind_of(exc))  # no_numbers...
            await self._intents.failed(intent, f"refused: {exc}", self._clock.now())
            raise
        finally:
            self._offers.invalidate(quote.service, quote.country)
        crash_point("after_answer")
        if order.price is None:
            order = _with_price(order, current.price)
        stored = await self._intents.bought(intent, order, self._clock.now())
        self._metrics.purchase(provider.id, quote.kind, "bought")
        crash_point("after_commit")
        log.info(
            "user %s bought %s order %s (%s) for %s",
            user_id,
            provider.id,
            order.order_id,
            order.kind,
            quote.display_price,
        )
        return stored

    async def _remaining(self, service: str, country: str) -> OffersResult:
        return await self._offers.offers(service, country, fresh=True)

    async def _nothing(self) -> OffersResult:
        return OffersResult("", "", ())

    async def _known_remote_ids(self, provider: Provider) -> frozenset[str] | None:
        """Before a purchase: the provider's current order ids, to spot a lost answer's order."""
        try:
            return frozenset(o.order_id for o in await provider.list_orders())
        except Exception:  # best effort: the purchase must not depend on it
            log.warning("could not list %s orders before a purchase", provider.id, exc_info=True)
            return None

    async def find_lost(
        self, provider: Provider, intent: Intent, known: frozenset[str] | None
    ) -> Order | None:
        """Right after a lost answer: exactly one new order of the intent's kind, service and
        country, not stored already, is the one bought. None when unsure (the reconciler
        then decides later, from the full list)."""
        if known is None:
            return None
        try:
            remote = await provider.list_orders()
        except ProviderError as exc:
            log.warning("%s: listing after a lost answer failed: %s", provider.id, exc)
            return None
        new = [
            o
            for o in remote
            if o.order_id not in known
            and fits(intent, o)
            and await self._orders.get_by_provider(provider.id, o.order_id) is None
        ]
        if len(new) != 1:
            log.warning("%s lost answer: %d candidate orders", provider.id, len(new))
            return None
        log.warning("%s purchase answer lost; found order %s", provider.id, new[0].order_id)
        return order_from_listing(provider.id, intent, new[0])


def fits(intent: Intent, remote: RemoteOrder) -> bool:
    """Whether a listed order could be what ``intent`` bought."""
    return (
        remote.kind == intent.kind
        and remote.status not in (RemoteStatus.CANCELLED, RemoteStatus.EXPIRED)
        and remote.service in (None, intent.service)
        and remote.country in (None, intent.country)
        and (
            remote.created_at is None
            or remote.created_at >= intent.created_at - timedelta(minutes=1)
        )
    )


def order_from_listing(provider: str, intent: Intent, found: RemoteOrder) -> Order:
    """The Order a listed order stands for, completed with what the intent knew."""
    expires_at = found.expires_at
    if expires_at is None and intent.duration_hours:
        # The list does not tell the end: the rental began after the intent was written,
        # so this is the earliest it can end (never promise more time than there is).
        expires_at = intent.created_at + timedelta(hours=intent.duration_hours)
    return Order(
        provider=provider,
        order_id=found.order_id,
        kind=found.kind,
        phone=found.phone,
        service=found.service or intent.service,
        country=found.country or intent.country,
        price=intent.cost,
        expires_at=expires_at,
        duration_hours=intent.duration_hours,
    )


def _with_price(order: Order, price: Money) -> Order:
    return replace(order, price=price)
