"""Prices the server showed, kept server-side: a Buy button names a quote, never a price.

A quote is what one user was shown for one offer: the provider's price then and the price the
user pays. Its id is a random token, so a forged button can only name a quote that exists for
that same user; old quotes are swept.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bot.domain import OrderKind
from bot.money import Money
from storage.codec import decode_time, encode_decimal, encode_time
from storage.db import Database, Row

TOKEN_BYTES = 8  # 16 hex characters in the callback data


@dataclass(frozen=True, slots=True)
class Quote:
    id: str
    user_id: int
    provider: str
    service: str
    country: str
    kind: OrderKind
    duration_hours: int | None
    ref: str
    price: Money  # the provider's price when shown, in its currency
    display_price: Money  # what the user was shown and pays
    created_at: datetime


def _quote(row: Row) -> Quote:
    return Quote(
        id=row["id"],
        user_id=int(row["user_id"]),
        provider=row["provider"],
        service=row["service"],
        country=row["country"],
        kind=OrderKind(row["kind"]),
        duration_hours=None if row["duration_hours"] is None else int(row["duration_hours"]),
        ref=row["ref"],
        price=Money(Decimal(row["price"]), row["currency"]),
        display_price=Money(Decimal(row["display_price"]), row["display_currency"]),
        created_at=decode_time(row["created_at"]),
    )


def is_token(text: str) -> bool:
    """Whether ``text`` could be a quote id (checked before any query)."""
    return len(text) == 2 * TOKEN_BYTES and all(c in "0123456789abcdef" for c in text)


class QuotesRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        user_id: int,
        *,
        provider: str,
        service: str,
        country: str,
        kind: OrderKind,
        duration_hours: int | None,
        ref: str,
        price: Money,
        display_price: Money,
        now: datetime,
    ) -> Quote:
        quote = Quote(
            secrets.token_hex(TOKEN_BYTES),
            user_id,
            provider,
            service,
            country,
            kind,
            duration_hours,
            ref,
            price,
            display_price,
            now,
        )
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO quotes (id, user_id, provider, service, country, kind, "
                "duration_hours, ref, price, currency, display_price, display_currency, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    quote.id,
                    user_id,
                    provider,
                    service,
                    country,
                    kind.value,
                    duration_hours,
                    ref,
                    encode_decimal(price.amount),
                    price.currency,
                    encode_decimal(display_price.amount),
                    display_price.currency,
                    encode_time(now),
                ),
            )
        return quote

    async def get(self, quote_id: str, user_id: int) -> Quote | None:
        """The quote if it is ``user_id``'s; None for a forged, foreign or swept one."""
        if not is_token(quote_id):
            return None
        row = await self._db.fetchone(
            "SELECT * FROM quotes WHERE id = ? AND user_id = ?", (quote_id, user_id)
        )
        return None if row is None else _quote(row)

    async def sweep(self, older_than: datetime) -> int:
        """Forget quotes shown before ``older_than``."""
        async with self._db.transaction() as tx:
            return await tx.execute(
                "DELETE FROM quotes WHERE created_at < ?", (encode_time(older_than),)
            )
