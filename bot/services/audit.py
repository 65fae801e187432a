"""The ledger audit behind ``python -m bot doctor --ledger``: every difference between the
wallet ledger, the write-ahead intents, the stored orders and (where a provider lists its
orders) the provider's own records. An empty result means they agree."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from bot.domain import OrderKind
from bot.providers.base import Provider, ProviderError
from storage.codec import decode_time
from storage.db import Database
from storage.ledger import exact_sum

log = logging.getLogger(__name__)
SETTLE = timedelta(minutes=5)  # an intent younger than this may still be in flight


async def audit_ledger(
    db: Database, providers: Mapping[str, Provider], now: datetime
) -> list[str]:
    """Every difference found, one line each (no line: all agree)."""
    problems: list[str] = []
    problems += await _holds(db)
    problems += await _intents(db, providers, now)
    problems += await _refunds(db)
    problems += await _balances(db)
    for provider in providers.values():
        problems += await _listing(db, provider)
    return problems


async def _holds(db: Database) -> list[str]:
    rows = await db.fetchall(
        "SELECT h.id, h.user_id, h.amount, h.currency FROM ledger AS h "
        "WHERE h.kind = 'hold' AND NOT EXISTS (SELECT 1 FROM ledger AS s "
        "WHERE s.hold_id = h.id) AND NOT EXISTS (SELECT 1 FROM intents AS i "
        "WHERE i.hold_id = h.id AND i.status = 'open')"
    )
    return [
        f"hold {r[0]} of user {r[1]} ({r[2]} {r[3]}) is neither settled nor part of an "
        "open purchase"
        for r in rows
    ]


async def _intents(db: Database, providers: Mapping[str, Provider], now: datetime) -> list[str]:
    problems = []
    for row in await db.fetchall(
        "SELECT id, action, provider, kind, created_at, attempts FROM intents "
        "WHERE status = 'open' ORDER BY id"
    ):
        provider = providers.get(row[2])
        window = SETTLE
        if provider is not None and row[1] == "buy":
            window = max(window, provider.unclaimed_window(OrderKind(row[3])))
        age = now - decode_time(row[4])
        if age > window + SETTLE:
            problems.append(
                f"intent {row[0]} ({row[1]} at {row[2]}) open for {age} after "
                f"{row[5]} reconciliation attempts"
            )
    for row in await db.fetchall(
        "SELECT i.id, i.status, i.hold_id FROM intents AS i WHERE i.hold_id IS NOT NULL "
        "AND i.status <> 'open' AND NOT EXISTS (SELECT 1 FROM ledger AS s "
        "WHERE s.hold_id = i.hold_id AND s.kind = "
        "CASE i.status WHEN 'done' THEN 'capture' ELSE 'release' END)"
    ):
        problems.append(f"intent {row[0]} is {row[1]} but its hold {row[2]} was not settled so")
    for row in await db.fetchall(
        "SELECT o.id, o.user_id FROM orders AS o JOIN intents AS i ON i.order_id = o.id "
        "AND i.action = 'buy' AND i.status = 'done' AND i.hold_id IS NOT NULL "
        "WHERE NOT EXISTS (SELECT 1 FROM ledger AS c WHERE c.kind = 'capture' "
        "AND c.order_id = o.id)"
    ):
        problems.append(f"order {row[0]} of user {row[1]} was paid for but never captured")
    return problems


async def _refunds(db: Database) -> list[str]:
    problems = []
    for row in await db.fetchall(
        "SELECT r.order_id, r.amount FROM ledger AS r WHERE r.kind = 'refund'"
    ):
        paid = await db.fetchall(
            "SELECT h.amount FROM ledger AS c JOIN ledger AS h ON h.id = c.hold_id "
            "WHERE c.kind = 'capture' AND c.order_id = ?",
            (row[0],),
        )
        total = exact_sum([Decimal(p[0]).copy_negate() for p in paid])
        if Decimal(row[1]) > total:
            problems.append(f"order {row[0]} refunded {row[1]}, more than the {total} paid")
    return problems


async def _balances(db: Database) -> list[str]:
    problems = []
    for row in await db.fetchall("SELECT DISTINCT user_id, currency FROM ledger"):
        amounts = await db.fetchall(
            "SELECT amount FROM ledger WHERE user_id = ? AND currency = ?", (row[0], row[1])
        )
        balance = exact_sum([Decimal(a[0]) for a in amounts])
        if balance < 0:
            problems.append(f"user {row[0]} has a negative balance: {balance} {row[1]}")
    return problems


async def _listing(db: Database, provider: Provider) -> list[str]:
    if not provider.listed_kinds:
        return []
    try:
        remote = await provider.list_orders()
    except ProviderError as exc:
        return [f"{provider.title}: the order list could not be read ({type(exc).__name__})"]
    problems = []
    listed = {o.order_id: o for o in remote}
    for order in remote:
        if order.status.is_final:
            continue
        row = await db.fetchone(
            "SELECT id FROM orders WHERE provider = ? AND provider_order_id = ?",
            (provider.id, order.order_id),
        )
        if row is None:
            problems.append(f"{provider.title}: active order {order.order_id} belongs to no user")
    kinds = {k.value for k in provider.listed_kinds}
    for row in await db.fetchall(
        "SELECT id, provider_order_id, kind FROM orders WHERE provider = ? AND status = 'active'",
        (provider.id,),
    ):
        if row[2] not in kinds:
            continue
        found = listed.get(str(row[1]))
        if found is None:
            problems.append(
                f"{provider.title}: order {row[0]} ({row[1]}) is active here but not listed "
                "by the provider"
            )
        elif found.status.is_final:
            problems.append(
                f"{provider.title}: order {row[0]} ({row[1]}) is active here but "
                f"{found.status.value} at the provider"
            )
    return problems
