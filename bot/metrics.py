"""Prometheus metrics: one registry per app (never the global default), served on ``/metrics``.

Services call one method per event (``metrics.purchase(...)``); the Dispatcher and the Bot API
session get middlewares from here. Every label is a bounded set the code defines (handler
names, provider ids, actions, error kinds): never a user id, a phone number, a URL or a secret.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "NO_METRICS", "Metrics"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_DELAY = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
_LABEL = re.compile(r"[^A-Za-z0-9_./:-]")
_ID_LIKE = re.compile(r"\d{3,}|[0-9a-f]{16,}")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
Handler = Callable[[Any, dict[str, Any]], Awaitable[Any]]


def label(text: str, limit: int = 64) -> str:
    """A label value from code-defined text: ids and odd characters masked, length bounded."""
    return _LABEL.sub("_", _ID_LIKE.sub("N", text))[:limit] or "none"


def kind_of(exc: BaseException) -> str:
    """``TelegramRetryAfter`` -> ``retry_after``, ``NoNumbers`` -> ``no_numbers``: an error's
    class name as a label (a class of the code's own error trees, so a bounded set)."""
    name = type(exc).__name__.removeprefix("Telegram").removesuffix("Error") or "error"
    return label(_CAMEL.sub("_", name).lower())


class Stored(Protocol):
    @property
    def stored_at(self) -> datetime: ...


class ReconcileFindings(Protocol):
    recovered: list[int]
    released: list[int]
    settled: list[int]
    pending: list[int]
    unowned: list[str]


class Metrics:
    """Every metric of one app; ``render()`` gives the text format."""

    def __init__(self) -> None:
        # No *_created series (noise on every dashboard); a process-wide switch.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory...
        self.updates = Counter(
            "bot_updates",
            "Telegram updates received, by type and whether a handler took them (true, false, "
            "or error: a handler raised, and the error handlers answered)",
            ["type", "handled"],
            registry=r,
        )
        self.handler_seconds = Histogram(
            "bot_handler_duration_seconds",
            "Time a handler took, by handler",
            ["handler"],
            registry=r,
            buckets=_LATENCY,
        )
        self.handler_errors = Counter(
            "bot_handler_errors", "Handlers that raised, by handler", ["handler"], registry=r
        )
        self.provider_requests = Counter(
            "bot_provider_requests",
            "HTTP requests to providers, by provider, action and outcome",
            ["provider", "action", "outcome"],
            registry=r,
        )
        self.provider_seconds = Histogram(
            "bot_provider_request_duration_seconds",
            "Provider request latency (answer parsed), by provider and action",
            ["provider", "action"],
            registry=r,
            buckets=_LATENCY,
        )
        self.sms_delivered = Counter(
            "bot_sms_delivered",
            "SMS pushed to their chat (Telegram accepted)",
            ["provider"],
            registry=r,
        )
        self.sms_delay = Histogram(
            "bot_sms_delivery_delay_seconds",
            "From an SMS stored by the bot to Telegram accepting its push",
            ["provider"],
            registry=r,
            buckets=_DELAY,
        )
        self.purchases = Counter(
            "bot_purchases",
            "Purchase attempts at providers, by provider, kind and outcome",
            ["provider", "kind", "outcome"],
            registry=r,
        )
        self.refunds = Counter(
            "bot_refunds",
            "Refunds to users' wallets, by provider and reason",
            ["provider", "reason"],
            registry=r,
        )
        self.reconciler_findings = Counter(
            "bot_reconciler_findings",
            "Intents the reconciler resolved (recovered, released, settled) and provider "
            "orders nobody owns (unowned)",
            ["finding"],
            registry=r,
        )
        self.reconciler_pending = Gauge(
            "bot_reconciler_pending_intents",
            "Intents the reconciler's latest round left open",
            registry=r,
        )
        self.telegram_send_errors = Counter(
            "bot_telegram_send_errors",
            "Messages the bot sent on its own (SMS, reminders, notices) that Telegram did not "
            "take, by error kind",
            ["kind"],
            registry=r,
        )
        self.telegram_requests = Counter(
            "bot_telegram_requests",
            "Bot API requests, by method and outcome",
            ["method", "outcome"],
            registry=r,
        )
        self.telegram_seconds = Histogram(
            "bot_telegram_request_duration_seconds",
            "Bot API request latency, by method",
            ["method"],
            registry=r,
            buckets=_LATENCY,
        )
        self.active_orders = Gauge(
            "bot_active_orders",
            "Active orders, by provider and kind",
            ["provider", "kind"],
            registry=r,
        )
        self.open_holds = Gauge(
            "bot_wallet_open_holds",
            "Wallet holds neither captured nor released (purchases and renewals under way)",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # --- one-line hooks ----------------------------------------------------------------------

    def provider_request(self, provider: str, action: str, outcome: str, seconds: float) -> None:
        action = label(action.strip("/"))
        self.provider_requests.labels(provider, action, outcome).inc()
        self.provider_seconds.labels(provider, action).observe(seconds)

    def sms_pushed(self, provider: str, message: Stored, now: datetime) -> None:
        """Telegram took the push of ``message`` at ``now`` (the app's clock)."""
        delay = max((now - message.stored_at).total_seconds(), 0.0)
        self.sms_delivered.labels(provider).inc()
        self.sms_delay.labels(provider).observe(delay)

    def purchase(self, provider: str, kind: str, outcome: str) -> None:
        self.purchases.labels(provider, str(kind), outcome).inc()

    def refund(self, provider: str, reason: str) -> None:
        self.refunds.labels(provider, reason).inc()

    def reconciled(self, report: ReconcileFindings) -> None:
        for finding in ("recovered", "released", "settled", "unowned"):
            if found := len(getattr(report, finding)):
                self.reconciler_findings.labels(finding).inc(found)
        self.reconciler_pending.set(len(report.pending))

    def telegram_send_failed(self, exc: BaseException) -> None:
        self.telegram_send_errors.labels(kind_of(exc)).inc()

    def set_active_orders(self, counts: Iterable[tuple[str, str, int]]) -> None:
        """``(provider, kind, count)`` rows: the gauge is replaced (gone pairs vanish)."""
        self.active_orders.clear()
        for provider, kind, count in counts:
            self.active_orders.labels(provider, kind).set(count)

    def set_open_holds(self, count: int) -> None:
        self.open_holds.set(count)

    # --- middlewares ---------------------------------------------------------------------------

    async def count_update(self, handler: Handler, event: Any, data: dict[str, Any]) -> Any:
        """Dispatcher ``update`` outer middleware: every update, by type, handled or not."""
        from aiogram.dispatcher.event.bases import UNHANDLED

        try:
            kind = label(str(event.event_type))
        except (AttributeError, LookupError):  # a type this aiogram does not know
            kind = "unknown"
        try:
            result = await handler(event, data)
        except Exception:
            self.updates.labels(kind, "error").inc()
            raise
        self.updates.labels(kind, str(result is not UNHANDLED).lower()).inc()
        return result

    async def time_handler(self, handler: Handler, event: Any, data: dict[str, Any]) -> Any:
        """Inner middleware of each event observer: the handler that took it, timed."""
        name = handler_name(data.get("handler"))
        started = time.perf_counter()
        try:
            return await handler(event, data)
        except Exception:
            self.handler_errors.labels(name).inc()
            raise
        finally:
            self.handler_seconds.labels(name).observe(time.perf_counter() - started)

    async def time_request(self, make_request: Any, bot: Any, method: Any) -> Any:
        """Bot API session middleware: each request by method, its outcome and latency."""
        name = label(str(getattr(method, "__api_method__", type(method).__name__)))
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await make_request(bot, method)
        except Exception as exc:
            outcome = kind_of(exc)
            raise
        finally:
            self.telegram_requests.labels(name, outcome).inc()
            self.telegram_seconds.labels(name).observe(time.perf_counter() - started)


def handler_name(handler: Any) -> str:
    """``start.start``, ``buy.confirm``: the module's last part and the function's name (a
    handler defined inside ``setup()`` drops ``setup.<locals>.``)."""
    callback = getattr(handler, "callback", None)
    if callback is None:
        return "unknown"
    module = str(getattr(callback, "__module__", "")).rsplit(".", 1)[-1]
    name = str(getattr(callback, "__qualname__", type(callback).__name__))
    name = name.rsplit("<locals>.", 1)[-1]
    return label(f"{module}.{name}" if module else name, 96)


NO_METRICS = Metrics()  # for services built without one (tests, scripts): counted, not served
