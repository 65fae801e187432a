"""Poison messages: no SMS, however odd, stalls an order's delivery; nothing is retried forever.

Stories against the emulators and the fake Bot API (which refuses what Telegram refuses: texts
over 4,096 characters, markup it cannot parse), with the watcher's rounds run by hand.
"""

from __future__ import annotations

from pathlib import Path

from aiogram.methods import SendMessage

from storage.messages import MessagesRepo
from storage.models import StoredMessage, StoredOrder
from tests.fakes.telegram import MAX_TEXT, BotClient
from tests.stack import Stack, running_stack
from tests.test_delivery import bought

PARSE_ERROR = 'Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 9'


def messages(stack: Stack) -> MessagesRepo:
    repo: MessagesRepo = stack.app.dp["messages_repo"]
    return repo


async def stored(stack: Stack, order: StoredOrder) -> list[StoredMessage]:
    return await messages(stack).list_for_order(order.id)


def attempts_to(stack: Stack, user: BotClient) -> int:
    """sendMessage calls to the user's chat, accepted or not."""
    return len([c for c in stack.api.calls(SendMessage) if c.chat_id == user.chat.id])


def pushes(stack: Stack, user: BotClient) -> list[SendMessage]:
    """SMS pushes Telegram accepted for the user's chat (failed attempts left out)."""
    return [
        c.method
        for c in stack.api.calls(SendMessage)
        if c.chat_id == user.chat.id
        and c.error is None
        and isinstance(c.method, SendMessage)
        and c.method.text.startswith("📩")
    ]


def shown_pushes(user: BotClient) -> list[str]:
    """The pushes as the user reads them (rendered by the fake Bot API)."""
    return [m.text for m in user.messages() if m.text and m.text.startswith("📩")]


def long_sms(code: str, length: int = 5000) -> str:
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    text = f"Your code is {code}. " + words * (length // len(words) + 1)
    return text[:length]


async def test_a_5000_character_sms_then_a_normal_one_both_reach_the_user(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
    text = long_sms("482913")
    stack.suite.getsms.inject_sms(order.provider_order_id, text, code="482913")
    stack.suite.getsms.inject_sms(order.provider_order_id, "Your code is 777111", code="777111")
    user.reset()
    await stack.app.watcher.tick()

    first, second = (call.text for call in pushes(stack, user))
    shown = shown_pushes(user)
    assert all(len(s.encode("utf-16-le")) // 2 <= MAX_TEXT for s in shown)
    assert shown[0].index("482913") < shown[0].index("lorem")  # the code first
    assert "Code: 482913" in shown[0] and "5000 characters in all" in shown[0]
    assert text[:1000] in first  # most of the text itself is there
    assert "777111" in second
    assert all(m.delivered_at is not None and m.attempts == 0 for m in await stored(stack, order))

    # The number's card holds every SMS too, within the limit, the code first.
    push = user.messages()[-2]
    await user.click(push, "📱 Open the number")
    card_text = user.last_message().text or ""
    assert "482913" in card_text and "777111" in card_text and "lorem" in card_text


async def test_a_card_with_five_huge_sms_stays_within_the_limit(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
    for n in range(6):
        sms = long_sms(f"10000{n}", 4000) + " 😀" * 50  # astral characters count twice
        stack.suite.getsms.inject_sms(order.provider_order_id, sms, code=f"10000{n}")
    await stack.app.watcher.tick()
    assert len(pushes(stack, user)) == 6
    await user.click(user.last_message(), "📱 Open the number")
    assert "100005" in (user.last_message().text or "")


async def test_markup_telegram_cannot_parse_is_sent_again_as_plain_text(stack: Stack) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
    stack.suite.getsms.inject_sms(order.provider_order_id, "code <x> 55555", code="55555")
    stack.api.fail_next(SendMessage, 400, PARSE_ERROR)
    user.reset()
    await stack.app.watcher.tick()

    refused, accepted = [
        c
        for c in stack.api.calls(SendMessage)
        if c.chat_id == user.chat.id and "📩" in str(c.params)
    ]
    assert refused.error is not None and accepted.error is None
    assert "parse_mode" in refused.params and "parse_mode" not in accepted.params
    shown = user.last_message()
    assert "Code: 55555" in (shown.text or "") and "code <x> 55555" in (shown.text or "")
    assert user.copy_texts(shown) == ["55555"]  # the buttons came along
    [message] = await stored(stack, order)
    assert message.delivered_at is not None and message.attempts == 1


async def test_a_message_refused_three_times_is_marked_failed_and_the_next_goes_out(
    tmp_path: Path,
) -> None:
    admin_id = 1001
    async with running_stack(tmp_path, admin_ids=frozenset({admin_id})) as stack:
        user = stack.client(admin_id)
        order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
        stack.suite.getsms.inject_sms(order.provider_order_id, "first 11111", code="11111")
        stack.suite.getsms.inject_sms(order.provider_order_id, "second 22222", code="22222")
        stack.api.fail_next(SendMessage, 400, "Bad Request: message is too long", times=3)
        user.reset()
        await stack.app.watcher.tick()

        assert ["22222" in c.text for c in pushes(stack, user)] == [True]
        first, second = await stored(stack, order)
        assert first.failed_at is not None and first.attempts == 3 and first.delivered_at is None
        assert first.failure == "Bad Request: message is too long"
        assert second.delivered_at is not None
        [failed] = await messages(stack).failed()
        assert (failed.message.id, failed.user_id) == (first.id, user.user.id)
        assert await messages(stack).count_failed() == 1

        sent = attempts_to(stack, user)
        for _ in range(3):  # never tried again, not after a restart of the loop either
            await stack.app.watcher.tick()
        assert attempts_to(stack, user) == sent

        user.reset()
        await user.send("/admin")
        panel = user.calls(SendMessage)[0].text
        assert "SMS that Telegram refused to deliver: 1" in panel


async def test_a_429_on_one_chat_does_not_delay_another_chats_sms(stack: Stack) -> None:
    alice, bob = stack.client(1001), stack.client(1002)
    orders = [
        await bought(stack, alice, "getsms", "tg", "RU", hours=24),
        await bought(stack, bob, "getsms", "tg", "RU", hours=24),
    ]
    for order, code in zip(orders, ("31313", "42424"), strict=True):
        stack.suite.getsms.inject_sms(order.provider_order_id, f"code {code}", code=code)
    alice.reset()
    bob.reset()
    stack.api.retry_after_next(SendMessage, 30)
    await stack.app.watcher.tick()

    limited = next(c for c in stack.api.calls(SendMessage) if c.error is not None)
    waiting, other = (alice, bob) if limited.chat_id == alice.chat.id else (bob, alice)
    assert len(pushes(stack, other)) == 1  # in the same round, without waiting 30 s first
    assert 30 not in stack.slept  # nobody slept on Telegram's behalf
    assert pushes(stack, waiting) == []

    tries = attempts_to(stack, waiting)
    stack.clock.advance(seconds=10)
    await stack.app.watcher.tick()
    assert attempts_to(stack, waiting) == tries  # the pause Telegram asked for is kept
    stack.clock.advance(seconds=21)
    await stack.app.watcher.tick()
    await stack.app.watcher.tick()
    assert len(pushes(stack, waiting)) == 1 and len(pushes(stack, other)) == 1


async def test_telegram_down_or_an_html_error_page_keeps_the_sms_for_later(
    stack: Stack,
) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
    stack.suite.getsms.inject_sms(order.provider_order_id, "code 60606", code="60606")
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    stack.api.fail_next_raw(SendMessage, 502, page)
    user.reset()
    await stack.app.watcher.tick()  # no traceback: the round goes on
    [message] = await stored(stack, order)
    assert message.delivered_at is None and message.attempts == 0 and message.failed_at is None

    stack.clock.advance(seconds=6)
    stack.api.fail_next(SendMessage, 500, "Internal Server Error")
    await stack.app.watcher.tick()
    stack.clock.advance(seconds=6)
    await stack.app.watcher.tick()
    await stack.app.watcher.tick()
    assert ["60606" in c.text for c in pushes(stack, user)] == [True]
    [message] = await stored(stack, order)
    assert message.attempts == 0 and message.delivered_at is not None


async def test_a_restart_mid_way_repeats_nothing_that_was_delivered_or_given_up(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path) as stack:
        user = stack.client()
        order = await bought(stack, user, "getsms", "tg", "RU", hours=24)
        emulator = stack.suite.getsms
        emulator.inject_sms(order.provider_order_id, "poison 10101", code="10101")
        emulator.inject_sms(order.provider_order_id, "fine 20202", code="20202")
        stack.api.fail_next(SendMessage, 400, "Bad Request: message is too long", times=3)
        await stack.app.watcher.tick()  # the poison one given up, the fine one delivered
        emulator.inject_sms(order.provider_order_id, "later 30303", code="30303")
        stack.api.retry_after_next(SendMessage, 60)
        await stack.app.watcher.tick()  # stored, Telegram asks to wait: the bot stops here
        assert [m.delivered_at is not None for m in await stored(stack, order)] == [
            False,
            True,
            False,
        ]
    async with running_stack(tmp_path) as again:
        user = again.client()
        await again.app.watcher.tick()
        await again.app.watcher.tick()
        assert ["30303" in c.text for c in pushes(again, user)] == [True]
        assert attempts_to(again, user) == 1
