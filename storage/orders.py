"""Bought numbers: one row per provider order, with local and remote status."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import Order, OrderKind, RemoteStatus
from bot.money import Money
from storage.codec import (
    decode_meta,
    decode_money,
    decode_opt_time,
    decode_time,
    encode_meta,
    encode_money,
    encode_opt_time,
    encode_time,
)
from storage.db import Database, Row, StorageError, Tx
from storage.models import OrderStatus, StoredOrder
from storage.offer_stats import record_close

_ACTIVE = OrderStatus.ACTIVE.value


@dataclass(frozen=True, slots=True)
class ListedChange:
    """What a provider's listing told of an active order that differs from what is stored."""

    order_id: int
    remote_status: RemoteStatus
    expires_at: datetime | None = None  # a new end (a renewal): None when it did not move


class DuplicateOrder(StorageError):
    """The provider order is already stored (same provider and provider order id)."""


class UnknownUser(StorageError):
    """The order's user is not stored: ``UsersRepo.ensure`` them first."""


def _order(row: Row) -> StoredOrder:
    remote = row["remote_status"]
    return StoredOrder(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        provider=row["provider"],
        provider_order_id=row["provider_order_id"],
        kind=OrderKind(row["kind"]),
        service=row["service"],
        country=row["country"],
        phone=row["phone"],
        price=decode_money(row["price"], row["currency"]),
        display_price=decode_money(row["display_price"], row["display_currency"]),
        status=OrderStatus(row["status"]),
        remote_status=None if remote is None else RemoteStatus(remote),
        created_at=decode_time(row["created_at"]),
        updated_at=decode_time(row["updated_at"]),
        expires_at=decode_opt_time(row["expires_at"]),
        auto_renew=bool(row["auto_renew"]),
        duration_hours=None if row["duration_hours"] is None else int(row["duration_hours"]),
        meta=decode_meta(row["meta"]),
        renewed_at=decode_opt_time(row["renewed_at"]),
    )


def _integrity_error(exc: sqlite3.IntegrityError, provider: str, order_id: str) -> StorageError:
    message = str(exc)
    if "UNIQUE" in message:
        return DuplicateOrder(f"order {provider}/{order_id} is already stored")
    if "FOREIGN KEY" in message:
        return UnknownUser(f"no user for order {provider}/{order_id}")
    return StorageError(f"order {provider}/{order_id} rejected: {message}")


async def select_order(tx: Tx, order_id: int) -> StoredOrder:
    row = await tx.fetchone("SELECT * FROM orders WHERE id = ?", (order_id,))
    if row is None:
        raise StorageError(f"order {order_id} vanished inside its own transaction")
    return _order(row)


async def insert_order(
    tx: Tx, user_id: int, order: Order, display_price: Money | None, now: datetime
) -> StoredOrder:
    """Insert a just-bought order as ``active`` inside ``tx``; DuplicateOrder or UnknownUser."""
    price, currency = encode_money(order.price)
    shown, shown_currency = encode_money(display_price)
    stamp = encode_time(now)
    try:
        new_id = await tx.insert(
            "INSERT INTO orders (user_id, provider, provider_order_id, kind, service, "
            "country, phone, price, currency, display_price, display_currency, status, "
            "created_at, updated_at, expires_at, auto_renew, duration_hours, meta) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user_id,
                order.provider,
                order.order_id,
                order.kind.value,
                order.service,
                order.country,
                order.phone,
                price,
                currency,
                shown,
                shown_currency,
                _ACTIVE,
                stamp,
                stamp,
                encode_opt_time(order.expires_at),
                int(order.auto_renew),
                order.duration_hours,
                encode_meta(order.meta),
            ),
        )
    except sqlite3.IntegrityError as exc:
        raise _integrity_error(exc, order.provider, order.order_id) from exc
    return await select_order(tx, new_id)


class OrdersRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, user_id: int, order: Order, display_price: Money | None, now: datetime
    ) -> StoredOrder:
        """Store a just-bought order as ``active``. Raises DuplicateOrder or UnknownUser."""
        async with self._db.transaction() as tx:
            return await insert_order(tx, user_id, order, display_price, now)

    async def get(self, order_id: int) -> StoredOrder | None:
        row = await self._db.fetchone("SELECT * FROM orders WHERE id = ?", (order_id,))
        return None if row is None else _order(row)

    async def get_for_user(self, order_id: int, user_id: int) -> StoredOrder | None:
        """The order if it belongs to ``user_id``; None for someone else's or a missing one."""
        row = await self._db.fetchone(
            "SELECT * FROM orders WHERE id = ? AND user_id = ?", (order_id, user_id)
        )
        return None if row is None else _order(row)

    async def get_by_provider(self, provider: str, provider_order_id: str) -> StoredOrder | None:
        row = await self._db.fetchone(
            "SELECT * FROM orders WHERE provider = ? AND provider_order_id = ?",
            (provider, provider_order_id),
        )
        return None if row is None else _order(row)

    async def lease_active(
        self, provider: str, owner: str, now: datetime, lease: timedelta
    ) -> list[StoredOrder]:
        """The provider's active orders this replica (``owner``) leases, oldest first, after
        taking those nobody holds (new, or whose lease ran out) and renewing its own that are
        past half their lease (so a round writes only every lease/2). On PostgreSQL rows other
        transactions hold are skipped (``FOR UPDATE SKIP LOCKED``), not waited for: they are
        taken next round. Two replicas never lease one order at once."""
        stamp = encode_time(now)
        skip_locked = " FOR UPDATE SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        async with self._db.transaction(shared=True) as tx:
            await tx.execute(
                "UPDATE orders SET lease_owner = ?, lease_until = ? WHERE id IN ("  # noqa: S608
                "SELECT id FROM orders WHERE status = 'active' AND provider = ? AND ("
                "lease_until IS NULL OR lease_until < ? OR (lease_owner = ? AND lease_until < ?))"
                f"{skip_locked})",
                (
                    owner,
                    encode_time(now + lease),
                    provider,
                    stamp,
                    owner,
                    encode_time(now + lease / 2),
                ),
            )
            rows = await tx.fetchall(
                "SELECT * FROM orders WHERE status = 'active' AND provider = ? "
                "AND lease_owner = ? AND lease_until >= ? ORDER BY id",
                (provider, owner, stamp),
            )
        return [_order(row) for row in rows]

    async def release_leases(self, owner: str) -> int:
        """Give up every lease of ``owner`` (a replica stopping): others take them at once."""
        async with self._db.transaction(shared=True) as tx:
            return await tx.execute(
                "UPDATE orders SET lease_until = NULL WHERE lease_owner = ? "
                "AND lease_until IS NOT NULL",
                (owner,),
            )

    async def list_active(self, provider: str | None = None) -> list[StoredOrder]:
        """Every active order (at ``provider``, or anywhere), oldest first (what the pollers
        and reminders work on)."""
        rows = await self._db.fetchall(
            "SELECT * FROM orders WHERE status = 'active' "
            "AND (CAST(? AS TEXT) IS NULL OR provider = ?) "
            "ORDER BY id",
            (provider, provider),
        )
        return [_order(row) for row in rows]

    async def list_for_user(
        self, user_id: int, *, active: bool | None = None, limit: int = 10, offset: int = 0
    ) -> list[StoredOrder]:
        """A page of the user's orders, newest first; ``active`` None means all."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        rows = await self._db.fetchall(
            "SELECT * FROM orders WHERE user_id = ? "
            "AND (CAST(? AS BOOLEAN) IS NULL OR (status = 'active') = ?) "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (user_id, active, active, limit, offset),
        )
        return [_order(row) for row in rows]

    async def recent_pairs(self, user_id: int, limit: int = 3) -> list[tuple[str, str]]:
        """The user's latest (service, country) pairs, newest first, each once (one query on
        the ``orders_by_user_status`` index)."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        rows = await self._db.fetchall(
            "SELECT service, country, MAX(id) AS newest FROM orders WHERE user_id = ? "
            "GROUP BY service, country ORDER BY newest DESC LIMIT ?",
            (user_id, limit),
        )
        return [(str(row["service"]), str(row["country"])) for row in rows]

    async def count_for_user(self, user_id: int, *, active: bool | None = None) -> int:
        row = await self._db.fetchone(
            "SELECT COUNT(*) FROM orders "
            "WHERE user_id = ? AND (CAST(? AS BOOLEAN) IS NULL OR (status = 'active') = ?)",
            (user_id, active, active),
        )
        return 0 if row is None else int(row[0])

    async def set_status(
        self,
        order_id: int,
        status: OrderStatus,
        remote_status: RemoteStatus | None,
        now: datetime,
    ) -> bool:
        """Move an active order to a final status. True only for the call that moved it."""
        if status is OrderStatus.ACTIVE:
            raise ValueError("set_status moves an order out of 'active'")
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE orders SET status = ?, remote_status = COALESCE(?, remote_status), "
                "updated_at = ? WHERE id = ? AND status = 'active'",
                (status.value, _opt_value(remote_status), encode_time(now), order_id),
            )
            if changed == 1:  # how the order's offer delivered, learnt once
                await record_close(tx, order_id, status, now)
        return changed == 1

    async def set_remote_status(
        self, order_id: int, remote_status: RemoteStatus, now: datetime
    ) -> bool:
        """Record the provider's latest status of an active order (False if not active)."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE orders SET remote_status = ?, updated_at = ? "
                "WHERE id = ? AND status = 'active'",
                (remote_status.value, encode_time(now), order_id),
            )
        return changed == 1

    async def record_listing(self, changes: Sequence[ListedChange], now: datetime) -> int:
        """Many orders' latest remote status (and new end, whose sent reminders are then
        forgotten, as :meth:`update_expiry` does) in one transaction; how many were active."""
        stamp = encode_time(now)
        changed = 0
        async with self._db.transaction() as tx:
            for change in changes:
                if change.expires_at is None:
                    changed += await tx.execute(
                        "UPDATE orders SET remote_status = ?, updated_at = ? "
                        "WHERE id = ? AND status = 'active'",
                        (change.remote_status.value, stamp, change.order_id),
                    )
                    continue
                moved = await tx.execute(
                    "UPDATE orders SET remote_status = ?, expires_at = ?, updated_at = ? "
                    "WHERE id = ? AND status = 'active'",
                    (
                        change.remote_status.value,
                        encode_time(change.expires_at),
                        stamp,
                        change.order_id,
                    ),
                )
                if moved:
                    await tx.execute(
                        "DELETE FROM reminders WHERE order_id = ?", (change.order_id,)
                    )
                changed += moved
        return changed

    async def update_expiry(
        self,
        order_id: int,
        expires_at: datetime | None,
        *,
        now: datetime,
        provider_order_id: str | None = None,
    ) -> bool:
        """After a renewal: new expiry (and provider order id if it changed).

        The order's sent reminders are forgotten so they fire again for the new expiry.
        """
        async with self._db.transaction() as tx:
            try:
                changed = await tx.execute(
                    "UPDATE orders SET expires_at = ?, "
                    "provider_order_id = COALESCE(?, provider_order_id), updated_at = ? "
                    "WHERE id = ?",
                    (encode_opt_time(expires_at), provider_order_id, encode_time(now), order_id),
                )
            except sqlite3.IntegrityError as exc:
                raise _integrity_error(exc, "?", provider_order_id or "?") from exc
            if changed:
                await tx.execute("DELETE FROM reminders WHERE order_id = ?", (order_id,))
        return changed == 1

    async def merge_meta(self, order_id: int, updates: Mapping[str, str], now: datetime) -> bool:
        """Add (or replace) entries of the order's adapter state."""
        async with self._db.transaction() as tx:
            row = await tx.fetchone("SELECT meta FROM orders WHERE id = ?", (order_id,))
            if row is None:
                return False
            meta = {**decode_meta(row[0]), **updates}
            changed = await tx.execute(
                "UPDATE orders SET meta = ?, updated_at = ? WHERE id = ?",
                (encode_meta(meta), encode_time(now), order_id),
            )
        return changed == 1

    async def set_auto_renew(self, order_id: int, auto_renew: bool, now: datetime) -> bool:
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE orders SET auto_renew = ?, updated_at = ? WHERE id = ?",
                (int(auto_renew), encode_time(now), order_id),
            )
        return changed == 1

    @staticmethod
    def to_order(stored: StoredOrder) -> Order:
        """The provider-facing :class:`Order` (round trip of what ``create`` stored)."""
        return stored.to_order()


def _opt_value(status: RemoteStatus | None) -> str | None:
    return None if status is None else status.value
