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
import heapq
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.services.heat import Heat
from storage.messages import SmsSummary
from storage.models import StoredOrder

log = logging.getLogger(__name__)


class RateCap:
    """At most ``rate`` requests a second at the provider, in *any* second, however late a
    request leaves or is answered: ``n`` permits (the whole part of the rate, at least 1), each
    held from a request's start until ``window`` (``max(1 s, n / rate)``) after its answer.

    The provider sees a request somewhere between its start here and its answer (a busy event
    loop, a new connection or the network move it within that span), so a window of starts
    alone lets more than ``n`` fall in one second at the provider (measured: 20 at a cap of
    13 when a first batch left 150 ms late). With the permit kept until ``window`` after the
    answer, any ``n + 1`` requests seen within one window would all hold a permit at its end:
    impossible. The price is throughput: ``n / (window + latency)`` instead of ``n / window``.

    Real time by default: it paces requests over the network. At debug level each start is
    logged with its ``time.monotonic()`` (the benchmark compares them with the arrivals)."""

    def __init__(
        self,
        rate: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        name: str = "",
    ) -> None:
        self.name = name
        self._n = max(1, math.floor(rate))
        self._window = max(1.0, self._n / rate)
        self._monotonic = monotonic
        self._sleep = sleep
        self._busy = 0  # requests started and not answered yet
        self._cooling: list[float] = []  # heap: when each answered request's permit comes back
        self._answered = asyncio.Event()
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        async with self._lock:  # one waiter at a time: first come, first served
            while True:
                now = self._monotonic()
                while self._cooling and self._cooling[0] <= now:
                    heapq.heappop(self._cooling)
                if self._busy + len(self._cooling) < self._n:
                    self._busy += 1
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("request start %s %.6f", self.name, now)
                    return
                if self._cooling:
                    await self._sleep(max(self._cooling[0] - now, 0.001))
                else:  # every permit is on a request still out: wait for an answer
                    self._answered.clear()
                    await self._answered.wait()

    async def __aexit__(self, *exc: object) -> None:
        self._busy -= 1
        heapq.heappush(self._cooling, self._monotonic() + self._window)
        self._answered.set()


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
