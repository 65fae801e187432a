"""REDIS_URL: the FSM and the short-lived guards shared by replicas (issue #13).

Every test has a key prefix of its own (and deletes its keys), so runs on one Redis never meet.
Two "replicas" are two clients (two guards, two middlewares, two whole apps) on one Redis.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Update, User
from redis.asyncio import Redis

from bot.app import App, StartupError, create_app
from bot.config import Settings, SettingsError, load_settings
from bot.middlewares import RateLimit
from bot.providers.http import RetryPolicy
from bot.redact import Redactor
from bot.redis_backends import (
    FSM_TTL,
    RedisLocks,
    RedisOnceGuard,
    RedisRateCounter,
    connect,
    fsm_storage,
)
from bot.services.guard import AlreadyDone, GuardUnavailable, InProgress
from storage.orders import OrdersRepo
from tests.emulators.base import FakeClock
from tests.emulators.suite import EmulatorSuite
from tests.fakes.telegram import TOKEN, BotClient, FakeBotApi
from tests.helpers import free_port
from tests.services import require_redis
from tests.stack import stack_settings
from tests.test_flow_orders import BUY, GETSMS_RENTAL, IN_PROGRESS, confirm_screen

WAIT = 10.0  # seconds: the bound of every wait for something that takes milliseconds
ALREADY_BOUGHT = "Already bought: see your numbers."
TAP_AGAIN = "Nothing was bought: please tap again in a moment."


@pytest.fixture
async def redis_url() -> str:
    return require_redis()


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    client = connect(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{name}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two clients on one Redis, as two bot processes have."""
    first, second = connect(redis_url), connect(redis_url)
    try:
        yield first, second
    finally:
        await first.aclose()
        await second.aclose()


def down() -> Redis:
    """A client of a Redis that is not there (a port nobody listens on)."""
    return connect(f"redis://127.0.0.1:{free_port()}/0")


class RedisHop:
    """A TCP hop between the bot and Redis that a test cuts (Redis stops answering mid-run)
    and restores on the same port."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._url = parts
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        auth, _, _ = self._url.netloc.rpartition("@")
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return self._url._replace(netloc=netloc).geturl()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = WAIT, every: float = 0.02
) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(every)


# --- the setting ------------------------------------------------------------------------------


def test_redis_url_is_checked_and_its_password_never_shown() -> None:
    with pytest.raises(SettingsError) as bad:
        load_settings(_env_file=None, redis_url="http://:hunter2@cache:6379", redis_prefix="a b")
    assert "REDIS_URL: must be a redis://, rediss:// or unix:// URL" in str(bad.value)
    assert "REDIS_PREFIX" in str(bad.value) and "hunter2" not in str(bad.value)

    settings = Settings(_env_file=None, redis_url="redis://bot:p%40ss@cache:6379/0")
    assert "p%40ss" not in repr(settings)
    redact = Redactor(settings.secrets())
    assert redact("cannot reach redis://bot:p%40ss@cache:6379/0 (p@ss)") == (
        "cannot reach redis://bot:***@cache:6379/0 (***)"
    )
    socket = Settings(_env_file=None, redis_url="unix:///run/redis.sock?password=s3cret&db=1")
    assert "s3cret" in socket.secrets()
    assert Settings(_env_file=None, redis_url="  ").redis_url is None  # blank: in-process
    plain = Settings(_env_file=None, redis_url="redis://cache:6379/0")  # no password: none
    assert plain.secrets() == Settings(_env_file=None).secrets()


# --- the FSM ----------------------------------------------------------------------------------


async def test_the_fsm_outlives_its_process(replicas: tuple[Redis, Redis], prefix: str) -> None:
    first, second = replicas
    key = StorageKey(bot_id=42, chat_id=7, user_id=7)
    before = fsm_storage(first, prefix)
    await before.set_state(key, "BuyFlow:country")
    await before.set_data(key, {"service": "tg", "note": "Привет"})
    await before.close()  # the app closes the client, not the storage: it still works

    after = fsm_storage(second, prefix)  # a new process on the same Redis
    assert await after.get_state(key) == "BuyFlow:country"
    assert await after.get_data(key) == {"service": "tg", "note": "Привет"}
    other = StorageKey(bot_id=42, chat_id=8, user_id=8)
    assert await after.get_state(other) is None

    keys = [k.decode() async for k in second.scan_iter(match=f"{prefix}:fsm:*")]
    assert sorted(keys) == [
        f"{prefix}:fsm:7:7:default:data",
        f"{prefix}:fsm:7:7:default:state",
    ]
    for stored in keys:  # abandoned steps do not pile up: each expires a week after its change
        left = await second.pttl(stored)
        assert FSM_TTL - timedelta(minutes=1) < timedelta(milliseconds=left) <= FSM_TTL


# --- the once-guard across replicas -----------------------------------------------------------


async def test_a_second_replica_is_told_in_progress_then_done(
    replicas: tuple[Redis, Redis], prefix: str
) -> None:
    first = RedisOnceGuard[int](replicas[0], prefix, "buy", running=timedelta(minutes=1))
    second = RedisOnceGuard[int](replicas[1], prefix, "buy", running=timedelta(minutes=1))

    async with first.once("quote-1"):
        with pytest.raises(InProgress):
            async with second.once("quote-1"):
                pytest.fail("entered while the other replica runs it")
        async with second.once("quote-2"):  # another key is free
            pass
        await first.done("quote-1", 1234)
    with pytest.raises(AlreadyDone) as done:
        async with second.once("quote-1"):
            pytest.fail("entered after it was done")
    assert done.value.result == 1234
    with pytest.raises(AlreadyDone):
        async with first.once("quote-1"):
            pytest.fail("entered after it was done")
    async with second.once("quote-2"):  # not done: released when it left
        pass

    running, result = first.keys("quote-1")
    assert (running, result) == (
        f"{prefix}:guard:buy:running:quote-1",
        f"{prefix}:guard:buy:done:quote-1",
    )
    assert await replicas[0].get(result) == b"1234"
    assert 0 < await replicas[0].pttl(result) <= 86_400_000


async def test_an_order_key_without_results_is_free_again_after_it_ran(
    replicas: tuple[Redis, Redis], prefix: str
) -> None:
    first = RedisOnceGuard[None](
        replicas[0], prefix, "order", running=timedelta(minutes=1), remember=None
    )
    second = RedisOnceGuard[None](
        replicas[1], prefix, "order", running=timedelta(minutes=1), remember=None
    )
    async with first.once((7, "order")):
        assert await replicas[1].exists(f"{prefix}:guard:order:running:7:order")
        with pytest.raises(InProgress):
            async with second.once((7, "order")):
                pytest.fail("two actions on one order at once")
        await first.done((7, "order"), None)  # nothing is remembered
    async with second.once((7, "order")):
        pass
    assert [k async for k in replicas[0].scan_iter(match=f"{prefix}:*")] == []


async def test_a_crashed_owner_holds_its_key_only_until_it_expires(
    replicas: tuple[Redis, Redis], prefix: str
) -> None:
    crashed = RedisOnceGuard[int](replicas[0], prefix, "buy", running=timedelta(seconds=1))
    other = RedisOnceGuard[int](replicas[1], prefix, "buy", running=timedelta(minutes=1))
    held = crashed.once("quote-1")
    await held.__aenter__()  # entered, and its process dies: never left
    running, _ = crashed.keys("quote-1")
    assert 0 < await replicas[1].pttl(running) <= 1000

    with pytest.raises(InProgress):
        async with other.once("quote-1"):
            pytest.fail("entered while the owner's key lives")

    async def enters() -> bool:
        try:
            async with other.once("quote-1"):
                return True
        except InProgress:
            return False

    await eventually(enters, within=5)  # once its second is over
    await held.__aexit__(None, None, None)  # (the dead process's context, let go of here)


async def test_only_the_owner_releases_its_key(replicas: tuple[Redis, Redis], prefix: str) -> None:
    slow = RedisOnceGuard[int](replicas[0], prefix, "buy", running=timedelta(milliseconds=300))
    other = RedisOnceGuard[int](replicas[1], prefix, "buy", running=timedelta(minutes=1))
    third = RedisOnceGuard[int](replicas[1], prefix, "buy", running=timedelta(minutes=1))
    late = slow.once("quote-1")
    await late.__aenter__()  # runs longer than its key lives

    entered = asyncio.Event()
    leave = asyncio.Event()

    async def take_over() -> None:
        while True:
            try:
                async with other.once("quote-1"):
                    entered.set()
                    await leave.wait()
                    return
            except InProgress:
                await asyncio.sleep(0.02)

    taking = asyncio.create_task(take_over())
    try:
        await asyncio.wait_for(entered.wait(), WAIT)  # the slow one's key expired
        await late.__aexit__(None, None, None)  # the slow one finishes: must not free "other"'s
        with pytest.raises(InProgress):
            async with third.once("quote-1"):
                pytest.fail("the slow owner released a key that was not its own")
    finally:
        leave.set()
        await asyncio.wait_for(taking, WAIT)
    async with third.once("quote-1"):  # released by its owner
        pass


async def test_a_guard_with_redis_down_refuses_or_goes_on_alone() -> None:
    dead, prefix = down(), "test-down"  # (nothing is written: no Redis is needed)
    try:
        closed = RedisOnceGuard[int](dead, prefix, "buy", running=timedelta(minutes=1))
        ran: list[str] = []
        with pytest.raises(GuardUnavailable):
            async with closed.once("quote-1"):
                ran.append("bought")
        assert ran == []  # nothing was done: the user may tap again
        assert issubclass(GuardUnavailable, InProgress)  # every caller already stops on it

        opened = RedisOnceGuard[None](
            dead, prefix, "order", running=timedelta(minutes=1), remember=None, fail_open=True
        )
        async with opened.once((7, "order")):
            ran.append("cancelled")
            with pytest.raises(InProgress):  # this process still serialises its own
                async with opened.once((7, "order")):
                    pytest.fail("entered twice in one process")
        await opened.done((7, "order"), None)
        assert ran == ["cancelled"]

        locks = RedisLocks(dead, prefix, "buy", ttl=timedelta(seconds=5))
        with pytest.raises(GuardUnavailable):
            async with locks.hold("getsms"):
                pytest.fail("held a lock nobody could see")
    finally:
        await dead.aclose()


# --- the per-provider purchase lock -----------------------------------------------------------


async def test_one_purchase_at_a_time_per_provider_across_replicas(
    replicas: tuple[Redis, Redis], prefix: str
) -> None:
    first = RedisLocks(replicas[0], prefix, "buy", ttl=timedelta(minutes=1))
    impatient = RedisLocks(replicas[1], prefix, "buy", ttl=timedelta(milliseconds=300))
    async with first.hold("getsms"):
        assert await replicas[1].exists(f"{prefix}:lock:buy:getsms")
        with pytest.raises(GuardUnavailable):  # waited its bound, never had it
            async with impatient.hold("getsms"):
                pytest.fail("two purchases at one provider at once")
        async with impatient.hold("beesms"):  # another provider is free
            pass
    async with impatient.hold("getsms"):  # released by its holder
        pass
    assert [k async for k in replicas[0].scan_iter(match=f"{prefix}:*")] == []


# --- the rate limit ---------------------------------------------------------------------------


def _update(user_id: int) -> tuple[Update, dict[str, Any]]:
    return Update(update_id=0), {"event_from_user": User(id=user_id, is_bot=False, first_name="u")}


async def test_the_rate_limit_is_shared_by_replicas(
    replicas: tuple[Redis, Redis], prefix: str
) -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    admin = 1

    def limit(redis: Redis) -> RateLimit:
        counter = RedisRateCounter(redis, prefix, window=60)
        return RateLimit(
            clock, limit=3, window=60, exempt=lambda uid: uid == admin, counter=counter
        )

    first, second = limit(replicas[0]), limit(replicas[1])
    seen: list[int] = []

    async def handler(event: object, data: dict[str, Any]) -> None:
        seen.append(data["event_from_user"].id)

    for n in range(6):  # alternately on each replica: three pass in all, not three each
        await (first if n % 2 == 0 else second)(handler, *_update(500))
    assert seen == [500, 500, 500]
    left = await replicas[0].pttl(f"{prefix}:rate:500")
    assert 0 < left <= 60_000

    await first(handler, *_update(501))  # another user has a window of their own
    for _ in range(10):
        await second(handler, *_update(admin))  # admins are not limited
    assert seen.count(501) == 1 and seen.count(admin) == 10


async def test_the_rate_limit_lets_everything_through_while_redis_is_down() -> None:
    dead, prefix = down(), "test-down"
    try:
        clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
        counter = RedisRateCounter(dead, prefix, window=60)
        limit = RateLimit(clock, limit=1, window=60, counter=counter)
        seen: list[int] = []

        async def handler(event: object, data: dict[str, Any]) -> None:
            seen.append(1)

        for _ in range(3):
            await limit(handler, *_update(500))
        assert seen == [1, 1, 1]
    finally:
        await dead.aclose()


# --- whole apps: the real Dispatcher, the emulators, a fake Bot API ----------------------------


async def _app(suite: EmulatorSuite, database: Path, api: FakeBotApi, **overrides: Any) -> App:
    return await create_app(
        stack_settings(suite, database, **overrides),
        session=api,
        clock=suite.clock,
        retry=RetryPolicy(attempts=2, initial_delay=0.001, max_delay=0.01),
    )


@pytest.fixture
async def suite() -> AsyncIterator[EmulatorSuite]:
    emulators = EmulatorSuite()
    await emulators.start()
    try:
        yield emulators
    finally:
        await emulators.stop()


async def test_a_search_step_goes_on_in_a_new_app_on_the_same_redis(
    tmp_path: Path, suite: EmulatorSuite, redis_url: str, prefix: str
) -> None:
    shared = {"redis_url": redis_url, "redis_prefix": prefix}
    api = FakeBotApi(clock=suite.clock)
    first = await _app(suite, tmp_path / "first.sqlite3", api, **shared)
    try:
        user = BotClient(first.dp, first.bot, user_id=1001)
        await user.send("/buy")
        await user.click(user.last_message(), "Telegram")  # now waiting for a country name
        assert await first.db.fetchone("SELECT key FROM fsm") is None  # not in the database
    finally:
        await first.close()

    # Another replica, with a database of its own: only Redis knows the step.
    second = await _app(
        suite, tmp_path / "second.sqlite3", FakeBotApi(clock=suite.clock), **shared
    )
    try:
        same = BotClient(second.dp, second.bot, user_id=1001)
        await same.send("united")
        assert "🇺🇸 United States" in same.buttons()
        assert "Telegram" in (same.last_message().text or "")
    finally:
        await second.close()


async def test_a_buy_tapped_on_two_replicas_at_once_buys_one_number(
    tmp_path: Path, suite: EmulatorSuite, redis_url: str, prefix: str
) -> None:
    shared = {"redis_url": redis_url, "redis_prefix": prefix}
    api = FakeBotApi(clock=suite.clock)  # one Telegram: both replicas answer the same chat
    database = tmp_path / "bot.sqlite3"
    one = await _app(suite, database, api, **shared)
    two = await _app(suite, database, api, **shared)
    try:
        user = BotClient(one.dp, one.bot, user_id=1001)
        same = BotClient(two.dp, two.bot, user_id=1001)
        confirm = await confirm_screen(user, GETSMS_RENTAL)
        buy_data = confirm.reply_markup.inline_keyboard[0][0].callback_data  # type: ignore[union-attr]
        assert buy_data is not None
        getsms = suite.getsms

        getsms.gate("getnumber")  # Get-SMS takes the purchase and holds it
        first = asyncio.create_task(user.click(confirm, BUY))
        try:
            await asyncio.wait_for(getsms.gated_arrived.wait(), WAIT)
            # Get-SMS rentals are found in its order list: one purchase there at a time.
            assert await one.redis.exists(f"{prefix}:lock:buy:getsms")  # type: ignore[union-attr]
            second = await same.click(confirm, BUY)  # the same tap reaches the other replica
        finally:
            getsms.open_gate()
        await asyncio.wait_for(first, WAIT)
        assert second is not None and second.text == IN_PROGRESS
        assert (user.last_message().text or "").startswith("📱 ")

        requests = len(getsms.requests)
        late = await same.click_data(confirm, buy_data)  # once more, after it was bought
        assert late is not None and late.text == ALREADY_BOUGHT
        assert len(getsms.requests) == requests  # told by Redis: no provider was asked

        assert getsms.calls("getnumber") == 1
        assert len(getsms.rentals) == 1
        orders = await OrdersRepo(one.db).list_for_user(1001, limit=10)
        assert len(orders) == 1
    finally:
        await one.close()
        await two.close()


async def test_an_app_does_not_start_when_redis_does_not_answer(
    tmp_path: Path, suite: EmulatorSuite
) -> None:
    settings: Settings = stack_settings(
        suite, tmp_path / "bot.sqlite3", redis_url=f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    )
    with pytest.raises(StartupError) as refused:
        await create_app(settings, session=FakeBotApi(clock=suite.clock), clock=suite.clock)
    assert "REDIS_URL" in str(refused.value) and "s3cret" not in str(refused.value)
    assert "s3cret" in settings.secrets()  # redacted from every log line
    assert TOKEN not in str(refused.value)


async def test_while_redis_does_not_answer_buy_says_tap_again_and_buys_nothing(
    tmp_path: Path, suite: EmulatorSuite, redis_url: str, prefix: str
) -> None:
    hop = RedisHop(redis_url)
    await hop.start()
    app = await _app(
        suite,
        tmp_path / "bot.sqlite3",
        FakeBotApi(clock=suite.clock),
        redis_url=hop.url,
        redis_prefix=prefix,
    )
    try:
        user = BotClient(app.dp, app.bot, user_id=1001)
        confirm = await confirm_screen(user, GETSMS_RENTAL)  # a typed search: the FSM works
        await hop.cut()  # Redis stops answering

        refused = await user.click(confirm, BUY)  # the state is not read, the guard refuses
        assert refused is not None and refused.show_alert
        assert refused.text == TAP_AGAIN
        assert suite.getsms.calls("getnumber") == 0
        assert await OrdersRepo(app.db).list_for_user(1001, limit=10) == []
        await user.send("russ")  # no step now: a typed text is a search, answered
        assert "🔍 Search again" in user.buttons()  # (services sold in Russia)

        await hop.start()  # Redis answers again (same port): the same tap buys
        await user.click(confirm, BUY)
        assert (user.last_message().text or "").startswith("📱 ")
        assert suite.getsms.calls("getnumber") == 1
    finally:
        await app.close()
        await hop.cut()
