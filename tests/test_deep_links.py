"""Deep links to offers (issue #11): ``t.me/<bot>?start=tg-us`` opens the offers for Telegram
in the US; any other payload is hostile input and gets the menu with a short note, without a
provider being asked; ``/link`` makes the links, for admins only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.methods import GetMe

from tests.stack import Stack, running_stack
from tests.test_flow_navigation import MENU

STRANGER = 500_001  # not an admin (the stack makes ids 1..99999 admins)
LINK = "https://t.me/numbers_test_bot?start=tg-us"
NOTE = "That link does not open anything here. Here is the menu:"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as running:
        yield running


def provider_requests(stack: Stack) -> int:
    suite = stack.suite
    return sum(
        len(emulator.requests)
        for emulator in (suite.getsms, suite.smsbus, suite.beesms, suite.smsonline)
    )


@pytest.mark.parametrize(
    ("payload", "heading"),
    [("tg-us", "Telegram in 🇺🇸 United States"), ("wa-RU", "WhatsApp in 🇷🇺 Russia")],
)
async def test_a_deep_link_opens_the_offers(stack: Stack, payload: str, heading: str) -> None:
    user = stack.client()
    await user.send(f"/start {payload}")
    screen = user.last_message()
    assert (screen.text or "").startswith(heading), screen.text
    assert len(user.messages()) == 1  # the loading message became the offers
    assert user.buttons(screen)[-2:] == ["🔄 Refresh", "« Back"]


async def test_a_deep_link_in_russian(stack: Stack) -> None:
    user = stack.client(language_code="ru")
    await user.send("/start tg-us")
    assert (user.last_message().text or "").startswith("Telegram, 🇺🇸 Соединенные Штаты: ")


@pytest.mark.parametrize(
    "payload",
    [
        "tg-usa",
        "tg-u",
        "TG-us",
        "tg_us",
        "tg-us-ru",
        "-us",
        "тг-us",
        "tg-u$",
        "../../etc-us",
        "x" * 62 + "-us",  # 65 characters
        "tg-us\n",
        "tg-us<b>",
        "' OR 1=1 --",
    ],
)
async def test_a_forged_payload_gets_the_menu_and_asks_no_provider(
    stack: Stack, payload: str
) -> None:
    user = stack.client()
    before = provider_requests(stack)
    await user.send(f"/start {payload}")
    answer = user.last_message()
    assert answer.text == NOTE
    assert user.buttons(answer) == MENU
    assert provider_requests(stack) == before


@pytest.mark.parametrize("payload", ["tg-zz", "nosuchservice-us"])
async def test_a_pair_nobody_sells_gets_the_menu(stack: Stack, payload: str) -> None:
    user = stack.client(language_code="ru")
    await user.send(f"/start {payload}")
    answer = user.last_message()
    assert answer.text == "Эта ссылка здесь ничего не открывает. Вот меню:"
    assert len(user.buttons(answer)) == len(MENU)


async def test_the_open_chat_payload_is_just_the_menu(stack: Stack) -> None:
    user = stack.client()
    await user.send("/start menu")
    assert (user.last_message().text or "").startswith("Hi, ")


async def test_in_a_private_bot_a_stranger_is_offered_to_ask_for_access(stack: Stack) -> None:
    await stack.client(1001).send("/start tg-zz")  # loads the catalog (sold nowhere)
    user = stack.client(STRANGER)
    before = provider_requests(stack)
    await user.send("/start tg-us")
    answer = user.last_message()
    assert (answer.text or "").startswith("This bot is private")
    assert user.buttons(answer)[0] == "🙋 Ask for access"
    assert provider_requests(stack) == before  # no offers asked on a stranger's behalf


async def test_an_admin_makes_a_link_and_it_opens_the_offers(stack: Stack) -> None:
    admin = stack.client(1001)
    await admin.send("/link tg us")
    made = admin.last_message()
    assert made.text == f"Link to the offers for Telegram in 🇺🇸 United States:\n{LINK}"
    await admin.send("/link tg US")
    assert (admin.last_message().text or "").endswith(LINK)
    assert len(stack.api.calls(GetMe)) <= 1  # the bot's username is asked once

    user = stack.client(1002)
    await user.send("/start " + LINK.rsplit("=", 1)[1])
    assert (user.last_message().text or "").startswith("Telegram in 🇺🇸 United States")


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        ("", "Usage: /link SERVICE COUNTRY, e.g. /link tg us"),
        ("tg", "Usage: /link SERVICE COUNTRY, e.g. /link tg us"),
        ("tg us ru", "Usage: /link SERVICE COUNTRY, e.g. /link tg us"),
        ("tg zz", "Nobody sells tg in zz here: no link made."),
        ("<b>x</b> us", "Nobody sells <b>x</b> in us here: no link made."),
    ],
)
async def test_link_checks_what_it_is_given(stack: Stack, args: str, reply: str) -> None:
    admin = stack.client(1001)
    await admin.send(f"/link {args}".strip())
    assert admin.last_message().text == reply
    assert admin.buttons() == ["« Menu"]


async def test_link_is_for_admins_only(stack: Stack) -> None:
    user = stack.client(STRANGER)
    await user.send("/link tg us")
    assert user.last_message().text == "This command is for the bot's admins."
    assert LINK not in (user.last_message().text or "")
