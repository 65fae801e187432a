"""Keep trying (activations): up to N tries of one (service, country) within a maximum price.

The user starts a plan on a confirmation; its first try is that quote, bought through the
normal purchase path. While a try's number waits for its code, nothing happens; when no code
came within the window (``wait`` after the purchase, or earlier where the adapter's cancel
terms close sooner), the order is cancelled through :meth:`OrderService.cancel` (the refund is
what the provider returned, written ahead like every cancel), and the next-best activation
offer of the same service and country that the plan has not tried is quoted and bought through
:meth:`PurchaseService.buy`: never above the plan's maximum, never above the wallet (the hold is
taken with the purchase), always at the server's quote. A code on the current order ends the
plan; so do the tries running out, the offers left costing more than the maximum, the wallet
not covering one, no offer left, or the user's Stop.

The plan's state is in :mod:`storage.keep_trying` and each step is one conditional move; what a
purchase or a cancel did is read back from the intents, orders and ledger, so a restart at any
point carries on from there and buys nothing twice (a quote is bought at most once: the
intents' unique quote id). :meth:`tick` takes every live plan's next step and tells the user;
the app runs it every ``interval`` seconds on the app's clock.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.clock import Clock
from bot.domain import CancelBlock, OrderKind
from bot.money import Money
from bot.providers.base import ProviderError
from bot.services.billing import Billing
from bot.services.guard import AlreadyDone, InProgress
from bot.services.loop import repeat
from bot.services.offer_stats import OfferStatsService, pick
from bot.services.offers import OfferService, PricedOffer, sort_key
from bot.services.orders import ActionUnconfirmed, CancelRefused, OrderInactive, OrderService
from bot.services.purchase import (
    PriceRose,
    PurchaseRefused,
    PurchaseService,
    PurchaseUnconfirmed,
    QuoteInvalid,
)
from bot.services.replicas import OneReplica
from bot.services.wallet import NotEnoughBalance
from storage.intents import IntentsRepo, IntentStatus, QuoteUsed
from storage.keep_trying import EndReason, KeepTryingRepo, Plan, PlanState
from storage.messages import MessagesRepo
from storage.models import StoredOrder
from storage.orders import OrdersRepo
from storage.quotes import Quote

log = logging.getLogger(__name__)

TRIES = (2, 3)  # what the confirmation offers
MAX_TRIES = 10  # the most a plan may have (the table's check)
CANCEL_MARGIN = timedelta(minutes=1)  # cancel this long before the provider's window closes
MAX_MOVES = 8  # moves in one step at most (a price that keeps rising cannot loop forever)


class EventKind(enum.StrEnum):
    BOUGHT = "bought"  # a try's number (``order``; ``plan.tries_used`` is its number)
    CANCELLED = "cancelled"  # no code in time: cancelled (``refunded``, ``refund_unknown``)
    CLOSED = "closed"  # the order closed without a code before the plan cancelled it
    NEXT = "next"  # buying the next offer (``offer``)
    PENDING = "pending"  # the provider's answer to a purchase was lost; the reconciler tells
    CODE = "code"  # a code came on the current order: the plan is done
    ENDED = "ended"  # the plan gave up (``plan.reason``; ``price``/``balance`` say more)


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    plan: Plan  # as it is after the event
    order: StoredOrder | None = None
    offer: PricedOffer | None = None
    refunded: Money | None = None
    refund_unknown: bool = False
    price: Money | None = None  # ENDED: the cheapest offer left (max price, wallet)
    balance: Money | None = None  # ENDED with WALLET: what the wallet holds


Tell = Callable[[Plan, Sequence[Event]], Awaitable[Any]]


class StartRefused(Exception):
    """Nothing was started: the quote is not the user's, not an activation, or too dear."""


@dataclass(frozen=True, slots=True)
class Started:
    plan: Plan
    events: tuple[Event, ...]  # what the first step did (the handler shows it)
    created: bool  # False: this confirmation started a plan already


def within(price: Money, limit: Money) -> bool:
    return price.currency == limit.currency and price.amount <= limit.amount


def ceiling_choices(price: Money, percents: Sequence[int] = (20, 50, 100)) -> list[Money]:
    """The maximum prices offered for a first price: +20 %, +50 %, +100 %, rounded up to a
    cent, without repeats."""
    seen: list[Money] = []
    for percent in percents:
        amount = price.amount * (100 + percent) / 100
        rounded = Money(amount.quantize(Decimal("0.01"), rounding="ROUND_UP"), price.currency)
        if rounded not in seen:
            seen.append(rounded)
    return seen


class KeepTryingService:
    def __init__(
        self,
        repo: KeepTryingRepo,
        purchases: PurchaseService,
        orders: OrderService,
        offers: OfferService,
        order_repo: OrdersRepo,
        messages: MessagesRepo,
        intents: IntentsRepo,
        clock: Clock,
        *,
        billing: Billing,
        ranking: OfferStatsService | None = None,
        wait: timedelta = timedelta(minutes=10),
        interval: float = 5.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        one_replica: OneReplica | None = None,
    ) -> None:
        self._one_replica = one_replica  # replicas: one does a round at a time
        self._repo = repo
        self._purchases = purchases
        self._orders = orders
        self._offers = offers
        self._order_repo = order_repo
        self._messages = messages
        self._intents = intents
        self._clock = clock
        self._billing = billing
        self._ranking = ranking
        self.wait = wait
        self.interval = interval
        self._sleep = sleep
        self._tell: Tell | None = None
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._stopping = asyncio.Event()

    def attach(self, tell: Tell) -> None:
        """How a step reaches its user (the bot exists only after this service)."""
        self._tell = tell

    # --- the user's side --------------------------------------------------------------------

    async def quote(self, user_id: int, quote_id: str) -> Quote | None:
        """The confirmation's quote, if it is the user's, an activation and still buyable."""
        quote = await self._purchases.get_quote(quote_id, user_id)
        if quote is None or quote.kind is not OrderKind.ACTIVATION:
            return None
        return quote

    async def start(self, user_id: int, quote_id: str, tries: int, max_price: Money) -> Started:
        """A plan on the user's confirmation; its first try (that quote) is bought now."""
        quote = await self.quote(user_id, quote_id)
        if quote is None:
            raise StartRefused("not an activation quote of this user")
        if not 1 <= tries <= MAX_TRIES or not within(quote.display_price, max_price):
            raise StartRefused("tries or maximum price out of range")
        plan, created = await self._repo.create(
            user_id,
            quote.service,
            quote.country,
            tries,
            max_price,
            quote.id,
            (quote.provider, quote.ref),
            self._clock.now(),
        )
        if not created:
            return Started(plan, (), created=False)
        events = await self._step(plan)
        return Started(await self._reload(plan), tuple(events), created=True)

    async def stop_plan(self, user_id: int, plan_id: int) -> Plan | None:
        """Stop the user's plan (the current number stays theirs); None if not theirs."""
        plan = await self._repo.get_for_user(plan_id, user_id)
        if plan is None:
            return None
        async with self._locks[plan.id]:  # after a step in progress, never in its middle
            plan = await self._reload(plan)
            if not plan.live:
                return plan
            moved = await self._repo.move(
                plan, self._clock.now(), state=PlanState.STOPPED, reason=EndReason.STOPPED
            )
            log.info("keep-trying plan %s stopped by user %s", plan.id, user_id)
            return moved or await self._reload(plan)

    async def for_order(self, order_id: int) -> Plan | None:
        """The live plan whose current try is this order (its card says so)."""
        plan = await self._repo.for_order(order_id)
        return plan if plan is not None and plan.live else None

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await repeat(
                self.tick, lambda: self.interval, self._stopping, self._sleep, "keep trying"
            )
        finally:
            if self._one_replica is not None:
                await self._one_replica.release("keep_trying")

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> int:
        """Every live plan's next step, told to its user; returns how many plans moved."""
        if self._one_replica is not None and not await self._one_replica.holds(
            "keep_trying", self.interval
        ):
            return 0  # another replica does this round
        moved = 0
        for plan in await self._repo.live():
            try:
                events = await self._step(plan)
            except Exception:  # one plan's failure never stops the others
                log.exception("keep-trying plan %s: step failed", plan.id)
                continue
            if not events:
                continue
            if not events[-1].plan.live:
                self._locks.pop(plan.id, None)
            moved += 1
            if self._tell is not None:
                try:
                    await self._tell(events[-1].plan, events)
                except Exception:
                    log.exception("keep-trying plan %s: could not tell the user", plan.id)
        return moved

    async def _step(self, plan: Plan) -> list[Event]:
        events: list[Event] = []
        async with self._locks[plan.id]:
            current: Plan | None = await self._reload(plan)
            for _ in range(MAX_MOVES):
                if current is None or not current.live:
                    break
                current = await self._move(current, events)
        return events

    async def _move(self, plan: Plan, events: list[Event]) -> Plan | None:
        """One move from the plan's state; None when there is nothing to do now."""
        if plan.state is PlanState.BUYING:
            return await self._buying(plan, events)
        if plan.state is PlanState.WAITING:
            return await self._waiting(plan, events)
        return await self._cancelling(plan, events)

    # --- buying -----------------------------------------------------------------------------

    async def _buying(self, plan: Plan, events: list[Event]) -> Plan | None:
        assert plan.quote_id is not None
        record = await self._repo.purchase_of(plan.quote_id)
        if record is not None:  # a purchase of this quote began (before a restart, maybe)
            if record.status == IntentStatus.OPEN:
                return None  # in flight, or the reconciler resolves it
            if record.status == IntentStatus.DONE and record.order_id is not None:
                order = await self._order_repo.get(record.order_id)
                assert order is not None
                return await self._bought(plan, order, events)
            return await self._next(plan, events)  # the provider refused it: another offer
        try:
            stored = await self._purchases.buy(plan.user_id, plan.quote_id, tap=plan.quote_id)
        except (InProgress, AlreadyDone, QuoteUsed):
            return None  # the record tells next time
        except PurchaseUnconfirmed:
            log.warning("keep-trying plan %s: purchase unconfirmed", plan.id)
            events.append(Event(EventKind.PENDING, plan))
            return None
        except NotEnoughBalance as short:
            return await self._end(
                plan, EndReason.WALLET, events, price=short.price, balance=short.balance
            )
        except PriceRose as rose:
            if within(rose.quote.display_price, plan.max_price):
                return await self._repo.move(plan, self._clock.now(), quote_id=rose.quote.id)
            return await self._next(plan, events)  # that offer is too dear now
        except QuoteInvalid:  # an old quote (a long restart): its offer is priced again
            return await self._next(plan, events, again=plan.quote_id)
        except (PurchaseRefused, ProviderError) as exc:
            log.info("keep-trying plan %s: purchase refused: %s", plan.id, exc)
            return await self._next(plan, events)
        return await self._bought(plan, stored, events)

    async def _bought(self, plan: Plan, order: StoredOrder, events: list[Event]) -> Plan | None:
        moved = await self._repo.move(
            plan,
            self._clock.now(),
            state=PlanState.WAITING,
            order_id=order.id,
            quote_id=None,
            deadline=await self._deadline(order),
            tries_used=plan.tries_used + 1,
        )
        if moved is not None:
            log.info(
                "keep-trying plan %s: try %s is order %s", plan.id, moved.tries_used, order.id
            )
            events.append(Event(EventKind.BOUGHT, moved, order=order))
        return moved

    async def _deadline(self, order: StoredOrder) -> datetime:
        """When to give up waiting: ``wait`` after the purchase, before the provider's cancel
        window closes, and not before it opens."""
        deadline = order.created_at + self.wait
        terms = (await self._orders.view(order)).cancel
        if terms is not None and terms.closes_at is not None:
            deadline = min(deadline, terms.closes_at - CANCEL_MARGIN)
        if terms is not None and terms.opens_at is not None:
            deadline = max(deadline, terms.opens_at)
        return deadline

    # --- waiting and cancelling -------------------------------------------------------------

    async def _current(self, plan: Plan) -> StoredOrder:
        assert plan.order_id is not None
        order = await self._order_repo.get(plan.order_id)
        assert order is not None
        return order

    async def _got_code(self, order: StoredOrder) -> bool:
        return bool(await self._messages.list_for_order(order.id))

    async def _waiting(self, plan: Plan, events: list[Event]) -> Plan | None:
        order = await self._current(plan)
        if await self._got_code(order):
            return await self._end(plan, EndReason.CODE, events, order=order)
        if not order.is_active:
            return await self._closed(plan, order, events)
        if plan.deadline is not None and self._clock.now() < plan.deadline:
            return None
        try:  # the provider may have the code already: never cancel a number that got it
            applied = await self._orders.refresh(order)
        except ProviderError as exc:
            log.warning("keep-trying plan %s: order %s unread: %s", plan.id, order.id, exc)
            return None
        if applied.new or await self._got_code(applied.order):
            return await self._end(plan, EndReason.CODE, events, order=applied.order)
        if not applied.order.is_active:
            return await self._closed(plan, applied.order, events)
        return await self._repo.move(plan, self._clock.now(), state=PlanState.CANCELLING)

    async def _cancelling(self, plan: Plan, events: list[Event]) -> Plan | None:
        order = await self._current(plan)
        if await self._got_code(order):
            return await self._end(plan, EndReason.CODE, events, order=order)
        if not order.is_active:  # cancelled before a restart, or closed meanwhile
            return await self._closed(plan, order, events)
        if any(i.status is IntentStatus.OPEN for i in await self._intents.for_order(order.id)):
            return None  # a cancel in flight, or the reconciler finishes it
        try:
            result = await self._orders.cancel(order)
        except CancelRefused as refused:
            if refused.terms.blocked is CancelBlock.UNSUPPORTED:
                return await self._end(plan, EndReason.CANNOT_CANCEL, events, order=order)
            fresh = await self._current(plan)  # a refusal may have closed it (too late)
            if not fresh.is_active and not await self._got_code(fresh):
                return await self._closed(plan, fresh, events)
            return None  # a code (next step), or a minimum wait: later
        except (InProgress, ActionUnconfirmed, OrderInactive):
            return None
        except ProviderError as exc:
            log.warning("keep-trying plan %s: cancel of %s failed: %s", plan.id, order.id, exc)
            return None
        told = [
            Event(
                EventKind.CANCELLED,
                plan,
                order=result.order,
                refunded=result.refunded,
                refund_unknown=result.refund_unknown,
            )
        ]
        moved = await self._next(plan, told)
        if moved is not None:
            events.extend(told)
        return moved

    async def _closed(self, plan: Plan, order: StoredOrder, events: list[Event]) -> Plan | None:
        """The try's order is closed without a code: say what came back, try the next."""
        kind = EventKind.CANCELLED if plan.state is PlanState.CANCELLING else EventKind.CLOSED
        told = [Event(kind, plan, order=order, refunded=await self._repo.refunded(order.id))]
        moved = await self._next(plan, told)
        if moved is not None:
            events.extend(told)
        return moved

    # --- the next offer ---------------------------------------------------------------------

    async def _next(
        self, plan: Plan, events: list[Event], *, again: str | None = None
    ) -> Plan | None:
        """Quote the best offer the plan may buy next, or end it saying why. ``again``: a
        quote too old to buy, whose offer may be quoted again (it was not tried)."""
        if plan.tries_used >= plan.tries:
            return await self._end(plan, EndReason.TRIES, events)
        result = await self._offers.offers(plan.service, plan.country, fresh=True)
        tried = await self._repo.tried(plan.id)
        old = await self._purchases.get_quote(again, plan.user_id) if again else None
        if old is not None:
            tried.discard((old.provider, old.ref))
        untried = [
            p
            for p in result.offers
            if p.offer.kind is OrderKind.ACTIVATION
            and (p.offer.provider, p.offer.ref) not in tried
        ]
        if not untried:
            return await self._end(plan, EndReason.NO_OFFER, events)
        cheap = [p for p in untried if within(p.display_price, plan.max_price)]
        if not cheap:
            cheapest = min(untried, key=sort_key).display_price
            return await self._end(plan, EndReason.MAX_PRICE, events, price=cheapest)
        if self._billing.charges(plan.user_id):
            balance = await self._billing.balance(plan.user_id)
            payable = [p for p in cheap if within(p.display_price, balance)]
            if not payable:
                cheapest = min(cheap, key=sort_key).display_price
                return await self._end(
                    plan, EndReason.WALLET, events, price=cheapest, balance=balance
                )
            cheap = payable
        chosen = await self._choose(cheap)
        quote = await self._purchases.quote(plan.user_id, chosen)
        offer = chosen.offer
        moved = await self._repo.move(
            plan,
            self._clock.now(),
            tried=((offer.provider, offer.ref),),
            state=PlanState.BUYING,
            quote_id=quote.id,
            order_id=None,
            deadline=None,
        )
        if moved is not None:
            events.append(Event(EventKind.NEXT, moved, offer=chosen))
        return moved

    async def _choose(self, offers: Sequence[PricedOffer]) -> PricedOffer:
        return await pick(self._ranking, offers)

    async def _end(
        self,
        plan: Plan,
        reason: EndReason,
        events: list[Event],
        *,
        order: StoredOrder | None = None,
        price: Money | None = None,
        balance: Money | None = None,
    ) -> Plan | None:
        state = PlanState.DONE if reason is EndReason.CODE else PlanState.GAVE_UP
        moved = await self._repo.move(
            plan, self._clock.now(), state=state, reason=reason, quote_id=None, deadline=None
        )
        if moved is not None:
            log.info("keep-trying plan %s ended: %s", plan.id, reason.value)
            kind = EventKind.CODE if reason is EndReason.CODE else EventKind.ENDED
            events.append(Event(kind, moved, order=order, price=price, balance=balance))
        return moved

    async def _reload(self, plan: Plan) -> Plan:
        fresh = await self._repo.get(plan.id)
        assert fresh is not None
        return fresh
