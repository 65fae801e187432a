"""Alerts ("tell me when"): a user asks to hear once when a (service, country) with no
numbers gets some, or when an offer there gets under a price in the display currency.

:meth:`StockAlertService.tick` runs on a slow cadence: for the pairs with pending alerts (the
least recently checked first, a bounded number per round) it asks the offers service, and for
each alert the offers now satisfy it claims the alert (``StockAlertsRepo.fire``, a conditional
update: two processes never both fire one) and only then sends, through the callable the app
attaches. The offer named is the best pick among those that satisfy the alert (how well they
deliver, :mod:`bot.services.offer_stats`), else the cheapest.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bot.clock import Clock
from bot.money import Money
from bot.services.loop import repeat
from bot.services.offer_stats import OfferStatsService, pick
from bot.services.offers import OfferService, PricedOffer
from bot.services.replicas import OneReplica
from storage.stock_alerts import StockAlert, StockAlertsRepo, TooManyAlerts

log = logging.getLogger(__name__)

SendAlert = Callable[[StockAlert, PricedOffer], Awaitable[bool]]
MAX_UNDER = Decimal(1_000_000)  # a "when under" price above this is not a wish but a typo


class Created(enum.StrEnum):
    CREATED = "created"
    EXISTS = "exists"  # the same alert is pending already
    TOO_MANY = "too_many"


@dataclass(frozen=True, slots=True)
class CreateResult:
    outcome: Created
    alert: StockAlert | None = None


def satisfies(alert: StockAlert, priced: PricedOffer) -> bool:
    """Whether the offer is what the alert waits for (in stock; under its price)."""
    if alert.max_price is None:
        return True  # out-of-stock offers are never listed (OfferService leaves them out)
    price = priced.display_price
    return price.currency == alert.max_price.currency and price.amount <= alert.max_price.amount


class StockAlertService:
    def __init__(
        self,
        repo: StockAlertsRepo,
        offers: OfferService,
        clock: Clock,
        *,
        currency: str,
        interval: float = 300.0,
        lifetime: timedelta = timedelta(days=7),
        per_user: int = 10,
        pairs_per_tick: int = 50,
        keep_fired: timedelta = timedelta(days=30),
        ranking: OfferStatsService | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        one_replica: OneReplica | None = None,
    ) -> None:
        self._one_replica = one_replica  # replicas: one does a round at a time
        self._repo = repo
        self._offers = offers
        self._clock = clock
        self.currency = currency
        self.interval = interval
        self.lifetime = lifetime
        self.per_user = per_user
        self._pairs_per_tick = pairs_per_tick
        self._keep_fired = keep_fired
        self._ranking = ranking
        self._sleep = sleep
        self._send: SendAlert | None = None
        self._stopping = asyncio.Event()

    def attach(self, send: SendAlert) -> None:
        """How a fired alert reaches its user (the bot exists only after this service)."""
        self._send = send

    def valid_under(self, amount: Decimal) -> bool:
        return amount.is_finite() and 0 < amount <= MAX_UNDER

    async def create(
        self, user_id: int, service: str, country: str, under: Money | None = None
    ) -> CreateResult:
        """Ask to be told when the pair has numbers (``under`` None) or an offer at most
        ``under`` (in the display currency)."""
        if under is not None and (
            under.currency != self.currency or not self.valid_under(under.amount)
        ):
            raise ValueError(f"an alert price is a positive amount in {self.currency}")
        now = self._clock.now()
        try:
            alert, created = await self._repo.add(
                user_id,
                service,
                country.upper(),
                under,
                now,
                now + self.lifetime,
                limit=self.per_user,
            )
        except TooManyAlerts:
            return CreateResult(Created.TOO_MANY)
        return CreateResult(Created.CREATED if created else Created.EXISTS, alert)

    async def pending(self, user_id: int) -> list[StockAlert]:
        return await self._repo.pending_for_user(user_id, self._clock.now())

    async def remove(self, user_id: int, alert_id: int) -> bool:
        return await self._repo.remove(alert_id, user_id)

    async def run(self) -> None:
        """A round now and every ``interval`` until :meth:`stop`."""
        try:
            await repeat(self.tick, lambda: self.interval, self._stopping, self._sleep, "alerts")
        finally:
            if self._one_replica is not None:
                await self._one_replica.release("stock_alerts")

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> int:
        """One round; returns how many alerts this round fired."""
        if self._one_replica is not None and not await self._one_replica.holds(
            "stock_alerts", self.interval
        ):
            return 0  # another replica does this round
        if self._send is None:
            return 0  # nothing fires that could not be sent
        now = self._clock.now()
        await self._repo.purge(now, now - self._keep_fired)
        fired = 0
        for service, country in await self._repo.due_pairs(now, self._pairs_per_tick):
            try:
                fired += await self._check(service, country)
            except Exception:  # one pair's failure never stops the others' alerts
                log.exception("alerts for %s/%s could not be checked", service, country)
        return fired

    async def _check(self, service: str, country: str) -> int:
        result = await self._offers.offers(service, country)
        now = self._clock.now()
        await self._repo.checked(service, country, now)
        fired = 0
        for alert in await self._repo.pending_for_pair(service, country, now):
            matching = [p for p in result.offers if satisfies(alert, p)]
            if not matching:
                continue
            chosen = await self._choose(matching)
            if not await self._repo.fire(alert.id, now):
                continue  # another check (another process) fired it
            fired += 1
            assert self._send is not None
            try:
                sent = await self._send(alert, chosen)
            except Exception:
                log.exception("alert %d could not be sent", alert.id)
                continue
            if not sent:
                log.info("alert %d fired; Telegram did not take the message", alert.id)
        return fired

    async def _choose(self, offers: Sequence[PricedOffer]) -> PricedOffer:
        return await pick(self._ranking, offers)
