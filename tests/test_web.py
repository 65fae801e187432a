"""The one HTTP server (bot.web) over real HTTP on 127.0.0.1: the Telegram webhook with its
secret token, /healthz, /readyz (each check failing on its own: the database, a stale watcher
on the fake clock, Telegram), and the real ``python -m bot`` in webhook mode against the fake
Bot API server (setWebhook at start, no polling, a clean stop on SIGTERM, JSON logs), and back
in polling mode (the webhook deleted).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiogram.methods import GetMe, SendMessage

from bot.config import Settings, SettingsError, load_settings
from bot.web import start_web
from tests.emulators.suite import EmulatorSuite
from tests.fakes.bot_server import SECRET_HEADER, FakeBotServer
from tests.helpers import free_port
from tests.stack import Stack, running_stack
from tests.test_run import TOKEN, clean_env, spawn_bot

WAIT = 10.0  # seconds: the bound of every wait for something that takes milliseconds


async def until(condition: Callable[[], bool], within: float = WAIT) -> None:
    """A bounded wait for what a running task does (never a fixed sleep)."""
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {within} s")


async def polled(
    http: httpx.AsyncClient, url: str, done: Callable[[httpx.Response], bool]
) -> httpx.Response:
    """GET ``url`` until ``done`` (bounded): what a running process reaches soon."""
    for _ in range(int(WAIT / 0.05)):
        response = await http.get(url)
        if done(response):
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url}: not as expected within {WAIT} s")


def start_update(user_id: int, update_id: int = 1, first_name: str = "Eve") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1767268800,
            "chat": {"id": user_id, "type": "private", "first_name": first_name},
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


@dataclass
class Served:
    stack: Stack
    http: httpx.AsyncClient
    base: str

    @property
    def secret(self) -> str:
        secret = self.stack.app.settings.telegram_secret_token()
        assert secret is not None
        return secret

    async def post_update(self, update: dict[str, Any], secret: str | None) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        response = await self.http.post(self.base + "/tg", json=update, headers=headers)
        return response.status_code

    def sent_to(self, chat_id: int) -> list[str]:
        return [
            c.method.text
            for c in self.stack.api.calls(SendMessage)
            if isinstance(c.method, SendMessage) and c.chat_id == chat_id
        ]

    async def ready(self) -> tuple[int, dict[str, Any]]:
        response = await self.http.get(self.base + "/readyz")
        return response.status_code, response.json()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running_stack(
        tmp_path, telegram_webhook_url=base + "/tg", webhook_port=port
    ) as stack:
        runner = await start_web(stack.app, "127.0.0.1", port)
        try:
            async with httpx.AsyncClient(timeout=WAIT) as http:
                yield Served(stack, http, base)
        finally:
            await runner.cleanup()


# --- the Telegram webhook ---------------------------------------------------------------------


async def test_an_update_with_the_secret_is_answered_through_the_bot_api(served: Served) -> None:
    served.stack.client(user_id=777)  # the chat exists at the fake Bot API
    assert await served.post_update(start_update(777), served.secret) == 200
    await until(lambda: bool(served.sent_to(777)))
    assert served.sent_to(777)[0].startswith("Hi, Eve!")


@pytest.mark.parametrize("secret", [None, "", "forged-secret", "x" * 64])
async def test_a_forged_or_missing_secret_is_refused_and_nothing_is_handled(
    served: Served, secret: str | None
) -> None:
    served.stack.client(user_id=666)
    before = len(served.stack.api.log)
    assert await served.post_update(start_update(666), secret) == 401
    registry = served.stack.app.metrics.registry
    for handled in ("true", "false"):  # no update reached the Dispatcher
        labels = {"type": "message", "handled": handled}
        assert registry.get_sample_value("bot_updates_total", labels) is None
    assert served.stack.api.log[before:] == [] and served.sent_to(666) == []


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'{"update_id": "x"}', b'{"update_id": 1, "message": 7}'],
)
async def test_a_body_with_the_secret_that_is_not_an_update_is_a_400(
    served: Served, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {SECRET_HEADER: served.secret, "Content-Type": "application/json"}
    response = await served.http.post(served.base + "/tg", content=body, headers=headers)
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.exc_info]  # no traceback anywhere
    assert await served.post_update(start_update(777), served.secret) == 200  # still serving
    await until(lambda: served.sent_to(777) != [])


def test_the_secret_token_is_derived_from_the_bot_token_unless_set() -> None:
    derived = Settings(_env_file=None, bot_token=TOKEN).telegram_secret_token()
    again = Settings(_env_file=None, bot_token=TOKEN).telegram_secret_token()
    other = Settings(_env_file=None, bot_token="987654321:" + "B" * 35).telegram_secret_token()
    chosen = Settings(_env_file=None, bot_token=TOKEN, telegram_webhook_secret="my_Secret-1")
    assert derived == again != other  # every replica computes the same
    assert derived is not None and len(derived) == 64 and TOKEN.split(":")[1] not in derived
    assert chosen.telegram_secret_token() == "my_Secret-1"
    assert (
        "my_Secret-1" in chosen.secrets()
        and derived in Settings(_env_file=None, bot_token=TOKEN).secrets()
    )  # redacted from logs


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"telegram_webhook_secret": "has spaces"}, "TELEGRAM_WEBHOOK_SECRET: must be 1-256"),
        ({"telegram_webhook_secret": "x" * 257}, "TELEGRAM_WEBHOOK_SECRET: must be 1-256"),
        ({"telegram_webhook_url": "ftp://bot.example.com/tg"}, "TELEGRAM_WEBHOOK_URL: must be"),
        ({"telegram_webhook_url": "https://bot.example.com/metrics"}, "path must not be"),
        ({"telegram_webhook_url": "https://bot.example.com/webhooks/x"}, "path must not be"),
        ({"log_format": "xml"}, "LOG_FORMAT"),
    ],
)
def test_bad_webhook_and_log_settings_are_named(values: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None, **values)
    assert expected in str(error.value)
    assert "has spaces" not in str(error.value)


def test_webhook_settings_as_written() -> None:
    plain = Settings(
        _env_file=None, telegram_webhook_url="http://127.0.0.1:8081/tg/", log_format=" JSON"
    )
    assert plain.telegram_webhook_url == "http://127.0.0.1:8081/tg"  # http: a local Bot API
    assert plain.telegram_webhook_path == "/tg" and plain.log_format == "json"
    assert (
        Settings(_env_file=None, telegram_webhook_url="https://b.example").telegram_webhook_path
        == "/"
    )
    assert plain.serves_http
    assert not Settings(_env_file=None).serves_http  # polling, no push URL: no server
    assert Settings(_env_file=None, webhook_port=9100).serves_http  # asked for: /metrics
    assert Settings(_env_file=None, webhook_base_url="https://b.example").serves_http


# --- health and readiness ---------------------------------------------------------------------


async def test_healthz_answers_ok(served: Served) -> None:
    response = await served.http.get(served.base + "/healthz")
    assert (response.status_code, response.text) == (200, "ok")


async def test_readyz_is_200_when_every_check_passes(served: Served) -> None:
    await served.stack.app.watcher.delivery_round()
    status, body = await served.ready()
    assert status == 200 and body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "watcher": True,
        "telegram": True,
    }


async def test_readyz_names_a_closed_database(served: Served) -> None:
    await served.stack.app.watcher.delivery_round()
    await served.stack.app.db.close()
    status, body = await served.ready()
    assert status == 503 and body["status"] == "not ready"
    checks = body["checks"]
    assert not checks["database"]["ok"] and checks["database"]["detail"].startswith("unreachable")
    assert checks["watcher"]["ok"] and checks["telegram"]["ok"]


async def test_readyz_names_a_stale_watcher_and_gives_a_grace_period_at_start(
    served: Served,
) -> None:
    clock = served.stack.clock
    status, body = await served.ready()  # no sweep yet, just started: ready
    assert status == 200 and body["checks"]["watcher"]["detail"].startswith("starting")
    clock.advance(seconds=31)  # 3 x POLL_INTERVAL (5 s) is under the 30 s floor
    status, body = await served.ready()
    assert status == 503 and not body["checks"]["watcher"]["ok"]
    assert body["checks"]["database"]["ok"] and body["checks"]["telegram"]["ok"]

    await served.stack.app.watcher.delivery_round()
    assert (await served.ready())[0] == 200
    clock.advance(seconds=30)
    assert (await served.ready())[0] == 200  # 30 s old: still recent
    clock.advance(seconds=1)
    status, body = await served.ready()
    assert status == 503 and body["checks"]["watcher"]["detail"].startswith("stale")


async def test_readyz_names_telegram_and_asks_it_at_most_every_30_seconds(
    served: Served,
) -> None:
    api, clock = served.stack.api, served.stack.clock
    api.fail_next(GetMe, 502, "Bad Gateway")
    await served.stack.app.watcher.delivery_round()
    status, body = await served.ready()
    assert status == 503 and not body["checks"]["telegram"]["ok"]
    assert body["checks"]["database"]["ok"] and body["checks"]["watcher"]["ok"]
    assert TOKEN not in json.dumps(body)
    for _ in range(5):
        assert (await served.ready())[0] == 503  # the failure is remembered: not asked again
    assert len(api.calls(GetMe)) == 1

    clock.advance(seconds=30)
    await served.stack.app.watcher.delivery_round()
    assert (await served.ready())[0] == 200
    assert (await served.ready())[0] == 200
    assert len(api.calls(GetMe)) == 2


# --- the real process ---------------------------------------------------------------------------


@pytest.fixture
async def bot_api() -> AsyncIterator[tuple[FakeBotServer, EmulatorSuite]]:
    suite = EmulatorSuite()
    await suite.start()
    api = FakeBotServer()
    await api.start()
    try:
        yield api, suite
    finally:
        await api.stop()
        await suite.stop()


async def test_the_bot_process_in_webhook_mode_sets_the_webhook_and_answers_by_it(
    tmp_path: Path, bot_api: tuple[FakeBotServer, EmulatorSuite]
) -> None:
    api, suite = bot_api
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(
        tmp_path,
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=api.base_url,
        TELEGRAM_WEBHOOK_URL=base + "/telegram",
        WEBHOOK_HOST="127.0.0.1",
        WEBHOOK_PORT=str(port),
        LOG_FORMAT="json",
        **suite.env(),
    )
    process = await spawn_bot(tmp_path, env)
    try:
        registered = await api.wait_for("setWebhook")
        expected_secret = Settings(_env_file=None, bot_token=TOKEN).telegram_secret_token()
        assert registered.params["url"] == base + "/telegram"
        assert registered.params["secret_token"] == expected_secret
        assert {"message", "callback_query", "pre_checkout_query"} <= set(
            registered.params["allowed_updates"]
        )
        assert registered.params.get("drop_pending_updates") in (False, None)

        assert (
            await api.post_update({"message": start_update(666)["message"]}, secret="forged")
            == 401
        )
        assert await api.post_update({"message": start_update(777)["message"]}) == 200
        sent = await api.wait_for("sendMessage")
        assert sent.params["chat_id"] == 777 and str(sent.params["text"]).startswith("Hi, Eve!")

        handled = 'bot_updates_total{handled="true",type="message"} 1.0'  # 777's, not 666's
        async with httpx.AsyncClient(timeout=WAIT) as http:
            # The watcher's first sweep comes at start; the update is counted once handled.
            ready = await polled(http, base + "/readyz", lambda r: r.status_code == 200)
            assert {c["ok"] for c in ready.json()["checks"].values()} == {True}
            metrics = await polled(http, base + "/metrics", lambda r: handled in r.text)
        assert 'handled="false"' not in metrics.text
        assert not [c for c in api.log if c.method.lower() == "getupdates"]  # no polling
        assert [c.params["chat_id"] for c in api.log if c.method == "sendMessage"] == [777]
    finally:
        process.terminate()
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()[-2000:]
    lines = output.decode().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    assert any(r["logger"] == "bot.web" and "webhook" in r["message"] for r in records)
    assert (
        TOKEN.split(":")[1] not in output.decode() and str(expected_secret) not in output.decode()
    )


async def test_a_bot_back_in_polling_mode_deletes_the_webhook_and_polls(
    tmp_path: Path, bot_api: tuple[FakeBotServer, EmulatorSuite]
) -> None:
    api, suite = bot_api
    api.webhook = {"url": "https://old.example/tg", "secret_token": "old"}  # set by a past run
    env = clean_env(tmp_path, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api.base_url, **suite.env())
    process = await spawn_bot(tmp_path, env)
    try:
        await api.wait_for("deleteWebhook")
        api.push({"message": start_update(777)["message"]})
        sent = await api.wait_for("sendMessage")  # getUpdates works once the webhook is gone
        assert sent.params["chat_id"] == 777
        assert [c.method for c in api.log if "webhook" in c.method.lower()] == ["deleteWebhook"]
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
