"""The admins' daily summary: yesterday's orders, codes and money, and the offers that deliver
best and worst, sent once a day at ``hour`` (UTC) to the admins who turned it on.

A day's summary is due from ``hour`` o'clock that day until the next day's is due: a bot that
was down at the hour sends it when it runs again that day. :meth:`DailySummary.tick` claims
each admin's day in the database before sending (``AdminSummariesRepo.claim``, a conditional
update), so a restart, a second process or a repeated tick never sends it twice; a message
Telegram refuses is logged, not retried. Turning the summary on after the hour counts that
day as sent: the first summary comes at the next hour.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bot.clock import Clock
from bot.services.loop import repeat
from bot.services.offer_stats import DeliveryTable, OfferStatsService
from bot.services.replicas import OneReplica
from storage.admin_summaries import AdminSummariesRepo
from storage.stats import Stats, StatsRepo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Summary:
    day: date  # the day the figures are of (UTC): the one before the summary is sent
    stats: Stats  # orders, codes and money of that day
    table: DeliveryTable  # the offers that deliver best and worst now


SendSummary = Callable[[int, Summary], Awaitable[bool]]


class DailySummary:
    def __init__(
        self,
        repo: AdminSummariesRepo,
        stats: StatsRepo,
        offer_stats: OfferStatsService,
        clock: Clock,
        *,
        admins: frozenset[int],
        hour: int = 9,
        interval: float = 60.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        one_replica: OneReplica | None = None,
    ) -> None:
        self._one_replica = one_replica  # replicas: one does a round at a time
        if not 0 <= hour <= 23:
            raise ValueError("hour must be within 0..23")
        self._repo = repo
        self._stats = stats
        self._offer_stats = offer_stats
        self._clock = clock
        self.admins = admins
        self.hour = hour
        self.interval = interval
        self._sleep = sleep
        self._send: SendSummary | None = None
        self._stopping = asyncio.Event()

    def attach(self, send: SendSummary) -> None:
        """How a summary reaches an admin (the app renders it in the admin's language)."""
        self._send = send

    def due_day(self, now: datetime) -> date:
        """The latest day whose summary is due at ``now``: today from the hour on, else
        yesterday."""
        today = now.astimezone(UTC).date()
        return today if now.astimezone(UTC).hour >= self.hour else today - timedelta(days=1)

    async def enabled(self, admin_id: int) -> bool:
        return await self._repo.enabled(admin_id)

    async def set_enabled(self, admin_id: int, enabled: bool) -> None:
        now = self._clock.now()
        await self._repo.set_enabled(admin_id, enabled, now, done=self.due_day(now))

    async def summary(self, day: date) -> Summary:
        """The figures of ``day`` (UTC) and the delivery table as it is now."""
        since = datetime.combine(day, time(), tzinfo=UTC)
        stats = await self._stats.stats(since, since + timedelta(days=1))
        return Summary(day, stats, await self._offer_stats.table())

    async def tick(self) -> int:
        """Send the due summary to each admin who wants it and has not had it; returns how
        many were sent."""
        if self._one_replica is not None and not await self._one_replica.holds(
            "daily_summary", self.interval
        ):
            return 0  # another replica does this round
        if self._send is None:
            return 0  # nothing is claimed that could not be sent
        now = self._clock.now()
        if now.astimezone(UTC).hour < self.hour:
            return 0  # today's is not due yet; yesterday's went (or was missed) yesterday
        due = now.astimezone(UTC).date()
        waiting = await self._repo.pending(self.admins, due)
        if not waiting:
            return 0
        summary = await self.summary(due - timedelta(days=1))  # before any day is claimed
        sent = 0
        for admin_id in waiting:
            if not await self._repo.claim(admin_id, due, now):
                continue  # another process (or an earlier round) took it
            if await self._send(admin_id, summary):
                sent += 1
            else:
                log.warning("daily summary of %s not delivered to admin %s", due, admin_id)
        return sent

    async def run(self) -> None:
        """A round now and every ``interval`` until :meth:`stop`."""
        try:
            await repeat(self.tick, lambda: self.interval, self._stopping, self._sleep, "summary")
        finally:
            if self._one_replica is not None:
                await self._one_replica.release("daily_summary")

    def stop(self) -> None:
        self._stopping.set()
