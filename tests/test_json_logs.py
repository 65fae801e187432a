"""LOG_FORMAT=json: one JSON object per line, with the user, order and provider at hand, and
every secret redacted (the same filter as the text lines), in the message and in a traceback.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.logs import log_context, log_handler
from bot.money import Money
from bot.redact import Redactor
from tests.fakes.telegram import TOKEN
from tests.stack import running_stack
from tests.test_flow_orders import CANCEL, GETSMS_ACTIVATION, buy, newest_order
from tests.test_money_follows_provider import ADMIN, BUYER, PUBLIC

KEY = "getsms-key-0123456789abcdef"


class Lines:
    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._stream.getvalue().splitlines()]

    @property
    def raw(self) -> str:
        return self._stream.getvalue()


@pytest.fixture
def lines() -> Iterator[Lines]:
    """A JSON handler as ``python -m bot`` sets it up, on a logger of its own."""
    stream = io.StringIO()
    logger = logging.getLogger("tests.json")
    handler = log_handler(Redactor((TOKEN, KEY)), json_lines=True, stream=stream)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield Lines(stream)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_each_line_is_one_json_object_with_the_context_at_hand(lines: Lines) -> None:
    log = logging.getLogger("tests.json")
    log.info("before")
    with log_context(user_id=5, provider="getsms"):
        log.warning("bought %s", "a number")
        with log_context(order_id=7):
            log.info("line one\nline two")  # a newline stays inside the JSON string
        log.info("after the order")
    log.info("outside")

    first, bought, order, after, outside = lines.records()
    assert set(first) == {"ts", "level", "logger", "message"}
    assert (first["level"], first["logger"], first["message"]) == ("INFO", "tests.json", "before")
    assert first["ts"].endswith("+00:00") and "T" in first["ts"]
    assert bought == bought | {"level": "WARNING", "message": "bought a number"}
    assert (bought["user_id"], bought["provider"]) == (5, "getsms") and "order_id" not in bought
    assert (order["user_id"], order["order_id"], order["message"]) == (
        5,
        7,
        "line one\nline two",
    )
    assert "order_id" not in after and after["user_id"] == 5
    assert set(outside) == {"ts", "level", "logger", "message"}
    assert len(lines.raw.splitlines()) == 5


async def test_tasks_started_within_a_context_carry_it(lines: Lines) -> None:
    log = logging.getLogger("tests.json")

    async def job(n: int) -> None:
        await asyncio.sleep(0)
        log.info("job %s", n)

    with log_context(order_id=1):
        first = asyncio.create_task(job(1))
    with log_context(order_id=2):
        second = asyncio.create_task(job(2))
    await asyncio.gather(first, second)
    assert {r["message"]: r["order_id"] for r in lines.records()} == {"job 1": 1, "job 2": 2}


def test_secrets_are_redacted_in_the_message_and_in_the_traceback(lines: Lines) -> None:
    log = logging.getLogger("tests.json")
    log.error("calling https://api.telegram.org/bot%s/getMe with key=%s", TOKEN, KEY)
    try:
        raise RuntimeError(f"request to /bot{TOKEN}/sendMessage failed ({KEY})")
    except RuntimeError:
        log.exception("send failed for %s", TOKEN)
    log.info("stack here", stack_info=True)

    message, failure, stacked = lines.records()
    assert "***" in message["message"] and "exc" not in message
    assert failure["message"] == "send failed for ***"
    assert "RuntimeError" in failure["exc"] and "Traceback" in failure["exc"]
    assert "***" in failure["exc"]
    assert "stack" in stacked
    assert TOKEN not in lines.raw and TOKEN.split(":")[1] not in lines.raw and KEY not in lines.raw


async def test_a_purchase_and_a_cancel_log_the_user_the_order_and_the_provider(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stream = io.StringIO()
    handler = log_handler(Redactor((TOKEN,)), json_lines=True, stream=stream)
    caplog.set_level(logging.INFO, logger="bot")
    logging.getLogger().addHandler(handler)
    try:
        async with running_stack(tmp_path, **PUBLIC) as stack:
            user = stack.client(BUYER)
            await user.send("/start")
            wallet = stack.app.dp["wallet"]
            await wallet.credit(BUYER, Money(Decimal("10.00"), "USD"), ADMIN, "test")
            card, _ = await buy(stack, user, GETSMS_ACTIVATION)
            order = await newest_order(stack, user)
            await user.click(card, CANCEL)
    finally:
        logging.getLogger().removeHandler(handler)

    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    bought = [r for r in records if r["logger"] == "bot.services.purchase"]
    assert [(r["user_id"], r["provider"]) for r in bought] == [(BUYER, "getsms")]
    assert "bought getsms order" in bought[0]["message"]
    cancelled = [r for r in records if "cancelled confirmed" in r["message"]]
    assert [(r["user_id"], r["order_id"], r["provider"]) for r in cancelled] == [
        (BUYER, order.id, "getsms")
    ]
    assert TOKEN not in stream.getvalue()
