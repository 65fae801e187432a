"""Which orders someone is waiting on: *hot* ones are polled every round, the others rarely.

An order is hot:

* while it is an activation that has no SMS yet (its user waits for the code);
* for ``hot_for`` after it was bought, after its latest SMS was stored, and after its user last
  opened its card or pressed a button on it (:meth:`Heat.touch`, called by the handlers);
* for ``hot_for`` before each rental reminder and before the rental's end (the user is about to
  look at it, and the bot should know its state then).

Everything else (a rental nobody looks at) is cold. :meth:`Heat.touch` is kept in memory only:
after a restart the purchase and SMS times (both in the database) still count.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.domain import OrderKind
from storage.models import StoredOrder


class Heat:
    def __init__(
        self,
        clock: Clock,
        hot_for: timedelta = timedelta(minutes=10),
        reminders: Sequence[timedelta] = (),
    ) -> None:
        self._clock = clock
        self.hot_for = hot_for
        # the end itself is a moment worth knowing about, as each reminder is
        self._leads = tuple(sorted({*reminders, timedelta()}))
        self._touched: dict[int, datetime] = {}

    def touch(self, order_id: int) -> None:
        """The user looks at the order or acts on it: poll it every round for a while."""
        now = self._clock.now()
        self._touched[order_id] = now
        if len(self._touched) > 1000:  # forget what went cold
            self._touched = {k: v for k, v in self._touched.items() if now - v < self.hot_for}

    def touched_at(self, order_id: int) -> datetime | None:
        return self._touched.get(order_id)

    def is_hot(
        self,
        order: StoredOrder,
        now: datetime,
        *,
        sms_count: int = 0,
        last_sms_at: datetime | None = None,
    ) -> bool:
        if order.kind is OrderKind.ACTIVATION and sms_count == 0:
            return True
        recent = (order.created_at, last_sms_at, self._touched.get(order.id))
        if any(at is not None and now - at < self.hot_for for at in recent):
            return True
        if order.kind is OrderKind.RENTAL and order.expires_at is not None:
            for lead in self._leads:
                until = order.expires_at - lead - now  # time left before this reminder
                if timedelta() <= until <= self.hot_for:
                    return True
        return False
