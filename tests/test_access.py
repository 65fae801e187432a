"""Private mode: strangers ask for access, admins approve or deny, and admins block users."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack

ADMIN = 1001
ASK = "🙋 Ask for access"


def no_provider_calls(stack: Stack) -> bool:
    return all(not server.requests for server in stack.suite.servers.values())


def text_of(user: BotClient) -> str:
    return user.last_message().text or ""


async def test_a_stranger_asks_and_an_admin_approves(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN)
        await admin.send("/start")
        stranger = stack.client(5005, first_name="Eve <x>", username="eve")
        await stranger.send("/buy")
        assert text_of(stranger).startswith("This bot is private")
        assert stranger.buttons() == [ASK, "« Menu"]

        answer = await stranger.click(stranger.last_message(), ASK)
        assert answer is not None and (answer.text or "").startswith("Your request was sent")
        request = admin.last_message()
        assert (request.text or "") == "🙋 Eve <x> @eve (id 5005) asks for access."
        assert admin.buttons(request) == ["✅ Approve", "🚫 Deny"]

        await stranger.send("/buy")
        again = await stranger.click(stranger.last_message(), ASK)
        assert again is not None and (again.text or "") == "Your request is waiting for an answer."
        assert len([m for m in admin.messages() if "asks for access" in (m.text or "")]) == 1

        await admin.click(request, "✅ Approve")
        decided = admin.api.message(admin.chat.id, request.message_id)  # the request, edited
        assert decided is not None and admin.buttons(decided) == ["👤 User card", "« Admin"]
        assert (decided.text or "") == "✅ Approved Eve <x> @eve (id 5005), by User1001."
        assert text_of(stranger) == "✅ Your access was approved. You can get numbers now."
        assert stranger.buttons() == ["📲 Buy a number", "« Menu"]
        assert no_provider_calls(stack)

        await stranger.click(stranger.last_message(), "📲 Buy a number")
        assert "Telegram" in stranger.buttons()  # now the catalog is fetched for them


async def test_a_denied_stranger_stays_out_and_is_told(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN, language_code="ru")
        await admin.send("/start")
        stranger = stack.client(6006)
        await stranger.send("/buy")
        await stranger.click(stranger.last_message(), ASK)
        request = admin.last_message()
        assert "просит доступ" in (request.text or "")  # the admin is asked in their language
        await admin.click(request, "🚫 Отклонить")
        assert text_of(stranger) == "Sorry, the owner declined your request."

        await stranger.send("/buy")
        answer = await stranger.click(stranger.last_message(), ASK)
        assert answer is not None and (answer.text or "").startswith("Sorry, the owner declined")
        await stranger.send("/buy")
        assert text_of(stranger).startswith("This bot is private")
        assert no_provider_calls(stack)


async def test_admin_tools_are_refused_to_others(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN)
        await admin.send("/start")
        stranger = stack.client(7007)
        await stranger.send("/start")
        forged = await stranger.click_data(stranger.last_message(), "ad1:7007:1")
        assert forged is not None and forged.text == "This command is for the bot's admins."
        await stranger.send("/block 1001")
        assert text_of(stranger) == "This command is for the bot's admins."
        await stranger.send("/buy")
        assert text_of(stranger).startswith("This bot is private")  # still not approved


async def test_a_blocked_user_is_refused_everywhere_until_unblocked(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN, 8008})) as stack:
        admin = stack.client(ADMIN)
        user = stack.client(8008)  # an operator too: blocking does not apply to admins
        other = stack.client(9009)
        for client in (admin, user, other):
            await client.send("/start")
        menu = other.last_message()

        await admin.send("/block 9009")
        assert text_of(admin) == "User 9009 is blocked."
        await other.send("/start")
        assert text_of(other) == "Sorry, this bot is not available to you."
        refused = await other.click(menu, "🌐 Language")
        assert refused is not None and refused.show_alert
        await other.send("/numbers")
        assert text_of(other) == "Sorry, this bot is not available to you."

        await admin.send("/block 8008")
        await user.send("/buy")
        assert "Telegram" in user.buttons()  # admins cannot be blocked

        await admin.send("/block nobody")
        assert text_of(admin).startswith("No such user")
        await admin.send("/unblock 9009")
        await other.send("/start")
        assert text_of(other).startswith("Hi,")
