"""Search anywhere (issue #11): a service or country name typed at the main menu starts the
purchase there; countries are found by the names people type, in English and Russian."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.providers import country_names
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack

SEARCH_AGAIN = {"en": "🔍 Search again", "ru": "🔍 Искать снова"}
MENU = {"en": "« Menu", "ru": "« Меню"}
US = {"en": "🇺🇸 United States", "ru": "🇺🇸 Соединенные Штаты"}
GB = {"en": "🇬🇧 United Kingdom", "ru": "🇬🇧 Великобритания"}


async def at_menu(stack: Stack, language: str = "en") -> BotClient:
    user = stack.client(language_code=language)
    await user.send("/start")
    return user


def text(user: BotClient) -> str:
    return user.last_message().text or ""


async def test_a_service_name_at_the_menu_opens_its_countries(stack: Stack) -> None:
    user = await at_menu(stack)
    await user.send("telegram")
    assert text(user) == "Telegram: choose a country, or type part of its name."
    buttons = user.buttons()
    assert {US["en"], GB["en"], "🇷🇺 Russia"} <= set(buttons)
    assert buttons[-1] == "« Back"
    # The country step that follows knows the names people type too.
    await user.send("США")
    assert user.buttons() == [US["en"], "« Back"]
    await user.click(user.last_message(), US["en"])
    assert text(user).startswith("Telegram in 🇺🇸 United States:")


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_a_country_name_at_the_menu_lists_the_services_sold_there(
    stack: Stack, language: str
) -> None:
    user = await at_menu(stack, language)
    head = {"en": "choose a service", "ru": "выберите сервис"}[language]
    for typed in ("США", "usa", "USA", "Штаты", "america", "United States"):
        await user.send(typed)
        assert text(user).startswith(f"{US[language]}: {head}"), typed
        buttons = user.buttons()
        # Services sold in the US only (VK is sold in Russia alone), popular first.
        assert buttons[:3] == ["Telegram", "WhatsApp", "Google (Gmail, YouTube)"], typed
        assert "VK" not in buttons
        assert buttons[-2:] == [SEARCH_AGAIN[language], MENU[language]]
    await user.click(user.last_message(), "WhatsApp")
    assert "WhatsApp" in text(user) and US[language] in text(user)


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_britain_by_any_name(stack: Stack, language: str) -> None:
    user = await at_menu(stack, language)
    for typed in ("uk", "UK", "britain", "Great Britain", "Англия", "Британия", "великобритания"):
        await user.send(typed)
        assert text(user).startswith(GB[language] + ":"), typed
        assert "Instagram" in user.buttons()  # sold in GB and Kazakhstan only


@pytest.mark.parametrize(
    ("language", "typed", "reply"),
    [
        ("en", "hello there", "Nothing matches “hello there”. Try another spelling."),
        ("ru", "абырвалг", "По запросу «абырвалг» ничего не найдено. Попробуйте написать иначе."),
    ],
)
async def test_nothing_found_offers_search_again_and_the_menu(
    stack: Stack, language: str, typed: str, reply: str
) -> None:
    user = await at_menu(stack, language)
    await user.send(typed)
    assert text(user) == reply
    assert user.buttons() == [SEARCH_AGAIN[language], MENU[language]]

    answer = await user.click(user.last_message(), SEARCH_AGAIN[language])
    assert answer is not None
    prompt = {
        "en": "Type the name of a service or a country, for example Telegram or USA.",
        "ru": "Напишите название сервиса или страны, например Telegram или США.",
    }
    assert text(user) == prompt[language]
    assert user.buttons() == [MENU[language]]
    await user.send("whats")
    assert text(user).startswith("WhatsApp:" if language == "en" else "WhatsApp: выберите")

    await user.send("/start")
    await user.send(typed)
    await user.click(user.last_message(), MENU[language])
    assert SEARCH_AGAIN[language] not in user.buttons()  # the main menu


async def test_several_matches_get_a_button_each(stack: Stack) -> None:
    user = await at_menu(stack)
    await user.send("united")
    assert text(user) == "Services and countries matching “united”:"
    assert user.buttons() == [GB["en"], US["en"], SEARCH_AGAIN["en"], MENU["en"]]
    await user.click(user.last_message(), GB["en"])
    assert text(user).startswith(GB["en"] + ": choose a service")


async def test_typing_on_a_countrys_services_filters_them_or_searches_again(
    stack: Stack,
) -> None:
    user = await at_menu(stack)
    await user.send("США")
    await user.send("goo")
    assert text(user) == "🇺🇸 United States: services matching “goo”:"
    assert user.buttons() == ["Google (Gmail, YouTube)", SEARCH_AGAIN["en"], MENU["en"]]
    await user.click(user.last_message(), "Google (Gmail, YouTube)")
    assert text(user).startswith("Google (Gmail, YouTube) in 🇺🇸 United States:")

    await user.send("США")
    await user.send("Германия")  # another country: a search anywhere
    assert text(user).startswith("🇩🇪 Germany: choose a service")


async def test_a_forged_country_button_is_refused_without_a_provider_call(stack: Stack) -> None:
    user = await at_menu(stack)
    await user.send("США")
    before = {name: len(server.requests) for name, server in stack.suite.servers.items()}
    for data in ("cs1:FR:0", "cs1:ZZZ:0"):  # not sold here; no such country
        answer = await user.click_data(user.last_message(), data)
        assert answer is not None and answer.show_alert, data
    assert {name: len(s.requests) for name, s in stack.suite.servers.items()} == before


async def test_a_step_waiting_for_text_still_takes_it(stack: Stack) -> None:
    user = await at_menu(stack)
    await user.click(user.last_message(), "📲 Buy a number")
    await user.send("США")  # the service step filters services: no service is called so
    assert text(user).startswith("Nothing matches “США”")


async def test_strangers_are_refused_before_the_search(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({1001})) as stack:
        stranger = stack.client(5005)
        await stranger.send("telegram")
        assert text(stranger).startswith("This bot is private")
        assert all(not server.requests for server in stack.suite.servers.values())


def test_country_names_fold_case_accents_and_yo() -> None:
    languages = ("en", "ru")
    assert country_names.find("СОЕДИНЁННЫЕ штаты", languages).best() == ("US",)
    assert country_names.find("Эмираты", languages).best() == ("AE",)
    assert country_names.find("ОАЭ", languages).best() == ("AE",)
    assert country_names.find("emirates", languages).best() == ("AE",)
    assert country_names.find("holland", languages).best() == ("NL",)
    assert country_names.find("cote d’ivoire", languages).best() == ("CI",)
    assert country_names.find("CÔTE", languages).best() == ("CI",)
    assert country_names.find("u.s.", languages).best() == ("US",)
    # Prefixes of any word; an ISO alpha-3 code does not hide other names starting so.
    assert set(country_names.find("aus", languages).best()) == {"AT", "AU"}
    # Two ASCII letters are a code or nothing ("UK" is not Ukraine); one letter is nothing.
    assert country_names.find("uk", languages).best() == ("GB",)
    assert country_names.find("qq", languages).best() == ()
    assert country_names.find("a", languages).best() == ()
