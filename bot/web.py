"""The bot's one HTTP server (aiohttp): whatever comes in, on WEBHOOK_HOST:WEBHOOK_PORT.

* ``POST <TELEGRAM_WEBHOOK_URL's path>``: Telegram updates (aiogram's ``SimpleRequestHandler``;
  a request without the right ``X-Telegram-Bot-Api-Secret-Token`` is a 401 and nothing is
  handled), when TELEGRAM_WEBHOOK_URL is set;
* ``POST /webhooks/smsonline/<token>``: SMS.online pushes (:mod:`bot.webhook`), when
  WEBHOOK_BASE_URL is set;
* ``GET /healthz``: 200 ``ok`` while the process serves;
* ``GET /readyz``: 200 when the database answers, the watcher's delivery sweep is recent and
  Telegram answers ``getMe`` (asked at most every 30 s); else 503. The JSON body names each
  check and what failed;
* ``GET /metrics``: Prometheus text format (:mod:`bot.metrics`), the gauges read anew.

No access log: the SMS.online paths carry per-rental tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.clock import Clock
from bot.metrics import CONTENT_TYPE_LATEST, Metrics
from bot.services.delivery import Watcher
from bot.webhook import add_webhook_routes
from storage.db import Database
from storage.stats import StatsRepo

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
TELEGRAM_EVERY = timedelta(seconds=30)  # /readyz asks Telegram's getMe at most this often
CHECK_TIMEOUT = 5.0  # seconds any one readiness check may take
MIN_SWEEP_WINDOW = timedelta(seconds=30)
DRAIN_TIMEOUT = 30.0  # seconds the updates under way may take to finish at shutdown


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail}


class Readiness:
    """The checks behind ``/readyz``. ``clock``: the app's (a test's fake one)."""

    def __init__(
        self,
        db: Database,
        watcher: Watcher,
        bot: Bot,
        clock: Clock,
        *,
        poll_interval: float,
        telegram_every: timedelta = TELEGRAM_EVERY,
        timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self._db = db
        self._watcher = watcher
        self._bot = bot
        self._clock = clock
        self.window = max(timedelta(seconds=3 * poll_interval), MIN_SWEEP_WINDOW)
        self._telegram_every = telegram_every
        self._timeout = timeout
        self._started = clock.now()  # the first sweep may take this window to come
        self._telegram: tuple[datetime, Check] | None = None

    async def checks(self) -> dict[str, Check]:
        database, telegram = await asyncio.gather(self.database(), self.telegram())
        return {"database": database, "watcher": self.watcher(), "telegram": telegram}

    async def database(self) -> Check:
        try:
            async with asyncio.timeout(self._timeout):
                await self._db.ping()
        except Exception as exc:  # whatever the driver raises: not ready
            return Check(False, f"unreachable ({type(exc).__name__})")
        return Check(True, "answers")

    def watcher(self) -> Check:
        now = self._clock.now()
        last = self._watcher.last_round_at
        if last is None:
            waited = now - self._started
            if waited <= self.window:
                return Check(True, "starting: no sweep yet")
            return Check(False, f"no sweep in {waited.total_seconds():.0f} s since the start")
        age = (now - last).total_seconds()
        if now - last <= self.window:
            return Check(True, f"last sweep {age:.0f} s ago")
        window = self.window.total_seconds()
        return Check(False, f"stale: last sweep {age:.0f} s ago (more than {window:.0f} s)")

    async def telegram(self) -> Check:
        now = self._clock.now()
        if self._telegram is not None and now - self._telegram[0] < self._telegram_every:
            return self._telegram[1]
        try:
            async with asyncio.timeout(self._timeout):
                me = await self._bot.get_me()
            check = Check(True, f"getMe: @{me.username}")
        except Exception as exc:  # the type only: a transport error may quote the token URL
            check = Check(False, f"getMe failed ({type(exc).__name__})")
        self._telegram = (now, check)
        return check


class TelegramWebhook(SimpleRequestHandler):
    """aiogram's handler, except: a body that is not a Telegram update (bad JSON, another
    shape) is a 400 before anything runs, not a traceback in a background task; and at
    shutdown it waits (bounded) for the updates under way instead of closing the bot's
    session (:meth:`App.close` does that, after the watcher)."""

    async def _handle_request_background(self, bot: Bot, request: web.Request) -> web.Response:
        try:
            data = await request.json(loads=bot.session.json_loads)
            Update.model_validate(data, context={"bot": bot})
        except ValueError as exc:  # JSON or pydantic's ValidationError
            log.warning("refused a webhook body that is not an update: %s", type(exc).__name__)
            return web.Response(status=400, text="bad request")
        task = asyncio.create_task(self._background_feed_update(bot=bot, update=data))
        self._background_feed_update_tasks.add(task)
        task.add_done_callback(self._background_feed_update_tasks.discard)
        return web.json_response({}, dumps=bot.session.json_dumps)

    async def close(self) -> None:
        under_way = set(self._background_feed_update_tasks)
        if under_way:
            await asyncio.wait(under_way, timeout=DRAIN_TIMEOUT)


def create_web_app(app: App) -> web.Application:
    """The routes of the module docstring, for ``app`` (its settings say which webhooks)."""
    settings = app.settings
    clock: Clock = app.dp["clock"]
    web_app = web.Application()
    path = settings.telegram_webhook_path
    if path is not None:
        handler = TelegramWebhook(
            dispatcher=app.dp, bot=app.bot, secret_token=settings.telegram_secret_token()
        )
        handler.register(web_app, path=path)
        setup_application(web_app, app.dp, bot=app.bot)  # startup/shutdown as with polling
    secret = settings.webhook_secret()
    if settings.webhook_base_url and secret:
        add_webhook_routes(web_app, app.watcher, secret, clock=clock)
    readiness = Readiness(
        app.db, app.watcher, app.bot, clock, poll_interval=settings.poll_interval
    )
    stats = StatsRepo(app.db)

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_request: web.Request) -> web.Response:
        checks = await readiness.checks()
        ready = all(check.ok for check in checks.values())
        body: dict[str, Any] = {
            "status": "ready" if ready else "not ready",
            "checks": {name: check.as_json() for name, check in checks.items()},
        }
        if not ready:
            failing = [name for name, check in checks.items() if not check.ok]
            log.warning("not ready: %s", ", ".join(failing))
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(_request: web.Request) -> web.Response:
        await refresh_gauges(app.metrics, stats)
        return web.Response(
            body=app.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics)
    return web_app


async def refresh_gauges(metrics: Metrics, stats: StatsRepo) -> None:
    """Active orders and open holds, read now; a failed read keeps the last values."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            live = await stats.live()
    except Exception as exc:
        log.warning("metrics: the gauges could not be read (%s)", type(exc).__name__)
        return
    metrics.set_active_orders((p, k, n) for (p, k), n in sorted(live.active_orders.items()))
    metrics.set_open_holds(live.open_holds)


async def start_web(app: App, host: str, port: int) -> web.AppRunner:
    """Serve :func:`create_web_app` on ``host:port``; ``await runner.cleanup()`` to stop."""
    runner = web.AppRunner(create_web_app(app), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("HTTP server listening on %s:%s", host, port)
    return runner


async def receive_by_webhook(app: App, *, handle_signals: bool = True) -> None:
    """Register the webhook (every replica registers the same URL and secret), then serve
    until SIGTERM or SIGINT (or until cancelled)."""
    settings = app.settings
    assert settings.telegram_webhook_url is not None
    await app.bot.set_webhook(
        settings.telegram_webhook_url,
        secret_token=settings.telegram_secret_token(),
        allowed_updates=app.dp.resolve_used_update_types(),
        drop_pending_updates=False,
    )
    log.info("Telegram updates come by webhook (%s)", settings.telegram_webhook_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
    for sig in signals:
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
    log.info("stopping: a signal came")
