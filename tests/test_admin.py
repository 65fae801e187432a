"""/admin and low-balance alerts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from aiogram.methods import SendMessage

from tests.stack import running_stack

pytestmark = pytest.mark.both_databases

ADMIN = 1001


async def test_admin_panel_is_for_admins_and_shows_balances_figures_requests(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN)
        stranger = stack.client(5005)
        await stranger.send("/admin")
        assert (stranger.last_message().text or "") == "This command is for the bot's admins."
        await stranger.send("/buy")
        await stranger.click(stranger.last_message(), "🙋 Ask for access")
        assert all(not s.requests for s in stack.suite.servers.values())

        await admin.send("/buy")
        await admin.click(admin.last_message(), "Telegram")
        await admin.click(admin.last_message(), "🇷🇺 Russia")
        await admin.click(admin.last_message(), lambda b: "Get-SMS · activation" in b.text)
        await admin.click(admin.last_message(), "✅ Buy")

        admin.reset()
        await admin.send("/admin")
        [panel] = [call.text for call in admin.calls(SendMessage)]
        assert "• Get-SMS: $99.50" in panel  # 100 minus the activation just bought
        assert "• BEE-SMS: $1,000.00" in panel  # read from /v1/user/balance (cents)
        assert "Users</b>: 2 users · approved 0 · asking 1 · blocked 0" in panel
        assert "Orders</b>: 1 order · active 1 · got a code 0%" in panel
        assert "Spent at providers: $0.50" in panel
        assert admin.buttons() == [
            "🔄 Refresh",
            "🙋 Requests (1)",
            "👥 Users",
            "🏭 Providers",
            "📊 Delivery",
        ]

        await admin.click(admin.last_message(), "🏭 Providers")
        assert "1 order, 0 with a code, spent $0.50" in (admin.last_message().text or "")
        await admin.click(admin.last_message(), "« Admin")
        await admin.click(admin.last_message(), "🙋 Requests (1)")
        request = admin.last_message()
        assert "5005" in (request.text or "") and admin.buttons() == ["✅ Approve", "🚫 Deny"]


async def test_a_low_provider_balance_alerts_the_admins_once_per_crossing(
    tmp_path: Path,
) -> None:
    thresholds = {"getsms": Decimal(50)}
    async with running_stack(
        tmp_path, admin_ids=frozenset({ADMIN, 1002}), low_balance_alert=thresholds
    ) as stack:
        admins = [stack.client(ADMIN), stack.client(1002, language_code="ru")]
        for admin in admins:
            await admin.send("/start")
            admin.reset()

        def alerts() -> list[str]:
            return [c.text for a in admins for c in a.calls(SendMessage) if "⚠️" in c.text]

        await stack.app.watcher.tick()
        assert alerts() == []
        stack.suite.getsms.set_balance(10)
        await stack.app.watcher.tick()  # checked at most every 10 minutes
        assert alerts() == []
        stack.clock.advance(minutes=11)
        await stack.app.watcher.tick()
        assert alerts() == [
            "⚠️ Get-SMS: the balance is down to $10.00. Top it up at the provider.",
            "⚠️ Get-SMS: баланс снизился до 10,00\xa0$. Пополните его у поставщика.",
        ]
        stack.clock.advance(minutes=11)
        await stack.app.watcher.tick()
        assert len(alerts()) == 2  # still low: no repeat

        stack.suite.getsms.set_balance(100)
        stack.clock.advance(minutes=11)
        await stack.app.watcher.tick()
        stack.suite.getsms.set_balance(5)
        stack.clock.advance(minutes=11)
        await stack.app.watcher.tick()
        assert len(alerts()) == 4  # a new crossing


async def test_a_users_card_approves_blocks_and_shows_the_wallet(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN)
        user = stack.client(5005)
        for client in (admin, user):
            await client.send("/start")
        await user.send("/user 5005")
        assert (user.last_message().text or "") == "This command is for the bot's admins."

        await admin.send("/credit 5005 3")
        await admin.send("/user 5005")
        card = admin.last_message()
        assert (card.text or "").splitlines()[:4] == [
            "User5005 · id 5005",
            "Access: not asked",
            "Wallet: $3.00",
            "Orders: 0",
        ]
        assert admin.buttons(card) == ["✅ Approve", "🚫 Deny", "⛔ Block", "« Users"]
        await admin.click(card, "⛔ Block")
        assert "\n⛔ Blocked\n" in (admin.last_message().text or "")
        await user.send("/start")
        assert (user.last_message().text or "") == "Sorry, this bot is not available to you."
        await admin.click(admin.last_message(), "🔓 Unblock")
        await admin.send("/user 5005")
        await admin.click(admin.last_message(), "✅ Approve")
        await user.send("/buy")
        assert "Telegram" in user.buttons()

        await admin.send("/user 42")
        assert (admin.last_message().text or "").startswith("No such user")
