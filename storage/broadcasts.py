"""Admin broadcasts and each recipient's delivery state (migration 9).

A broadcast is a ``draft`` until its admin confirms it; confirming snapshots the recipients
(every user who has not blocked the bot and whom no admin blocked) as ``pending`` deliveries in
the same transaction, so users who arrive later are not added and a restart resumes exactly the
users still pending. Each delivery is marked once it is settled: ``sent``, ``blocked`` (the user
blocked the bot; the user row is marked in the same transaction) or ``failed``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.codec import decode_time, encode_time
from storage.db import Database, Row, StorageError


class BroadcastStatus(enum.StrEnum):
    DRAFT = "draft"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    BLOCKED = "blocked"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    admin_id: int
    text: str  # Telegram HTML
    status: BroadcastStatus
    progress_chat_id: int | None
    progress_message_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Progress:
    pending: int = 0
    sent: int = 0
    blocked: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.sent + self.blocked + self.failed

    @property
    def settled(self) -> int:
        return self.total - self.pending


def _broadcast(row: Row) -> Broadcast:
    return Broadcast(
        id=int(row["id"]),
        admin_id=int(row["admin_id"]),
        text=row["text"],
        status=BroadcastStatus(row["status"]),
        progress_chat_id=row["progress_chat_id"],
        progress_message_id=row["progress_message_id"],
        created_at=decode_time(row["created_at"]),
        started_at=None if row["started_at"] is None else decode_time(row["started_at"]),
        finished_at=None if row["finished_at"] is None else decode_time(row["finished_at"]),
    )


# Who gets a broadcast: users who can receive it and whom no admin blocked.
RECIPIENTS = "FROM users WHERE blocked_bot = 0 AND blocked = 0"


class BroadcastsRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, admin_id: int, text: str, now: datetime) -> Broadcast:
        async with self._db.transaction() as tx:
            broadcast_id = await tx.insert(
                "INSERT INTO broadcasts (admin_id, text, created_at) VALUES (?, ?, ?)",
                (admin_id, text, encode_time(now)),
            )
        found = await self.get(broadcast_id)
        if found is None:
            raise StorageError(f"broadcast {broadcast_id} vanished right after being written")
        return found

    async def get(self, broadcast_id: int) -> Broadcast | None:
        row = await self._db.fetchone("SELECT * FROM broadcasts WHERE id = ?", (broadcast_id,))
        return None if row is None else _broadcast(row)

    async def recipients(self) -> int:
        """How many users a broadcast confirmed now would go to."""
        row = await self._db.fetchone(f"SELECT COUNT(*) {RECIPIENTS}")
        return int(row[0]) if row else 0

    async def start(self, broadcast_id: int, chat_id: int, message_id: int, now: datetime) -> bool:
        """A draft starts sending: its recipients are fixed now. False if it was not a draft
        (confirmed twice, or cancelled)."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE broadcasts SET status = 'sending', started_at = ?, "
                "progress_chat_id = ?, progress_message_id = ? WHERE id = ? AND status = 'draft'",
                (encode_time(now), chat_id, message_id, broadcast_id),
            )
            if changed != 1:
                return False
            await tx.execute(
                "INSERT INTO broadcast_deliveries (broadcast_id, user_id) "
                f"SELECT CAST(? AS BIGINT), id {RECIPIENTS}",
                (broadcast_id,),
            )
        return True

    async def cancel(self, broadcast_id: int, now: datetime) -> bool:
        """A draft the admin did not confirm; False if it is no longer a draft."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE broadcasts SET status = 'cancelled', finished_at = ? "
                "WHERE id = ? AND status = 'draft'",
                (encode_time(now), broadcast_id),
            )
        return changed == 1

    async def hold_sender(
        self, broadcast_id: int, owner: str, now: datetime, lease: timedelta
    ) -> bool:
        """Take (or keep) the sending of a broadcast for ``lease``: True if ``owner`` sends it
        now; False while another replica holds it (or it is not sending)."""
        async with self._db.transaction(shared=True) as tx:
            changed = await tx.execute(
                "UPDATE broadcasts SET sender = ?, sender_until = ? "
                "WHERE id = ? AND status = 'sending' "
                "AND (sender_until IS NULL OR sender_until < ? OR sender = ?)",
                (owner, encode_time(now + lease), broadcast_id, encode_time(now), owner),
            )
        return changed == 1

    async def release_sender(self, owner: str) -> None:
        """This replica stops: another may take its broadcasts at once."""
        async with self._db.transaction(shared=True) as tx:
            await tx.execute(
                "UPDATE broadcasts SET sender_until = NULL WHERE sender = ?", (owner,)
            )

    async def finish(self, broadcast_id: int, now: datetime) -> bool:
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE broadcasts SET status = 'done', finished_at = ? "
                "WHERE id = ? AND status = 'sending'",
                (encode_time(now), broadcast_id),
            )
        return changed == 1

    async def sending(self) -> list[Broadcast]:
        """Broadcasts confirmed and not finished (a restart interrupted them), oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM broadcasts WHERE status = 'sending' ORDER BY id"
        )
        return [_broadcast(row) for row in rows]

    async def pending(self, broadcast_id: int, limit: int) -> list[int]:
        """The next recipients still to be sent to, in user id order."""
        rows = await self._db.fetchall(
            "SELECT user_id FROM broadcast_deliveries WHERE broadcast_id = ? "
            "AND status = 'pending' ORDER BY user_id LIMIT ?",
            (broadcast_id, limit),
        )
        return [int(row[0]) for row in rows]

    async def settle(
        self, broadcast_id: int, user_id: int, status: DeliveryStatus, now: datetime
    ) -> bool:
        """Record the outcome of one delivery (once); a user who blocked the bot is marked."""
        if status is DeliveryStatus.PENDING:
            raise ValueError("a delivery is settled as sent, blocked or failed")
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE broadcast_deliveries SET status = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE broadcast_id = ? AND user_id = ? AND status = 'pending'",
                (status.value, encode_time(now), broadcast_id, user_id),
            )
            if changed == 1 and status is DeliveryStatus.BLOCKED:
                await tx.execute("UPDATE users SET blocked_bot = 1 WHERE id = ?", (user_id,))
        return changed == 1

    async def retried(self, broadcast_id: int, user_id: int, now: datetime) -> int:
        """Count one more try of a delivery that stays pending; returns the tries so far."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE broadcast_deliveries SET attempts = attempts + 1, updated_at = ? "
                "WHERE broadcast_id = ? AND user_id = ? AND status = 'pending'",
                (encode_time(now), broadcast_id, user_id),
            )
            row = await tx.fetchone(
                "SELECT attempts FROM broadcast_deliveries WHERE broadcast_id = ? AND user_id = ?",
                (broadcast_id, user_id),
            )
        return int(row[0]) if row else 0

    async def progress(self, broadcast_id: int) -> Progress:
        rows = await self._db.fetchall(
            "SELECT status, COUNT(*) FROM broadcast_deliveries WHERE broadcast_id = ? "
            "GROUP BY status",
            (broadcast_id,),
        )
        counts = {DeliveryStatus(row[0]).value: int(row[1]) for row in rows}
        return Progress(**counts)

    async def status_of(self, broadcast_id: int, user_id: int) -> DeliveryStatus | None:
        row = await self._db.fetchone(
            "SELECT status FROM broadcast_deliveries WHERE broadcast_id = ? AND user_id = ?",
            (broadcast_id, user_id),
        )
        return None if row is None else DeliveryStatus(row[0])
