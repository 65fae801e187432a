"""With ``REDIS_URL``: the FSM and the short-lived guards in Redis, shared by every replica.

* The FSM is aiogram's :class:`RedisStorage`; a state and its data live :data:`FSM_TTL` after
  their last change (a step waiting for typed input survives restarts; abandoned ones go).
* :class:`RedisOnceGuard` is :class:`bot.services.guard.Guard` across replicas: a running key is
  ``SET NX PX`` with a token of its owner, released only by that owner (compare-and-delete), and
  it expires by itself if its replica dies; a result is JSON with an expiry.
* :class:`RedisLocks` is :class:`bot.services.guard.Locks` (redis-py's token lock).
* :class:`RedisRateCounter` counts a user's messages and taps in a fixed window (``INCR`` and
  ``PEXPIRE`` in one script).

Keys are ``<REDIS_PREFIX>:<kind>:<name>:<key>`` and hold ids only (no secret).

When Redis stops answering: a guard that ``fail_open`` (one action per order: the database's
intents keep those one at a time anyway) goes on in this process alone, logged; any other guard
and the locks raise :class:`GuardUnavailable` (nothing was done: the user is asked to try again);
the rate limit lets everything through, logged once per outage; the FSM reads no step (a typed
text is a search) and forgets steps set meanwhile, so buttons keep working. A result or a release
that cannot be written is logged and left to expire: what was done stays done.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Hashable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from aiogram.fsm.storage.base import DefaultKeyBuilder, StateType, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from bot.services.guard import AlreadyDone, GuardUnavailable, InProgress, OnceGuard

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)
R = TypeVar("R")
T = TypeVar("T")

FSM_TTL = timedelta(days=7)
RESULT_TTL = timedelta(days=1)  # "already bought" for a day; then the database says so
DOWN = (RedisError, OSError)  # what a Redis that does not answer raises

# KEYS: running, done; ARGV: token, ttl ms -> {0} entered, {1} running, {2, result} done.
_ENTER = """
local done = redis.call('GET', KEYS[2])
if done then return {2, done} end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
if redis.call('GET', KEYS[1]) == ARGV[1] then return {0} end
return {1}
"""
# KEYS: running; ARGV: token. Only the owner deletes its key.
_LEAVE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: counter; ARGV: window ms -> {count, ms until the window ends}.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


def connect(url: str) -> Redis:
    """One client (a pool) for the app. A Redis that does not answer fails a call within
    seconds (short timeouts, two quick retries), so a tap is answered and not held."""
    return Redis.from_url(
        url,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), retries=2),
    )


class SharedRedisStorage(RedisStorage):
    """aiogram's RedisStorage on the app's client, which the app closes (not the Dispatcher's
    shutdown, after which the watcher may still use the guards).

    While Redis does not answer, a user is on no step (logged once): every update is read
    without a state (a typed text is a search, buttons carry their own data) and a step set
    then is lost, rather than every update failing where aiogram reads the state."""

    _down = False

    async def get_state(self, key: StorageKey) -> str | None:
        try:
            state = await super().get_state(key)
        except DOWN as exc:
            return self._unavailable(exc, None)
        self._answers()
        return state

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        try:
            return await super().get_data(key)
        except DOWN as exc:
            return self._unavailable(exc, {})

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        try:
            await super().set_state(key, state)
        except DOWN as exc:
            self._unavailable(exc, None)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        try:
            await super().set_data(key, data)
        except DOWN as exc:
            self._unavailable(exc, None)

    def _unavailable(self, exc: BaseException, instead: T) -> T:
        if not self._down:
            log.warning("FSM without steps while Redis does not answer: %s", exc)
        self._down = True
        return instead

    def _answers(self) -> None:
        if self._down:
            log.warning("FSM steps back: Redis answers again")
        self._down = False

    async def close(self) -> None:
        """The client is closed by its owner (the app)."""


def fsm_storage(redis: Redis, prefix: str) -> RedisStorage:
    """Keys as :class:`storage.fsm.SqliteStorage` builds them (with the destiny), prefixed."""
    ttl = int(FSM_TTL.total_seconds())
    return SharedRedisStorage(
        redis,
        key_builder=DefaultKeyBuilder(prefix=f"{prefix}:fsm", with_destiny=True),
        state_ttl=ttl,
        data_ttl=ttl,
    )


def key_part(key: Hashable) -> str:
    """``(12, "order")`` -> ``12:order``; a str or an int as it is."""
    parts = key if isinstance(key, tuple) else (key,)
    return ":".join(str(part) for part in parts)


def _ms(span: timedelta) -> int:
    return max(1, int(span.total_seconds() * 1000))


class RedisOnceGuard(Generic[R]):
    """:class:`bot.services.guard.Guard` in Redis. ``running``: how long a running key lives if
    its owner never releases it (it died); ``remember``: how long a result is kept (None: not
    kept). Results are JSON (an order id, None)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        name: str,
        *,
        running: timedelta,
        remember: timedelta | None = RESULT_TTL,
        fail_open: bool = False,
    ) -> None:
        self._redis = redis
        self._base = f"{prefix}:guard:{name}"
        self._running_ms = _ms(running)
        self._remember = remember
        self._fail_open = fail_open
        self._local: OnceGuard[R] = OnceGuard(remember=0)  # while Redis is down (fail_open)
        self._enter = redis.register_script(_ENTER)
        self._leave = redis.register_script(_LEAVE)

    def keys(self, key: Hashable) -> tuple[str, str]:
        """The running key and the result key of ``key``."""
        part = key_part(key)
        return f"{self._base}:running:{part}", f"{self._base}:done:{part}"

    @asynccontextmanager
    async def once(self, key: Hashable) -> AsyncIterator[None]:
        running, done = self.keys(key)
        token = secrets.token_hex(16)
        try:
            reply = await self._enter(keys=[running, done], args=[token, self._running_ms])
        except DOWN as exc:
            if not self._fail_open:
                log.warning("guard %s unavailable (Redis: %s): refused", self._base, exc)
                raise GuardUnavailable from None
            log.warning("guard %s unavailable (Redis: %s): this process only", self._base, exc)
            reply = None
        if reply is None:
            async with self._local.once(key):
                yield
            return
        status = int(reply[0])
        if status == 2:
            raise AlreadyDone(cast(R, json.loads(reply[1])))
        if status == 1:
            raise InProgress
        try:
            yield
        finally:
            try:
                await self._leave(keys=[running], args=[token])
            except DOWN as exc:  # it expires by itself
                log.warning("guard %s: not released (Redis: %s)", running, exc)

    async def done(self, key: Hashable, result: R) -> None:
        """Remember ``result`` (before the running key goes, so no tap slips between)."""
        if self._remember is None:
            return
        try:
            await self._redis.set(self.keys(key)[1], json.dumps(result), px=_ms(self._remember))
        except DOWN as exc:  # a repeat is then told by the database (QuoteUsed)
            log.warning("guard %s: result not kept (Redis: %s)", self._base, exc)


class RedisLocks:
    """:class:`bot.services.guard.Locks` in Redis: a holder keeps a lock at most ``ttl`` (then
    it expires: its replica died); a waiter waits at most ``ttl`` too, then GuardUnavailable."""

    def __init__(self, redis: Redis, prefix: str, name: str, *, ttl: timedelta) -> None:
        self._redis = redis
        self._base = f"{prefix}:lock:{name}"
        self._ttl = ttl.total_seconds()

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock = self._redis.lock(
            f"{self._base}:{name}",
            timeout=self._ttl,
            sleep=0.05,
            blocking_timeout=self._ttl,
            thread_local=False,
        )
        try:
            acquired = await lock.acquire()
        except DOWN as exc:
            log.warning("lock %s:%s unavailable (Redis: %s)", self._base, name, exc)
            raise GuardUnavailable from None
        if not acquired:
            log.warning("lock %s:%s still held after %ss", self._base, name, self._ttl)
            raise GuardUnavailable
        try:
            yield
        finally:
            try:
                await lock.release()
            except DOWN as exc:  # expired meanwhile, or Redis is down: it expires by itself
                log.warning("lock %s:%s: not released (%s)", self._base, name, exc)


class RedisRateCounter:
    """A user's messages and taps in a fixed ``window`` from their first one (Redis's clock),
    shared by every replica (``RateLimit``'s counter)."""

    def __init__(self, redis: Redis, prefix: str, window: float) -> None:
        self._base = f"{prefix}:rate"
        self._window_ms = max(1, int(window * 1000))
        self._hit = redis.register_script(_HIT)
        self._down = False

    async def hit(self, user_id: int) -> tuple[int, float] | None:
        """(count in this window, seconds until it ends); None when Redis does not answer."""
        try:
            reply: Any = await self._hit(keys=[f"{self._base}:{user_id}"], args=[self._window_ms])
        except DOWN as exc:
            if not self._down:
                log.warning("rate limit off while Redis does not answer: %s", exc)
            self._down = True
            return None
        if self._down:
            log.warning("rate limit back on: Redis answers again")
            self._down = False
        return int(reply[0]), int(reply[1]) / 1000


@dataclass(frozen=True)
class Shared:
    """What the replicas share through one client (see :func:`shared`)."""

    fsm: RedisStorage
    purchases: RedisOnceGuard[int]  # a Buy tap -> the order id bought
    orders: RedisOnceGuard[None]  # one card action per order at a time
    buy_locks: RedisLocks  # one purchase at a time per provider that lists its orders
    rate: RedisRateCounter


def purchase_span(settings: Settings) -> timedelta:
    """The longest a purchase may take: the offer read again, the order list before it, the
    purchase and the list after a lost answer, each read retried (+ a margin)."""
    return timedelta(seconds=3 * settings.provider_timeout * settings.provider_retries + 60)


def shared(redis: Redis, settings: Settings) -> Shared:
    prefix, span = settings.redis_prefix, purchase_span(settings)
    return Shared(
        fsm=fsm_storage(redis, prefix),
        # A tap may wait for the provider's lock (one span), then buy (another).
        purchases=RedisOnceGuard(redis, prefix, "buy", running=2 * span),
        # Fail open: renewals and cancels of the watcher go on (the intents keep them single).
        orders=RedisOnceGuard(redis, prefix, "order", running=span, remember=None, fail_open=True),
        buy_locks=RedisLocks(redis, prefix, "buy", ttl=span),
        rate=RedisRateCounter(redis, prefix, settings.rate_limit_window),
    )


async def check(redis: Redis) -> str | None:
    """None when Redis answers; else why not (no URL, no password)."""
    try:
        await redis.ping()
    except DOWN as exc:
        return type(exc).__name__
    return None
