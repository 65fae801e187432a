"""Stories through the real Dispatcher: menu, service and country steps, offers, language."""

from __future__ import annotations

from pathlib import Path

from aiogram.methods import SetMyCommands

from bot.app import set_commands
from bot.keyboards import COUNTRIES_PER_PAGE, SERVICES_PER_PAGE
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack

MENU = ["📲 Buy a number", "📋 My numbers", "🌐 Language", "⚙️ Settings", "❓ Help"]


async def open_services(user: BotClient) -> None:
    await user.send("/start")
    await user.click(user.last_message(), "📲 Buy a number")


async def open_countries(user: BotClient, service: str) -> None:
    await open_services(user)
    await user.click(user.last_message(), service)


def offer_buttons(user: BotClient) -> list[str]:
    """Every offer on the screen, the "⭐ Best" one (on top) as the others read."""
    return [b.removeprefix("⭐ Best · ") for b in user.buttons() if " · " in b]


async def test_start_shows_the_welcome_and_the_main_menu(stack: Stack) -> None:
    user = stack.client(first_name="Ann <admin>")
    await user.send("/start")
    message = user.last_message()
    assert message.text is not None and message.text.startswith("Hi, Ann <admin>!")
    assert "&lt;admin&gt;" in message.html_text  # the user's own name is escaped
    assert user.buttons() == MENU
    await user.click(message, "❓ Help")
    assert "/buy" in (user.last_message().text or "")
    await user.click(user.last_message(), "« Menu")
    assert user.buttons() == MENU


async def test_services_popular_first_and_sold_only(stack: Stack) -> None:
    user = stack.client()
    await open_services(user)
    buttons = user.buttons()
    assert buttons[:3] == ["Telegram", "WhatsApp", "Google (Gmail, YouTube)"]
    assert buttons[-1] == "« Back"
    assert "Viber" not in buttons  # no enabled provider sells it
    await user.click(user.last_message(), "« Back")
    assert user.buttons() == MENU


async def test_services_are_paginated(stack: Stack) -> None:
    extra = ["ds", "tw", "oi", "am", "mm", "ub", "wb", "ya", "ok", "ma", "fb", "vi"]
    for code in extra:
        stack.suite.getsms.set_stock(code, "ru", price="0.30", count=5)
    user = stack.client()
    await open_services(user)
    first = user.buttons()
    assert len([b for b in first if b not in ("▶", "« Back")]) == SERVICES_PER_PAGE
    assert "▶" in first and "◀" not in first
    assert "Page 1 of 2" in (user.last_message().text or "")
    await user.click(user.last_message(), "▶")
    second = user.buttons()
    assert "◀" in second and "▶" not in second
    names_first = set(first) - {"▶", "« Back"}
    names_second = set(second) - {"◀", "« Back"}
    assert not names_first & names_second
    assert len(names_first | names_second) == len(extra) + 7  # seeded services + extra
    await user.click(user.last_message(), "◀")
    assert user.buttons() == first


async def test_typing_filters_services(stack: Stack) -> None:
    user = stack.client()
    await open_services(user)
    await user.send("whats")
    assert user.buttons() == ["WhatsApp", "« Back"]
    await user.send("Zzzz <b>")
    assert user.last_message().text == (
        "Nothing matches “Zzzz <b>”. Try another spelling.\n\n"
        "Choose a service, or type part of its name."
    )
    assert user.buttons()[:2] == ["Telegram", "WhatsApp"]  # the whole list, to pick from
    await user.send("goo")
    await user.click(user.last_message(), "Google (Gmail, YouTube)")
    assert "Google" in (user.last_message().text or "")


async def test_typing_in_russian_filters_services_and_countries(stack: Stack) -> None:
    user = stack.client(language_code="ru")
    await user.send("/buy")
    await user.send("теле")
    assert user.buttons()[0] == "Telegram"
    await user.click(user.last_message(), "Telegram")
    await user.send("герм")
    assert user.buttons()[0] == "🇩🇪 Германия"


async def test_countries_only_where_someone_sells_and_filter(stack: Stack) -> None:
    stack.suite.getsms.set_stock("tg", "indonesia", price="0.35", count=9)
    user = stack.client()
    await open_countries(user, "VK")
    assert user.buttons() == ["🇷🇺 Russia", "« Back"]  # only Get-SMS sells VK, only in Russia
    await user.click(user.last_message(), "« Back")
    assert user.buttons()[0] == "Telegram"

    await open_countries(user, "Telegram")
    await user.send("indo")
    assert user.buttons() == ["🇮🇩 Indonesia", "« Back"]
    await user.send("united")
    assert user.buttons() == ["🇬🇧 United Kingdom", "🇺🇸 United States", "« Back"]
    await user.send("uk")
    assert user.buttons() == ["🇬🇧 United Kingdom", "« Back"]
    await user.send("France")  # a real country nobody sells Telegram in here
    assert (user.last_message().text or "").startswith("Nothing matches")


async def test_countries_are_paginated(stack: Stack) -> None:
    slugs = ["indonesia", "kazakhstan", "canada", "germany", "brazil", "estonia", "france"]
    for slug in slugs:
        stack.suite.getsms.set_stock("tg", slug, price="0.50", count=3)
    user = stack.client()
    await open_countries(user, "Telegram")
    first = user.buttons()
    assert len([b for b in first if b not in ("▶", "« Back")]) == COUNTRIES_PER_PAGE
    await user.click(user.last_message(), "▶")
    second = [b for b in user.buttons() if b not in ("◀", "« Back")]
    assert second and not set(second) & set(first)
    names = [b.split(" ", 1)[1] for b in first if b not in ("▶", "« Back")] + [
        b.split(" ", 1)[1] for b in second
    ]
    assert names == sorted(names, key=str.casefold)  # alphabetical in the user's language


async def test_offers_every_provider_cheapest_first_then_back(stack: Stack) -> None:
    user = stack.client()
    await open_countries(user, "Telegram")
    await user.click(user.last_message(), "🇺🇸 United States")
    text = user.last_message().text or ""
    assert text.startswith("Telegram in 🇺🇸 United States:")
    offers = offer_buttons(user)
    activations = [b for b in offers if "activation" in b]
    assert offers[: len(activations)] == activations  # activations first (the best on top)
    prices = [float(b.split(" · ")[0].lstrip("$")) for b in activations]
    assert prices == sorted(prices)
    rentals = [b.split(" · ") for b in offers[len(activations) :]]
    days = [int(r[2].split()[-2]) * (1 if "day" in r[2] else 0) for r in rentals]
    assert days == sorted(days)  # rentals by length (4 hours first), then cheapest first
    by_length = [(d, float(r[0].lstrip("$"))) for d, r in zip(days, rentals, strict=True)]
    assert by_length == sorted(by_length)
    providers = {b.split(" · ")[1] for b in offers}
    assert providers == {"Get-SMS", "SMS-BUS", "BEE-SMS", "SMS.online"}
    assert any("activation" in b for b in offers) and any("rental for 7 days" in b for b in offers)
    assert "Not answering" not in text
    await user.click(user.last_message(), "« Back")
    assert "🇺🇸 United States" in user.buttons()


async def test_the_user_sees_the_loading_state(stack: Stack) -> None:
    user = stack.client()
    await open_countries(user, "Telegram")
    user.reset()
    await user.click(user.last_message(), "🇺🇸 United States")
    edits = [call.text for call in user.calls("editMessageText")]  # type: ignore[attr-defined]
    assert edits[0].startswith("⏳")
    assert edits[-1].startswith("<b>Telegram</b> in")


async def test_a_failing_provider_is_named_under_the_offers(stack: Stack) -> None:
    stack.suite.smsbus.fail("5xx", times=10)
    user = stack.client()
    await open_countries(user, "Telegram")
    await user.click(user.last_message(), "🇺🇸 United States")
    text = user.last_message().text or ""
    assert text.endswith("Not answering now: SMS-BUS.")
    assert "SMS-BUS" not in {b.split(" · ")[1] for b in offer_buttons(user)}
    assert offer_buttons(user)  # the others still answer


async def test_language_follows_telegram_and_the_choice_wins(stack: Stack) -> None:
    russian = stack.client(2002, language_code="ru")
    await russian.send("/start")
    assert (russian.last_message().text or "").startswith("Здравствуйте")

    user = stack.client(2003, language_code="en")
    await user.send("/start")
    await user.click(user.last_message(), "🌐 Language")
    assert user.buttons() == ["✓ English", "Русский", "« Menu"]
    answer = await user.click(user.last_message(), "Русский")
    assert answer is not None and answer.text == "Язык изменён."
    assert user.buttons()[0] == "📲 Купить номер"
    await user.send("/start")  # still "en" in Telegram: the stored choice wins
    assert (user.last_message().text or "").startswith("Здравствуйте")
    await user.send("/language")
    assert user.buttons()[:2] == ["English", "✓ Русский"]

    unknown = await user.click_data(user.last_message(), "lg1:xx")
    assert unknown is not None and unknown.show_alert


async def test_commands_are_registered_per_language(stack: Stack) -> None:
    stack.api.log.clear()
    await set_commands(stack.app.bot, stack.app.i18n)
    calls = [c.method for c in stack.api.log if isinstance(c.method, SetMyCommands)]
    by_language = {c.language_code: [cmd.command for cmd in c.commands] for c in calls}
    assert set(by_language) == {None, "ru"}
    for commands in by_language.values():
        assert commands == [
            "start",
            "buy",
            "numbers",
            "alerts",
            "help",
            "language",
            "settings",
            "support",
            "terms",
        ]
    ru = next(c for c in calls if c.language_code == "ru")
    assert ru.commands[1].description != "Get a number"


async def test_one_provider_only(tmp_path: Path) -> None:
    async with running_stack(tmp_path, only=("beesms",)) as stack:
        user = stack.client()
        await open_countries(user, "Telegram")
        await user.click(user.last_message(), "🇺🇸 United States")
        assert {b.split(" · ")[1] for b in offer_buttons(user)} == {"BEE-SMS"}
        assert stack.suite.getsms.requests == []


async def test_strangers_are_refused_before_any_provider_call(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({1001})) as stack:
        stranger = stack.client(5005)
        await stranger.send("/start")
        answer = await stranger.click(stranger.last_message(), "📲 Buy a number")
        assert answer is not None and answer.show_alert
        assert (answer.text or "").startswith("This bot is private")
        await stranger.send("/buy")
        assert (stranger.last_message().text or "").startswith("This bot is private")
        forged = [
            "c1:tg:US",  # the country tap that fetches offers
            "y4:0123456789abcdef",  # a Buy button
            "x1:1:c",  # an order action
        ]
        for data in forged:
            answer = await stranger.click_data(stranger.last_message(), data)
            assert answer is not None and answer.show_alert, data
        assert all(not server.requests for server in stack.suite.servers.values())

        operator = stack.client(1001)
        await operator.send("/buy")
        assert "Telegram" in operator.buttons()


async def test_forged_service_and_country_pairs_ask_no_provider(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        user = stack.client()
        await user.send("/buy")  # the catalog is read once, as for any first tap
        before = {pid: len(s.requests) for pid, s in stack.suite.servers.items()}
        forged = [
            "c1:zz:US",  # a service nobody sells
            "c1:tg:ZZ",  # a country nobody sells it in
            "s1:" + "x" * 59,  # a long service: its Back button could not even be built
            "cp1:" + "y" * 50 + ":0",
            "o3:tg:ZZ:getsms:0123456789ab",  # an offer of a forged pair
        ]
        for data in forged:
            answer = await user.click_data(user.last_message(), data)
            assert answer is not None and answer.show_alert, data
            assert answer.text == "This button is no longer valid.", data
        after = {pid: len(s.requests) for pid, s in stack.suite.servers.items()}
        assert after == before


async def test_a_4096_character_search_is_answered_briefly(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        user = stack.client()
        await user.send("/buy")
        await user.send("telegram " * 455)  # 4,095 characters: no search is run for it
        reply = user.last_message().text or ""
        assert reply.startswith("Nothing matches")
        assert len(reply) < 200
        await user.click(user.messages()[-2], "Telegram")
        await user.send("u" * 4096)
        assert (user.last_message().text or "").startswith("Nothing matches")
