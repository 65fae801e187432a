"""Admins' daily summary: who asked for it, and the last day it was sent to each.

Admins are Telegram ids from the ``ADMIN_IDS`` setting (not necessarily users), so the rows
are keyed by that id. A day's summary is claimed before it is sent by one conditional UPDATE
(:meth:`AdminSummariesRepo.claim`): a restart, a second tick or a second process sees the day
taken and sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from storage.codec import encode_time
from storage.db import Database


class AdminSummariesRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def enabled(self, admin_id: int) -> bool:
        row = await self._db.fetchone(
            "SELECT enabled FROM admin_summaries WHERE admin_id = ?", (admin_id,)
        )
        return row is not None and bool(row["enabled"])

    async def set_enabled(
        self, admin_id: int, enabled: bool, now: datetime, *, done: date | None = None
    ) -> None:
        """Turn the summary on or off; ``done``: a day to count as sent already (turning it on
        after today's hour does not send today's at once), unless a later one was sent."""
        day = done.isoformat() if done is not None else None
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO admin_summaries (admin_id, enabled, last_sent_day, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (admin_id) DO UPDATE SET "
                "enabled = excluded.enabled, updated_at = excluded.updated_at, "
                "last_sent_day = CASE WHEN excluded.last_sent_day IS NULL "
                "OR admin_summaries.last_sent_day >= excluded.last_sent_day "
                "THEN admin_summaries.last_sent_day ELSE excluded.last_sent_day END",
                (admin_id, int(enabled), day, encode_time(now)),
            )

    async def pending(self, admins: Iterable[int], day: date) -> list[int]:
        """Those of ``admins`` who want the summary and have not had ``day``'s, in id order."""
        wanted = set(admins)
        rows = await self._db.fetchall(
            "SELECT admin_id FROM admin_summaries WHERE enabled = 1 "
            "AND (last_sent_day IS NULL OR last_sent_day < ?) ORDER BY admin_id",
            (day.isoformat(),),
        )
        return [int(row["admin_id"]) for row in rows if int(row["admin_id"]) in wanted]

    async def claim(self, admin_id: int, day: date, now: datetime) -> bool:
        """Take ``day``'s summary for ``admin_id``: True for the one caller that may send it
        (the admin still wants it and no summary of that day or a later one was sent)."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE admin_summaries SET last_sent_day = ?, updated_at = ? "
                "WHERE admin_id = ? AND enabled = 1 "
                "AND (last_sent_day IS NULL OR last_sent_day < ?)",
                (day.isoformat(), encode_time(now), admin_id, day.isoformat()),
            )
        return changed == 1
