"""Every enabled provider's offers for a (service, country), on one price scale, cheapest first.

Providers are asked concurrently; one that fails is reported, the others still answer. Results
are cached for a short time, and concurrent requests for the same pair share one round of calls.
:meth:`OfferService.within` gives what answered within a deadline (naming the providers still
asked) while the round goes on; the complete result is cached when the last one answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

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
    # Providers not answered yet (a result from :meth:`OfferService.within`, never cached).
    pending: tuple[str, ...] = ()


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


def layout(
    offers: Sequence[PricedOffer], per_section: int = 15, *, best: PricedOffer | None = None
) -> OffersLayout:
    """Arrange ``offers`` for the screen: at most ``per_section`` rows per kind (in order).
    ``best`` is the pick to put on top (how offers deliver: ``offer_stats``); by default the
    cheapest in stock."""
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

    if best is None or best not in offers:
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


ALERT_SHARE = Decimal("0.8")  # "notify me under": this share of the cheapest offer


def lower_price(price: Money, share: Decimal = ALERT_SHARE) -> Money | None:
    """A price worth waiting for below ``price``: ``share`` of it, rounded down to two
    significant digits and whole cents ($4.50 -> $3.60, $0.40 -> $0.32, 455 RUB -> 360 RUB);
    None when nothing sensible is lower."""
    amount = price.amount * share
    if not amount.is_finite() or amount <= 0:
        return None
    step = max(Decimal(1).scaleb(amount.adjusted() - 1), Decimal("0.01"))  # whole cents
    rounded = amount.quantize(step, rounding=ROUND_DOWN)
    if step >= 1:
        rounded = Decimal(int(rounded))  # 360, not 3.6E+2
    return Money(rounded, price.currency) if 0 < rounded < price.amount else None


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
        self._inflight: dict[tuple[str, str], _Round] = {}

    async def offers(self, service: str, country: str, *, fresh: bool = False) -> OffersResult:
        """Every provider's answer (cached; else one round of calls, shared)."""
        key = (service, country.upper())
        cached = None if fresh else self._cached(key)
        if cached is not None:
            return cached
        return self._store(key, await asyncio.shield(self._round(key).done))

    async def within(
        self, service: str, country: str, deadline: float, *, fresh: bool = False
    ) -> OffersResult:
        """What the providers answered within ``deadline`` seconds: the complete result when
        all did, else the offers of those that did, ``pending`` naming the others (the round
        goes on; :meth:`offers` then waits for the rest, and the last answer is cached)."""
        key = (service, country.upper())
        cached = None if fresh else self._cached(key)
        if cached is not None:
            return cached
        current = self._round(key)
        await asyncio.wait([current.done], timeout=deadline)
        if current.done.done():
            return self._store(key, current.done.result())
        answered = {pid: call for pid, call in current.calls.items() if call.done()}
        pending = tuple(pid for pid in current.calls if pid not in answered)
        partial = self._assemble(
            key[0], key[1], {pid: _outcome(call) for pid, call in answered.items()}
        )
        return OffersResult(
            partial.service,
            partial.country,
            partial.offers,
            partial.failures,
            fetched_at=partial.fetched_at,
            pending=pending,
        )

    def _cached(self, key: tuple[str, str]) -> OffersResult | None:
        cached = self._cache.get(key)
        if (
            cached is not None
            and cached.fetched_at is not None
            and self._clock.now() - cached.fetched_at
            < (self._failed_ttl if cached.failures else self._ttl)
        ):
            self._cache.move_to_end(key)
            return cached
        return None

    def _store(self, key: tuple[str, str], result: OffersResult) -> OffersResult:
        self._cache[key] = result
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return result

    def _round(self, key: tuple[str, str]) -> _Round:
        """The round of calls in flight for the pair, or a new one."""
        current = self._inflight.get(key)
        if current is not None:
            return current
        service, country = key
        calls = {
            pid: asyncio.create_task(provider.offers(service, country))
            for pid, provider in self._providers.items()
        }
        done = asyncio.create_task(self._collect(service, country, calls))
        current = _Round(calls, done)
        self._inflight[key] = current
        done.add_done_callback(lambda _: self._inflight.pop(key, None))
        # The complete result is kept even when nobody waits for it any more (a tap that
        # showed what answered within its deadline and then moved on).
        done.add_done_callback(lambda task: self._keep(key, task))
        return current

    def _keep(self, key: tuple[str, str], task: asyncio.Task[OffersResult]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._store(key, task.result())

    async def refresh(
        self, service: str, country: str, deadline: float | None = None
    ) -> OffersResult:
        """What a Refresh tap shows: asked of the providers again, unless the list is younger
        than ``refresh_floor_seconds`` (taps in a row, or other users just refreshed it).
        With a ``deadline``, what answered within it (as :meth:`within`)."""
        cached = self._cache.get((service, country.upper()))
        if (
            cached is not None
            and cached.fetched_at is not None
            and not cached.failures
            and self._clock.now() - cached.fetched_at < self._refresh_floor
        ):
            return cached
        if deadline is not None:
            return await self.within(service, country, deadline, fresh=True)
        return await self.offers(service, country, fresh=True)

    def _display(self, price: Money) -> Money:
        if self._user_price is not None:
            return self._user_price(price)
        return self._converter.to_display(price).quantize(4)

    def now(self) -> datetime:
        return self._clock.now()

    def invalidate(self, service: str, country: str) -> None:
        self._cache.pop((service, country.upper()), None)

    async def _collect(
        self, service: str, country: str, calls: Mapping[str, asyncio.Task[list[Offer]]]
    ) -> OffersResult:
        answers = await asyncio.gather(*calls.values(), return_exceptions=True)
        result = self._assemble(service, country, dict(zip(calls, answers, strict=True)))
        if self._on_fresh is not None:
            try:
                self._on_fresh(result)
            except Exception:  # an observer never breaks the offers
                log.exception("offers observer failed")
        return result

    def _assemble(
        self, service: str, country: str, answers: Mapping[str, list[Offer] | BaseException]
    ) -> OffersResult:
        priced: list[PricedOffer] = []
        failures: list[ProviderFailure] = []
        for pid, answer in answers.items():
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
        return OffersResult(
            service, country, tuple(priced), tuple(failures), fetched_at=self._clock.now()
        )


@dataclass(frozen=True, slots=True)
class _Round:
    """One round of calls for a pair: a task per provider, and the result of them all."""

    calls: Mapping[str, asyncio.Task[list[Offer]]]
    done: asyncio.Task[OffersResult]


def _outcome(call: asyncio.Task[list[Offer]]) -> list[Offer] | BaseException:
    """A finished call's offers, or what it raised."""
    error = call.exception()
    return error if error is not None else call.result()
