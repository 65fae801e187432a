"""/broadcast (issue #11): preview, confirm, progress, Telegram's limits, resumable."""

from __future__ import annotations

import asyncio
import html
from pathlib import Path

from aiogram.methods import EditMessageText, SendMessage

from bot.app import create_app
from bot.providers.http import RetryPolicy
from storage.broadcasts import BroadcastsRepo, DeliveryStatus
from tests.fakes.telegram import BotClient, FakeBotApi
from tests.stack import running_stack, stack_settings

ADMIN = 1001
USERS = (2001, 2002, 2003, 2004, 2005)


def got(api: FakeBotApi, user_id: int, text: str) -> int:
    """How many times Telegram accepted ``text`` (as the user reads it) for the user."""
    markup = html.escape(text, quote=False)  # sent as Telegram HTML
    return sum(
        1
        for call in api.calls(SendMessage)
        if call.chat_id == user_id and call.error is None and call.params.get("text") == markup
    )


async def test_preview_confirm_progress_blocked_and_flood_control(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN)
        await admin.send("/start")
        for user_id in USERS:
            await stack.client(user_id).send("/start")
        stack.api.block(2002)  # blocked the bot since: Telegram says 403
        await stack.app.dp["users"].mark_blocked_bot(2005)  # known to have blocked it: skipped

        await admin.send("/broadcast")
        assert (admin.last_message().text or "").startswith("Write the message after")
        await admin.send("/broadcast Big <news> & more")
        preview, question = admin.messages()[-2:]
        assert preview.text == "Big <news> & more"  # exactly what the users will get
        assert question.text == "📣 Send the message above to 5 users?"  # 2005 is skipped
        assert admin.buttons(question) == ["✅ Send", "✖️ Cancel"]
        assert got(stack.api, 2001, "Big <news> & more") == 0  # nothing before the confirm

        stack.api.retry_after_next(SendMessage, 7)  # flood control on the first user
        stack.slept.clear()
        await admin.click(question, "✅ Send")
        await stack.app.broadcasts.join()

        text = "Big <news> & more"
        assert [got(stack.api, u, text) for u in USERS] == [1, 0, 1, 1, 0]
        assert 7 in stack.slept  # the RetryAfter was waited out, then the same user tried again
        users = stack.app.dp["users"]
        assert (await users.get(2002)).blocked_bot  # marked, so later messages skip them
        done = admin.api.message(admin.chat.id, question.message_id)
        assert done is not None
        assert (done.text or "") == (
            "📣 Broadcast finished: delivered to 4 of 5\nBlocked the bot 1 · failed 0"
        )  # the admin is a user too
        assert admin.buttons(done) == ["« Admin"]
        progress = [
            c.method.text
            for c in stack.api.calls(EditMessageText)
            if isinstance(c.method, EditMessageText) and c.method.message_id == question.message_id
        ]
        assert progress[0] == "📣 Sending… 0/5\nDelivered 0 · blocked the bot 0 · failed 0"

        answer = await admin.click_data(question, "bc1:1:s")  # a second tap on Send
        assert (
            answer is not None and answer.text == "This broadcast was already sent or cancelled."
        )
        assert got(stack.api, 2001, text) == 1


async def test_a_cancelled_broadcast_sends_nothing_and_is_for_admins(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN, language_code="ru")
        user = stack.client(2001)
        await user.send("/start")
        await user.send("/broadcast hi")
        assert (user.last_message().text or "") == "This command is for the bot's admins."
        await admin.send("/broadcast Привет")
        assert (admin.last_message().text or "") == "📣 Отправить сообщение выше 2 пользователям?"
        await admin.click(admin.last_message(), "✖️ Отменить")
        assert (admin.last_message().text or "") == "Рассылка отменена, ничего не отправлено."
        assert got(stack.api, 2001, "Привет") == 0
        answer = await user.click_data(user.last_message(), "bc1:1:s")  # forged by a user
        assert answer is not None and answer.text == "This command is for the bot's admins."


async def test_a_broadcast_a_restart_interrupted_goes_on_without_resending(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN)
        await admin.send("/start")
        for user_id in USERS:
            await stack.client(user_id).send("/start")
        stopped = asyncio.Event()

        async def hang(seconds: float) -> None:
            stopped.set()
            await asyncio.Event().wait()  # the process dies while waiting

        service = stack.app.broadcasts
        service._per_second, service._sleep = 1, hang  # one a second: a wait after the first
        await admin.send("/broadcast Once only")
        question = admin.last_message()
        await admin.click(question, "✅ Send")
        await asyncio.wait_for(stopped.wait(), 5)
        await stack.app.close()  # the restart: the sending task is cancelled
        before = [got(stack.api, u, "Once only") for u in (ADMIN, *USERS)]
        # The admin saw the preview, and got the broadcast (lowest id, first) before the stop.
        assert before == [2, 0, 0, 0, 0, 0]

        api = FakeBotApi(clock=stack.clock)
        again = await create_app(
            stack_settings(stack.suite, tmp_path / "bot.sqlite3", admin_ids=frozenset({ADMIN})),
            session=api,
            clock=stack.clock,
            retry=RetryPolicy(attempts=2, initial_delay=0.001, max_delay=0.01),
            sleep=lambda _s: asyncio.sleep(0),
        )
        try:
            for user_id in (ADMIN, *USERS):
                BotClient(again.dp, again.bot, user_id=user_id)  # the chats exist at Telegram
            api.add_chat(admin.chat)
            assert await again.broadcasts.resume() == [1]
            await again.broadcasts.join()
            after = [got(api, u, "Once only") for u in (ADMIN, *USERS)]
            assert after == [0, 1, 1, 1, 1, 1]  # each user once over both runs
            repo = BroadcastsRepo(again.db)
            assert (await repo.progress(1)).sent == 6
            assert await repo.status_of(1, ADMIN) is DeliveryStatus.SENT
            assert await again.broadcasts.resume() == []  # done: nothing to resume
        finally:
            await again.close()
