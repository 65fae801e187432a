"""Write-ahead records of money-moving provider calls: buy, renew, cancel.

Each call is *opened* before the provider is asked, in the same transaction as the user's hold,
and *completed* after the answer, in the same transaction as what the answer means (the order
and the capture; the new end and the capture; the final status and the refund) or *failed*
with the hold released. Whatever a crash leaves open, the reconciler finishes. One open intent
per order at most (a unique index), so two processes cannot renew or cancel one order at once.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from bot.domain import CancelOutcome, Order, OrderKind, RefundScope, RemoteStatus
from bot.money import Money
from storage.codec import (
    decode_money,
    decode_opt_time,
    decode_time,
    encode_money,
    encode_opt_time,
    encode_time,
)
from storage.db import Database, Row, StorageError, Tx
from storage.ledger import capture_in, hold_in, refund_in, release_in
from storage.models import OrderStatus, StoredOrder
from storage.offer_stats import record_close
from storage.orders import insert_order, select_order


class IntentAction(enum.StrEnum):
    BUY = "buy"
    RENEW = "renew"
    CANCEL = "cancel"


class IntentStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    FAILED = "failed"


class IntentBusy(StorageError):
    """Another money-moving call on this order is open (in this process or another)."""


class QuoteUsed(StorageError):
    """A purchase for this quote (this Buy button) was made already."""


class IntentClosed(StorageError):
    """The intent was completed or failed already (by the reconciler, or a twin)."""


@dataclass(frozen=True, slots=True)
class Intent:
    id: int
    action: IntentAction
    user_id: int
    provider: str
    service: str
    country: str
    kind: OrderKind
    duration_hours: int | None
    ref: str
    cost: Money | None  # the provider's price for the call
    display_price: Money | None  # what the user pays for it
    hold_id: int | None  # None: the user does not pay
    order_id: int | None
    expires_before: datetime | None
    refund: RefundScope | None
    status: IntentStatus
    attempts: int
    note: str | None
    created_at: datetime
    updated_at: datetime


def _intent(row: Row) -> Intent:
    return Intent(
        id=int(row["id"]),
        action=IntentAction(row["action"]),
        user_id=int(row["user_id"]),
        provider=row["provider"],
        service=row["service"],
        country=row["country"],
        kind=OrderKind(row["kind"]),
        duration_hours=None if row["duration_hours"] is None else int(row["duration_hours"]),
        ref=row["ref"],
        cost=decode_money(row["cost"], row["cost_currency"]),
        display_price=decode_money(row["display_price"], row["display_currency"]),
        hold_id=None if row["hold_id"] is None else int(row["hold_id"]),
        order_id=None if row["order_id"] is None else int(row["order_id"]),
        expires_before=decode_opt_time(row["expires_before"]),
        refund=None if row["refund"] is None else RefundScope(row["refund"]),
        status=IntentStatus(row["status"]),
        attempts=int(row["attempts"]),
        note=row["note"],
        created_at=decode_time(row["created_at"]),
        updated_at=decode_time(row["updated_at"]),
    )


@dataclass(frozen=True, slots=True)
class Purpose:
    """What an intent is for: the offer (buy) or the order (renew, cancel) and its price."""

    provider: str
    service: str
    country: str
    kind: OrderKind
    duration_hours: int | None = None
    ref: str = ""
    cost: Money | None = None
    display_price: Money | None = None

    @classmethod
    def of(
        cls,
        order: StoredOrder,
        duration_hours: int | None = None,
        cost: Money | None = None,
        display_price: Money | None = None,
    ) -> Purpose:
        """A call on a bought order (renew, cancel)."""
        return cls(
            provider=order.provider,
            service=order.service,
            country=order.country,
            kind=order.kind,
            duration_hours=duration_hours,
            cost=cost,
            display_price=display_price,
        )


_INSERT = (
    "INSERT INTO intents (action, user_id, provider, service, country, kind, duration_hours, "
    "ref, cost, cost_currency, display_price, display_currency, hold_id, order_id, "
    "quote_id, expires_before, refund, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *"
)


async def _close(
    tx: Tx, intent: Intent, status: IntentStatus, now: datetime, **extra: object
) -> None:
    sets = ", ".join(f"{column} = ?" for column in extra)
    changed = await tx.execute(
        f"UPDATE intents SET status = ?, updated_at = ?{', ' + sets if sets else ''} "  # noqa: S608
        "WHERE id = ? AND status = 'open'",
        (status.value, encode_time(now), *extra.values(), intent.id),
    )
    if changed != 1:
        raise IntentClosed(f"intent {intent.id} is not open any more")


class IntentsRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open(
        self,
        action: IntentAction,
        user_id: int,
        purpose: Purpose,
        now: datetime,
        *,
        pays: bool,
        order: StoredOrder | None = None,
        refund: RefundScope | None = None,
        quote_id: str | None = None,
    ) -> Intent | None:
        """Record the call about to be made, holding ``purpose.display_price`` when the user
        ``pays``; None (nothing written) when the balance does not cover it.

        Raises IntentBusy when a call on ``order`` is open already, QuoteUsed when
        ``quote_id`` was bought before (one purchase per Buy, across processes).
        """
        async with self._db.transaction() as tx:
            hold_id = None
            if pays:
                if purpose.display_price is None:
                    raise ValueError("a paying user's price must be known")
                hold_id = await hold_in(tx, user_id, purpose.display_price, now)
                if hold_id is None:
                    return None
            cost, cost_currency = encode_money(purpose.cost)
            shown, shown_currency = encode_money(purpose.display_price)
            stamp = encode_time(now)
            try:
                row = await tx.fetchone(
                    _INSERT,
                    (
                        action.value,
                        user_id,
                        purpose.provider,
                        purpose.service,
                        purpose.country,
                        purpose.kind.value,
                        purpose.duration_hours,
                        purpose.ref,
                        cost,
                        cost_currency,
                        shown,
                        shown_currency,
                        hold_id,
                        None if order is None else order.id,
                        quote_id,
                        None if order is None else encode_opt_time(order.expires_at),
                        None if refund is None else refund.value,
                        stamp,
                        stamp,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                if "quote_id" in str(exc):
                    raise QuoteUsed(f"quote {quote_id} was bought already") from exc
                if "UNIQUE" in str(exc) and order is not None:
                    raise IntentBusy(f"order {order.id} has a call in flight") from exc
                raise
            assert row is not None
            return _intent(row)

    async def bought(self, intent: Intent, order: Order, now: datetime) -> StoredOrder:
        """The provider sold ``order`` for a buy intent: store it, capture the hold, done."""
        async with self._db.transaction() as tx:
            current = await self._current(tx, intent)
            stored = await insert_order(tx, current.user_id, order, current.display_price, now)
            if current.hold_id is not None:
                await capture_in(tx, current.hold_id, stored.id, now)
            await _close(tx, current, IntentStatus.DONE, now, order_id=stored.id)
            return stored

    async def renewed(
        self,
        intent: Intent,
        expires_at: datetime | None,
        now: datetime,
        *,
        provider_order_id: str | None = None,
    ) -> StoredOrder:
        """The provider renewed the order: new end, reminders reset, hold captured, done."""
        async with self._db.transaction() as tx:
            current = await self._current(tx, intent)
            if current.order_id is None:
                raise StorageError(f"renew intent {intent.id} names no order")
            await tx.execute(
                "UPDATE orders SET expires_at = COALESCE(?, expires_at), renewed_at = ?, "
                "provider_order_id = COALESCE(?, provider_order_id), updated_at = ? "
                "WHERE id = ?",
                (
                    encode_opt_time(expires_at),
                    encode_time(now),
                    provider_order_id,
                    encode_time(now),
                    current.order_id,
                ),
            )
            await tx.execute("DELETE FROM reminders WHERE order_id = ?", (current.order_id,))
            if current.hold_id is not None:
                await capture_in(tx, current.hold_id, current.order_id, now)
            await _close(tx, current, IntentStatus.DONE, now)
            return await select_order(tx, current.order_id)

    async def cancelled(
        self,
        intent: Intent,
        status: OrderStatus,
        outcome: CancelOutcome,
        now: datetime,
        remote_status: RemoteStatus | None = None,
    ) -> tuple[StoredOrder, Money | None]:
        """The provider confirmed a cancel (or ban): the order closes and the user gets back
        the share the provider returned, in one transaction. Returns the order and the refund.
        """
        async with self._db.transaction() as tx:
            current = await self._current(tx, intent)
            if current.order_id is None:
                raise StorageError(f"cancel intent {intent.id} names no order")
            await _close_active(tx, current.order_id, status, remote_status, now)
            entry = await refund_in(tx, current.order_id, outcome.refund, now, outcome.amount)
            note = f"refund {outcome.refund.value} {outcome.detail}".strip()
            await _close(tx, current, IntentStatus.DONE, now, note=note[:500])
            refunded = None if entry is None else entry.amount
            return await select_order(tx, current.order_id), refunded

    async def failed(self, intent: Intent, note: str, now: datetime) -> bool:
        """Nothing happened at the provider: release the hold, close the intent. False if it
        was closed already."""
        async with self._db.transaction() as tx:
            try:
                current = await self._current(tx, intent)
            except IntentClosed:
                return False
            if current.hold_id is not None:
                await release_in(tx, current.hold_id, now)
            await _close(tx, current, IntentStatus.FAILED, now, note=note[:500])
        return True

    async def attempted(self, intent: Intent, note: str, now: datetime) -> int:
        """A reconciliation that could not resolve the intent yet; the attempts so far."""
        async with self._db.transaction() as tx:
            row = await tx.fetchone(
                "UPDATE intents SET attempts = attempts + 1, note = ?, updated_at = ? "
                "WHERE id = ? AND status = 'open' RETURNING attempts",
                (note[:500], encode_time(now), intent.id),
            )
        return 0 if row is None else int(row[0])

    async def close_order(
        self,
        order_id: int,
        status: OrderStatus,
        remote_status: RemoteStatus | None,
        now: datetime,
        refund: RefundScope | None = None,
    ) -> tuple[bool, Money | None]:
        """Close an active order the provider closed by itself (an expiry, a cancel seen in a
        poll), refunding ``refund`` of it in the same transaction. Returns (closed by this
        call, refunded amount)."""
        if status is OrderStatus.ACTIVE:
            raise ValueError("close_order moves an order out of 'active'")
        async with self._db.transaction() as tx:
            changed = await _close_active(tx, order_id, status, remote_status, now)
            entry = None
            if changed == 1 and refund is not None:
                entry = await refund_in(tx, order_id, refund, now)
        return changed == 1, None if entry is None else entry.amount

    async def get(self, intent_id: int) -> Intent | None:
        row = await self._db.fetchone("SELECT * FROM intents WHERE id = ?", (intent_id,))
        return None if row is None else _intent(row)

    async def list_open(self, created_before: datetime | None = None) -> list[Intent]:
        """Open intents, oldest first (``created_before``: only those older than that)."""
        rows = await self._db.fetchall(
            "SELECT * FROM intents WHERE status = 'open' "
            "AND (CAST(? AS TEXT) IS NULL OR created_at < ?) "
            "ORDER BY id",
            (encode_opt_time(created_before), encode_opt_time(created_before)),
        )
        return [_intent(row) for row in rows]

    async def for_order(self, order_id: int) -> list[Intent]:
        rows = await self._db.fetchall(
            "SELECT * FROM intents WHERE order_id = ? ORDER BY id", (order_id,)
        )
        return [_intent(row) for row in rows]

    @staticmethod
    async def _current(tx: Tx, intent: Intent) -> Intent:
        row = await tx.fetchone("SELECT * FROM intents WHERE id = ?", (intent.id,))
        if row is None:
            raise StorageError(f"intent {intent.id} does not exist")
        current = _intent(row)
        if current.status is not IntentStatus.OPEN:
            raise IntentClosed(f"intent {intent.id} is {current.status.value}")
        return current


async def _close_active(
    tx: Tx,
    order_id: int,
    status: OrderStatus,
    remote_status: RemoteStatus | None,
    now: datetime,
) -> int:
    """Move an active order to ``status`` inside ``tx``; 1 if this call moved it (and learnt
    how its offer delivered)."""
    changed = await tx.execute(
        "UPDATE orders SET status = ?, remote_status = COALESCE(?, remote_status), "
        "updated_at = ? WHERE id = ? AND status = 'active'",
        (
            status.value,
            None if remote_status is None else remote_status.value,
            encode_time(now),
            order_id,
        ),
    )
    if changed == 1:
        await record_close(tx, order_id, status, now)
    return changed
