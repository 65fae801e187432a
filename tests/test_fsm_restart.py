"""A step waiting for typed input survives a restart: the FSM lives in SQLite (issue #11)."""

from __future__ import annotations

from pathlib import Path

from bot.app import create_app
from bot.providers.http import RetryPolicy
from tests.fakes.telegram import BotClient, FakeBotApi
from tests.stack import running_stack, stack_settings


async def test_a_country_search_typed_after_a_restart_still_works(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        user = stack.client()
        await user.send("/buy")
        await user.click(user.last_message(), "Telegram")  # now waiting for a country name
        await stack.app.close()  # the bot restarts

        api = FakeBotApi(clock=stack.clock)
        again = await create_app(
            stack_settings(stack.suite, tmp_path / "bot.sqlite3"),
            session=api,
            clock=stack.clock,
            retry=RetryPolicy(attempts=2, initial_delay=0.001, max_delay=0.01),
        )
        try:
            same = BotClient(again.dp, again.bot, user_id=user.user.id)
            await same.send("united")
            assert "🇺🇸 United States" in same.buttons()
            assert "Telegram" in (same.last_message().text or "")
        finally:
            await again.close()
