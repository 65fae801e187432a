"""The whole bot wired as in production, against the provider emulators and a fake Bot API."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from bot.app import App, create_app
from bot.config import Settings
from bot.providers.http import RetryPolicy
from tests.emulators.base import FakeClock
from tests.emulators.suite import EmulatorSuite
from tests.fakes.telegram import TOKEN, BotClient, FakeBotApi
from tests.services import fresh_postgres_schema

PROVIDER_ENV_NAMES = (
    "BOT_TOKEN",
    "TELEGRAM_API_URL",
    "ADMIN_IDS",
    "DISPLAY_CURRENCY",
    "EXCHANGE_RATES",
    "GETSMS_API_KEY",
    "GETSMS_BASE_URL",
    "GETSMS_CURRENCY",
    "SMSBUS_TOKEN",
    "SMSBUS_BASE_URL",
    "BEESMS_TOKEN",
    "BEESMS_BASE_URL",
    "SMSONLINE_API_KEY",
    "SMSONLINE_BASE_URL",
    "SMSONLINE_CURRENCY",
)


def stack_settings(
    suite: EmulatorSuite,
    database: Path,
    only: tuple[str, ...] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings for the emulators; nothing is read from the process environment or ``.env``."""
    values: dict[str, Any] = {name.lower(): value for name, value in suite.env(only).items()}
    # Test users (ids 1..99999) are operators, so they may buy, unless a test says otherwise.
    values.update(
        bot_token=TOKEN,
        database_path=database,
        provider_timeout=2.0,
        admin_ids=frozenset(range(1, 100_000)),
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


class Stack:
    """Emulators + the app + a fake Bot API; ``client()`` makes a Telegram user."""

    def __init__(
        self, suite: EmulatorSuite, app: App, api: FakeBotApi, slept: list[float]
    ) -> None:
        self.suite = suite
        self.app = app
        self.api = api
        self.clock: FakeClock = suite.clock
        self.slept = slept  # every wait the bot asked for (retries, RetryAfter), not waited

    def client(
        self, user_id: int = 1001, *, language_code: str | None = "en", **kwargs: Any
    ) -> BotClient:
        return BotClient(
            self.app.dp, self.app.bot, user_id=user_id, language_code=language_code, **kwargs
        )


@asynccontextmanager
async def running_stack(
    tmp_path: Path,
    only: tuple[str, ...] | None = None,
    *,
    postgres: bool | None = None,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """``postgres``: on a new schema of the test PostgreSQL instead of a SQLite file (None:
    when ``TEST_STACK_DATABASE=postgresql``, a way to run any end-to-end test on it)."""
    if postgres is None:
        postgres = os.environ.get("TEST_STACK_DATABASE") == "postgresql"
    suite = EmulatorSuite()
    await suite.start()
    api = FakeBotApi(clock=suite.clock)
    slept: list[float] = []
    resources = AsyncExitStack()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    try:
        if postgres and "database_url" not in overrides:
            overrides["database_url"] = await resources.enter_async_context(
                fresh_postgres_schema()
            )
        settings = stack_settings(suite, tmp_path / "bot.sqlite3", only, **overrides)
        app = await create_app(
            settings,
            session=api,
            clock=suite.clock,
            retry=RetryPolicy(attempts=2, initial_delay=0.001, max_delay=0.01),
            sleep=sleep,
        )
        try:
            yield Stack(suite, app, api, slept)
        finally:
            await app.close()
    finally:
        await suite.stop()
        await resources.aclose()
