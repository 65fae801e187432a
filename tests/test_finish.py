"""Finish: a used number stops being "active" (issue #11).

Which adapters can finish, by their providers' docs: SMS.online rentals (``setRentStatus``
status 1). Get-SMS's native API has no finish and its compatible API's ``setStatus=6`` takes
that API's own ids (see ``GetSmsProvider.finish``); SMS-BUS documents none and needs none, a
request closes with its code (see ``SmsBusProvider.finish``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from aiogram.types import Message

from bot.i18n import create_i18n
from bot.keyboards import order_card
from bot.money import Money
from bot.providers.base import CancelBlock, CancelTerms, Capability, OrderKind, RefundScope
from storage.models import OrderStatus, StoredOrder
from tests.fakes.telegram import BotClient
from tests.stack import Stack
from tests.test_flow_orders import (
    CHECK,
    FINISH,
    GETSMS_ACTIVATION,
    SMSBUS,
    SMSONLINE,
    answer_text,
    buy,
    deliver_sms,
    newest_order,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def active_numbers(user: BotClient) -> list[str]:
    await user.send("/numbers")
    return user.buttons()


async def past_numbers(user: BotClient) -> list[str]:
    await user.click(user.last_message(), "Past numbers")
    return user.buttons()


def listed(buttons: list[str], phone_digits: str) -> bool:
    tail = phone_digits[-4:]  # the list shows the number formatted: its last digits stay whole
    return any(tail in button.replace(" ", "").replace("-", "") for button in buttons)


async def test_finish_closes_the_order_at_the_provider_and_frees_it(stack: Stack) -> None:
    user = stack.client()
    card, order = await buy(stack, user, SMSONLINE)
    await deliver_sms(stack.suite, "smsonline", order.provider_order_id, "734120")
    assert listed(await active_numbers(user), order.phone)

    assert answer_text(await user.click(card, FINISH)) == "Done. The number is closed."

    rental = stack.suite.smsonline.rentals[int(order.provider_order_id)]
    assert rental.status == "finished"  # the provider's own state, not just ours
    assert (await newest_order(stack, user)).status is OrderStatus.FINISHED
    assert not listed(await active_numbers(user), order.phone)
    assert listed(await past_numbers(user), order.phone)
    assert FINISH not in user.buttons(card.message_id)


async def test_an_smsbus_request_is_closed_by_its_code(stack: Stack) -> None:
    user = stack.client()
    card, order = await buy(stack, user, SMSBUS)
    assert FINISH not in user.buttons(card)  # SMS-BUS documents no finish call
    await deliver_sms(stack.suite, "smsbus", order.provider_order_id, "55117")

    await user.click(card, CHECK)

    assert (await newest_order(stack, user)).status is OrderStatus.FINISHED
    assert not listed(await active_numbers(user), order.phone)


async def test_getsms_activations_offer_no_finish(stack: Stack) -> None:
    user = stack.client()
    card, order = await buy(stack, user, GETSMS_ACTIVATION)
    await deliver_sms(stack.suite, "getsms", order.provider_order_id, "424242")
    await user.click(card, CHECK)
    shown: Message = user.last_message()
    assert FINISH not in user.buttons(shown)  # no documented call would do it
    # Nor is the compatible API's setStatus=6 tried on a native order id.
    assert not [r for r in stack.suite.getsms.requests if "handler_api" in r.path]


def _activation() -> StoredOrder:
    return StoredOrder(
        id=7,
        user_id=1001,
        provider="any",
        provider_order_id="p-7",
        kind=OrderKind.ACTIVATION,
        service="tg",
        country="US",
        phone="12025550123",
        price=Money(Decimal("0.50"), "USD"),
        display_price=None,
        status=OrderStatus.ACTIVE,
        remote_status=None,
        created_at=NOW,
        updated_at=NOW,
        expires_at=None,
        auto_renew=False,
        duration_hours=None,
    )


def test_after_a_code_the_finish_button_comes_first_on_a_row_of_its_own() -> None:
    caps = frozenset(
        {Capability.ACTIVATIONS, Capability.FINISH, Capability.CANCEL, Capability.ANOTHER_CODE}
    )
    cancel = CancelTerms(None, RefundScope.ALL)
    no_refund = CancelTerms(CancelBlock.SMS_RECEIVED, RefundScope.NONE)
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        waiting = order_card(_activation(), caps, has_sms=False, cancel=cancel, now=NOW)
        used = order_card(_activation(), caps, has_sms=True, cancel=no_refund, now=NOW)
    rows = [[b.text for b in row] for row in waiting.inline_keyboard]
    assert rows[1] == [CHECK]
    assert FINISH in rows[2]  # beside Cancel while the code is awaited
    rows = [[b.text for b in row] for row in used.inline_keyboard]
    assert rows[1] == [FINISH]  # right under "Copy number", alone
    assert rows[2] == [CHECK, "➕ Another code"]
    assert sum(row.count(FINISH) for row in rows) == 1
