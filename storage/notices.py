"""Operator notices the adapters learned at run time, each kept once."""

from __future__ import annotations

from datetime import datetime

from storage.codec import encode_time
from storage.db import Database


class NoticesRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, provider: str, text: str, now: datetime) -> bool:
        """True only the first time this notice is seen (so it is told once)."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "INSERT INTO provider_notices (provider, text, first_seen) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (provider, text[:1000], encode_time(now)),
            )
        return changed == 1

    async def all(self) -> list[tuple[str, str]]:
        rows = await self._db.fetchall(
            "SELECT provider, text FROM provider_notices ORDER BY first_seen, provider"
        )
        return [(str(r[0]), str(r[1])) for r in rows]
