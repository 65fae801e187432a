"""How each offer delivered: per provider x service x country x kind, the outcome of every order
(a code, no code, cancelled, banned) and the time from purchase to its first SMS.

Learnt once per order, in the transaction that writes the fact: :func:`record_first_sms` from
the one that stores an order's first SMS (``MessagesRepo.add_new``), :func:`record_close` from
the one that closes it (``OrdersRepo.set_status`` and the intents' closes). The order's own
``stats_outcome`` is set by a conditional UPDATE, so a repeated status write, a second SMS or a
twin process changes nothing. Each outcome is folded into ``offer_stats`` (lifetime counts and
the counts of the recent ring) and into ``offer_recent``, a ring of the last
:data:`RECENT_WINDOW` outcomes, so reading an offer's figures never scans history.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from storage.codec import decode_opt_time, decode_time, encode_time
from storage.db import Database, Row, Tx
from storage.models import OrderStatus

RECENT_WINDOW = 100  # outcomes kept per offer for the recent share and the typical time


class Outcome(enum.StrEnum):
    CODE = "code"  # the number received an SMS (its first one is timed)
    NO_CODE = "no_code"  # it ended (expired, finished, failed) without any SMS
    CANCELLED = "cancelled"  # cancelled before any SMS came
    BANNED = "banned"  # reported as not working before any SMS came


_CLOSED_AS = {
    OrderStatus.CANCELLED: Outcome.CANCELLED,
    OrderStatus.BANNED: Outcome.BANNED,
    OrderStatus.FINISHED: Outcome.NO_CODE,
    OrderStatus.EXPIRED: Outcome.NO_CODE,
    OrderStatus.FAILED: Outcome.NO_CODE,
}


@dataclass(frozen=True, slots=True, order=True)
class OfferRef:
    """What the figures are kept per: an offer, durations of a rental taken together."""

    provider: str
    service: str
    country: str
    kind: str


@dataclass(frozen=True, slots=True)
class OfferFigures:
    """One offer's figures: lifetime counts, and the recent ones with their code times."""

    ref: OfferRef
    samples: int
    codes: int
    no_code: int
    cancelled: int
    banned: int
    code_seconds: int  # sum over the lifetime codes
    recent: int  # outcomes in the ring (at most RECENT_WINDOW)
    recent_codes: int
    recent_seconds: tuple[int, ...] = ()  # times to the code of the ring's codes, sorted
    updated_at: datetime | None = None

    @property
    def recent_share(self) -> float:
        return self.recent_codes / self.recent if self.recent else 0.0

    @property
    def typical_seconds(self) -> int | None:
        """The median time to the first SMS among the recent codes (lower middle)."""
        if not self.recent_seconds:
            return None
        return self.recent_seconds[(len(self.recent_seconds) - 1) // 2]


async def record_first_sms(tx: Tx, order_id: int) -> bool:
    """Inside the transaction that stored SMS of the order: learn a code, unless the order's
    outcome is known already. True if this call learnt it."""
    first = await tx.fetchone(
        "SELECT received_at, stored_at FROM messages WHERE order_id = ? ORDER BY id LIMIT 1",
        (order_id,),
    )
    if first is None:
        return False
    return await _learn_code(
        tx, order_id, decode_opt_time(first["received_at"]), decode_time(first["stored_at"])
    )


async def record_close(tx: Tx, order_id: int, status: OrderStatus, now: datetime) -> bool:
    """Inside the transaction closing the order with ``status``: learn its outcome unless its
    first SMS did (an order with SMS stored before these figures existed counts as a code).
    True if this call learnt it."""
    if await record_first_sms(tx, order_id):
        return True
    outcome = _CLOSED_AS.get(status)
    if outcome is None:
        return False
    row = await tx.fetchone(
        "UPDATE orders SET stats_outcome = ? WHERE id = ? AND stats_outcome IS NULL "
        "RETURNING provider, service, country, kind",
        (outcome.value, order_id),
    )
    if row is None:
        return False
    await _fold(tx, _ref(row), outcome, None, order_id, now)
    return True


async def _learn_code(
    tx: Tx, order_id: int, received_at: datetime | None, stored_at: datetime
) -> bool:
    """The order's first SMS, timed from the purchase to the provider's receipt time where it
    is plausible (between the purchase and the bot storing it), else to when it was stored."""
    row = await tx.fetchone(
        "UPDATE orders SET stats_outcome = ? WHERE id = ? AND stats_outcome IS NULL "
        "RETURNING provider, service, country, kind, created_at",
        (Outcome.CODE.value, order_id),
    )
    if row is None:
        return False
    bought = decode_time(row["created_at"])
    plausible = received_at is not None and bought <= received_at <= stored_at
    at = received_at if plausible and received_at is not None else stored_at
    seconds = max(0, round((at - bought).total_seconds()))
    await _fold(tx, _ref(row), Outcome.CODE, seconds, order_id, stored_at)
    return True


async def _fold(
    tx: Tx, ref: OfferRef, outcome: Outcome, seconds: int | None, order_id: int, now: datetime
) -> None:
    code = int(outcome is Outcome.CODE)
    stamp = encode_time(now)
    row = await tx.fetchone(
        "INSERT INTO offer_stats (provider, service, country, kind, samples, codes, no_code, "
        "cancelled, banned, code_seconds, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (provider, service, country, kind) DO UPDATE SET "
        "samples = offer_stats.samples + 1, codes = offer_stats.codes + excluded.codes, "
        "no_code = offer_stats.no_code + excluded.no_code, "
        "cancelled = offer_stats.cancelled + excluded.cancelled, "
        "banned = offer_stats.banned + excluded.banned, "
        "code_seconds = offer_stats.code_seconds + excluded.code_seconds, "
        "updated_at = excluded.updated_at RETURNING samples",
        (
            *_key(ref),
            code,
            int(outcome is Outcome.NO_CODE),
            int(outcome is Outcome.CANCELLED),
            int(outcome is Outcome.BANNED),
            seconds or 0,
            stamp,
        ),
    )
    assert row is not None  # an upsert with RETURNING returns its row
    slot = (int(row[0]) - 1) % RECENT_WINDOW
    old = await tx.fetchone(
        "SELECT outcome FROM offer_recent "
        "WHERE provider = ? AND service = ? AND country = ? AND kind = ? AND slot = ?",
        (*_key(ref), slot),
    )
    await tx.execute(
        "INSERT INTO offer_recent (provider, service, country, kind, slot, order_id, outcome, "
        "seconds, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (provider, service, country, kind, slot) DO UPDATE SET "
        "order_id = excluded.order_id, outcome = excluded.outcome, "
        "seconds = excluded.seconds, at = excluded.at",
        (*_key(ref), slot, order_id, outcome.value, seconds, stamp),
    )
    old_code = int(old is not None and old[0] == Outcome.CODE.value)
    await tx.execute(
        "UPDATE offer_stats SET recent = recent + ?, recent_codes = recent_codes + ? "
        "WHERE provider = ? AND service = ? AND country = ? AND kind = ?",
        (int(old is None), code - old_code, *_key(ref)),
    )


def _key(ref: OfferRef) -> tuple[str, str, str, str]:
    return (ref.provider, ref.service, ref.country, ref.kind)


def _ref(row: Row) -> OfferRef:
    return OfferRef(row["provider"], row["service"], row["country"], row["kind"])


def _figures(row: Row, seconds: Iterable[int]) -> OfferFigures:
    return OfferFigures(
        ref=_ref(row),
        samples=int(row["samples"]),
        codes=int(row["codes"]),
        no_code=int(row["no_code"]),
        cancelled=int(row["cancelled"]),
        banned=int(row["banned"]),
        code_seconds=int(row["code_seconds"]),
        recent=int(row["recent"]),
        recent_codes=int(row["recent_codes"]),
        recent_seconds=tuple(sorted(seconds)),
        updated_at=decode_opt_time(row["updated_at"]),
    )


class OfferStatsRepo:
    """Reads of the figures; the writes happen with the facts (see the module doc)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def for_pair(self, service: str, country: str) -> dict[OfferRef, OfferFigures]:
        """Every offer's figures for a (service, country): what one offers screen needs."""
        rows = await self._db.fetchall(
            "SELECT * FROM offer_stats WHERE service = ? AND country = ?", (service, country)
        )
        if not rows:
            return {}
        times = await self._db.fetchall(
            "SELECT provider, service, country, kind, seconds FROM offer_recent "
            "WHERE service = ? AND country = ? AND outcome = ?",
            (service, country, Outcome.CODE.value),
        )
        return self._assemble(rows, times)

    async def get(self, ref: OfferRef) -> OfferFigures | None:
        return (await self.for_pair(ref.service, ref.country)).get(ref)

    async def ranked(
        self, min_recent: int, limit: int, *, worst: bool = False
    ) -> list[OfferFigures]:
        """Offers with at least ``min_recent`` recent outcomes, the best recent share first
        (``worst``: the lowest first); ties go to more samples."""
        rows = await self._db.fetchall(
            "SELECT * FROM offer_stats WHERE recent >= ? "
            "ORDER BY recent_codes * ? / recent DESC, recent DESC, "
            "provider, service, country, kind LIMIT ?",
            (max(1, min_recent), -1.0 if worst else 1.0, limit),
        )
        result: list[OfferFigures] = []
        for row in rows:
            times = await self._db.fetchall(
                "SELECT provider, service, country, kind, seconds FROM offer_recent "
                "WHERE provider = ? AND service = ? AND country = ? AND kind = ? "
                "AND outcome = ?",
                (*_key(_ref(row)), Outcome.CODE.value),
            )
            result.extend(self._assemble([row], times).values())
        return result

    @staticmethod
    def _assemble(rows: Sequence[Row], times: Sequence[Row]) -> dict[OfferRef, OfferFigures]:
        seconds: dict[OfferRef, list[int]] = {}
        for row in times:
            if row["seconds"] is not None:
                seconds.setdefault(_ref(row), []).append(int(row["seconds"]))
        return {_ref(row): _figures(row, seconds.get(_ref(row), ())) for row in rows}
