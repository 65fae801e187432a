"""Logging set-up: text lines or one JSON object per line (``LOG_FORMAT``), with the user,
order and provider at hand, and every secret redacted.

What is "at hand" comes from :func:`log_context` (a context variable, so each task and each
update has its own): a Dispatcher middleware sets the update's user id; the provider HTTP
layer, the outbox and the reconciler set the provider, the order or the chat they work on.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Concatenate, ParamSpec, Protocol, TextIO, TypeVar

from bot.redact import RedactingFilter, Redactor

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_EMPTY: Mapping[str, object] = MappingProxyType({})
_context: ContextVar[Mapping[str, object]] = ContextVar("log_context", default=_EMPTY)
Handler = Callable[[Any, dict[str, Any]], Awaitable[Any]]


class log_context:  # lower case: used like a function
    """``with log_context(order_id=...)`` (or ``async with``, beside another context manager):
    within the block, and tasks it starts, log records carry these (None: unchanged)."""

    def __init__(
        self,
        *,
        user_id: int | None = None,
        order_id: int | None = None,
        provider: str | None = None,
    ) -> None:
        given = {"user_id": user_id, "order_id": order_id, "provider": provider}
        self._fields = {key: value for key, value in given.items() if value is not None}
        self._tokens: list[Token[Mapping[str, object]]] = []

    def __enter__(self) -> None:
        merged = MappingProxyType({**_context.get(), **self._fields})
        self._tokens.append(_context.set(merged))

    def __exit__(self, *_exc: object) -> None:
        _context.reset(self._tokens.pop())

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


class _OrderLike(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def provider(self) -> str: ...


S = TypeVar("S")
Ord = TypeVar("Ord", bound=_OrderLike)
P = ParamSpec("P")
R = TypeVar("R")


def order_log_context(
    method: Callable[Concatenate[S, Ord, P], Awaitable[R]],
) -> Callable[Concatenate[S, Ord, P], Awaitable[R]]:
    """A decorator for ``async def method(self, order, ...)``: its records carry the order's
    id and provider."""

    @functools.wraps(method)
    async def wrapper(self: S, order: Ord, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with log_context(order_id=order.id, provider=order.provider):
            return await method(self, order, *args, **kwargs)

    return wrapper


def current_context() -> Mapping[str, object]:
    return _context.get()


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", [user_id, order_id, provider], ["exc"]}`` on one
    line. The redacting filter has already rewritten message and traceback; ``redact`` is
    applied to the whole line as well (stack info, anything a field might carry)."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(current_context())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(entry, ensure_ascii=False, default=str)
        return self._redact(line) if self._redact else line


def log_handler(
    redactor: Redactor, *, json_lines: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """The one handler the bot logs through (stderr by default), secrets redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redactor) if json_lines else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter(redactor))
    return handler


def setup_logging(redactor: Redactor, *, level: int, json_lines: bool = False) -> None:
    """Configure the root logger once (``python -m bot``)."""
    logging.basicConfig(level=level, handlers=[log_handler(redactor, json_lines=json_lines)])
    # httpx logs every request URL at INFO, query string (and so the API key) included.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # aiogram logs every update handled at INFO: /metrics counts and times them instead
    # (bot_updates_total, bot_handler_duration_seconds), without a line and its redaction each.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)


async def user_log_context(handler: Handler, event: Any, data: dict[str, Any]) -> Any:
    """Dispatcher ``update`` outer middleware: the update's user id on every record."""
    user = data.get("event_from_user")
    with log_context(user_id=getattr(user, "id", None)):
        return await handler(event, data)
