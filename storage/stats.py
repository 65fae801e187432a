"""Figures for the admins: users, orders, revenue and spend, computed from the stored rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from storage.codec import encode_time
from storage.db import Database, Row
from storage.ledger import exact_sum


@dataclass(frozen=True, slots=True)
class ProviderFigures:
    orders: int = 0
    with_code: int = 0
    spend: dict[str, Decimal] = field(default_factory=dict)  # currency -> provider prices


@dataclass(frozen=True, slots=True)
class Stats:
    users: int
    approved: int
    requested: int
    blocked: int
    orders: int
    active: int
    with_code: int
    revenue: dict[str, Decimal]  # wallet captures minus refunds, per currency
    providers: dict[str, ProviderFigures]
    failed_deliveries: int = 0  # SMS Telegram kept refusing, given up (MessagesRepo.failed)

    @property
    def code_share(self) -> float:
        return self.with_code / self.orders if self.orders else 0.0

    @property
    def spend(self) -> dict[str, Decimal]:
        """What every provider charged together, per currency (cancelled orders excluded)."""
        amounts: dict[str, list[Decimal]] = defaultdict(list)
        for figures in self.providers.values():
            for currency, amount in figures.spend.items():
                amounts[currency].append(amount)
        return {currency: exact_sum(values) for currency, values in amounts.items()}

    @property
    def profit(self) -> dict[str, Decimal]:
        """Revenue minus provider spend, per currency (no conversion between currencies)."""
        spend, zero = self.spend, Decimal(0)
        return {
            currency: exact_sum([self.revenue.get(currency, zero), -spend.get(currency, zero)])
            for currency in sorted(set(self.revenue) | set(spend))
        }


@dataclass(frozen=True, slots=True)
class Live:
    """What is under way now (the gauges of /metrics)."""

    active_orders: dict[tuple[str, str], int]  # (provider, kind) -> active orders
    open_holds: int  # wallet holds neither captured nor released


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def _period(since: datetime | None, until: datetime | None) -> tuple[str, str]:
    """The stored forms of a period's bounds (none given: all time)."""
    return encode_time(since or _EARLIEST), encode_time(until or _LATEST)


class StatsRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def stats(self, since: datetime | None = None, until: datetime | None = None) -> Stats:
        """All the figures; with ``since`` and ``until``, orders, money and failed deliveries
        are those of that period (``since`` included, ``until`` not); users are always all."""
        period = _period(since, until)
        users = await self._db.fetchone(
            "SELECT COUNT(*), SUM(CASE WHEN access = 'approved' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN access = 'requested' THEN 1 ELSE 0 END), SUM(blocked) FROM users"
        )
        assert users is not None
        orders = await self._db.fetchall(
            "SELECT o.provider, o.status, o.price, o.currency, "
            "EXISTS (SELECT 1 FROM messages m WHERE m.order_id = o.id) AS got_code "
            "FROM orders o WHERE o.created_at >= ? AND o.created_at < ?",
            period,
        )
        providers: dict[str, ProviderFigures] = {}
        spend: dict[str, dict[str, list[Decimal]]] = defaultdict(lambda: defaultdict(list))
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in orders:
            counts[row["provider"]][0] += 1
            counts[row["provider"]][1] += int(row["got_code"])
            if row["price"] is not None and row["status"] != "cancelled":
                spend[row["provider"]][row["currency"]].append(Decimal(row["price"]))
        for provider, (total, coded) in counts.items():
            sums = {cur: exact_sum(values) for cur, values in spend[provider].items()}
            providers[provider] = ProviderFigures(total, coded, sums)
        revenue: dict[str, list[Decimal]] = defaultdict(list)
        refunds = await self._db.fetchall(
            "SELECT currency, amount FROM ledger "
            "WHERE kind = 'refund' AND created_at >= ? AND created_at < ?",
            period,
        )
        for row in refunds:  # a refund gives back: less revenue
            revenue[row["currency"]].append(-Decimal(row["amount"]))
        # A capture row is 0 (the money stays spent); its hold carries the (negative) price.
        captured = await self._db.fetchall(
            "SELECT h.currency, h.amount FROM ledger c JOIN ledger h ON h.id = c.hold_id "
            "WHERE c.kind = 'capture' AND c.created_at >= ? AND c.created_at < ?",
            period,
        )
        for row in captured:
            revenue[row["currency"]].append(-Decimal(row["amount"]))
        failed = await self._db.fetchone(
            "SELECT COUNT(*) FROM messages WHERE failed_at >= ? AND failed_at < ?", period
        )
        return Stats(
            users=int(users[0] or 0),
            approved=int(users[1] or 0),
            requested=int(users[2] or 0),
            blocked=int(users[3] or 0),
            orders=len(orders),
            active=sum(1 for row in orders if row["status"] == "active"),
            with_code=sum(int(row["got_code"]) for row in orders),
            revenue={cur: exact_sum(values) for cur, values in revenue.items()},
            providers=providers,
            failed_deliveries=int(failed[0]) if failed else 0,
        )

    async def live(self) -> Live:
        """Active orders by provider and kind, and open holds (each /metrics scrape)."""
        rows = await self._db.fetchall(
            "SELECT provider, kind, COUNT(*) FROM orders WHERE status = 'active' "
            "GROUP BY provider, kind"
        )
        holds = await self._db.fetchone(
            "SELECT COUNT(*) FROM ledger h WHERE h.kind = 'hold' "
            "AND NOT EXISTS (SELECT 1 FROM ledger s WHERE s.hold_id = h.id)"
        )
        return Live(
            {(str(r[0]), str(r[1])): int(r[2]) for r in rows},
            int(holds[0]) if holds is not None else 0,
        )

    async def requested_users(self, limit: int = 10) -> list[tuple[int, str | None]]:
        rows = await self._db.fetchall(
            "SELECT id, telegram_language FROM users WHERE access = 'requested' "
            "ORDER BY first_seen LIMIT ?",
            (limit,),
        )
        return [(int(r["id"]), r["telegram_language"]) for r in rows]

    async def orders_after(self, after_id: int, limit: int) -> list[Row]:
        """Orders with an id above ``after_id``, in id order, with the user's @username (a
        page of the export: memory stays bounded however many orders there are)."""
        return await self._db.fetchall(
            "SELECT o.id, o.user_id, u.username, o.provider, o.provider_order_id, o.kind, "
            "o.service, o.country, o.phone, o.price, o.currency, o.display_price, "
            "o.display_currency, o.status, o.created_at, o.updated_at, o.expires_at, "
            "o.renewed_at FROM orders o LEFT JOIN users u ON u.id = o.user_id "
            "WHERE o.id > ? ORDER BY o.id LIMIT ?",
            (after_id, limit),
        )

    async def ledger_after(self, after_id: int, limit: int) -> list[Row]:
        """Ledger rows with an id above ``after_id``, in id order (a page of the export)."""
        return await self._db.fetchall(
            "SELECT id, user_id, kind, amount, currency, hold_id, order_id, ref, actor, reason, "
            "created_at FROM ledger WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
