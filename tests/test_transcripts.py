"""Every screen has a way forward (issue #11).

A crawler walks the bot as a person would: from each entry point (a command, free text, a deep
link) it taps every kind of button on every screen it reaches, a few levels deep, and checks the
screen the user is left looking at. A screen with no button and no instruction (a command to
send, or "send/type/enter …") fails the test, which prints the transcript that led there.
Screens are told apart by their shape (digits and names blurred), so a list of 200 countries is
one screen, not 200.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiogram.types import InlineKeyboardMarkup, Message

from tests.fakes.telegram import BotClient
from tests.stack import running_stack

BUYER = 200_001  # not an admin: pays from the wallet in public mode
ADMIN = 7

ENTRY_POINTS = (
    "/start",
    "/help",
    "/buy",
    "/numbers",
    "/wallet",
    "/settings",
    "/language",
    "/support",
    "/terms",
    "/alerts",
    "/frobnicate",
    "hello there",
    "/start tg-us",
)
ADMIN_ENTRY_POINTS = ("/admin", "/users", "/user 200001", "/export", "/broadcast")

INSTRUCTION = re.compile(
    r"/[a-z_]{2,}|\b(send|type|write|enter|reply)\b|отправьте|напишите|введите|пришлите",
    re.IGNORECASE,
)
UNLIMITED = 10_000  # RATE_LIMIT_COUNT: a crawler taps faster than a person may
MAX_DEPTH = 5
MAX_SCREENS = 70
BRANCHES = 4  # per screen: the first buttons of each kind, and the last (Back, Menu, ◀ ▶)


def way_forward(message: Message) -> bool:
    if message.invoice is not None:
        return True  # Telegram draws its Pay button
    markup = message.reply_markup
    if isinstance(markup, InlineKeyboardMarkup) and any(markup.inline_keyboard):
        return True
    return INSTRUCTION.search(message.text or message.caption or "") is not None


def blur(text: str) -> str:
    return re.sub(r"[\d.,:+$€₽]+", "#", text)


def shape(message: Message, buttons: list[str]) -> str:
    head = blur((message.text or message.caption or "").split("\n", 1)[0])[:40]
    kinds = sorted({blur(b)[:3] for b in buttons})
    return head + "|" + ",".join(kinds)


@dataclass
class Crawl:
    user: BotClient
    transcript: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    dead_ends: list[str] = field(default_factory=list)

    def look(self, step: str) -> Message | None:
        """Record what the user sees after ``step``; None if the bot showed nothing at all."""
        try:
            message = self.user.last_message()
        except AssertionError:
            self.dead_ends.append(f"{step}: nothing shown")
            return None
        text = (message.text or message.caption or "").replace("\n", " ⏎ ")[:120]
        self.transcript.append(f"> {step}\n< {text} {self.user.buttons(message)}")
        if not way_forward(message):
            self.dead_ends.append(f"{step}: {text!r} has no button and no instruction")
        return message

    def choices(self, message: Message) -> list[str]:
        """Buttons worth tapping: callback buttons, a few of each kind, Back/Menu always."""
        markup = message.reply_markup
        if not isinstance(markup, InlineKeyboardMarkup):
            return []
        labels = [b.text for row in markup.inline_keyboard for b in row if b.callback_data]
        picked: list[str] = []
        kinds: dict[str, int] = {}
        for label in labels:
            kind = blur(label)[:3]
            kinds[kind] = kinds.get(kind, 0) + 1
            if kinds[kind] <= 1 or label == labels[-1]:
                picked.append(label)
        return picked[: BRANCHES + 2]

    async def replay(self, entry: str, path: list[str]) -> Message | None:
        await self.user.send(entry, allow_unhandled=True)
        for label in path:
            message = self.user.last_message()
            if label not in self.user.buttons(message):
                return None  # the state moved on (a number bought, a page changed)
            await self.user.click(message, label, allow_unhandled=True)
        return self.user.last_message()

    async def explore(self, entry: str, path: list[str]) -> None:
        if len(self.seen) >= MAX_SCREENS or len(path) >= MAX_DEPTH:
            return
        message = await self.replay(entry, path)
        if message is None:
            return
        for label in self.choices(message):
            here = await self.replay(entry, path)
            if here is None or label not in self.user.buttons(here):
                continue
            await self.user.click(here, label, allow_unhandled=True)
            step = " › ".join([entry, *path, label])
            after = self.look(step)
            if after is None:
                continue
            key = shape(after, self.user.buttons(after))
            if key in self.seen:
                continue
            self.seen.add(key)
            await self.explore(entry, [*path, label])

    async def run(self, entries: tuple[str, ...]) -> None:
        for entry in entries:
            await self.user.send(entry, allow_unhandled=True)
            message = self.look(entry)
            if message is not None:
                self.seen.add(shape(message, self.user.buttons(message)))
                await self.explore(entry, [])


def report(crawl: Crawl) -> str:
    return "\n".join(["dead ends:", *crawl.dead_ends, "", "transcript:", *crawl.transcript])


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_every_buyer_screen_has_a_way_forward(tmp_path: Path, language: str) -> None:
    async with running_stack(
        tmp_path, access_mode="public", admin_ids=frozenset({ADMIN}), rate_limit_count=UNLIMITED
    ) as stack:
        crawl = Crawl(stack.client(user_id=BUYER, language_code=language))
        await crawl.run(ENTRY_POINTS)
        assert not crawl.dead_ends, report(crawl)
        assert len(crawl.seen) >= 15, report(crawl)  # the crawl really went through the bot


async def test_every_admin_screen_has_a_way_forward(tmp_path: Path) -> None:
    async with running_stack(
        tmp_path, admin_ids=frozenset({ADMIN}), rate_limit_count=UNLIMITED
    ) as stack:
        await stack.client(user_id=BUYER).send("/start")  # someone for /users and /user
        crawl = Crawl(stack.client(user_id=ADMIN))
        await crawl.run(("/start", *ADMIN_ENTRY_POINTS))
        assert not crawl.dead_ends, report(crawl)
        assert len(crawl.seen) >= 10, report(crawl)
