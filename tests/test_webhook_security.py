"""The SMS.online webhook over real HTTP: one secret per rental, 4xx for anything else.

Rentals are stored as the adapter returns them once it issues per-rental URLs (a nonce in
``Order.meta``); pushes are posted as SMS.online would, to the aiohttp app on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from aiogram.methods import SendMessage

from bot.domain import Order, OrderKind
from bot.webhook import NONCE, RentalHooks, start_webhook
from storage.messages import MessagesRepo
from storage.models import OrderStatus, StoredOrder
from storage.orders import OrdersRepo
from tests.fakes.telegram import BotClient
from tests.helpers import free_port
from tests.stack import Stack, running_stack
from tests.test_flow_orders import SMSONLINE, buy


@dataclass
class Hooked:
    stack: Stack
    hooks: RentalHooks
    http: httpx.AsyncClient
    base: str
    user: BotClient

    async def rental(self, rent_id: str) -> tuple[StoredOrder, str]:
        """A stored SMS.online rental of the user, and the URL it was bought with."""
        url, meta = self.hooks.issue()
        order = Order(
            provider="smsonline",
            order_id=rent_id,
            kind=OrderKind.RENTAL,
            phone="14155550100",
            service="tg",
            country="US",
            expires_at=self.stack.clock.now() + timedelta(hours=4),
            duration_hours=4,
            meta={"country_id": "187", **meta},
        )
        repo: OrdersRepo = self.stack.app.dp["order_repo"]
        stored = await repo.create(self.user.user.id, order, None, self.stack.clock.now())
        return stored, url

    async def push(self, url: str, rent_id: object, text: str, **sms: object) -> int:
        body = {"rentId": rent_id, "sms": {"phoneFrom": "Telegram", "text": text, **sms}}
        return (await self.http.post(url, content=json.dumps(body).encode())).status_code

    def pushes(self) -> list[str]:
        return [
            c.method.text
            for c in self.stack.api.calls(SendMessage)
            if isinstance(c.method, SendMessage) and c.method.text.startswith("📩")
        ]


@pytest.fixture
async def hooked(tmp_path: Path) -> AsyncIterator[Hooked]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running_stack(tmp_path, webhook_base_url=base, webhook_port=port) as stack:
        secret = stack.app.settings.webhook_secret()
        assert secret is not None
        runner = await start_webhook(
            stack.app.watcher, secret, "127.0.0.1", port, clock=stack.clock
        )
        try:
            async with httpx.AsyncClient() as http:
                user = stack.client()
                await user.send("/start")
                yield Hooked(stack, RentalHooks(base, secret), http, base, user)
        finally:
            await runner.cleanup()


async def stored_sms(hooked: Hooked, order: StoredOrder) -> int:
    repo: MessagesRepo = hooked.stack.app.dp["messages_repo"]
    return len(await repo.list_for_order(order.id))


async def test_a_push_on_its_rentals_url_is_delivered_once(hooked: Hooked) -> None:
    order, url = await hooked.rental("5001")
    assert order.meta[NONCE] and order.meta[NONCE] not in url  # the URL shows no nonce
    assert await hooked.push(url, 5001, "Telegram code 12345", date="2026-01-01 12:00:00") == 200
    assert await hooked.push(url, "5001", "Telegram code 12345", date="2026-01-01 12:00:00") == 200
    assert ["12345" in text for text in hooked.pushes()] == [True]  # the repeat is the same SMS


async def test_a_forged_token_or_another_rentals_url_delivers_nothing(hooked: Hooked) -> None:
    mine, my_url = await hooked.rental("5001")
    other, other_url = await hooked.rental("5002")
    forged = hooked.base + "/webhooks/smsonline/" + "0" * 32
    assert await hooked.push(forged, 5001, "code 11111") == 404
    assert await hooked.push(other_url, 5001, "code 22222") == 404  # 5002's URL, 5001's id
    assert await hooked.push(my_url, 5002, "code 33333") == 404
    legacy = hooked.base + "/webhooks/smsonline/" + hooked.hooks.secret  # one URL for all
    assert await hooked.push(legacy, 5001, "code 44444") == 404
    assert await hooked.push(my_url, 9999, "code 55555") == 404  # not a rental of ours
    assert hooked.pushes() == []
    assert await stored_sms(hooked, mine) == 0 and await stored_sms(hooked, other) == 0


async def test_a_rental_that_is_not_active_takes_no_push(hooked: Hooked) -> None:
    order, url = await hooked.rental("5003")
    repo: OrdersRepo = hooked.stack.app.dp["order_repo"]
    assert await repo.set_status(order.id, OrderStatus.FINISHED, None, hooked.stack.clock.now())
    assert await hooked.push(url, 5003, "code 66666") == 410
    assert hooked.pushes() == [] and await stored_sms(hooked, order) == 0


async def test_malformed_pushes_get_4xx_never_500_nor_a_traceback(
    hooked: Hooked, caplog: pytest.LogCaptureFixture
) -> None:
    order, url = await hooked.rental("5004")
    bodies = [
        b"[",
        b"\xff\xfe not utf-8",
        b"[" * 30_000 + b"]" * 30_000,  # deeply nested, within the size limit
        b'{"rentId": {"a": [[[[[]]]]]}, "sms": {}}',
        b'{"rentId": 5004, "sms": {"text": 5}}',
        b'{"rentId": 5004, "sms": "text"}',
        b'{"rentId": 1e999, "sms": {"text": "x"}}',
    ]
    dates = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "9" * 400]
    caplog.set_level(logging.WARNING)
    statuses = [(await hooked.http.post(url, content=body)).status_code for body in bodies]
    dated = [await hooked.push(url, 5004, f"code 7777{n}", date=d) for n, d in enumerate(dates)]
    too_big = await hooked.http.post(url, content=b" " * (70 * 1024))
    strange = [
        hooked.base + "/webhooks/smsonline/%D1%81%D0%B5%D0%BA%D1%80%D0%B5%D1%82",
        hooked.base + "/webhooks/smsonline/" + "A" * 32,
        hooked.base + "/webhooks/smsonline/" + "a" * 5000,
    ]
    for address in strange:
        statuses.append((await hooked.http.post(address, content=b"{}")).status_code)

    assert all(400 <= status < 500 for status in statuses), repr(statuses)
    assert statuses[: len(bodies)] == [400] * len(bodies)
    assert too_big.status_code == 413
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    # A date out of range is refused, or ignored (the SMS kept without it), never a crash:
    assert dated[:2] == [400, 400] and dated[2] in (200, 400)
    assert len(hooked.pushes()) == await stored_sms(hooked, order) == dated.count(200)


async def test_a_flood_of_pushes_is_bounded_per_rental(hooked: Hooked) -> None:
    order, url = await hooked.rental("5005")
    _, other_url = await hooked.rental("5006")
    statuses = [await hooked.push(url, 5005, f"spam {n:03d} 123456") for n in range(200)]
    assert statuses.count(200) == 5 and statuses.count(429) == 195
    assert len(hooked.pushes()) == 5 and await stored_sms(hooked, order) == 5
    assert await hooked.push(other_url, 5006, "code 88888") == 200  # other rentals unaffected
    hooked.stack.clock.advance(seconds=12)
    assert await hooked.push(url, 5005, "later 99999") == 200  # one more after a while
    assert await hooked.push(url, 5005, "again 99998") == 429


async def test_a_rental_bought_in_the_bot_gets_its_own_url_and_its_sms_at_once(
    hooked: Hooked,
) -> None:
    stack = hooked.stack
    _, order = await buy(stack, hooked.user, SMSONLINE)
    [asked] = [
        r for r in stack.suite.smsonline.requests if r.query.get("action") == "getRentNumber"
    ]
    assert asked.query["url"] == hooked.hooks.url(order.meta[NONCE])

    await stack.suite.smsonline.inject_sms(order.provider_order_id, "Telegram code 909090")

    assert ["909090" in text for text in hooked.pushes()] == [True]  # pushed by the webhook
    await stack.app.watcher.tick()  # the poll finds the same SMS: not pushed again
    assert ["909090" in text for text in hooked.pushes()] == [True]
