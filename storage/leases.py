"""Named leases: work that one replica at a time does (the reconciler's rounds).

A lease is held by one owner until a moment; the owner renews it by holding it again, and
another owner may take it only once it has run out (its replica died or stopped). Taking it is
one conditional upsert, so two replicas cannot both hold it, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.codec import encode_time
from storage.db import Database


class LeasesRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def hold(self, name: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """Take or renew ``name`` for ``lease``: True if ``owner`` holds it now."""
        async with self._db.transaction(shared=True) as tx:
            changed = await tx.execute(
                "INSERT INTO leases (name, owner, until) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until "
                "WHERE leases.owner = excluded.owner OR leases.until < ?",
                (name, owner, encode_time(now + lease), encode_time(now)),
            )
        return changed == 1

    async def release(self, name: str, owner: str) -> None:
        """Let another replica take it at once (this one stops)."""
        async with self._db.transaction(shared=True) as tx:
            await tx.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
