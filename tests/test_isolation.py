"""One slow party never delays the others: a hanging provider, one chat's flood control, a
Telegram that answers an HTML page or garbage.

Stories against the emulators and the fake Bot API. The fake is instrumented per chat or per
text by wrapping its ``make_request`` (as the benchmark does): the bot's calls go through it
unchanged. Rounds run by hand on the fake clock, except where the production loops themselves
are the point (``Watcher.run``), and there every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.methods import SendMessage, TelegramMethod

from storage.messages import MessagesRepo
from tests.fakes.telegram import FakeBotApi
from tests.stack import Stack, running_stack
from tests.test_delivery import bought
from tests.test_scheduler import asked

MakeRequest = Callable[[Bot, TelegramMethod[Any], int | None], Awaitable[Any]]
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


class Tamper:
    """Answers some sendMessage calls (``which``) as a failing Telegram would: ``raise_``
    gets the call and raises; the others reach the fake Bot API as usual."""

    def __init__(
        self,
        api: FakeBotApi,
        which: Callable[[SendMessage], bool],
        raise_: Callable[[Bot, SendMessage], None],
    ) -> None:
        self.api = api
        self.which = which
        self.raise_ = raise_
        self.hits = 0
        self._inner: MakeRequest = api.make_request
        setattr(api, "make_request", self._request)  # noqa: B010 - mypy forbids assigning

    async def _request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109 - the signature of BaseSession
    ) -> Any:
        if isinstance(method, SendMessage) and self.which(method):
            self.hits += 1
            self.raise_(bot, method)
        return await self._inner(bot, method, timeout)


def flood_control(api: FakeBotApi, seconds: int) -> Callable[[Bot, SendMessage], None]:
    """429 with ``retry_after``, parsed by aiogram as from Telegram (TelegramRetryAfter)."""
    body = {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {seconds}",
        "parameters": {"retry_after": seconds},
    }

    def raise_(bot: Bot, method: SendMessage) -> None:
        api.check_response(bot=bot, method=method, status_code=429, content=json.dumps(body))

    return raise_


def html_page(api: FakeBotApi) -> Callable[[Bot, SendMessage], None]:
    """A proxy's HTML 502 page instead of the Bot API's JSON (ClientDecodeError)."""

    def raise_(bot: Bot, method: SendMessage) -> None:
        api.check_response(bot=bot, method=method, status_code=502, content=HTML_502)

    return raise_


def undecodable(bot: Bot, method: SendMessage) -> None:
    """What aiohttp raises reading a body in another encoding than the one it declares."""
    raise UnicodeDecodeError("utf-8", b"\xff<html>", 0, 1, "invalid start byte")


def texts_to(stack: Stack, chat_id: int) -> list[str]:
    """The texts Telegram accepted for the chat."""
    return [
        c.method.text
        for c in stack.api.calls(SendMessage)
        if c.chat_id == chat_id and c.error is None and isinstance(c.method, SendMessage)
    ]


def sms_to(stack: Stack, chat_id: int) -> list[str]:
    """The SMS pushes Telegram accepted for the chat."""
    return [text for text in texts_to(stack, chat_id) if text.startswith("📩")]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


async def until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """A bounded wait for something the running loops do (never a fixed sleep)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {seconds} s: {what}")


# --- providers ---------------------------------------------------------------------------------


async def test_a_hanging_provider_delays_no_sms_at_another_provider(tmp_path: Path) -> None:
    # A timeout far longer than the wait below: only independent loops can pass.
    async with running_stack(tmp_path, provider_timeout=60) as stack:
        bee = stack.suite.beesms
        await bought(stack, stack.client(4001), "beesms", "tg", "US", hours=24 * 7)
        user = stack.client(4002)
        order = await bought(stack, user, "getsms")
        bee.gate("numbers")  # BEE-SMS takes the listing request and never answers it
        getsms = stack.suite.getsms
        watcher = stack.app.watcher
        running = asyncio.create_task(watcher.run())
        try:
            await until(bee.gated_arrived.is_set, "the BEE-SMS round to hang")
            await until(lambda: asked(getsms, order) > 0, "a Get-SMS poll")
            # Only a Get-SMS request made from now on can find the code: a later round.
            getsms.inject_sms(order.provider_order_id, "code 70707", code="70707")
            await until(
                lambda: any("70707" in t for t in sms_to(stack, user.chat.id)),
                "the Get-SMS code while BEE-SMS hangs",
            )
            assert not bee.gated_done.is_set()  # BEE-SMS still has not answered
        finally:
            bee.open_gate()
            watcher.stop()
            await asyncio.wait_for(running, 30)
        assert [("70707" in t) for t in sms_to(stack, user.chat.id)] == [True]  # once


async def test_after_a_long_outage_the_next_round_delivers(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "smsbus")
    smsbus = stack.suite.smsbus
    smsbus.fail("5xx", times=1000)
    for _ in range(12):  # two minutes down: one probe a round, no growing pause
        stack.clock.advance(seconds=10)
        before = len(smsbus.requests)
        await stack.app.watcher.tick()
        assert 1 <= len(smsbus.requests) - before <= 2
    smsbus._faults.clear()
    smsbus.inject_code(order.provider_order_id, "818181")
    report = await stack.app.watcher.tick()
    assert report.skipped_providers == []
    assert ["818181" in t for t in sms_to(stack, user.chat.id)] == [True]


# --- chats -------------------------------------------------------------------------------------


async def test_flood_control_for_one_chat_delays_no_other_chat(stack: Stack) -> None:
    a, b = stack.client(5001), stack.client(5002)
    order_a = await bought(stack, a, "getsms")
    order_b = await bought(stack, b, "getsms", "tg", "RU", hours=24)  # takes every SMS
    waits = Tamper(stack.api, lambda m: m.chat_id == a.chat.id, flood_control(stack.api, 30))
    stack.suite.getsms.inject_sms(order_a.provider_order_id, "code 10101", code="10101")
    stack.suite.getsms.inject_sms(order_b.provider_order_id, "code 20202", code="20202")
    await stack.app.watcher.tick()
    assert waits.hits == 1 and sms_to(stack, a.chat.id) == []
    assert ["20202" in t for t in sms_to(stack, b.chat.id)] == [True]  # in the same round
    assert 30 not in stack.slept  # nobody slept the 30 s: only chat A waits, on the clock

    stack.suite.getsms.inject_sms(order_b.provider_order_id, "code 30303", code="30303")
    stack.clock.advance(seconds=10)
    await stack.app.watcher.tick()
    assert waits.hits == 1  # A not tried before its 30 s
    assert ["30303" in t for t in sms_to(stack, b.chat.id)] == [False, True]

    waits.which = lambda m: False  # Telegram lets A through again
    stack.clock.advance(seconds=20)
    await stack.app.watcher.tick()
    assert ["10101" in t for t in sms_to(stack, a.chat.id)] == [True]


async def test_flood_control_on_a_reminder_holds_no_round_and_no_other_chat(
    stack: Stack,
) -> None:
    a, b = stack.client(5101), stack.client(5102)
    await bought(stack, a, "getsms", "tg", "RU", hours=24)
    stack.clock.advance(hours=23, minutes=10)  # A's rental: the 1 h reminder is due
    order_b = await bought(stack, b, "getsms")
    waits = Tamper(stack.api, lambda m: m.chat_id == a.chat.id, flood_control(stack.api, 30))
    stack.suite.getsms.inject_sms(order_b.provider_order_id, "code 40404", code="40404")
    await stack.app.watcher.tick()
    assert waits.hits == 1 and 30 not in stack.slept  # the reminder was tried, nobody slept
    assert ["40404" in t for t in sms_to(stack, b.chat.id)] == [True]
    for _ in range(3):  # the reminder waits in A's queue (once), not in the round
        stack.clock.advance(seconds=5)
        await stack.app.watcher.tick()
    assert waits.hits == 1
    waits.which = lambda m: False
    stack.clock.advance(seconds=30)
    await stack.app.watcher.tick()
    await stack.app.watcher.tick()
    assert len([t for t in texts_to(stack, a.chat.id) if "ends in" in t]) == 1


# --- Telegram transport errors -----------------------------------------------------------------


async def test_an_html_502_from_telegram_is_retried_bounded_then_failed_and_the_next_goes(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    user = stack.client()
    order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
    bad = Tamper(stack.api, lambda m: "11111" in m.text, html_page(stack.api))
    stack.suite.getsms.inject_sms(order.provider_order_id, "code 11111", code="11111")
    stack.suite.getsms.inject_sms(order.provider_order_id, "code 22222", code="22222")
    give_up = stack.app.watcher.settings.give_up_transient
    for _ in range(give_up + 2):
        await stack.app.watcher.tick()
        stack.clock.advance(minutes=5)  # longer than any pause
    assert bad.hits == give_up  # bounded: then given up
    assert ["22222" in t for t in sms_to(stack, user.chat.id)] == [True]  # the next one went
    repo: MessagesRepo = stack.app.dp["messages_repo"]
    first, second = await repo.list_for_order(order.id)
    assert first.failed_at is not None and first.delivered_at is None
    assert first.failure is not None and "ClientDecodeError" in first.failure
    assert second.delivered_at is not None
    assert [f.message.id for f in await repo.failed()] == [first.id]  # the admins see it
    no_tracebacks(caplog)


async def test_an_undecodable_answer_from_telegram_is_a_retry_not_a_traceback(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    user = stack.client()
    order = await bought(stack, user, "getsms")
    broken = Tamper(stack.api, lambda m: True, undecodable)
    stack.suite.getsms.inject_sms(order.provider_order_id, "code 77777", code="77777")
    report = await stack.app.watcher.tick()
    assert broken.hits == 1 and report.delivered == 0
    broken.which = lambda m: False
    stack.clock.advance(seconds=5)
    report = await stack.app.watcher.tick()
    assert report.delivered == 1
    assert ["77777" in t for t in sms_to(stack, user.chat.id)] == [True]
    no_tracebacks(caplog)
