"""What an empty chat shows: the bot's description and short description, per language."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiogram.methods import SetMyDescription, SetMyShortDescription

from bot.app import set_descriptions
from tests.emulators.suite import EmulatorSuite
from tests.fakes.bot_server import FakeBotServer
from tests.fakes.telegram import MAX_DESCRIPTION, MAX_SHORT_DESCRIPTION, FakeBotApi, make_bot
from tests.stack import Stack
from tests.test_run import TOKEN, clean_env, spawn_bot


async def test_descriptions_are_set_in_every_language_and_by_default(stack: Stack) -> None:
    api, bot, i18n = stack.api, stack.app.bot, stack.app.i18n
    await set_descriptions(bot, i18n)

    assert set(api.descriptions) == set(api.short_descriptions) == {None, "en", "ru"}
    en, ru = api.descriptions["en"], api.descriptions["ru"]
    assert api.descriptions[None] == en  # other languages read the default (English) one
    assert en.startswith("Virtual phone numbers to receive SMS codes")
    assert "type their name" in en
    assert ru.startswith("Виртуальные номера для приёма SMS-кодов")
    assert api.short_descriptions["en"] == (
        "Virtual numbers to receive SMS codes. Type a service or a country to start."
    )
    assert api.short_descriptions["ru"].startswith("Виртуальные номера")
    for text in api.descriptions.values():
        assert len(text) <= MAX_DESCRIPTION
    for text in api.short_descriptions.values():
        assert len(text) <= MAX_SHORT_DESCRIPTION

    # Read back as a client would (Telegram shows these before /start).
    assert (await bot.get_my_description(language_code="ru")).description == ru
    short = await bot.get_my_short_description(language_code=None)
    assert short.short_description == api.short_descriptions[None]
    # Setting them again (every start) changes nothing.
    await set_descriptions(bot, i18n)
    assert api.descriptions["ru"] == ru
    assert len(api.calls(SetMyDescription)) == 6


async def test_a_refused_description_is_logged_and_the_others_are_still_set(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.api.retry_after_next(SetMyDescription, 30)  # setMy* are rate limited by Telegram
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        await set_descriptions(stack.app.bot, stack.app.i18n)
    assert None not in stack.api.descriptions  # the first one (the default) was refused
    assert set(stack.api.descriptions) == {"en", "ru"}
    assert "bot description (default) not set" in caplog.text


async def test_the_fake_keeps_descriptions_as_telegram_does() -> None:
    api = FakeBotApi()
    bot = make_bot(api)
    await bot.set_my_description("Hello", language_code="de")
    assert api.descriptions == {"de": "Hello"}
    await bot.set_my_description("", language_code="de")  # empty: removed
    assert api.descriptions == {}
    assert (await bot.get_my_description(language_code="de")).description == ""
    with pytest.raises(Exception, match="longer than 120"):
        await bot.set_my_short_description("x" * (MAX_SHORT_DESCRIPTION + 1))
    assert api.short_descriptions == {}
    assert api.calls(SetMyShortDescription)[0].error is not None


async def test_the_running_bot_sets_them_at_start(tmp_path: Path) -> None:
    suite = EmulatorSuite()
    await suite.start()
    api = FakeBotServer()
    await api.start()
    env = clean_env(tmp_path, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api.base_url, **suite.env())
    process = await spawn_bot(tmp_path, env)
    try:
        await api.wait_for("getUpdates")  # polling started: start-up calls are done
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), 30)
        await api.stop()
        await suite.stop()
    for method in ("setMyDescription", "setMyShortDescription"):
        languages = [c.params.get("language_code") for c in api.log if c.method == method]
        assert sorted(languages, key=str) == sorted([None, "en", "ru"], key=str), method
