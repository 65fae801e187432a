"""Every enabled provider's offers for a (service, country), on one price scale, cheapest first.

Providers are asked concurrently; one that fails is reported, the others still answer. Results
are cached for a short time, and concurrent requests for the same pair share one round of calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import SYSTEM_CLOCK, Clock
from bot.money import CurrencyConverter, MissingExchangeRate, Money
from bot.providers.base import Offer, OrderKind, Provider, ProviderError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PricedOffer:
    offer: Offer
    display_price: Money


def offer_token(offer: Offer) -> str:
    """A short, stable name for an offer (kind, duration and provider ref), for callback data."""
    key = f"{offer.provider}|{offer.kind}|{offer.duration_hours or 0}|{offer.ref}"
    return hashlib.blake2s(key.encode(), digest_size=6).hexdigest()


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    provider: str
    error: ProviderError | MissingExchangeRate


@dataclass(frozen=True, slots=True)
class OffersResult:
    service: str
    country: str
    offers: tuple[PricedOffer, ...]
    failures: tuple[ProviderFailure, ...] = ()
    fetched_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class OfferRow:
    """One offer as a buyer sees it. ``option`` numbers the offers of one provider that look
    alike (same kind, duration and "virtual" or not): only the adapter's ref tells them apart."""

    priced: PricedOffer
    option: int | None = None


@dataclass(frozen=True, slots=True)
class OffersLayout:
    """The offers screen: the best pick on top, then activations (cheapest first), then
    rentals (shortest first, cheapest first within a length). The best pick is not repeated
    in its section; ``hidden`` counts rows left out."""

    best: OfferRow | None
    activations: tuple[OfferRow, ...]
    rentals: tuple[OfferRow, ...]
    hidden: int = 0

    @property
    def rows(self) -> tuple[OfferRow, ...]:
        return (*((self.best,) if self.best else ()), *self.activations, *self.rentals)


def _look(offer: Offer) -> tuple[str, OrderKind, int, bool]:
    return offer.provider, offer.kind, offer.duration_hours or 0, offer.virtual


def best_offer(offers: Sequence[PricedOffer]) -> PricedOffer | None:
    """The cheapest offer in stock: with a stock the provider told, if any has one."""
    told = [p for p in offers if p.offer.stock]
    candidates = told or list(offers)
    return min(candidates, key=sort_key) if candidates else None


def layout(offers: Sequence[PricedOffer], per_section: int = 15) -> OffersLayout:
    """Arrange ``offers`` for the screen: at most ``per_section`` rows per kind (in order)."""
    looks: dict[tuple[str, OrderKind, int, bool], list[str]] = {}
    for priced in offers:
        refs = looks.setdefault(_look(priced.offer), [])
        if priced.offer.ref not in refs:
            refs.append(priced.offer.ref)
    for refs in looks.values():
        refs.sort()  # numbered by ref, so "option 2" stays the same offer after a refresh

    def row(priced: PricedOffer) -> OfferRow:
        refs = looks[_look(priced.offer)]
        return OfferRow(priced, refs.index(priced.offer.ref) + 1 if len(refs) > 1 else None)

    best = best_offer(offers)
    rest = sorted((p for p in offers if p is not best), key=sort_key)
    activations = [row(p) for p in rest if p.offer.kind is OrderKind.ACTIVATION]
    # Rentals by length, then cheapest first: "who is cheapest for 7 days" is one glance.
    rentals = [
        row(p)
        for p in sorted(rest, key=lambda p: (p.offer.duration_hours or 0, *sort_key(p)))
        if p.offer.kind is not OrderKind.ACTIVATION
    ]
    hidden = max(0, len(activations) - per_section) + max(0, len(rentals) - per_section)
    return OffersLayout(
        row(best) if best is not None else None,
        tuple(activations[:per_section]),
        tuple(rentals[:per_section]),
        hidden,
    )


def sort_key(priced: PricedOffer) -> tuple[object, ...]:
    """Cheapest first; then activations before rentals, shorter rentals first, larger stock."""
    offer = priced.offer
    return (
        priced.display_price.amount,
        offer.kind != "activation",
        offer.duration_hours or 0,
        -(offer.stock or 0),
        offer.provider,
    )


class OfferService:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        converter: CurrencyConverter,
        *,
        clock: Clock = SYSTEM_CLOCK,
        cache_seconds: float = 30.0,
        failed_cache_seconds: float = 5.0,
        user_price: Callable[[Money], Money] | None = None,
        on_fresh: Callable[[OffersResult], None] | None = None,
        max_cached: int = 1024,
        refresh_floor_seconds: float = 5.0,
    ) -> None:
        """``user_price`` turns a provider price into what users pay (the bot's markup);
        without it, offers carry the exact display-currency price (the operator CLI).
        ``on_fresh`` sees every result fetched from the providers (price alerts)."""
        self._refresh_floor = timedelta(seconds=refresh_floor_seconds)
        self._on_fresh = on_fresh
        self._providers = providers
        self._converter = converter
        self._clock = clock
        self._user_price = user_price
        self._ttl = timedelta(seconds=cache_seconds)
        # A result with a failed provider is kept briefly, so one 5xx doesn't hide it for long.
        self._failed_ttl = timedelta(seconds=min(cache_seconds, failed_cache_seconds))
        # Bounded: least recently used pairs go first, whatever pairs are asked for.
        self._cache: OrderedDict[tuple[str, str], OffersResult] = OrderedDict()
        self._max_cached = max_cached
        self._inflight: dict[tuple[str, str], asyncio.Task[OffersResult]] = {}

    async def offers(self, service: str, country: str, *, fresh: bool = False) -> OffersResult:
        key = (service, country.upper())
        cached = self._cache.get(key)
        if (
            not fresh
            and cached is not None
            and cached.fetched_at is not None
            and self._clock.now() - cached.fetched_at
            < (self._failed_ttl if cached.failures else self._ttl)
        ):
            self._cache.move_to_end(key)
            return cached
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(*key))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        result = await asyncio.shield(task)
        self._cache[key] = result
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return result

    async def refresh(self, service: str, country: str) -> OffersResult:
        """What a Refresh tap shows: asked of the providers again, unless the list is younger
        than ``refresh_floor_seconds`` (taps in a row, or other users just refreshed it)."""
        cached = self._cache.get((service, country.upper()))
        if (
            cached is not None
            and cached.fetched_at is not None
            and not cached.failures
            and self._clock.now() - cached.fetched_at < self._refresh_floor
        ):
            return cached
        return await self.offers(service, country, fresh=True)

    def _display(self, price: Money) -> Money:
        if self._user_price is not None:
            return self._user_price(price)
        return self._converter.to_display(price).quantize(4)

    def now(self) -> datetime:
        return self._clock.now()

    def invalidate(self, service: str, country: str) -> None:
        self._cache.pop((service, country.upper()), None)

    async def _fetch(self, service: str, country: str) -> OffersResult:
        ids = list(self._providers)
        answers = await asyncio.gather(
            *(self._providers[pid].offers(service, country) for pid in ids),
            return_exceptions=True,
        )
        priced: list[PricedOffer] = []
        failures: list[ProviderFailure] = []
        for pid, answer in zip(ids, answers, strict=True):
            if isinstance(answer, ProviderError):
                log.warning("offers from %s failed: %s", pid, answer)
                failures.append(ProviderFailure(pid, answer))
                continue
            if isinstance(answer, BaseException):
                raise answer  # a bug, not a provider failure: let it surface
            try:
                priced.extend(
                    PricedOffer(o, self._display(o.price))
                    for o in answer
                    if o.stock != 0  # out of stock is not an offer; None means "not told"
                )
            except MissingExchangeRate as exc:
                log.error("offers from %s cannot be priced: %s", pid, exc)
                failures.append(ProviderFailure(pid, exc))
        priced.sort(key=sort_key)
        result = OffersResult(
            service, country, tuple(priced), tuple(failures), fetched_at=self._clock.now()
        )
        if self._on_fresh is not None:
            try:
                self._on_fresh(result)
            except Exception:  # an observer never breaks the offers
                log.exception("offers observer failed")
        return result
