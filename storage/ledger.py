"""User wallets as an append-only ledger; a balance is the exact sum of its rows.

Every row's ``amount`` is its signed effect on the user's *available* balance: a top-up adds,
a hold takes the price before the provider is called, and the hold is then settled once,
either captured (0: the money stays spent) or released (given back). A refund gives back
what an order's capture kept, once per order. Each check of the balance and the row it
allows are one ``BEGIN IMMEDIATE`` transaction, so concurrent purchases (even over two
connections) can never take a balance below zero; unique indexes make a second settlement,
a second refund or a second top-up with the same reference impossible in the database.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Context, Decimal, Inexact, InvalidOperation, Overflow

from bot.domain import RefundScope
from bot.money import Money
from storage.codec import decode_time, encode_decimal, encode_time
from storage.db import Database, Row, StorageError, Tx
from storage.orders import UnknownUser

logger = logging.getLogger(__name__)

# Sums are exact: a result that would need rounding raises instead of drifting.
_EXACT = Context(prec=100, traps=[Inexact, InvalidOperation, Overflow])
_WIDE = Context(prec=100, traps=[InvalidOperation, Overflow])  # for proportional shares
_ZERO = Decimal(0)


class LedgerKind(enum.StrEnum):
    TOPUP = "topup"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"
    ADJUST = "adjust"


class UnknownHold(StorageError):
    """The id is not a hold in the ledger."""


class UnknownOrder(StorageError):
    """The order does not exist or belongs to another user than the hold."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    user_id: int
    kind: LedgerKind
    amount: Money  # signed effect on the available balance
    hold_id: int | None
    order_id: int | None
    ref: str | None
    actor: int | None
    reason: str | None
    created_at: datetime


class Operation(enum.StrEnum):
    """What a row of the user's wallet history was, as the user knows it."""

    TOPUP = "topup"
    PURCHASE = "purchase"
    RENEWAL = "renewal"
    REFUND = "refund"
    CREDIT = "credit"  # an admin added money
    DEBIT = "debit"  # an admin took money


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One operation in the user's wallet history (a released hold is no operation)."""

    id: int
    operation: Operation
    amount: Money  # signed effect on the balance
    created_at: datetime
    service: str | None  # purchases, renewals, refunds: what it was for
    country: str | None
    pending: bool  # a purchase or renewal whose outcome is not known yet


def _entry(row: Row) -> LedgerEntry:
    return LedgerEntry(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        kind=LedgerKind(row["kind"]),
        amount=Money(Decimal(row["amount"]), row["currency"]),
        hold_id=None if row["hold_id"] is None else int(row["hold_id"]),
        order_id=None if row["order_id"] is None else int(row["order_id"]),
        ref=row["ref"],
        actor=None if row["actor"] is None else int(row["actor"]),
        reason=row["reason"],
        created_at=decode_time(row["created_at"]),
    )


def _history_item(row: Row) -> HistoryItem:
    kind = LedgerKind(row["kind"])
    amount = Decimal(row["amount"])
    if kind is LedgerKind.HOLD:
        operation = Operation.RENEWAL if row["action"] == "renew" else Operation.PURCHASE
    elif kind is LedgerKind.ADJUST:
        operation = Operation.CREDIT if amount > 0 else Operation.DEBIT
    else:
        operation = Operation(kind.value)  # topup, refund
    return HistoryItem(
        id=int(row["id"]),
        operation=operation,
        amount=Money(amount, row["currency"]),
        created_at=decode_time(row["created_at"]),
        service=row["service"],
        country=row["country"],
        pending=kind is LedgerKind.HOLD and row["settled"] is None,
    )


def exact_sum(amounts: list[Decimal]) -> Decimal:
    """The exact sum (raises ``decimal.Inexact`` rather than round)."""
    total = _ZERO
    for amount in amounts:
        total = _EXACT.add(total, amount)
    return total


def _positive(amount: Money) -> None:
    if not amount.amount.is_finite() or amount.amount <= 0:
        raise ValueError(f"amount must be positive: {amount}")


async def _balance(tx: Tx, user_id: int, currency: str) -> Decimal:
    rows = await tx.fetchall(
        "SELECT amount FROM ledger WHERE user_id = ? AND currency = ?", (user_id, currency)
    )
    return exact_sum([Decimal(row[0]) for row in rows])


_INSERT = (
    "INSERT INTO ledger (user_id, kind, amount, currency, hold_id, order_id, ref, actor, "
    "reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING RETURNING *"
)


async def _append(
    tx: Tx,
    user_id: int,
    kind: LedgerKind,
    amount: Decimal,
    currency: str,
    now: datetime,
    *,
    hold_id: int | None = None,
    order_id: int | None = None,
    ref: str | None = None,
    actor: int | None = None,
    reason: str | None = None,
) -> LedgerEntry | None:
    """Append one row; None if a unique index already holds its twin (nothing written)."""
    params = (
        user_id,
        kind.value,
        encode_decimal(amount),
        currency,
        hold_id,
        order_id,
        ref,
        actor,
        reason,
        encode_time(now),
    )
    try:
        row = await tx.fetchone(_INSERT, params)
    except sqlite3.IntegrityError as exc:
        if "FOREIGN KEY" in str(exc):
            raise UnknownUser(f"no user {user_id} for a ledger {kind.value}") from exc
        raise
    return None if row is None else _entry(row)


async def hold_in(tx: Tx, user_id: int, amount: Money, now: datetime) -> int | None:
    """Inside ``tx``: reserve ``amount`` if the balance covers it; the hold's id, or None."""
    _positive(amount)
    if await _balance(tx, user_id, amount.currency) < amount.amount:
        return None
    entry = await _append(
        tx, user_id, LedgerKind.HOLD, amount.amount.copy_negate(), amount.currency, now
    )
    if entry is None:
        raise StorageError("a hold row collided with a unique index")
    return entry.id


async def capture_in(tx: Tx, hold_id: int, order_id: int, now: datetime) -> bool:
    """Inside ``tx``: keep the held money for ``order_id``; True only if this settled it."""
    hold = await _hold_row(tx, hold_id)
    owner = await tx.fetchone("SELECT user_id FROM orders WHERE id = ?", (order_id,))
    if owner is None or int(owner[0]) != hold.user_id:
        raise UnknownOrder(f"order {order_id} is not user {hold.user_id}'s")
    entry = await _append(
        tx,
        hold.user_id,
        LedgerKind.CAPTURE,
        _ZERO,
        hold.amount.currency,
        now,
        hold_id=hold_id,
        order_id=order_id,
    )
    return entry is not None


async def release_in(tx: Tx, hold_id: int, now: datetime) -> bool:
    """Inside ``tx``: give the held money back; True only if this call settled the hold."""
    hold = await _hold_row(tx, hold_id)
    entry = await _append(
        tx,
        hold.user_id,
        LedgerKind.RELEASE,
        hold.amount.amount.copy_negate(),
        hold.amount.currency,
        now,
        hold_id=hold_id,
    )
    return entry is not None


@dataclass(frozen=True, slots=True)
class _Capture:
    paid: Decimal  # what the user paid for this charge (positive)
    currency: str
    user_id: int
    cost: Money | None  # what the provider charged for it, where recorded


def _share(captures: list[_Capture], scope: RefundScope, returned: Money | None) -> Decimal | None:
    """What the user gets back when the provider returned ``scope`` (or ``returned``)."""
    if scope is RefundScope.ALL:
        return exact_sum([c.paid for c in captures])
    if scope is RefundScope.LAST:
        return captures[-1].paid
    if scope is not RefundScope.AMOUNT or returned is None:
        return None  # NONE: nothing came back; UNKNOWN: nothing is given on a guess
    # The provider said how much: the latest charges are the ones returned, each in
    # proportion to what of it came back, rounded down to the user's minor unit.
    left, total = returned.amount, _ZERO
    for capture in reversed(captures):
        if left <= 0:
            break
        if capture.cost is None or capture.cost.currency != returned.currency:
            logger.error("a refund of %s cannot be matched to what was charged", returned)
            return None
        if capture.cost.amount <= 0:
            continue
        taken = min(left, capture.cost.amount)
        part = _WIDE.multiply(capture.paid, _WIDE.divide(taken, capture.cost.amount))
        total = _EXACT.add(total, part.quantize(capture.paid, rounding=ROUND_DOWN))
        left -= taken
    return total


async def refund_in(
    tx: Tx,
    order_id: int,
    scope: RefundScope,
    now: datetime,
    returned: Money | None = None,
) -> LedgerEntry | None:
    """Inside ``tx``: give back the share of what the user paid for ``order_id`` that matches
    what the provider returned, once per order; None when nothing is due or already done."""
    rows = await tx.fetchall(
        "SELECT h.user_id, h.amount, h.currency, i.cost, i.cost_currency FROM ledger AS c "
        "JOIN ledger AS h ON h.id = c.hold_id LEFT JOIN intents AS i ON i.hold_id = h.id "
        "WHERE c.kind = 'capture' AND c.order_id = ? ORDER BY c.id",
        (order_id,),
    )
    if not rows:
        return None
    captures = [
        _Capture(
            paid=Decimal(r[1]).copy_negate(),
            currency=str(r[2]),
            user_id=int(r[0]),
            cost=None if r[3] is None else Money(Decimal(r[3]), str(r[4])),
        )
        for r in rows
    ]
    if len({(c.user_id, c.currency) for c in captures}) != 1:
        raise StorageError(f"order {order_id} was captured for mixed users or currencies")
    amount = _share(captures, scope, returned)
    if amount is None or amount <= 0:
        return None
    amount = min(amount, exact_sum([c.paid for c in captures]))
    return await _append(
        tx,
        captures[0].user_id,
        LedgerKind.REFUND,
        amount,
        captures[0].currency,
        now,
        order_id=order_id,
    )


async def _hold_row(tx: Tx, hold_id: int) -> LedgerEntry:
    row = await tx.fetchone("SELECT * FROM ledger WHERE id = ? AND kind = 'hold'", (hold_id,))
    if row is None:
        raise UnknownHold(f"ledger row {hold_id} is not a hold")
    return _entry(row)


class LedgerRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def balance(self, user_id: int, currency: str) -> Money:
        """The available balance: the sum of every row in ``currency`` (open holds taken)."""
        rows = await self._db.fetchall(
            "SELECT amount FROM ledger WHERE user_id = ? AND currency = ?", (user_id, currency)
        )
        return Money(exact_sum([Decimal(row[0]) for row in rows]), currency)

    async def hold(self, user_id: int, amount: Money, now: datetime) -> int | None:
        """Reserve ``amount`` if the balance covers it; the hold's id, or None if short."""
        async with self._db.transaction() as tx:
            return await hold_in(tx, user_id, amount, now)

    async def capture(self, hold_id: int, order_id: int, now: datetime) -> bool:
        """Keep the held money for ``order_id``; True only if this call settled the hold.

        Raises UnknownHold, or UnknownOrder if the order is missing or someone else's.
        """
        async with self._db.transaction() as tx:
            return await capture_in(tx, hold_id, order_id, now)

    async def release(self, hold_id: int, now: datetime) -> bool:
        """Give the held money back; True only if this call settled the hold."""
        async with self._db.transaction() as tx:
            return await release_in(tx, hold_id, now)

    async def refund(
        self,
        order_id: int,
        now: datetime,
        scope: RefundScope = RefundScope.ALL,
        returned: Money | None = None,
    ) -> Money | None:
        """Give back the share of the order's captures that the provider returned, once;
        None if nothing is due (or already refunded). See :func:`refund_in`."""
        async with self._db.transaction() as tx:
            entry = await refund_in(tx, order_id, scope, now, returned)
        return None if entry is None else entry.amount

    async def top_up(self, user_id: int, amount: Money, ref: str, now: datetime) -> bool:
        """Credit a payment once per ``ref``; False if that ref was credited before."""
        _positive(amount)
        if not ref:
            raise ValueError("a top-up needs its payment reference")
        async with self._db.transaction() as tx:
            entry = await _append(
                tx, user_id, LedgerKind.TOPUP, amount.amount, amount.currency, now, ref=ref
            )
            if entry is None:
                seen = await tx.fetchone(
                    "SELECT user_id, kind, amount, currency FROM ledger WHERE ref = ?", (ref,)
                )
                if seen is None or (
                    int(seen[0]),
                    seen[1],
                    Decimal(seen[2]),
                    seen[3],
                ) != (user_id, LedgerKind.TOPUP.value, amount.amount, amount.currency):
                    logger.warning(
                        "payment ref %r repeated with other details: not credited again", ref
                    )
        return entry is not None

    async def adjust(
        self, user_id: int, amount: Money, actor: int, reason: str | None, now: datetime
    ) -> bool:
        """An admin's signed correction; False for a debit the balance does not cover."""
        if not amount.amount.is_finite() or amount.amount == 0:
            raise ValueError(f"an adjustment must be non-zero: {amount}")
        async with self._db.transaction() as tx:
            if amount.amount < 0:
                available = await _balance(tx, user_id, amount.currency)
                if _EXACT.add(available, amount.amount) < 0:
                    return False
            entry = await _append(
                tx,
                user_id,
                LedgerKind.ADJUST,
                amount.amount,
                amount.currency,
                now,
                actor=actor,
                reason=reason,
            )
        if entry is None:
            raise StorageError("an adjustment row collided with a unique index")
        return True

    async def get(self, entry_id: int) -> LedgerEntry | None:
        row = await self._db.fetchone("SELECT * FROM ledger WHERE id = ?", (entry_id,))
        return None if row is None else _entry(row)

    async def entries(self, user_id: int, limit: int = 20) -> list[LedgerEntry]:
        """The user's latest rows, newest first."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        rows = await self._db.fetchall(
            "SELECT * FROM ledger WHERE user_id = ? ORDER BY id DESC LIMIT ?", (user_id, limit)
        )
        return [_entry(row) for row in rows]

    async def history(self, user_id: int, currency: str, limit: int = 10) -> list[HistoryItem]:
        """The user's latest operations in ``currency``, newest first: top-ups, purchases and
        renewals (their holds; a released hold gave everything back and is left out), refunds
        and admin credits or debits. Read-only; walks ``ledger_by_user`` backwards."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        rows = await self._db.fetchall(
            "SELECT l.id, l.kind, l.amount, l.currency, l.created_at, s.kind AS settled, "
            "i.action, COALESCE(i.service, o.service) AS service, "
            "COALESCE(i.country, o.country) AS country "
            "FROM ledger AS l "
            "LEFT JOIN ledger AS s ON l.kind = 'hold' AND s.hold_id = l.id "
            "AND s.kind IN ('capture', 'release') "
            "LEFT JOIN intents AS i ON l.kind = 'hold' AND i.hold_id = l.id "
            "LEFT JOIN orders AS o ON l.kind = 'refund' AND o.id = l.order_id "
            "WHERE l.user_id = ? AND l.currency = ? "
            "AND l.kind IN ('topup', 'hold', 'refund', 'adjust') "
            "AND (s.kind IS NULL OR s.kind = 'capture') "
            "ORDER BY l.id DESC LIMIT ?",
            (user_id, currency, limit),
        )
        return [_history_item(row) for row in rows]

    async def open_holds(self, user_id: int | None = None) -> list[LedgerEntry]:
        """Holds not yet captured or released, oldest first (for reconciliation)."""
        rows = await self._db.fetchall(
            "SELECT * FROM ledger AS h WHERE h.kind = 'hold' "
            "AND (CAST(? AS BIGINT) IS NULL OR h.user_id = ?) "
            "AND NOT EXISTS (SELECT 1 FROM ledger AS s WHERE s.hold_id = h.id "
            "AND s.kind IN ('capture', 'release')) ORDER BY h.id",
            (user_id, user_id),
        )
        return [_entry(row) for row in rows]
