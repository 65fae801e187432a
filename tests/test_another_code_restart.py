"""Get-SMS "Another code" keeps asking after a restart: the adapter's state lives with the
order (its meta), not in the process."""

from __future__ import annotations

from pathlib import Path

from aiogram.methods import SendMessage

from bot.app import create_app
from bot.providers.http import RetryPolicy
from tests.fakes.telegram import FakeBotApi
from tests.stack import running_stack, stack_settings
from tests.test_flow_orders import GETSMS_ACTIVATION, buy, deliver_sms


async def test_another_code_survives_a_restart(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        user = stack.client()
        card, order = await buy(stack, user, GETSMS_ACTIVATION)
        await deliver_sms(stack.suite, "getsms", order.provider_order_id, "11111")
        await stack.app.watcher.tick()
        await user.click(card, "🔄 Check SMS")
        await user.click(user.last_message(), "➕ Another code")
        await stack.app.close()  # the bot stops; the provider goes on

        await deliver_sms(stack.suite, "getsms", order.provider_order_id, "22222")
        api = FakeBotApi(clock=stack.clock)
        api.add_chat(user.chat)
        settings = stack_settings(stack.suite, tmp_path / "bot.sqlite3")
        again = await create_app(
            settings,
            session=api,
            clock=stack.clock,
            retry=RetryPolicy(attempts=2, initial_delay=0.001, max_delay=0.01),
        )
        try:
            await again.watcher.tick()
        finally:
            await again.close()
        pushed = [
            c.params.get("text", "")
            for c in api.calls(SendMessage)
            if "22222" in str(c.params.get("text", ""))
        ]
        assert pushed, "the second code was not pushed after the restart"
