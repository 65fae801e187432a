"""Keep-trying plans (migration 12): a user's allowance of up to N activations of one (service,
country) within a maximum price, and where the plan is.

A plan moves through ``buying`` (a quote being bought), ``waiting`` (an order waiting for its
code until a deadline) and ``cancelling`` (no code in time) to an end (``done``, ``stopped``,
``gave_up``). Every move is a conditional UPDATE on the plan's ``step`` counter: of two
processes (or a step and a Stop tap) only one makes it. What a purchase or a cancel did is not
kept here but read from the write-ahead intents, the orders and the ledger, which record it in
the same transaction as the money: a restart finds the plan where it was and asks them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bot.money import Money
from storage.codec import (
    decode_opt_time,
    decode_time,
    encode_decimal,
    encode_opt_time,
    encode_time,
)
from storage.db import Database, Row


class PlanState(enum.StrEnum):
    BUYING = "buying"
    WAITING = "waiting"
    CANCELLING = "cancelling"
    DONE = "done"  # a code came
    STOPPED = "stopped"  # the user stopped it
    GAVE_UP = "gave_up"  # ``reason`` says why

    @property
    def live(self) -> bool:
        return self in (PlanState.BUYING, PlanState.WAITING, PlanState.CANCELLING)


LIVE = tuple(s.value for s in PlanState if s.live)


class EndReason(enum.StrEnum):
    CODE = "code"
    STOPPED = "stopped"
    TRIES = "tries"  # every allowed try was used
    MAX_PRICE = "max_price"  # the offers left cost more than the maximum
    WALLET = "wallet"  # the wallet cannot pay the next offer
    NO_OFFER = "no_offer"  # no offer left that the plan has not tried
    CANNOT_CANCEL = "cannot_cancel"  # the provider does not let the order be cancelled


@dataclass(frozen=True, slots=True)
class Plan:
    id: int
    user_id: int
    service: str
    country: str
    tries: int
    max_price: Money  # display currency
    start_quote: str
    tries_used: int
    state: PlanState
    quote_id: str | None
    order_id: int | None
    deadline: datetime | None
    reason: EndReason | None
    step: int
    created_at: datetime
    updated_at: datetime

    @property
    def live(self) -> bool:
        return self.state.live


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    """What the write-ahead record of a quote's purchase says."""

    status: str  # "open", "done" or "failed" (storage.intents.IntentStatus values)
    order_id: int | None


def _plan(row: Row) -> Plan:
    return Plan(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        service=row["service"],
        country=row["country"],
        tries=int(row["tries"]),
        max_price=Money(Decimal(row["max_price"]), row["currency"]),
        start_quote=row["start_quote"],
        tries_used=int(row["tries_used"]),
        state=PlanState(row["state"]),
        quote_id=row["quote_id"],
        order_id=None if row["order_id"] is None else int(row["order_id"]),
        deadline=decode_opt_time(row["deadline"]),
        reason=None if row["reason"] is None else EndReason(row["reason"]),
        step=int(row["step"]),
        created_at=decode_time(row["created_at"]),
        updated_at=decode_time(row["updated_at"]),
    )


_COLUMNS = frozenset({"state", "quote_id", "order_id", "deadline", "reason", "tries_used"})


class KeepTryingRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        user_id: int,
        service: str,
        country: str,
        tries: int,
        max_price: Money,
        quote_id: str,
        offer: tuple[str, str],
        now: datetime,
    ) -> tuple[Plan, bool]:
        """A plan in ``buying`` its first quote (of ``offer``: provider, ref); (the plan,
        created). The same confirmation started twice gives the first plan back (False)."""
        stamp = encode_time(now)
        async with self._db.transaction() as tx:
            row = await tx.fetchone("SELECT * FROM keep_trying WHERE start_quote = ?", (quote_id,))
            if row is not None:
                return _plan(row), False
            row = await tx.fetchone(
                "INSERT INTO keep_trying (user_id, service, country, tries, max_price, currency, "
                "start_quote, state, quote_id, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'buying', ?, ?, ?) RETURNING *",
                (
                    user_id,
                    service,
                    country,
                    tries,
                    encode_decimal(max_price.amount),
                    max_price.currency,
                    quote_id,
                    quote_id,
                    stamp,
                    stamp,
                ),
            )
            assert row is not None
            await tx.execute(
                "INSERT INTO keep_trying_offers (plan_id, provider, ref, created_at) "
                "VALUES (?, ?, ?, ?)",
                (int(row["id"]), *offer, stamp),
            )
        return _plan(row), True

    async def get(self, plan_id: int) -> Plan | None:
        row = await self._db.fetchone("SELECT * FROM keep_trying WHERE id = ?", (plan_id,))
        return None if row is None else _plan(row)

    async def get_for_user(self, plan_id: int, user_id: int) -> Plan | None:
        row = await self._db.fetchone(
            "SELECT * FROM keep_trying WHERE id = ? AND user_id = ?", (plan_id, user_id)
        )
        return None if row is None else _plan(row)

    async def live(self) -> list[Plan]:
        """Plans with a next step, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM keep_trying WHERE state IN (?, ?, ?) ORDER BY id", LIVE
        )
        return [_plan(row) for row in rows]

    async def for_order(self, order_id: int) -> Plan | None:
        """The plan whose current order this is (live or not), if any."""
        row = await self._db.fetchone(
            "SELECT * FROM keep_trying WHERE order_id = ? ORDER BY id DESC LIMIT 1", (order_id,)
        )
        return None if row is None else _plan(row)

    async def move(
        self,
        plan: Plan,
        now: datetime,
        *,
        tried: tuple[tuple[str, str], ...] = (),
        **changes: object,
    ) -> Plan | None:
        """Take one step from ``plan`` as read (its ``step``): the columns in ``changes`` and
        the offers in ``tried`` (provider, ref) recorded as tried, in one transaction. None
        when the plan moved on meanwhile (nothing written)."""
        if not changes.keys() <= _COLUMNS:
            raise ValueError(f"unknown plan columns: {sorted(changes.keys() - _COLUMNS)}")
        values = [_encode(value) for value in changes.values()]
        sets = "".join(f", {column} = ?" for column in changes)
        stamp = encode_time(now)
        async with self._db.transaction() as tx:
            row = await tx.fetchone(
                f"UPDATE keep_trying SET step = step + 1, updated_at = ?{sets} "  # noqa: S608
                "WHERE id = ? AND step = ? RETURNING *",
                (stamp, *values, plan.id, plan.step),
            )
            if row is None:
                return None
            for provider, ref in tried:
                await tx.execute(
                    "INSERT INTO keep_trying_offers (plan_id, provider, ref, created_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (plan_id, provider, ref) DO NOTHING",
                    (plan.id, provider, ref, stamp),
                )
        return _plan(row)

    async def tried(self, plan_id: int) -> set[tuple[str, str]]:
        """The (provider, ref) of every offer the plan bought or tried."""
        rows = await self._db.fetchall(
            "SELECT provider, ref FROM keep_trying_offers WHERE plan_id = ?", (plan_id,)
        )
        return {(str(r[0]), str(r[1])) for r in rows}

    async def purchase_of(self, quote_id: str) -> PurchaseRecord | None:
        """What the write-ahead record of buying ``quote_id`` says; None: no purchase began."""
        row = await self._db.fetchone(
            "SELECT status, order_id FROM intents WHERE action = 'buy' AND quote_id = ?",
            (quote_id,),
        )
        if row is None:
            return None
        return PurchaseRecord(str(row[0]), None if row[1] is None else int(row[1]))

    async def refunded(self, order_id: int) -> Money | None:
        """What was refunded to the wallet for ``order_id``; None when nothing was."""
        rows = await self._db.fetchall(
            "SELECT amount, currency FROM ledger WHERE kind = 'refund' AND order_id = ?",
            (order_id,),
        )
        if not rows:
            return None
        currency = str(rows[0][1])
        return Money(sum((Decimal(r[0]) for r in rows), Decimal(0)), currency)


def _encode(value: object) -> object:
    if isinstance(value, datetime):
        return encode_opt_time(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value
