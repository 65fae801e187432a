"""Alerts ("tell me when"): a user asks to hear once when a (service, country) has numbers, or
has an offer under a price in the display currency.

An alert is *pending* until it fires or lapses. :meth:`StockAlertsRepo.fire` is a conditional
UPDATE (``fired_at IS NULL``): of two checks racing on one alert, in one process or two, only
one gets True, and only that one sends the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.money import Money
from storage.codec import decode_money, decode_opt_time, decode_time, encode_money, encode_time
from storage.db import Database, Row


@dataclass(frozen=True, slots=True)
class StockAlert:
    id: int
    user_id: int
    service: str
    country: str
    max_price: Money | None  # None: any offer in stock
    created_at: datetime
    expires_at: datetime
    checked_at: datetime | None = None
    fired_at: datetime | None = None


class TooManyAlerts(Exception):
    """The user has as many pending alerts as allowed."""


def _alert(row: Row) -> StockAlert:
    return StockAlert(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        service=row["service"],
        country=row["country"],
        max_price=decode_money(row["max_price"], row["currency"]),
        created_at=decode_time(row["created_at"]),
        expires_at=decode_time(row["expires_at"]),
        checked_at=decode_opt_time(row["checked_at"]),
        fired_at=decode_opt_time(row["fired_at"]),
    )


class StockAlertsRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        user_id: int,
        service: str,
        country: str,
        max_price: Money | None,
        now: datetime,
        expires_at: datetime,
        *,
        limit: int,
    ) -> tuple[StockAlert, bool]:
        """A pending alert for the user's wish; the same wish pending already is returned as
        it is (False). Raises :class:`TooManyAlerts` at ``limit`` pending alerts."""
        price, currency = encode_money(max_price)
        async with self._db.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT * FROM stock_alerts WHERE user_id = ? AND fired_at IS NULL "
                "AND expires_at > ? ORDER BY id",
                (user_id, encode_time(now)),
            )
            for row in rows:
                same = _alert(row)
                if (same.service, same.country, same.max_price) == (service, country, max_price):
                    return same, False
            if len(rows) >= limit:
                raise TooManyAlerts(f"user {user_id} has {len(rows)} pending alerts")
            inserted = await tx.fetchone(
                "INSERT INTO stock_alerts (user_id, service, country, max_price, currency, "
                "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    user_id,
                    service,
                    country,
                    price,
                    currency,
                    encode_time(now),
                    encode_time(expires_at),
                ),
            )
        assert inserted is not None  # INSERT ... RETURNING returns its row
        return _alert(inserted), True

    async def get(self, alert_id: int) -> StockAlert | None:
        row = await self._db.fetchone("SELECT * FROM stock_alerts WHERE id = ?", (alert_id,))
        return None if row is None else _alert(row)

    async def pending_for_user(self, user_id: int, now: datetime) -> list[StockAlert]:
        """The user's alerts still waiting, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM stock_alerts WHERE user_id = ? AND fired_at IS NULL "
            "AND expires_at > ? ORDER BY id",
            (user_id, encode_time(now)),
        )
        return [_alert(row) for row in rows]

    async def remove(self, alert_id: int, user_id: int) -> bool:
        """Delete a pending alert of the user's; False for someone else's, a fired or a
        missing one."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "DELETE FROM stock_alerts WHERE id = ? AND user_id = ? AND fired_at IS NULL",
                (alert_id, user_id),
            )
        return changed == 1

    async def due_pairs(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """Pairs with pending alerts, the least recently checked first."""
        rows = await self._db.fetchall(
            "SELECT service, country FROM stock_alerts WHERE fired_at IS NULL AND expires_at > ? "
            "GROUP BY service, country ORDER BY MIN(COALESCE(checked_at, '')), service, country "
            "LIMIT ?",
            (encode_time(now), limit),
        )
        return [(row["service"], row["country"]) for row in rows]

    async def pending_for_pair(
        self, service: str, country: str, now: datetime
    ) -> list[StockAlert]:
        rows = await self._db.fetchall(
            "SELECT * FROM stock_alerts WHERE service = ? AND country = ? AND fired_at IS NULL "
            "AND expires_at > ? ORDER BY id",
            (service, country, encode_time(now)),
        )
        return [_alert(row) for row in rows]

    async def checked(self, service: str, country: str, now: datetime) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE stock_alerts SET checked_at = ? "
                "WHERE service = ? AND country = ? AND fired_at IS NULL",
                (encode_time(now), service, country),
            )

    async def fire(self, alert_id: int, now: datetime) -> bool:
        """Mark the alert fired; True only for the one call that did (it sends the message)."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE stock_alerts SET fired_at = ? "
                "WHERE id = ? AND fired_at IS NULL AND expires_at > ?",
                (encode_time(now), alert_id, encode_time(now)),
            )
        return changed == 1

    async def purge(self, now: datetime, keep_fired_until: datetime) -> int:
        """Forget lapsed alerts, and fired ones older than ``keep_fired_until``."""
        async with self._db.transaction() as tx:
            return await tx.execute(
                "DELETE FROM stock_alerts WHERE (fired_at IS NULL AND expires_at <= ?) "
                "OR (fired_at IS NOT NULL AND fired_at < ?)",
                (encode_time(now), encode_time(keep_fired_until)),
            )
