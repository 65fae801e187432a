"""Operators (issue #11): users' names kept, /user @name, /users with paging and search, the
/admin panel's totals, profit and Russian plurals, and the admin-only command menu."""

from __future__ import annotations

from pathlib import Path

from aiogram.methods import SetMyCommands

from bot.app import set_commands
from tests.stack import running_stack

ADMIN = 1001


async def test_user_by_username_shows_orders_and_wallet_history(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN)
        anna = stack.client(5005, first_name="Anna <b>", username="Anna_K")
        await anna.send("/start")
        assert (await stack.app.dp["users"].get(5005)).username == "Anna_K"
        renamed = stack.client(5005, first_name="Anna", username="anna_new")
        await renamed.send("/start")  # Telegram reports a new name: it is written

        await admin.send("/credit 5005 3 welcome")
        await admin.send("/user @ANNA_NEW")  # any case, with the @
        card = admin.last_message().text or ""
        assert card.splitlines()[0] == "Anna @anna_new · id 5005"
        assert "Wallet history" in card and "+$3.00 · 💰 Added by the operator" in card
        assert "Latest orders" not in card  # none yet

        await admin.send("/user @nobody_here")
        assert (admin.last_message().text or "").startswith("No such user: @nobody_here")
        await admin.send("/user")
        assert (admin.last_message().text or "") == "Usage: /user USER_ID or /user @username"


async def test_users_are_listed_ten_a_page_and_searched(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN)
        await admin.send("/start")
        for n in range(12):
            stack.clock.advance(seconds=1)  # newest first: user 2011 is on top
            await stack.client(2000 + n, first_name=f"Guest{n}", username=f"g{n}").send("/start")
        await stack.client(3000, first_name="Иван Петров").send("/start")

        await admin.send("/users")
        first = admin.last_message()
        assert (first.text or "").startswith("Users: 14 users")
        assert admin.buttons(first)[:2] == ["Иван Петров", "Guest11 @g11"]
        assert admin.buttons(first)[-2:] == ["▶", "« Admin"]
        await admin.click(first, "▶")
        second = admin.last_message()
        assert second.message_id == first.message_id  # the list is edited in place
        assert admin.buttons(second) == [
            "Guest2 @g2",
            "Guest1 @g1",
            "Guest0 @g0",
            "User1001",
            "◀",
            "« Admin",
        ]

        await admin.send("/users иван")  # Cyrillic, another case than stored
        found = admin.last_message()
        assert (found.text or "").startswith("Users matching «иван»: 1 user")
        await admin.click(found, "Иван Петров")
        assert (admin.last_message().text or "").startswith("Иван Петров · id 3000")
        await admin.send("/users 2003")
        assert admin.buttons()[0] == "Guest3 @g3"
        await admin.send("/users nobody")
        assert (admin.last_message().text or "").startswith("No users match «nobody»")
        assert admin.buttons() == ["« Admin"]

        stranger = stack.client(2001)
        await stranger.send("/users")
        assert (stranger.last_message().text or "") == "This command is for the bot's admins."


async def test_admin_panel_in_russian_has_plurals_totals_and_profit(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN, language_code="ru")
        for n in range(20):
            await stack.client(4000 + n).send("/start")
        await admin.send("/admin")  # 21 users: "пользователь"
        panel = admin.last_message().text or ""
        assert "Пользователи: 21 пользователь ·" in panel
        assert "Заказы: 0 заказов ·" in panel
        assert "Прибыль: —" in panel
        await stack.client(4100).send("/start")
        await admin.click(admin.last_message(), "🔄 Обновить")
        assert "Пользователи: 22 пользователя ·" in (admin.last_message().text or "")

        await admin.send("/buy")
        await admin.click(admin.last_message(), "Telegram")
        await admin.click(admin.last_message(), "🇷🇺 Россия")
        await admin.click(admin.last_message(), lambda b: "Get-SMS · активация" in b.text)
        await admin.click(admin.last_message(), "✅ Купить")
        for n in range(3):
            await stack.client(4200 + n).send("/start")  # 25 users
        await admin.send("/admin")
        panel = admin.last_message().text or ""
        assert "Пользователи: 25 пользователей ·" in panel
        assert "Заказы: 1 заказ ·" in panel
        assert "Потрачено у поставщиков: 0,50\xa0$" in panel
        assert "Прибыль: -0,50\xa0$" in panel  # admins do not pay: all spend, no revenue


async def test_admin_commands_are_in_the_menu_of_admins_only(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN, 1002})) as stack:
        await stack.client(ADMIN).send("/start")  # 1002 never started the bot
        await set_commands(stack.app.bot, stack.app.i18n, admins=frozenset({ADMIN, 1002}))

        def menu(scope: str, chat: int | None, language: str | None) -> list[str] | None:
            for call in stack.api.calls(SetMyCommands):
                method = call.method
                assert isinstance(method, SetMyCommands) and method.scope is not None
                where = (method.scope.type, getattr(method.scope, "chat_id", None))
                if where == (scope, chat) and method.language_code == language:
                    if call.error is not None:
                        return None
                    return [f"{c.command}: {c.description}" for c in method.commands]
            raise AssertionError(f"no setMyCommands for {scope} {chat} {language}")

        users_en = menu("default", None, None)
        assert users_en is not None and not any(c.startswith("admin:") for c in users_en)
        admin_en = menu("chat", ADMIN, None)
        assert admin_en is not None and admin_en[: len(users_en)] == users_en
        assert {"admin: Admin panel", "broadcast: Send a message to every user"} <= set(admin_en)
        admin_ru = menu("chat", ADMIN, "ru")
        assert admin_ru is not None and "admin: Панель администратора" in admin_ru
        # An admin who never started the bot: Telegram refuses the scope; skipped, logged.
        assert menu("chat", 1002, None) is None and menu("chat", 1002, "ru") is None
