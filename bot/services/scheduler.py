"""What one provider's polling round asks: hot orders every round, cold ones in turn, the cap kept.

Pure functions over the orders, the clock's time and what the watcher remembers; no I/O, so
tests can check the plan directly and through the watcher with a fake clock.

A round has a *budget*: the requests the provider's rate cap allows in one interval
(``POLL_RATE × POLL_INTERVAL``). Hot orders are always asked (they are what users wait for;
the rate limiter still paces them, so a round with more hot orders than the budget only takes
longer); cold orders whose turn came (not asked for ``POLL_COLD_INTERVAL``) fill what is left
of the budget, those waiting longest first, and the rest wait for a later round.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.services.heat import Heat
from storage.messages import SmsSummary
from storage.models import StoredOrder


class RateCap:
    """At most ``rate`` requests a second, in *any* second: a sliding window of ``n`` starts
    (the whole part of the rate, at least 1) in ``max(1 s, n / rate)``, stretched by ``margin``
    so that the provider, which sees the requests a little jittered, never counts more. Real
    time by default: it paces requests over the network."""

    def __init__(
        self,
        rate: float,
        *,
        margin: float = 0.05,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._n = max(1, math.floor(rate))
        self._window = max(1.0, self._n / rate) * (1 + margin)
        self._monotonic = monotonic
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        async with self._lock:
            while True:
                now = self._monotonic()
                while self._starts and self._starts[0] + self._window <= now:
                    self._starts.popleft()
                if len(self._starts) < self._n:
                    self._starts.append(now)
                    return
                await self._sleep(max(self._starts[0] + self._window - now, 0.001))

    async def __aexit__(self, *exc: object) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Planned:
    order: StoredOrder
    hot: bool


def budget(rate: float, interval: float) -> int:
    """Requests one round may make at a provider: what its cap allows in one interval."""
    return max(1, math.floor(rate * interval))


def is_hot(
    order: StoredOrder, now: datetime, heat: Heat, summaries: Mapping[int, SmsSummary]
) -> bool:
    summary = summaries.get(order.id)
    return heat.is_hot(
        order,
        now,
        sms_count=summary.count if summary else 0,
        last_sms_at=summary.latest_stored_at if summary else None,
    )


def plan_round(
    orders: Iterable[StoredOrder],
    now: datetime,
    heat: Heat,
    summaries: Mapping[int, SmsSummary],
    last_polled: Mapping[int, datetime],
    *,
    cold_every: timedelta,
    budget: int,
) -> list[Planned]:
    """The orders to ask this round, hot ones first (each group: asked longest ago first)."""
    hot: list[StoredOrder] = []
    cold: list[StoredOrder] = []
    for order in orders:
        if is_hot(order, now, heat, summaries):
            hot.append(order)
            continue
        asked = last_polled.get(order.id)
        if asked is None or now - asked >= cold_every:
            cold.append(order)

    def waited(order: StoredOrder) -> tuple[bool, datetime, int]:
        asked = last_polled.get(order.id)
        return asked is not None, asked or order.created_at, order.id

    hot.sort(key=waited)
    cold.sort(key=waited)
    room = max(0, budget - len(hot))
    return [Planned(o, True) for o in hot] + [Planned(o, False) for o in cold[:room]]
