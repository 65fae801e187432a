"""Tell the admins when a provider's prices are far outside the others' (a wrong account
currency misprices every offer of that provider): at most once a day per provider and offer."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from bot import texts
from bot.clock import Clock
from bot.services.messenger import Messenger
from bot.services.offers import OffersResult
from bot.services.pricecheck import outliers

log = logging.getLogger(__name__)
Key = tuple[str, str, str, str, int | None]


class PriceAlerts:
    def __init__(
        self,
        admins: frozenset[int],
        clock: Clock,
        *,
        every: timedelta = timedelta(days=1),
        remember: int = 10_000,
    ) -> None:
        self._messenger: Messenger | None = None
        self._admins = admins
        self._clock = clock
        self._every = every
        self._remember = remember
        self._sent: dict[Key, datetime] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, messenger: Messenger) -> None:
        """Where alerts go (the bot exists only after the offers service)."""
        self._messenger = messenger

    def check(self, result: OffersResult) -> None:
        """Called with every fresh offers result; the alert goes out in the background."""
        if self._messenger is None or not self._admins:
            return
        now = self._clock.now()
        for outlier in outliers(result):
            offer = outlier.offer.offer
            key = (offer.provider, offer.service, offer.country, offer.kind, offer.duration_hours)
            last = self._sent.get(key)
            if last is not None and now - last < self._every:
                continue
            if len(self._sent) >= self._remember:
                self._sent.clear()  # bounded: at worst an alert is repeated early
            self._sent[key] = now
            what = outlier.describe()
            log.warning("price outlier: %s", what)
            task = asyncio.create_task(self._tell(what))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _tell(self, what: str) -> None:
        assert self._messenger is not None
        try:
            await self._messenger.tell_all(
                self._admins, lambda: (texts.admin_price_outlier(what), None)
            )
        except Exception:
            log.exception("could not tell the admins about a price outlier")

    async def drain(self) -> None:
        """Wait for alerts under way (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
