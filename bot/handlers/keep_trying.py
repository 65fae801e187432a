"""Keep trying (activations): from a confirmation, choose the tries and the maximum price,
see the summary, start; a try's card stops it. :func:`sender` tells each step of a running plan
(the app attaches it to :class:`KeepTryingService`).

The maximum is computed on the server from the quote (its buttons name a percentage) or typed
by the user; the summary keeps the plan to start in the FSM data, so the Start button names
only the quote. Every price charged is a quote's, through the normal purchase path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from functools import partial
from html import escape

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot import keyboards, texts
from bot.callbacks import KeepAsk, KeepMax, KeepStart, KeepStop, KeepTries, PickCountry
from bot.config import Settings
from bot.handlers.common import answer, show
from bot.handlers.numbers import card_screen
from bot.keyboard_builder import InlineKeyboardBuilder
from bot.money import Money
from bot.providers import identifiers
from bot.services.billing import Billing
from bot.services.keep_trying import (
    TRIES,
    Event,
    EventKind,
    KeepTryingService,
    StartRefused,
    Tell,
    ceiling_choices,
    within,
)
from bot.services.messenger import Messenger
from bot.services.orders import OrderService
from storage.keep_trying import EndReason, Plan
from storage.quotes import Quote

DRAFT_KEY = "keep_trying"  # FSM data: {"quote", "tries", "max"} of the summary shown
PERCENTS = (20, 50, 100)
MAX_FACTOR = 10  # a typed maximum above ten times the first price is a typo
_AMOUNT = re.compile(r"^\d{1,9}([.,]\d{1,2})?$")


class KeepTryingFlow(StatesGroup):
    amount = State()  # typing the maximum price; data: DRAFT_KEY without "max"


# --- texts ----------------------------------------------------------------------------------


def _what(quote: Quote | Plan) -> str:
    service = escape(identifiers.service_name(quote.service))
    return _("{service} in {country}").format(
        service=service, country=texts.country(quote.country)
    )


def tries_text(quote: Quote, wait: timedelta) -> str:
    return "\n".join(
        [
            _("🔁 <b>Keep trying</b>"),
            _(
                "If no code arrives within {wait}, I cancel the number (you get back what the "
                "provider returns) and buy the next best offer for {what}, until a code "
                "arrives."
            ).format(wait=texts.countdown(wait.total_seconds()), what=_what(quote)),
            "",
            _("How many tries at most?"),
        ]
    )


def max_text(quote: Quote, tries: int) -> str:
    return "\n".join(
        [
            _(
                "🔁 <b>Keep trying</b>: up to {n} try",
                "🔁 <b>Keep trying</b>: up to {n} tries",
                tries,
            ).format(n=tries),
            _("First try: {price} at {provider}").format(
                price=texts.money(quote.display_price), provider=texts.title(quote.provider)
            ),
            "",
            _("Up to what price per try?"),
        ]
    )


def _example(quote: Quote) -> str:
    return format(ceiling_choices(quote.display_price, (50,))[0].amount, "f")


def type_text(quote: Quote) -> str:
    return _(
        "Type the most you would pay per try, in {currency}: at least {price}, e.g. {example}."
    ).format(
        currency=quote.display_price.currency,
        price=texts.money(quote.display_price),
        example=_example(quote),
    )


def amount_invalid(quote: Quote) -> str:
    return _(
        "That is not an amount I can use: type a number from {low} to {high}, e.g. {example}."
    ).format(
        low=texts.money(quote.display_price),
        high=texts.money(_highest(quote)),
        example=_example(quote),
    )


def summary_text(quote: Quote, tries: int, limit: Money, balance: Money | None) -> str:
    lines = [
        _("🔁 <b>Keep trying</b>: {what}").format(what=_what(quote)),
        _("Tries: up to {n}").format(n=tries),
        _("Price per try: at most {price}").format(price=texts.money(limit)),
        _("First try: {price} at {provider}").format(
            price=texts.money(quote.display_price), provider=texts.title(quote.provider)
        ),
        "",
        _(
            "Each try is paid when it is bought; a cancelled try gives back what the provider "
            "returns. I stop at the first code, when the tries are used, or when no offer "
            "within your price is left."
        ),
    ]
    if balance is not None:
        lines.append(_("Your wallet: {balance}").format(balance=texts.money(balance)))
    return "\n".join(lines)


def _refund(event: Event) -> str:
    if event.refunded is not None:
        return _("{amount} refunded to your wallet.").format(amount=texts.money(event.refunded))
    if event.refund_unknown:
        return _("The provider did not say what it returned, so nothing was refunded.")
    return ""


def event_line(event: Event) -> str | None:
    """One step as the user reads it; None for a purchase (its card says it)."""
    plan = event.plan
    if event.kind is EventKind.CANCELLED or event.kind is EventKind.CLOSED:
        assert event.order is not None
        number = escape(texts.phone(event.order.phone))
        if event.kind is EventKind.CANCELLED:
            head = _("↩️ Try {n} of {total}: no code on {number} in time, cancelled.")
        else:
            head = _("↩️ Try {n} of {total}: {number} closed without a code.")
        head = head.format(n=plan.tries_used, total=plan.tries, number=number)
        refund = _refund(event)
        return f"{head} {refund}" if refund else head
    if event.kind is EventKind.NEXT:
        assert event.offer is not None
        return _("🔁 Try {n} of {total}: buying the next offer, {price} at {provider}…").format(
            n=plan.tries_used + 1,
            total=plan.tries,
            price=texts.money(event.offer.display_price),
            provider=texts.title(event.offer.offer.provider),
        )
    if event.kind is EventKind.PENDING:
        return _(
            "⏳ The provider has not confirmed the purchase yet. I carry on once it does; "
            "if nothing was bought, nothing is charged."
        )
    if event.kind is EventKind.CODE:
        return _("✅ The code came on try {n} of {total}: keep trying is done.").format(
            n=plan.tries_used, total=plan.tries
        )
    if event.kind is EventKind.ENDED:
        return ended_text(event)
    return None


def ended_text(event: Event) -> str:
    plan = event.plan
    reason = plan.reason
    if reason is EndReason.TRIES:
        return _(
            "⏹ Keep trying has ended: the {n} try was used, it got no code.",
            "⏹ Keep trying has ended: all {n} tries were used, none got a code.",
            plan.tries,
        ).format(n=plan.tries)
    if reason is EndReason.MAX_PRICE:
        return _(
            "⏹ Keep trying has ended: the other offers cost more than your maximum of "
            "{limit} (the cheapest: {price})."
        ).format(limit=texts.money(plan.max_price), price=texts.money(event.price))
    if reason is EndReason.WALLET:
        return _(
            "⏹ Keep trying has ended: the next offer costs {price} and your wallet has "
            "{balance}. Top up and start again."
        ).format(price=texts.money(event.price), balance=texts.money(event.balance))
    if reason is EndReason.NO_OFFER:
        return _("⏹ Keep trying has ended: there is no other offer for {what} now.").format(
            what=_what(plan)
        )
    return _("⏹ Keep trying has ended: this number cannot be cancelled at its provider.")


def stopped_text() -> str:
    return _("Stopped: no more tries. This number stays yours.")


def outdated_text() -> str:
    return _("That choice is out of date: choose the tries and the price again.")


# --- keyboards ------------------------------------------------------------------------------


def _back_to_offers(quote: Quote) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=_("« Back"),
        callback_data=PickCountry(service=quote.service, country=quote.country).pack(),
    )


def tries_keyboard(quote: Quote) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.row(
        *(
            InlineKeyboardButton(
                text=_("{n} try", "{n} tries", n).format(n=n),
                callback_data=KeepTries(quote=quote.id, tries=n).pack(),
            )
            for n in TRIES
        )
    )
    kb.row(_back_to_offers(quote))
    return kb.as_markup()


def max_keyboard(quote: Quote, tries: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    row: list[InlineKeyboardButton] = []
    shown: list[Money] = []
    for percent in PERCENTS:
        limit = ceiling_choices(quote.display_price, (percent,))[0]
        if limit in shown:
            continue
        shown.append(limit)
        row.append(
            InlineKeyboardButton(
                text=f"{texts.money(limit)} (+{percent}%)",
                callback_data=KeepMax(quote=quote.id, tries=tries, percent=percent).pack(),
            )
        )
    kb.row(*row)
    kb.row(
        InlineKeyboardButton(
            text=_("✏️ Another amount"),
            callback_data=KeepMax(quote=quote.id, tries=tries, percent=0).pack(),
        )
    )
    kb.row(InlineKeyboardButton(text=_("« Back"), callback_data=KeepAsk(quote=quote.id).pack()))
    return kb.as_markup()


def summary_keyboard(quote: Quote, tries: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.row(InlineKeyboardButton(text=_("▶️ Start"), callback_data=KeepStart(quote=quote.id).pack()))
    kb.row(
        InlineKeyboardButton(
            text=_("« Back"), callback_data=KeepTries(quote=quote.id, tries=tries).pack()
        )
    )
    return kb.as_markup()


def _after(event: Event) -> InlineKeyboardMarkup:
    """Under a step's message: the order's card, or the way to buy again or top up."""
    if event.kind is EventKind.ENDED and event.plan.reason is EndReason.WALLET:
        return keyboards.need_top_up()
    if event.order is not None:
        return keyboards.open_order(event.order)
    return keyboards.back_to_menu()


# --- handlers -------------------------------------------------------------------------------


def _highest(quote: Quote) -> Money:
    return Money(quote.display_price.amount * MAX_FACTOR, quote.display_price.currency)


async def _quote(query: CallbackQuery, quote_id: str, keep: KeepTryingService) -> Quote | None:
    quote = await keep.quote(query.from_user.id, quote_id)
    if quote is None:
        await answer(query, texts.not_yours(), alert=True)
    return quote


async def ask(
    query: CallbackQuery, callback_data: KeepAsk, keep_trying: KeepTryingService
) -> None:
    quote = await _quote(query, callback_data.quote, keep_trying)
    if quote is None:
        return
    await answer(query)
    await show(query, tries_text(quote, keep_trying.wait), tries_keyboard(quote))


async def choose_tries(
    query: CallbackQuery,
    callback_data: KeepTries,
    state: FSMContext,
    keep_trying: KeepTryingService,
) -> None:
    quote = await _quote(query, callback_data.quote, keep_trying)
    if quote is None or callback_data.tries not in TRIES:
        if quote is not None:
            await answer(query, texts.not_yours(), alert=True)
        return
    await answer(query)
    if await state.get_state() == KeepTryingFlow.amount.state:
        await state.set_state(None)
    await show(
        query, max_text(quote, callback_data.tries), max_keyboard(quote, callback_data.tries)
    )


async def _summary(
    user_id: int,
    quote: Quote,
    tries: int,
    limit: Money,
    state: FSMContext,
    billing: Billing,
) -> tuple[str, InlineKeyboardMarkup]:
    await state.update_data(
        {DRAFT_KEY: {"quote": quote.id, "tries": tries, "max": format(limit.amount, "f")}}
    )
    balance = await billing.balance(user_id) if billing.charges(user_id) else None
    return summary_text(quote, tries, limit, balance), summary_keyboard(quote, tries)


async def choose_max(
    query: CallbackQuery,
    callback_data: KeepMax,
    state: FSMContext,
    keep_trying: KeepTryingService,
    billing: Billing,
) -> None:
    quote = await _quote(query, callback_data.quote, keep_trying)
    if quote is None:
        return
    tries, percent = callback_data.tries, callback_data.percent
    if tries not in TRIES or percent not in (0, *PERCENTS):
        await answer(query, texts.not_yours(), alert=True)
        return
    await answer(query)
    if percent == 0:
        await state.set_state(KeepTryingFlow.amount)
        await state.update_data({DRAFT_KEY: {"quote": quote.id, "tries": tries}})
        back = InlineKeyboardBuilder()
        back.button(text=_("« Back"), callback_data=KeepTries(quote=quote.id, tries=tries))
        await show(query, type_text(quote), back.as_markup())
        return
    limit = ceiling_choices(quote.display_price, (percent,))[0]
    text, markup = await _summary(query.from_user.id, quote, tries, limit, state, billing)
    await show(query, text, markup)


def parse_amount(text: str, quote: Quote) -> Money | None:
    """A typed maximum: at least the first price, at most ten times it; None otherwise."""
    raw = text.strip().replace(",", ".")
    if not _AMOUNT.match(raw):
        return None
    limit = Money(Decimal(raw), quote.display_price.currency)
    if not within(quote.display_price, limit) or not within(limit, _highest(quote)):
        return None
    return limit


async def typed_amount(
    message: Message,
    state: FSMContext,
    keep_trying: KeepTryingService,
    billing: Billing,
) -> None:
    assert message.from_user is not None
    draft = (await state.get_data()).get(DRAFT_KEY)
    quote = None
    if isinstance(draft, dict) and isinstance(draft.get("quote"), str):
        quote = await keep_trying.quote(message.from_user.id, draft["quote"])
    tries = draft.get("tries") if isinstance(draft, dict) else None
    if quote is None or tries not in TRIES:
        await state.set_state(None)
        await message.answer(outdated_text(), reply_markup=keyboards.back_to_menu())
        return
    assert isinstance(tries, int)
    limit = parse_amount(message.text or "", quote)
    if limit is None:
        back = InlineKeyboardBuilder()
        back.button(text=_("« Back"), callback_data=KeepTries(quote=quote.id, tries=tries))
        await message.answer(amount_invalid(quote), reply_markup=back.as_markup())
        return
    await state.set_state(None)
    text, markup = await _summary(message.from_user.id, quote, tries, limit, state, billing)
    await message.answer(text, reply_markup=markup)


def _prefix(events: Sequence[Event]) -> str:
    return "\n".join(line for e in events if (line := event_line(e)) is not None)


async def start(
    query: CallbackQuery,
    callback_data: KeepStart,
    state: FSMContext,
    keep_trying: KeepTryingService,
    orders: OrderService,
    settings: Settings,
) -> None:
    draft = (await state.get_data()).get(DRAFT_KEY)
    if (
        not isinstance(draft, dict)
        or draft.get("quote") != callback_data.quote
        or draft.get("tries") not in TRIES
        or not isinstance(draft.get("max"), str)
    ):
        await answer(query, outdated_text(), alert=True)
        return
    quote = await keep_trying.quote(query.from_user.id, callback_data.quote)
    if quote is None:
        await answer(query, texts.not_yours(), alert=True)
        return
    limit = Money(Decimal(draft["max"]), quote.display_price.currency)
    # Answered when the first purchase is over (the spinner shows it is running).
    try:
        started = await keep_trying.start(query.from_user.id, quote.id, draft["tries"], limit)
    except StartRefused:
        await answer(query, texts.not_yours(), alert=True)
        return
    await state.update_data({DRAFT_KEY: None})
    if not started.created:
        await answer(query, texts.already_bought())
        return
    await answer(query)
    events = started.events
    bought = [i for i, e in enumerate(events) if e.kind is EventKind.BOUGHT and e.order]
    if bought:  # the card of the try bought, after what led to it (another offer, say)
        order = events[bought[-1]].order
        assert order is not None
        text, markup = card_screen(await orders.view(order), orders.now())
        before = _prefix([e for e in events[: bought[-1]] if e.kind is not EventKind.BOUGHT])
        await show(query, f"{before}\n\n{text}" if before else text, markup)
        return
    text = _prefix(events) or texts.in_progress()
    last = events[-1] if events else None
    markup = _after(last) if last is not None else keyboards.main_menu(wallet=settings.wallets_on)
    await show(query, text, markup)


async def stop(
    query: CallbackQuery,
    callback_data: KeepStop,
    keep_trying: KeepTryingService,
    orders: OrderService,
) -> None:
    plan = await keep_trying.stop_plan(query.from_user.id, callback_data.plan_id)
    if plan is None:
        await answer(query, texts.not_yours(), alert=True)
        return
    await answer(query, stopped_text())
    order = await orders.get(plan.order_id, query.from_user.id) if plan.order_id else None
    if order is not None:
        text, markup = card_screen(await orders.view(order), orders.now())
        await show(query, text, markup)


def sender(messenger: Messenger, orders: OrderService) -> Tell:
    """A running plan's steps as messages in its user's language: what happened (one message)
    and each new try's card (another, so the number has its own copy button)."""

    async def tell(plan: Plan, events: Sequence[Event]) -> None:
        said = [e for e in events if e.kind is not EventKind.BOUGHT]
        if said:
            await messenger.tell(plan.user_id, lambda: (_prefix(said), _after(said[-1])))
        for event in events:
            if event.kind is EventKind.BOUGHT and event.order is not None:
                view = await orders.view(event.order)
                await messenger.tell(plan.user_id, partial(card_screen, view, orders.now()))

    return tell


def setup() -> Router:
    router = Router(name="keep_trying")
    router.callback_query.register(ask, KeepAsk.filter())
    router.callback_query.register(choose_tries, KeepTries.filter())
    router.callback_query.register(choose_max, KeepMax.filter())
    router.callback_query.register(start, KeepStart.filter())
    router.callback_query.register(stop, KeepStop.filter())
    router.message.register(typed_amount, KeepTryingFlow.amount, F.text, ~F.text.startswith("/"))
    return router
