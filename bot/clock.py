"""An injectable clock: the bot reads time only through this, so tests can drive it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK: Clock = SystemClock()


def parse_datetime(value: object, *, assume_utc: bool = True) -> datetime | None:
    """Parse a provider timestamp leniently: ISO 8601 (``Z`` or offset), ``YYYY-MM-DD HH:MM:SS``,
    or a UNIX timestamp. Naive values are taken as UTC (the docs do not say). ``None`` on garbage.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC) if assume_utc else parsed
    return parsed.astimezone(UTC)
