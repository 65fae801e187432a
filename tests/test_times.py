"""Times a person can use (issue #11): relative times next to the absolute ones, and the absolute
ones in the zone the user chose in /settings (else UTC, named), in English and Russian."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiogram.methods import SetMyCommands

from bot import texts, timezones
from bot.app import set_commands
from bot.i18n import create_i18n
from storage.users import UsersRepo
from tests.stack import Stack, running_stack
from tests.test_delivery import bought, pushes
from tests.test_flow_orders import GETSMS_ACTIVATION, buy, lines

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)  # the fake clock's start


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as running:
        yield running


# --- the text functions, for given clock values ------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "en", "ru"),
    [
        (14_340, "in 3 h 59 min", "через 3 ч 59 мин"),
        (100, "in 1 min 40 s", "через 1 мин 40 с"),
        (900, "in 15 min", "через 15 мин"),
        (7_200, "in 2 h", "через 2 ч"),
        (90_000, "in 1 d 1 h", "через 1 д 1 ч"),
        (86_400 * 7, "in 7 d", "через 7 д"),
        (-20, "20 s ago", "20 с назад"),
        (-3_660, "1 h 1 min ago", "1 ч 1 мин назад"),
        (0.4, "just now", "только что"),
    ],
)
def test_relative_times_are_exact(seconds: float, en: str, ru: str) -> None:
    i18n = create_i18n()
    later = NOW + timedelta(seconds=seconds)
    for locale, expected in (("en", en), ("ru", ru)):
        with i18n.context(), i18n.use_locale(locale):
            assert texts.relative(later, NOW) == expected


@pytest.mark.parametrize(
    ("zone", "moment", "shown"),
    [
        (None, NOW, "1 Jan 2026, 12:00 UTC"),
        ("UTC", NOW, "1 Jan 2026, 12:00 UTC"),
        ("Europe/Moscow", NOW, "1 Jan 2026, 15:00 UTC+03:00"),
        ("America/New_York", NOW, "1 Jan 2026, 07:00 UTC-05:00"),
        ("America/New_York", NOW.replace(month=7), "1 Jul 2026, 08:00 UTC-04:00"),  # summer
        ("UTC+05:30", NOW, "1 Jan 2026, 17:30 UTC+05:30"),
        ("Asia/Tashkent", NOW.replace(hour=22), "2 Jan 2026, 03:00 UTC+05:00"),  # next day
    ],
)
def test_the_absolute_time_is_in_the_users_zone_and_names_it(
    zone: str | None, moment: datetime, shown: str
) -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"), timezones.use(zone):
        assert texts.when(moment) == shown
        assert texts.when(moment, moment - timedelta(minutes=5)) == f"{shown} (in 5 min)"


def test_russian_dates_read_in_russian() -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("ru"), timezones.use("Europe/Moscow"):
        shown = texts.when(NOW + timedelta(hours=4), NOW)
    assert shown.startswith("1 янв. 2026")
    assert shown.endswith("19:00 UTC+03:00 (через 4 ч)")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Europe/Moscow", "Europe/Moscow"),
        ("europe/moscow", "Europe/Moscow"),
        ("  Europe/Kyiv ", "Europe/Kyiv"),
        ("new york", "America/New_York"),
        ("Tashkent", "Asia/Tashkent"),
        ("UTC", "UTC"),
        ("gmt", "UTC"),
        ("UTC+3", "UTC+03:00"),
        ("utc+03:00", "UTC+03:00"),
        ("+3", "UTC+03:00"),
        ("GMT-5", "UTC-05:00"),
        ("UTC+5:30", "UTC+05:30"),
        ("UTC−3", "UTC-03:00"),  # a typographic minus
        ("UTC+0", "UTC"),
        ("UTC+14", "UTC+14:00"),
    ],
)
def test_a_typed_zone_is_understood(typed: str, stored: str) -> None:
    assert timezones.parse(typed) == stored
    assert timezones.resolve(stored) is not None
    assert timezones.parse(stored) == stored  # what is stored reads back as itself


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "Mars/Olympus_Mons",
        "Moscow time",
        "UTC+15",
        "UTC-13",
        "UTC+3:20",
        "UTC+٣",  # a digit that is not ASCII
        "../../etc/passwd",
        "/etc/localtime",
        "Europe/Moscow\x00",
        "Europe/" + "x" * 80,
        "<b>UTC</b>",
    ],
)
def test_anything_else_is_no_zone(typed: str) -> None:
    assert timezones.parse(typed) is None


def test_a_stored_zone_this_system_does_not_know_shows_utc() -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"), timezones.use("Atlantis/Capital"):
        assert texts.when(NOW) == "1 Jan 2026, 12:00 UTC"


# --- stories through the Dispatcher --------------------------------------------------------------


async def test_settings_sets_moscow_and_the_card_shows_moscow_time(stack: Stack) -> None:
    user = stack.client()
    await user.send("/settings")
    screen = user.last_message()
    assert lines(screen)[:2] == ["Settings", "Time zone: UTC (not set); it is 12:00 there now."]
    assert "UTC+3" in (screen.text or "")  # how to type one
    assert user.buttons(screen)[:5] == [
        "UTC",
        "Europe/London",
        "Europe/Berlin",
        "Europe/Kyiv",
        "Europe/Moscow",
    ]
    assert user.buttons(screen)[-1] == "« Menu"

    await user.click(screen, "Europe/Moscow")
    done = user.last_message()
    assert done.message_id == screen.message_id
    assert done.text == "✅ Time zone: Europe/Moscow (UTC+03:00). It is 15:00 there now."
    assert "✓ Europe/Moscow" in user.buttons(done)
    stored = await UsersRepo(stack.app.db).get(user.user.id)
    assert stored is not None and stored.timezone == "Europe/Moscow"

    card, _order = await buy(stack, user, GETSMS_ACTIVATION)
    assert "Until: 1 Jan 2026, 15:15 UTC+03:00 (in 15 min)" in lines(card)

    stack.clock.advance(minutes=5)  # the card's relative time follows the clock
    await user.click(card, "🔄 Check SMS")
    assert "Until: 1 Jan 2026, 15:15 UTC+03:00 (in 10 min)" in lines(user.last_message())


async def test_a_typed_zone_in_russian_and_an_invalid_one_answered(stack: Stack) -> None:
    user = stack.client(language_code="ru")
    await user.send("/settings")
    assert lines(user.last_message())[0] == "Настройки"

    await user.send("Марс")
    refused = user.last_message()
    assert refused.text == (
        "«Марс» — такого часового пояса я не знаю. Напишите название, например Europe/Paris, "
        "или смещение, например UTC+3, либо выберите пояс ниже."
    )
    assert "Europe/Moscow" in user.buttons(refused) and "« Меню" in user.buttons(refused)

    await user.send("UTC+5:30")  # still in the step: the next text is tried again
    assert user.last_message().text == "✅ Часовой пояс: UTC+05:30. Там сейчас 17:30."
    stored = await UsersRepo(stack.app.db).get(user.user.id)
    assert stored is not None and stored.timezone == "UTC+05:30"

    await user.send("Europe/Berlin", allow_unhandled=True)  # the step is over
    stored = await UsersRepo(stack.app.db).get(user.user.id)
    assert stored is not None and stored.timezone == "UTC+05:30"


async def test_settings_from_the_menu_and_a_forged_zone_button(stack: Stack) -> None:
    user = stack.client()
    await user.send("/start")
    await user.click(user.last_message(), "⚙️ Settings")
    screen = user.last_message()
    assert (screen.text or "").startswith("Settings")

    answer = await user.click_data(screen, "tz1:Mars/Base")
    assert answer is not None and answer.text == "This button is no longer valid."
    stored = await UsersRepo(stack.app.db).get(user.user.id)
    assert stored is not None and stored.timezone is None

    await user.click(screen, "« Menu")
    assert "⚙️ Settings" in user.buttons()


async def test_a_push_shows_when_the_sms_came_in_the_users_zone(stack: Stack) -> None:
    user = stack.client()
    await UsersRepo(stack.app.db).ensure(user.user.id, None, NOW)
    await UsersRepo(stack.app.db).set_timezone(user.user.id, "Asia/Dubai")
    order = await bought(stack, user, "getsms")
    stack.clock.advance(minutes=3)
    stack.suite.getsms.inject_sms(order.provider_order_id, "Your code 555123", code="555123")
    stack.clock.advance(seconds=20)
    user.reset()
    await stack.app.watcher.tick()
    [push] = pushes(user)
    assert "1 Jan 2026, 16:03 UTC+04:00 (20 s ago)" in push.text


async def test_help_and_the_command_menu_name_settings(stack: Stack) -> None:
    user = stack.client()
    await user.send("/help")
    assert "/settings — time zone" in (user.last_message().text or "")
    await set_commands(stack.app.bot, stack.app.i18n)
    calls = [c.method for c in stack.api.calls() if isinstance(c.method, SetMyCommands)]
    assert {c.language_code for c in calls} == {None, "ru"}
    for call in calls:
        assert "settings" in [command.command for command in call.commands]


def test_the_offers_freshness_is_in_the_users_zone() -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"), timezones.use("Europe/Moscow"):
        assert texts.freshness(NOW, NOW + timedelta(minutes=2)) == (
            "Prices as of 15:00 UTC+03:00 · 2 min ago"
        )
    with i18n.context(), i18n.use_locale("en"), timezones.use(None):
        assert texts.freshness(NOW, NOW) == "Prices as of 12:00 UTC · just now"
