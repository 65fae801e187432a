"""Two real ``python -m bot`` replicas on one PostgreSQL and one Redis, fed through their own
Telegram webhooks (as a load balancer would), against the provider emulators and one fake Bot
API: the same Buy tapped on both at once is one purchase, an SMS is pushed once, and when the
replica that leases the order is SIGKILLed the other delivers its next SMS within a lease.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from bot.config import Settings
from tests.emulators.base import WallClock
from tests.emulators.suite import EmulatorSuite
from tests.fakes.bot_server import SECRET_HEADER, BotApiCall, FakeBotServer
from tests.helpers import free_port
from tests.services import fresh_postgres_schema, require_redis
from tests.test_flow_orders import only_purchase, purchase_counts
from tests.test_run import TOKEN, clean_env, spawn_bot

USER = 4242
LEASE = 3.0  # ORDER_LEASE of both replicas, seconds
WAIT = 30.0


async def until(condition: Callable[[], bool], within: float = WAIT, what: str = "") -> None:
    """Wait (polling, bounded) until ``condition()`` holds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


@dataclass
class Replica:
    name: str
    port: int
    process: asyncio.subprocess.Process
    output: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Telegram:
    """One user talking to the bot through whichever replica an update is posted to."""

    api: FakeBotServer
    secret: str
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _user(self) -> dict[str, Any]:
        return {"id": USER, "is_bot": False, "first_name": "Eve", "language_code": "en"}

    def _chat(self) -> dict[str, Any]:
        return {"id": USER, "type": "private", "first_name": "Eve"}

    async def post(self, replica: Replica, update: dict[str, Any]) -> None:
        body = {"update_id": next(self.ids), **update}
        async with httpx.AsyncClient(timeout=WAIT) as http:
            response = await http.post(
                replica.base + "/telegram", json=body, headers={SECRET_HEADER: self.secret}
            )
        assert response.status_code == 200, response.text

    def to_user(self) -> list[BotApiCall]:
        return [c for c in self.api.log if c.params.get("chat_id") == USER]

    def screens(self) -> list[tuple[int, str, list[dict[str, Any]]]]:
        """(message id, text, buttons) of every message sent or edited with a keyboard."""
        found = []
        for call in self.to_user():
            markup = call.params.get("reply_markup")
            if not isinstance(markup, dict) or "inline_keyboard" not in markup:
                continue
            if call.method == "editMessageText":
                message_id = int(call.params["message_id"])
            elif call.method == "sendMessage" and isinstance(call.result, dict):
                message_id = int(call.result["message_id"])
            else:
                continue
            buttons = [b for row in markup["inline_keyboard"] for b in row]
            found.append((message_id, str(call.params.get("text", "")), buttons))
        return found

    async def send(self, replica: Replica, text: str) -> None:
        before = len(self.screens())
        message = {
            "message_id": next(self.ids),
            "date": int(time.time()),
            "chat": self._chat(),
            "from": self._user(),
            "text": text,
        }
        await self.post(replica, {"message": message})
        await until(lambda: len(self.screens()) > before, what=f"an answer to {text!r}")

    def button(self, label: str) -> tuple[int, str]:
        """The latest screen's button whose text contains ``label``: (message id, data)."""
        for message_id, _, buttons in reversed(self.screens()):
            for button in buttons:
                if label in button["text"] and "callback_data" in button:
                    return message_id, str(button["callback_data"])
        raise AssertionError(f"no button {label!r} on {self.screens()[-1][1:]}")

    def tap_update(self, message_id: int, data: str) -> tuple[str, dict[str, Any]]:
        query_id = f"q{next(self.ids)}"
        message = {"message_id": message_id, "date": int(time.time()), "chat": self._chat()}
        query = {
            "id": query_id,
            "from": self._user(),
            "chat_instance": "1",
            "message": {**message, "text": "."},
            "data": data,
        }
        return query_id, {"callback_query": query}

    async def tap(self, replica: Replica, label: str) -> None:
        before = len(self.screens())
        _, update = self.tap_update(*self.button(label))
        await self.post(replica, update)
        await until(lambda: len(self.screens()) > before, what=f"a screen after {label!r}")

    def answered(self, query_id: str) -> bool:
        return any(
            c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == query_id
            for c in self.api.log
        )

    def pushed(self, code: str) -> int:
        """SMS pushes with ``code`` the user got (from any replica)."""
        return sum(
            1
            for c in self.to_user()
            if c.method == "sendMessage" and f"Code: <code>{code}</code>" in str(c.params)
        )


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[str, str]]:
    url = require_redis()
    prefix = f"test-{secrets.token_hex(4)}"
    yield url, prefix
    client = Redis.from_url(url)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
    finally:
        await client.aclose()


async def _spawn(tmp_path: Path, name: str, env: dict[str, str], api: FakeBotServer) -> Replica:
    port = free_port()
    folder = tmp_path / name
    folder.mkdir()
    values = clean_env(
        folder,
        WEBHOOK_HOST="127.0.0.1",
        WEBHOOK_PORT=str(port),
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
        REPLICA_ID=name,
        **env,
    )
    replica = Replica(name, port, await spawn_bot(folder, values))
    async with httpx.AsyncClient(timeout=5) as http:

        async def healthy() -> bool:
            try:
                return (await http.get(replica.base + "/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        deadline = time.monotonic() + WAIT
        while not await healthy():
            assert replica.process.returncode is None, await _output(replica)
            assert time.monotonic() < deadline, f"{name} did not start"
            await asyncio.sleep(0.1)
    return replica


async def _output(replica: Replica) -> str:
    assert replica.process.stdout is not None
    data = await asyncio.wait_for(replica.process.stdout.read(), 30)
    return data.decode()[-3000:]


async def _stop(replica: Replica) -> None:
    if replica.process.returncode is None:
        replica.process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(replica.process.communicate(), 30)


async def test_two_replicas_buy_once_push_once_and_survive_a_kill(
    tmp_path: Path, redis_prefix: tuple[str, str]
) -> None:
    redis_url, prefix = redis_prefix
    suite = EmulatorSuite(clock=WallClock())  # the replicas live in real time
    await suite.start()
    api = FakeBotServer()
    await api.start()
    replicas: list[Replica] = []
    try:
        async with fresh_postgres_schema() as database_url:
            env = {
                "BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": api.base_url,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "REDIS_PREFIX": prefix,
                "ORDER_LEASE": str(LEASE),
                "POLL_INTERVAL": "0.3",
                "ADMIN_IDS": str(USER),  # an operator: buys without a wallet
                **suite.env(("getsms",)),
            }
            for name in ("a", "b"):
                replicas.append(await _spawn(tmp_path, name, env, api))
            a, b = replicas
            secret = Settings(_env_file=None, bot_token=TOKEN).telegram_secret_token()
            assert secret is not None
            tg = Telegram(api, secret)

            # Through replica "a" to the confirmation; the Buy tapped twice, once per replica.
            await tg.send(a, "/buy")
            await tg.tap(a, "Telegram")
            await tg.send(a, "russ")
            await tg.tap(a, "Russia")
            await tg.tap(a, "rental for 1 day")
            first, tap_a = tg.tap_update(*tg.button("✅ Buy"))
            second, tap_b = tg.tap_update(*tg.button("✅ Buy"))
            await asyncio.gather(tg.post(a, tap_a), tg.post(b, tap_b))
            await until(lambda: tg.answered(first) and tg.answered(second), what="both taps")
            await until(lambda: purchase_counts(suite)["getsms-rental"] >= 1, what="a purchase")
            [rent_id] = list(suite.getsms.rentals)
            conn = await asyncpg.connect(database_url)
            try:
                assert await conn.fetchval("SELECT COUNT(*) FROM orders") == 1
                assert await conn.fetchval("SELECT COUNT(*) FROM intents") == 1

                # An SMS: pushed once, by whichever replica claims it.
                suite.getsms.inject_sms(rent_id, "Telegram code 11111", code="11111")
                await until(lambda: tg.pushed("11111") == 1, what="the first SMS")
                polls = len(suite.getsms.requests)
                await until(lambda: len(suite.getsms.requests) >= polls + 6, what="more rounds")
                assert tg.pushed("11111") == 1

                # The replica that leases the order dies; the other takes it within a lease.
                owner = await conn.fetchval("SELECT lease_owner FROM orders")
                dead = a if owner == "a" else b
                survivor = b if dead is a else a
                os.kill(dead.process.pid, signal.SIGKILL)
                await dead.process.wait()
                killed_at = time.monotonic()
                suite.getsms.inject_sms(rent_id, "Telegram code 22222", code="22222")
                await until(lambda: tg.pushed("22222") == 1, within=LEASE + 10, what="handover")
                took = time.monotonic() - killed_at
                assert await conn.fetchval("SELECT lease_owner FROM orders") == survivor.name
            finally:
                await conn.close()
            assert took < LEASE + 10
            assert purchase_counts(suite) == only_purchase("getsms-rental")  # still one
            assert tg.pushed("11111") == 1 and tg.pushed("22222") == 1
            await _stop(survivor)
            assert survivor.process.returncode == 0
    except BaseException:
        for replica in replicas:  # what the replicas said, for the failure's report
            if replica.process.returncode is None:
                replica.process.kill()
            print(f"--- replica {replica.name}:\n{await _output(replica)}")
        raise
    finally:
        for replica in replicas:
            if replica.process.returncode is None:
                replica.process.kill()
                await replica.process.wait()
        await api.stop()
        await suite.stop()
