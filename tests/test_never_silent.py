"""Every message gets an answer with a way forward, even one no feature takes (issue #11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack import running_stack
from tests.test_flow_orders import GETSMS_ACTIVATION, buy, deliver_sms

MENU = ["📲 Buy a number", "📋 My numbers", "🌐 Language", "⚙️ Settings", "❓ Help"]


@pytest.mark.parametrize(
    ("sent", "language", "reply"),
    [  # free text outside a step is a search: tests/test_search_anywhere.py
        ("/frobnicate", "en", "I don't know that command."),
        ("/foo", "ru", "Я не знаю такой команды."),
    ],
)
async def test_an_unknown_message_is_answered_with_the_menu(
    tmp_path: Path, sent: str, language: str, reply: str
) -> None:
    async with running_stack(tmp_path) as stack:
        user = stack.client(language_code=language)
        await user.send(sent)
        answer = user.last_message()
        assert (answer.text or "").startswith(reply)
        if language == "en":
            assert user.buttons(answer) == MENU
        else:
            assert len(user.buttons(answer)) == len(MENU)


async def test_check_sms_without_news_says_so_with_the_time(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        user = stack.client()
        card, order = await buy(stack, user, GETSMS_ACTIVATION)
        stack.clock.advance(minutes=2)

        answer = await user.click(card, "🔄 Check SMS")
        assert answer is not None and answer.text == (
            "No new SMS yet (checked 1 Jan 2026, 12:02 UTC)."
        )

        await deliver_sms(stack.suite, "getsms", order.provider_order_id, "424242")
        answer = await user.click(card, "🔄 Check SMS")
        assert answer is not None and not answer.text  # the code is on the card itself


async def test_support_paysupport_and_terms(tmp_path: Path) -> None:
    async with running_stack(tmp_path, support_contact="@numbers_help") as stack:
        user = stack.client()
        for command in ("/support", "/paysupport"):
            await user.send(command)
            assert user.last_message().text == (
                "Questions, problems or payments: write to @numbers_help."
            )
        await user.send("/terms")
        terms = user.last_message().text or ""
        assert terms.startswith("Terms")
        assert "an activation that received no SMS is refunded in full" in terms
        await user.send("/help")
        assert "/support" in (user.last_message().text or "")


async def test_the_operators_own_terms_are_shown_as_written(tmp_path: Path) -> None:
    async with running_stack(tmp_path, terms_text="No refunds <ever>.") as stack:
        user = stack.client(language_code="ru")
        await user.send("/terms")
        assert user.last_message().text == "No refunds <ever>."
        await user.send("/support")
        assert (user.last_message().text or "").startswith("Оператор")
