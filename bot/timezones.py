"""The user's time zone: what they pick or type is validated with zoneinfo and stored as a name
(``users.timezone``); while a user's update is handled (or a message to them rendered), the name
is in a context variable, as the locale is, and :mod:`bot.texts` shows times in that zone.

A stored name is an IANA zone ("Europe/Moscow"), "UTC", or a fixed offset written
"UTC+05:30" (what a user who typed "UTC+5:30" chose). No zone set means UTC.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

from storage.models import User

# The buttons of /settings (two a row), west to east after UTC.
COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Kyiv",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Tashkent",
    "Asia/Almaty",
    "America/New_York",
    "America/Los_Angeles",
)
MAX_INPUT = 64  # what a user types is looked at only up to this length
_OFFSET = re.compile(r"(?:utc|gmt)?\s*([+\-−])\s*([0-9]{1,2})(?:[:.]?([0-9]{2}))?", re.IGNORECASE)
_UTC_NAMES = frozenset({"utc", "gmt", "z", "utc+0", "utc-0", "gmt+0", "gmt-0"})
_NAME = re.compile(r"[A-Za-z0-9_+\-/ ]{1,64}")
_FIXED = re.compile(r"UTC([+-])(\d{2}):(\d{2})")
_MAX_EAST = timedelta(hours=14)  # Kiribati, the easternmost offset in use
_MAX_WEST = timedelta(hours=12)

_current: ContextVar[str | None] = ContextVar("user_time_zone", default=None)


@cache
def _zones_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


@cache
def _zones_by_city() -> dict[str, str]:
    """City names that name one zone only: "moscow" -> "Europe/Moscow"."""
    found: dict[str, set[str]] = {}
    for name in available_timezones():
        if "/" in name and not name.startswith(("Etc/", "SystemV/")):
            found.setdefault(name.rsplit("/", 1)[1].lower(), set()).add(name)
    return {city: next(iter(names)) for city, names in found.items() if len(names) == 1}


def _fixed_name(offset: timedelta) -> str:
    if not offset:
        return "UTC"
    sign = "+" if offset > timedelta() else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse(text: str | None) -> str | None:
    """The zone a user typed or picked, as stored: an IANA name in its own spelling (any
    letter case, spaces for underscores, or a city alone: "new york"), "UTC", or a fixed
    offset ("UTC+3", "+03:00", "GMT-5", "UTC+5:30"); None when it is none of those."""
    raw = (text or "").strip()
    if not raw or len(raw) > MAX_INPUT:
        return None
    if raw.lower().replace(" ", "") in _UTC_NAMES:
        return "UTC"
    if offset := _OFFSET.fullmatch(raw):
        sign, hours, minutes = offset.group(1), int(offset.group(2)), int(offset.group(3) or 0)
        if minutes not in (0, 15, 30, 45):
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        if delta > (_MAX_EAST if sign == "+" else _MAX_WEST):
            return None
        return _fixed_name(delta if sign == "+" else -delta)
    if not _NAME.fullmatch(raw):
        return None
    key = "_".join(raw.split()).lower()
    name = _zones_by_lower_name().get(key) or _zones_by_city().get(key)
    return name if name is not None and resolve(name) is not None else None


@cache
def resolve(name: str | None) -> tzinfo | None:
    """The tzinfo of a stored name; None for no zone or one this system no longer knows."""
    if not name:
        return None
    if name == "UTC":
        return UTC
    if fixed := _FIXED.fullmatch(name):
        delta = timedelta(hours=int(fixed.group(2)), minutes=int(fixed.group(3)))
        return timezone(delta if fixed.group(1) == "+" else -delta)
    if not _NAME.fullmatch(name) or name.lower() not in _zones_by_lower_name():
        return None  # zoneinfo is never handed a path-like name it did not list itself
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def offset_label(moment: datetime) -> str:
    """The offset of an aware ``moment`` in its own zone: "UTC" or "UTC+03:00"."""
    return _fixed_name(moment.utcoffset() or timedelta())


def current_name() -> str | None:
    """The zone name of the user being answered (None: UTC)."""
    name = _current.get()
    return name if resolve(name) is not None else None


def current() -> tzinfo:
    """The tzinfo times are shown in now: the user's zone, else UTC."""
    return resolve(_current.get()) or UTC


@contextmanager
def use(name: str | None) -> Iterator[None]:
    """Show times in zone ``name`` (a stored name; None: UTC) inside the block."""
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class ZoneMiddleware(BaseMiddleware):
    """Runs each update in the user's zone (after the user middleware stored ``stored_user``)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("stored_user")
        with use(user.timezone if user is not None else None):
            return await handler(event, data)
