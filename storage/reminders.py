"""Which expiry reminders were sent, so each fires once per order and lead time."""

from __future__ import annotations

from datetime import datetime

from storage.codec import encode_time
from storage.db import Database


class RemindersRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def was_sent(self, order_id: int, lead_seconds: int) -> bool:
        row = await self._db.fetchone(
            "SELECT 1 FROM reminders WHERE order_id = ? AND lead_seconds = ?",
            (order_id, lead_seconds),
        )
        return row is not None

    async def mark_sent(self, order_id: int, lead_seconds: int, now: datetime) -> bool:
        """Claim the reminder: True only the first time (then send it)."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "INSERT INTO reminders (order_id, lead_seconds, sent_at) VALUES (?, ?, ?) "
                "ON CONFLICT (order_id, lead_seconds) DO NOTHING",
                (order_id, lead_seconds, encode_time(now)),
            )
        return changed == 1

    async def unmark(self, order_id: int, lead_seconds: int) -> None:
        """Forget a claim whose message or action did not happen, so it is tried again."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "DELETE FROM reminders WHERE order_id = ? AND lead_seconds = ?",
                (order_id, lead_seconds),
            )
