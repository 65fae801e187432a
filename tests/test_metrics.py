"""/metrics over real HTTP after real stories: a purchase and an SMS that Telegram first asks to
wait for (the delay measured on the fake clock), a cancel with a refund, a purchase whose answer
is lost and that the reconciler releases. Labels never carry a user id, a phone or a secret.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.methods import SendMessage
from aiogram.types import Update
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics, handler_name, kind_of, label
from bot.money import Money
from bot.providers.base import NoNumbers, PurchaseOutcomeUnknown
from bot.web import start_web
from tests.fakes.telegram import TOKEN
from tests.helpers import free_port
from tests.stack import Stack, running_stack
from tests.test_flow_orders import (
    BUY,
    CANCEL,
    GETSMS_ACTIVATION,
    PROVIDER_KEYS,
    SMSBUS,
    buy,
    confirm_screen,
    deliver_sms,
)
from tests.test_money_follows_provider import ADMIN, BUYER, PUBLIC, lose_next_purchase

NAMES = (
    "bot_updates_total",
    "bot_handler_duration_seconds",
    "bot_handler_errors_total",
    "bot_provider_requests_total",
    "bot_provider_request_duration_seconds",
    "bot_sms_delivered_total",
    "bot_sms_delivery_delay_seconds",
    "bot_purchases_total",
    "bot_refunds_total",
    "bot_reconciler_findings_total",
    "bot_reconciler_pending_intents",
    "bot_telegram_send_errors_total",
    "bot_telegram_requests_total",
    "bot_active_orders",
    "bot_wallet_open_holds",
    "process_resident_memory_bytes",
)

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass
class Scraped:
    text: str
    samples: dict[Key, float]

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def label_values(self) -> set[str]:
        return {value for (_, labels) in self.samples for _, value in labels}


@dataclass
class Served:
    stack: Stack
    http: httpx.AsyncClient
    url: str

    async def scrape(self) -> Scraped:
        response = await self.http.get(self.url)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        samples: dict[Key, float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return Scraped(response.text, samples)


async def serve(stack: Stack, port: int) -> AsyncIterator[Served]:
    runner = await start_web(stack.app, "127.0.0.1", port)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            yield Served(stack, http, f"http://127.0.0.1:{port}/metrics")
    finally:
        await runner.cleanup()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    async with running_stack(tmp_path, webhook_port=port) as stack:
        async for served in serve(stack, port):
            yield served


@pytest.fixture
async def paying(tmp_path: Path) -> AsyncIterator[Served]:
    """Public mode: user 5005 pays from a wallet holding $10.00."""
    port = free_port()
    async with running_stack(tmp_path, webhook_port=port, **PUBLIC) as stack:
        await stack.client(BUYER).send("/start")
        wallet = stack.app.dp["wallet"]
        await wallet.credit(BUYER, Money(Decimal("10.00"), "USD"), ADMIN, "test")
        async for served in serve(stack, port):
            yield served


async def test_a_purchase_and_a_delayed_sms_delivery_are_counted(served: Served) -> None:
    stack = served.stack
    before = await served.scrape()
    assert all(f"# TYPE {name} " in before.text for name in NAMES)
    assert before.value("bot_sms_delivered_total", provider="getsms") is None

    user = stack.client()
    _, order = await buy(stack, user, GETSMS_ACTIVATION)
    await deliver_sms(stack.suite, "getsms", order.provider_order_id, "482913")
    stack.api.retry_after_next(SendMessage, 7)  # Telegram asks this chat to wait 7 s
    await stack.app.watcher.tick()  # the SMS is stored; its push waits
    assert (await served.scrape()).value("bot_sms_delivered_total", provider="getsms") is None
    stack.clock.advance(seconds=8)
    await stack.app.watcher.tick()  # pushed 8 s after it was stored

    after = await served.scrape()
    assert after.value("bot_sms_delivered_total", provider="getsms") == 1
    assert after.value("bot_sms_delivery_delay_seconds_count", provider="getsms") == 1
    assert after.value("bot_sms_delivery_delay_seconds_sum", provider="getsms") == 8.0
    assert after.value("bot_sms_delivery_delay_seconds_bucket", provider="getsms", le="5.0") == 0
    assert after.value("bot_sms_delivery_delay_seconds_bucket", provider="getsms", le="10.0") == 1
    assert after.value("bot_telegram_send_errors_total", kind="retry_after") == 1
    bought = {"provider": "getsms", "kind": "activation", "outcome": "bought"}
    assert after.value("bot_purchases_total", **bought) == 1
    assert after.value("bot_active_orders", provider="getsms", kind="activation") == 1
    assert after.value("bot_wallet_open_holds") == 0  # operators do not pay
    assert (
        after.value(
            "bot_provider_requests_total", provider="getsms", action="getnumber", outcome="ok"
        )
        == 1
    )
    assert after.total("bot_provider_request_duration_seconds_count", provider="getsms") >= 3
    assert after.total("bot_updates_total", type="callback_query", handled="true") >= 3
    assert after.total("bot_updates_total", type="message", handled="true") >= 1
    assert after.total("bot_handler_duration_seconds_count", handler="buy.buy_command") == 1
    assert after.value("bot_telegram_requests_total", method="sendMessage", outcome="retry_after")
    # Labels are code-defined names: never a user id, a phone number or a secret.
    values = after.label_values()
    forbidden = {str(user.user.id), order.phone, order.provider_order_id, TOKEN, *PROVIDER_KEYS}
    assert not {v for v in values for f in forbidden if f and f in v}, values


async def test_refunds_lost_purchases_and_the_reconciler_are_counted(paying: Served) -> None:
    stack = paying.stack
    user = stack.client(BUYER)
    card, _ = await buy(stack, user, GETSMS_ACTIVATION)
    await user.click(card, CANCEL)
    scraped = await paying.scrape()
    assert scraped.value("bot_refunds_total", provider="getsms", reason="cancelled") == 1
    assert scraped.value("bot_active_orders", provider="getsms", kind="activation") is None

    confirm = await confirm_screen(user, SMSBUS)
    await lose_next_purchase(stack, SMSBUS)
    await user.click(confirm, BUY)
    scraped = await paying.scrape()
    lost = {"provider": "smsbus", "kind": "activation", "outcome": "unconfirmed"}
    assert scraped.value("bot_purchases_total", **lost) == 1
    assert (
        scraped.total(
            "bot_provider_requests_total", provider="smsbus", action="api/control/get/number"
        )
        == 1
    )
    assert (
        scraped.total(
            "bot_provider_requests_total", provider="smsbus", outcome="purchase_outcome_unknown"
        )
        == 1
    )
    assert scraped.value("bot_wallet_open_holds") == 1  # held while SMS-BUS may still charge

    stack.clock.advance(minutes=10)
    await stack.app.reconciler.tick()  # the provider's window is still open
    scraped = await paying.scrape()
    assert scraped.value("bot_reconciler_pending_intents") == 1
    assert scraped.value("bot_reconciler_findings_total", finding="released") is None
    stack.clock.advance(minutes=120)
    await stack.app.reconciler.tick()
    scraped = await paying.scrape()
    assert scraped.value("bot_reconciler_findings_total", finding="released") == 1
    assert scraped.value("bot_reconciler_pending_intents") == 0
    assert scraped.value("bot_wallet_open_holds") == 0


def test_each_app_has_a_registry_of_its_own() -> None:
    first, second = Metrics(), Metrics()
    first.refund("getsms", "cancelled")
    assert (
        first.registry.get_sample_value(
            "bot_refunds_total", {"provider": "getsms", "reason": "cancelled"}
        )
        == 1
    )
    assert (
        second.registry.get_sample_value(
            "bot_refunds_total", {"provider": "getsms", "reason": "cancelled"}
        )
        is None
    )


def test_labels_are_bounded_names() -> None:
    assert kind_of(NoNumbers("getsms", "none")) == "no_numbers"
    assert kind_of(PurchaseOutcomeUnknown("smsbus", "lost")) == "purchase_outcome_unknown"
    assert label("/v1/rental/order/123456") == "/v1/rental/order/N"  # an id in a path: masked
    assert label("x" * 500) == "x" * 64
    assert label("a b?c=ü") == "a_b_c__"

    class Handler:
        def __init__(self) -> None:
            def confirm() -> None: ...

            confirm.__module__ = "bot.handlers.buy"
            confirm.__qualname__ = "setup.<locals>.confirm"
            self.callback = confirm

    assert handler_name(Handler()) == "buy.confirm"
    assert handler_name(None) == "unknown"


async def test_an_update_whose_handler_raised_is_counted_as_an_error() -> None:
    metrics = Metrics()
    update = Update.model_validate(
        {
            "update_id": 1,
            "callback_query": {
                "id": "1",
                "chat_instance": "1",
                "from": {"id": 5, "is_bot": False, "first_name": "Eve"},
                "data": "x",
            },
        }
    )

    async def failing(event: object, data: dict[str, object]) -> object:
        raise RuntimeError("a handler's bug")

    async def unhandled(event: object, data: dict[str, object]) -> object:
        return UNHANDLED

    with pytest.raises(RuntimeError):
        await metrics.count_update(failing, update, {})
    await metrics.count_update(unhandled, update, {})
    for handled in ("error", "false"):
        labels = {"type": "callback_query", "handled": handled}
        assert metrics.registry.get_sample_value("bot_updates_total", labels) == 1
