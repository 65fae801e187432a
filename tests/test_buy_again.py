"""Buy again in one tap (issue #11): a closed card, an SMS push and the rental-ended message lead
to the confirmation of the same offer while its provider sells it, else to the current offers;
the main menu lists the user's recent service-country pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.models import OrderStatus
from tests.stack import Stack, running_stack
from tests.test_delivery import bought, order_now, pushes
from tests.test_flow_orders import (
    BUY,
    CANCEL,
    GETSMS_ACTIVATION,
    MY_NUMBERS,
    buy,
    newest_order,
    stored_orders,
)

AGAIN = "🔁 Buy the same again"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as running:
        yield running


async def test_buy_again_from_a_cancelled_card_reaches_the_same_offers_confirmation(
    stack: Stack,
) -> None:
    user = stack.client()
    card, first = await buy(stack, user, GETSMS_ACTIVATION)
    assert AGAIN not in user.buttons(card)  # an active number has its own actions
    await user.click(card, CANCEL)
    card = user.last_message()
    assert "Status: ↩️ cancelled" in (card.text or "")
    assert "Until: 1 Jan 2026, 12:15 UTC" in (card.text or "").splitlines()  # no "in 15 min"
    assert user.buttons(card)[-2:] == [AGAIN, MY_NUMBERS]

    await user.click(card, AGAIN)
    confirm = user.last_message()
    assert confirm.message_id == card.message_id  # navigation: the card becomes the step
    text = confirm.text or ""
    assert text.startswith("Confirm your purchase")
    assert "Service: Telegram" in text and "Country: 🇷🇺 Russia" in text
    assert "Provider: Get-SMS" in text and "Type: activation" in text
    assert user.buttons(confirm)[0] == BUY

    await user.click(confirm, BUY)  # the confirmation is the ordinary one: it buys
    second = await newest_order(stack, user)
    assert second.id != first.id
    assert (second.provider, second.kind, second.service, second.country) == (
        first.provider,
        first.kind,
        first.service,
        first.country,
    )
    assert second.status is OrderStatus.ACTIVE


async def test_buy_again_from_a_push_opens_a_new_message_and_keeps_the_sms(
    stack: Stack,
) -> None:
    user = stack.client()
    order = await bought(stack, user, "getsms", hours=24)  # a Get-SMS rental for a day
    stack.suite.getsms.inject_sms(order.provider_order_id, "Your code 777111", code="777111")
    user.reset()
    await stack.app.watcher.tick()
    [_push] = pushes(user)
    push = user.last_message()
    assert user.buttons(push)[-1] == AGAIN

    await user.click(push, AGAIN)
    confirm = user.last_message()
    assert confirm.message_id != push.message_id
    kept = user.api.message(user.chat.id, push.message_id)
    assert kept is not None and "777111" in (kept.text or "")  # the SMS is still there
    text = confirm.text or ""
    assert text.startswith("Confirm your purchase")
    assert "Provider: Get-SMS" in text and "Type: rental for 1 day" in text


async def test_when_the_provider_no_longer_sells_it_the_current_offers_are_shown(
    stack: Stack,
) -> None:
    user = stack.client()
    card, _order = await buy(stack, user, GETSMS_ACTIVATION)
    await user.click(card, CANCEL)
    stack.suite.getsms.set_stock("tg", "ru", price="0.50", count=0)  # sold out at Get-SMS
    stack.clock.advance(minutes=10)  # past the offers cache

    await user.click(user.last_message(), AGAIN)
    screen = user.last_message()
    text = screen.text or ""
    assert text.startswith("Get-SMS no longer sells that number. Here are the current offers:")
    assert "Telegram in 🇷🇺 Russia" in text
    assert not any("Get-SMS · activation" in b for b in user.buttons(screen))
    assert len(user.buttons(screen)) > 2  # other providers' offers, Refresh, Back


async def test_the_rental_ended_message_offers_the_same_again(stack: Stack) -> None:
    user = stack.client(language_code="ru")
    order = await bought(stack, user, "getsms", hours=24)
    stack.clock.advance(hours=25)
    user.reset()
    await stack.app.watcher.tick()
    assert (await order_now(stack, order)).status is not OrderStatus.ACTIVE
    ended = [p for p in pushes(user) if "аренда закончилась" in p.text]
    assert len(ended) == 1, [p.text for p in pushes(user)]
    message = user.last_message()
    assert user.buttons(message)[-1] == "🔁 Купить такой же ещё раз"

    await user.click(message, "🔁 Купить такой же ещё раз")
    assert (user.last_message().text or "").startswith("Подтвердите покупку")


async def test_someone_elses_order_cannot_be_bought_again(stack: Stack) -> None:
    owner, other = stack.client(1001), stack.client(1002)
    _card, order = await buy(stack, owner, GETSMS_ACTIVATION)
    await other.send("/start")
    answer = await other.click_data(other.last_message(), f"ba1:{order.id}:1")
    assert answer is not None and answer.text == "This button is no longer valid."
    assert (other.last_message().text or "").startswith("Hi, ")  # nothing shown to them


async def test_the_menu_lists_recent_pairs_newest_first(stack: Stack) -> None:
    user = stack.client()
    await user.send("/start")
    assert not any(b.startswith("🔁") for b in user.buttons())  # nothing bought yet

    await bought(stack, user, "getsms", "tg", "RU")
    await bought(stack, user, "getsms", "wa", "RU")
    await bought(stack, user, "getsms", "tg", "US")
    await bought(stack, user, "getsms", "vk", "RU")
    await bought(stack, user, "getsms", "wa", "RU")  # again: moves to the top
    assert len(await stored_orders(stack, user)) == 5

    await user.send("/start")
    menu = user.last_message()
    assert user.buttons(menu)[:5] == [
        "📲 Buy a number",
        "🔁 WhatsApp · 🇷🇺 Russia",
        "🔁 VK · 🇷🇺 Russia",
        "🔁 Telegram · 🇺🇸 United States",
        "📋 My numbers",
    ]

    await user.click(menu, "🔁 Telegram · 🇺🇸 United States")
    offers = user.last_message()
    assert offers.message_id == menu.message_id
    assert (offers.text or "").startswith("Telegram in 🇺🇸 United States")

    await user.send("/help")
    await user.click(user.last_message(), "« Menu")  # the menu button shows them too
    assert user.buttons()[1] == "🔁 WhatsApp · 🇷🇺 Russia"
