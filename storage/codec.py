"""Conversions between Python values and their stored text form.

Timestamps are ISO-8601 UTC with microseconds (fixed width, so text order is time order);
amounts are plain decimal text, never floats; order meta is a JSON object of strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from bot.money import Money


def encode_time(value: datetime) -> str:
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``; naive values are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime cannot be stored: {value!r}")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def encode_opt_time(value: datetime | None) -> str | None:
    return None if value is None else encode_time(value)


def decode_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"stored timestamp without a zone: {text!r}")
    return value.astimezone(UTC)


def decode_opt_time(text: str | None) -> datetime | None:
    return None if text is None else decode_time(text)


def encode_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return format(value, "f")


def encode_money(value: Money | None) -> tuple[str | None, str | None]:
    """``(amount, currency)`` columns for an optional Money."""
    if value is None:
        return None, None
    return encode_decimal(value.amount), value.currency


def decode_money(amount: str | None, currency: str | None) -> Money | None:
    if amount is None or currency is None:
        if amount is not None or currency is not None:
            raise ValueError("stored amount and currency must be both set or both empty")
        return None
    return Money(Decimal(amount), currency)


def encode_meta(meta: Mapping[str, str]) -> str:
    for key, item in meta.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"order meta must map str to str, got {key!r}: {item!r}")
    return json.dumps(dict(meta), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def decode_meta(text: str) -> dict[str, str]:
    value = json.loads(text)
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("stored order meta is not an object of strings")
    return value
