"""The HTTP endpoint providers push SMS to (SMS.online rentals), served with aiohttp.

**One secret per rental.** SMS.online takes the webhook URL at purchase (``getRentNumber``'s
``url``), before the rent id exists, so the URL cannot carry an HMAC of the rent id. Instead each
purchase draws a random *nonce*, kept in the order's ``meta`` (``webhook_nonce``), and the URL's
last segment is ``HMAC(key, nonce)``, the key being derived from the bot token
(``Settings.webhook_secret``). A push names its rental in the body (``rentId``); it is taken only
if that rental is ours, has a nonce, and the path's token is the HMAC of *its* nonce. So a URL
that leaks opens one rental only, and a database that leaks gives nonces, not URLs (the key
lives in the bot token). Rentals bought before this scheme have no nonce: their pushes are
refused and their SMS come by polling, as all SMS do anyway.

Every refusal is a 4xx and nothing is delivered: a token that is not ours or not that rental's,
an unknown rent id (404); a rental that is not active any more (410); a body that is not the
documented JSON, however broken (bad JSON, deep nesting, dates out of range: 400); a body too
large (413); more pushes for one rental than a small token bucket allows (429). A push is an
optimisation: polling stays the source of truth, so whatever is refused here is not lost.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from bot.clock import SYSTEM_CLOCK, Clock
from bot.providers.smsonline import parse_webhook
from bot.services.delivery import Watcher

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
PATH = "/webhooks/smsonline/{token}"
NONCE = "webhook_nonce"  # the Order.meta key of a rental's nonce
_TOKEN = re.compile(r"[0-9a-f]{32}")


def rental_token(secret: str, nonce: str) -> str:
    """The path token of the rental bought with ``nonce`` (``secret``: Settings.webhook_secret)."""
    digest = hmac.new(secret.encode(), b"smsonline-rent:" + nonce.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class RentalHooks:
    """Makes the webhook URL for one purchase: ``issue()`` gives the URL to send to SMS.online
    and the entries to keep in the new order's ``meta``."""

    base_url: str
    secret: str

    def issue(self) -> tuple[str, Mapping[str, str]]:
        nonce = secrets.token_hex(8)
        return self.url(nonce), {NONCE: nonce}

    def url(self, nonce: str) -> str:
        return self.base_url.rstrip("/") + PATH.format(token=rental_token(self.secret, nonce))


class _Buckets:
    """A token bucket per rental: ``burst`` pushes at once, then one per ``every`` seconds."""

    def __init__(self, clock: Clock, burst: int, every: float, cap: int = 10_000) -> None:
        self._clock = clock
        self._burst = float(burst)
        self._every = every
        self._cap = cap
        self._state: dict[int, tuple[float, datetime]] = {}

    def take(self, key: int) -> bool:
        now = self._clock.now()
        tokens, then = self._state.get(key, (self._burst, now))
        elapsed = max((now - then).total_seconds(), 0.0)
        tokens = min(self._burst, tokens + elapsed / self._every)
        if tokens < 1:
            self._state[key] = (tokens, now)
            return False
        if key not in self._state and len(self._state) >= self._cap:
            self._state.clear()  # only rentals that pushed recently are here; a reset is harmless
        self._state[key] = (tokens - 1, now)
        return True


def create_webhook_app(
    watcher: Watcher,
    secret: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
    burst: int = 5,
    every: float = 12.0,
) -> web.Application:
    """An app of these routes alone (the bot serves them in :mod:`bot.web`'s one app)."""
    app = web.Application(client_max_size=MAX_BODY)
    add_webhook_routes(app, watcher, secret, clock=clock, burst=burst, every=every)
    return app


def add_webhook_routes(
    app: web.Application,
    watcher: Watcher,
    secret: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
    burst: int = 5,
    every: float = 12.0,
) -> None:
    """``secret``: Settings.webhook_secret (the key of every rental's token)."""
    buckets = _Buckets(clock, burst, every)

    async def smsonline(request: web.Request) -> web.Response:
        token = request.match_info.get("token", "")
        if not _TOKEN.fullmatch(token):
            return web.Response(status=404)
        body = await _read_at_most(request, MAX_BODY)
        if body is None:
            return web.Response(status=413)
        try:
            rent_id, sms = parse_webhook(body)
        except Exception as exc:  # deep nesting, dates out of range...: the body is bad
            log.warning("ignored an SMS.online push: %s: %s", type(exc).__name__, exc)
            return web.Response(status=400, text="bad request")
        order = await watcher.pushed_order("smsonline", rent_id)
        nonce = order.meta.get(NONCE) if order is not None else None
        if (
            order is None
            or not nonce
            or not hmac.compare_digest(token, rental_token(secret, nonce))
        ):
            log.warning("refused an SMS.online push for rent %s: not its URL", rent_id)
            return web.Response(status=404)
        if not order.is_active:
            log.info("refused an SMS.online push for order %s: no longer active", order.id)
            return web.Response(status=410)
        if not buckets.take(order.id):
            log.warning("refused an SMS.online push for order %s: too many", order.id)
            return web.Response(status=429)
        try:
            await watcher.receive("smsonline", rent_id, sms)
        except Exception:
            log.exception("an SMS.online push for order %s was not stored", order.id)
            return web.Response(status=503)  # polling will find the SMS
        return web.Response(text="OK")

    app.router.add_post(PATH, smsonline)


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (declared or sent: the app the
    routes are in may allow larger bodies for other routes)."""
    if (request.content_length or 0) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def start_webhook(
    watcher: Watcher, secret: str, host: str, port: int, *, clock: Clock = SYSTEM_CLOCK
) -> web.AppRunner:
    runner = web.AppRunner(create_webhook_app(watcher, secret, clock=clock), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("webhook endpoint listening on %s:%s", host, port)
    return runner
