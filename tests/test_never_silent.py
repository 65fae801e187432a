"""Every message gets an answer with a way forward, even one no feature takes (issue #11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack import running_stack

MENU = ["📲 Buy a number", "📋 My numbers", "🌐 Language", "❓ Help"]


@pytest.mark.parametrize(
    ("sent", "language", "reply"),
    [
        ("hello there", "en", "I didn't get that."),
        ("/frobnicate", "en", "I don't know that command."),
        ("привет", "ru", "Я не понял."),
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
