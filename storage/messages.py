"""Received SMS per order; the basis of exactly-once delivery to the user.

Pollers call :meth:`MessagesRepo.add_new` with everything the provider returned; only the
messages not stored before come back. The sender marks each one delivered after Telegram
accepted it, and :meth:`MessagesRepo.undelivered` finds what a crash left unsent. A message
Telegram keeps refusing for its content is counted (:meth:`MessagesRepo.refused`) and, after a
bounded number of refusals, marked failed: never sent again, listed for the admins
(:meth:`MessagesRepo.failed`), and no obstacle to the order's later messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import Sms
from storage.codec import decode_opt_time, decode_time, encode_opt_time, encode_time
from storage.db import Database, Row
from storage.models import StoredMessage
from storage.offer_stats import record_first_sms


def _message(row: Row) -> StoredMessage:
    return StoredMessage(
        id=int(row["id"]),
        order_id=int(row["order_id"]),
        sms_id=row["sms_id"],
        code=row["code"],
        text=row["text"],
        sender=row["sender"],
        received_at=decode_opt_time(row["received_at"]),
        stored_at=decode_time(row["stored_at"]),
        delivered_at=decode_opt_time(row["delivered_at"]),
        attempts=int(row["attempts"]),
        failed_at=decode_opt_time(row["failed_at"]),
        failure=row["failure"],
    )


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A message given up on, with whom it was for (for the admins)."""

    message: StoredMessage
    user_id: int
    provider: str
    provider_order_id: str


@dataclass(frozen=True, slots=True)
class SmsSummary:
    count: int
    latest_stored_at: datetime


class MessagesRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_new(
        self, order_id: int, messages: Iterable[Sms], now: datetime
    ) -> list[StoredMessage]:
        """Store the messages not seen before (by ``Sms.id``); return only those, in order."""
        messages = list(messages)
        if not messages:
            return []  # no write transaction for a poll that found nothing
        stamp = encode_time(now)
        added: list[StoredMessage] = []
        async with self._db.transaction() as tx:
            for sms in messages:
                row = await tx.fetchone(
                    "INSERT INTO messages (order_id, sms_id, code, text, sender, received_at, "
                    "stored_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (order_id, sms_id) DO NOTHING RETURNING *",
                    (
                        order_id,
                        sms.id,
                        sms.code,
                        sms.text,
                        sms.sender,
                        encode_opt_time(sms.received_at),
                        stamp,
                    ),
                )
                if row is not None:
                    added.append(_message(row))
            if added:  # how the order's offer delivered: learnt with its first SMS, once
                await record_first_sms(tx, order_id)
        return added

    async def undelivered(self, order_id: int | None = None) -> list[StoredMessage]:
        """Messages not yet delivered nor given up on, oldest first; of one order or of all."""
        if order_id is None:
            rows = await self._db.fetchall(
                "SELECT * FROM messages WHERE delivered_at IS NULL AND failed_at IS NULL "
                "ORDER BY id"
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM messages WHERE delivered_at IS NULL AND failed_at IS NULL "
                "AND order_id = ? ORDER BY id",
                (order_id,),
            )
        return [_message(row) for row in rows]

    async def claim(self, message_id: int, owner: str, now: datetime, hold: timedelta) -> bool:
        """Take the sending of an undelivered message for ``hold`` (replicas: only the one
        that holds it sends); True if ``owner`` holds it now. A claim that ran out (its
        replica died mid-send) may be taken by another."""
        async with self._db.transaction(shared=True) as tx:
            changed = await tx.execute(
                "UPDATE messages SET claimed_by = ?, claimed_until = ? "
                "WHERE id = ? AND delivered_at IS NULL AND failed_at IS NULL "
                "AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?)",
                (owner, encode_time(now + hold), message_id, encode_time(now), owner),
            )
        return changed == 1

    async def unclaim(self, message_id: int, owner: str) -> None:
        """Let any replica send it (Telegram could not take it now)."""
        async with self._db.transaction(shared=True) as tx:
            await tx.execute(
                "UPDATE messages SET claimed_until = NULL WHERE id = ? AND claimed_by = ?",
                (message_id, owner),
            )

    async def mark_delivered(self, message_id: int, now: datetime) -> bool:
        """True only the first time for a message."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE messages SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
                (encode_time(now), message_id),
            )
        return changed == 1

    async def refused(
        self, message_id: int, reason: str, now: datetime, *, give_up_after: int
    ) -> StoredMessage | None:
        """Count one refusal of the message's content; at ``give_up_after`` refusals it is
        marked failed. The message as it is now (None if delivered or unknown)."""
        async with self._db.transaction() as tx:
            row = await tx.fetchone(
                "UPDATE messages SET attempts = attempts + 1, failure = ?, "
                "failed_at = CASE WHEN attempts + 1 >= ? THEN ? ELSE NULL END "
                "WHERE id = ? AND delivered_at IS NULL AND failed_at IS NULL RETURNING *",
                (reason[:500], give_up_after, encode_time(now), message_id),
            )
        return None if row is None else _message(row)

    async def failed(self, limit: int = 20) -> list[FailedDelivery]:
        """Messages given up on, the latest first."""
        rows = await self._db.fetchall(
            "SELECT m.*, o.user_id, o.provider, o.provider_order_id FROM messages m "
            "JOIN orders o ON o.id = m.order_id WHERE m.failed_at IS NOT NULL "
            "ORDER BY m.failed_at DESC, m.id DESC LIMIT ?",
            (limit,),
        )
        return [
            FailedDelivery(
                _message(row), int(row["user_id"]), row["provider"], row["provider_order_id"]
            )
            for row in rows
        ]

    async def count_failed(self) -> int:
        row = await self._db.fetchone("SELECT COUNT(*) FROM messages WHERE failed_at IS NOT NULL")
        return int(row[0]) if row else 0

    async def active_summaries(self, provider: str) -> dict[int, SmsSummary]:
        """How many SMS each active order at ``provider`` has stored, and when the latest was
        stored (orders without SMS left out): the watcher's hot/cold and batch decisions."""
        rows = await self._db.fetchall(
            "SELECT m.order_id, COUNT(*) AS stored, MAX(m.stored_at) AS latest FROM messages m "
            "JOIN orders o ON o.id = m.order_id "
            "WHERE o.status = 'active' AND o.provider = ? GROUP BY m.order_id",
            (provider,),
        )
        return {
            int(row["order_id"]): SmsSummary(int(row["stored"]), decode_time(row["latest"]))
            for row in rows
        }

    async def list_for_order(self, order_id: int) -> list[StoredMessage]:
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE order_id = ? ORDER BY id", (order_id,)
        )
        return [_message(row) for row in rows]
