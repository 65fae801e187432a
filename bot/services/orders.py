"""Actions on a bought number: refresh, cancel, another code, finish, ban, renew, reuse.

Each action runs once at a time per order (a repeated tap is told it is in progress), calls the
provider, and records the outcome in one transaction. Ownership is checked by the caller via
:meth:`OrderService.get` before anything else.

Money follows the provider: a cancel is offered only where the provider's rules
(:meth:`Provider.cancel_terms`) let it succeed, and what the user gets back is the share of
their payment that the provider returned (:class:`CancelOutcome`). Renewals and cancels are
written ahead (:mod:`storage.intents`), so a crash in the middle is finished by the reconciler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.clock import SYSTEM_CLOCK, Clock
from bot.failpoints import crash_point
from bot.logs import order_log_context
from bot.metrics import NO_METRICS, Metrics
from bot.money import MissingExchangeRate, Money
from bot.providers.base import (
    CancelBlock,
    CancelNotAllowed,
    CancelOutcome,
    CancelTerms,
    Capability,
    OrderClosed,
    OrderKind,
    OrderNotFound,
    OrderState,
    Provider,
    ProviderError,
    PurchaseOutcomeUnknown,
    RefundScope,
    RemoteStatus,
    Renewal,
    RenewalOption,
    Unsupported,
)
from bot.services.billing import FREE, Billing
from bot.services.guard import Guard, InProgress, OnceGuard
from bot.services.pricing import Pricing
from bot.services.wallet import NotEnoughBalance
from storage.intents import Intent, IntentAction, IntentBusy, IntentsRepo, Purpose
from storage.keep_trying import KeepTryingRepo, Plan
from storage.messages import MessagesRepo
from storage.models import OrderStatus, StoredMessage, StoredOrder
from storage.orders import OrdersRepo

log = logging.getLogger(__name__)

_FINAL = {
    RemoteStatus.FINISHED: OrderStatus.FINISHED,
    RemoteStatus.CANCELLED: OrderStatus.CANCELLED,
    RemoteStatus.EXPIRED: OrderStatus.EXPIRED,
}


class OrderInactive(Exception):
    """The order is no longer active; nothing was sent to the provider."""


class CancelRefused(Exception):
    """The provider's rules refuse a cancel now (``terms`` says why); nothing was sent."""

    def __init__(self, terms: CancelTerms) -> None:
        super().__init__(f"cancel refused: {terms.blocked}")
        self.terms = terms


class ActionUnconfirmed(Exception):
    """The provider's answer to a money-moving action was lost: the reconciler will tell."""


@dataclass(frozen=True, slots=True)
class OrderView:
    order: StoredOrder
    messages: tuple[StoredMessage, ...]
    capabilities: frozenset[Capability]
    cancel: CancelTerms | None = None  # None: the provider has no cancel (or not active)
    plan: Plan | None = None  # the live keep-trying plan this order is the current try of


@dataclass(frozen=True, slots=True)
class ActionResult:
    order: StoredOrder
    refunded: Money | None = None  # what went back to the user's wallet
    refund_unknown: bool = False  # the provider confirmed but did not say what it returned


def sms_times(messages: tuple[StoredMessage, ...] | list[StoredMessage]) -> list[datetime]:
    """When each SMS arrived, as early as we know it (the provider's time, or when we saw it)."""
    return [min(m.received_at, m.stored_at) if m.received_at else m.stored_at for m in messages]


@dataclass(frozen=True, slots=True)
class AppliedState:
    order: StoredOrder  # as stored now
    new: tuple[StoredMessage, ...]
    closed: bool  # this call moved the order out of "active" (so it is announced once)


class OrderService:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        orders: OrdersRepo,
        messages: MessagesRepo,
        pricing: Pricing,
        intents: IntentsRepo,
        *,
        clock: Clock = SYSTEM_CLOCK,
        billing: Billing = FREE,
        plans: KeepTryingRepo | None = None,
        guard: Guard[None] | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        """Users ``billing`` charges pay renewals; cancels refund what the provider returned.
        ``plans``: the keep-trying plans, so a try's card says so. ``guard``: one action per
        order at a time (in this process unless given; a Redis one is shared by replicas)."""
        self._metrics = metrics
        self._plans = plans
        self._providers = providers
        self._orders = orders
        self._messages = messages
        self._intents = intents
        self._pricing = pricing
        self._billing = billing
        self._clock = clock
        self.guard: Guard[None] = guard or OnceGuard(remember=0)

    def now(self) -> datetime:
        return self._clock.now()

    async def get(self, order_id: int, user_id: int) -> StoredOrder | None:
        """The order if it is ``user_id``'s own; None otherwise (missing or someone else's)."""
        return await self._orders.get_for_user(order_id, user_id)

    async def view(self, order: StoredOrder) -> OrderView:
        provider = self._providers.get(order.provider)
        caps = provider.capabilities if provider else frozenset()
        messages = tuple(await self._messages.list_for_order(order.id))
        terms = None
        if provider is not None and order.is_active and Capability.CANCEL in caps:
            terms = self._terms(provider, order, messages)
        plan = None
        if self._plans is not None and order.is_active:
            plan = await self._plans.for_order(order.id)
        return OrderView(order, messages, caps, terms, plan if plan and plan.live else None)

    def _terms(
        self, provider: Provider, order: StoredOrder, messages: tuple[StoredMessage, ...]
    ) -> CancelTerms:
        return provider.cancel_terms(order.to_order(), sms_times(messages), self._clock.now())

    def to_display(self, money: Money | None) -> Money | None:
        """A provider price in the display currency; None when it cannot be converted."""
        if money is None:
            return None
        try:
            return self._pricing.user_price(money)
        except MissingExchangeRate:
            return None

    def provider(self, order: StoredOrder) -> Provider:
        provider = self._providers.get(order.provider)
        if provider is None:
            raise Unsupported(order.provider, "provider is not enabled any more")
        return provider

    async def refresh(self, order: StoredOrder) -> AppliedState:
        """Ask the provider for SMS and status now; store new messages and a final status."""
        if not order.is_active:
            return AppliedState(order, (), False)
        state = await self.provider(order).state(order.to_order())
        return await self.apply_state(order, state)

    @order_log_context  # its log records carry the order id and provider
    async def apply_state(self, order: StoredOrder, state: OrderState) -> AppliedState:
        """Store what the provider reported: new messages, a final status, a new end date."""
        now = self._clock.now()
        new = await self._messages.add_new(order.id, list(state.messages), now)
        closed = False
        stored_anew = bool(new) or state.status.is_final  # else: read again only if written
        if state.status.is_final:
            # An activation the provider closed without an SMS was not charged (every
            # provider's rule): the user's payment comes back with the status, in one write.
            refund = (
                RefundScope.ALL
                if order.kind is OrderKind.ACTIVATION
                and state.status in (RemoteStatus.CANCELLED, RemoteStatus.EXPIRED)
                and not await self._got_sms(order)
                else None
            )
            closed, refunded = await self._intents.close_order(
                order.id, _FINAL[state.status], state.status, now, refund
            )
            if refunded is not None:
                log.info("order %s: %s refunded to user %s", order.id, refunded, order.user_id)
                self._metrics.refund(order.provider, "closed")  # by the provider, no SMS
        elif order.remote_status != state.status:
            await self._orders.set_remote_status(order.id, state.status, now)
            stored_anew = True
        if state.expires_at and state.expires_at != order.expires_at:
            await self._orders.update_expiry(order.id, state.expires_at, now=now)
            stored_anew = True
        # A poll that found nothing new (most of them) costs no second read.
        stored = await self._reload(order) if stored_anew else order
        return AppliedState(stored, tuple(new), closed)

    @order_log_context
    async def cancel(self, order: StoredOrder) -> ActionResult:
        """Cancel where the provider's rules allow it now (CancelRefused otherwise, with no
        provider call); the user gets back the share the provider returned."""
        self._require_active(order)
        provider = self.provider(order)
        terms = self._terms(provider, order, tuple(await self._messages.list_for_order(order.id)))
        if not terms.allowed:
            if terms.blocked is CancelBlock.TOO_LATE:
                await self._settle(provider, order)  # the card then shows how it ended
            raise CancelRefused(terms)
        return await self._closing_action(
            order, provider, IntentAction.CANCEL, OrderStatus.CANCELLED, terms.refund
        )

    @order_log_context
    async def ban(self, order: StoredOrder) -> ActionResult:
        self._require_active(order)
        provider = self.provider(order)
        return await self._closing_action(
            order, provider, IntentAction.CANCEL, OrderStatus.BANNED, RefundScope.UNKNOWN
        )

    @order_log_context
    async def finish(self, order: StoredOrder) -> ActionResult:
        """Close a used number (no money moves)."""
        self._require_active(order)
        provider = self.provider(order)
        async with self.guard.once((order.id, "order")):
            try:
                await provider.finish(order.to_order())
            except (OrderClosed, OrderNotFound):
                await self._settle(provider, order)
                raise
            await self._orders.set_status(order.id, OrderStatus.FINISHED, None, self._clock.now())
        log.info("order %s: finish confirmed by %s", order.id, provider.id)
        return ActionResult(await self._reload(order))

    async def another_code(self, order: StoredOrder) -> None:
        self._require_active(order)
        async with self.guard.once((order.id, "order")):
            remember = await self.provider(order).another_code(order.to_order())
            if remember:
                await self._orders.merge_meta(order.id, remember, self._clock.now())

    async def set_auto_renew(self, order: StoredOrder, on: bool) -> StoredOrder:
        """Auto-renew on or off for an active rental that can be renewed."""
        self._require_active(order)
        if (
            order.kind is not OrderKind.RENTAL
            or Capability.RENEW not in self.provider(order).capabilities
        ):
            raise Unsupported(order.provider, "only renewable rentals renew automatically")
        await self._orders.set_auto_renew(order.id, on, self._clock.now())
        return await self._reload(order)

    async def renewal_options(self, order: StoredOrder) -> list[RenewalOption]:
        self._require_active(order)
        return await self.provider(order).renewal_options(order.to_order())

    @order_log_context
    async def renew(self, order: StoredOrder, duration_hours: int) -> tuple[StoredOrder, Renewal]:
        """Renew, written ahead: the hold and the intent before the call, the new end and the
        capture after it. NotEnoughBalance before anything is sent when the wallet is short."""
        self._require_active(order)
        if order.kind is not OrderKind.RENTAL:
            raise Unsupported(order.provider, "only rentals can be renewed")
        provider = self.provider(order)
        async with self.guard.once((order.id, "order")):
            cost, price = await self._renewal_price(order, duration_hours)
            purpose = Purpose.of(order, duration_hours, cost, price)
            intent = await self._open(IntentAction.RENEW, order, purpose, price=price)
            crash_point("renew_after_hold")
            try:
                renewal = await provider.renew(order.to_order(), duration_hours)
            except PurchaseOutcomeUnknown as exc:
                raise ActionUnconfirmed(str(exc)) from exc  # the reconciler reads the new end
            except ProviderError as exc:
                await self._intents.failed(intent, f"refused: {exc}", self._clock.now())
                raise
            new_id = renewal.order_id if renewal.order_id != order.provider_order_id else None
            renewed = await self._intents.renewed(
                intent, renewal.expires_at, self._clock.now(), provider_order_id=new_id
            )
        log.info("order %s renewed for %sh", order.id, duration_hours)
        return renewed, renewal

    async def _open(
        self,
        action: IntentAction,
        order: StoredOrder,
        purpose: Purpose,
        *,
        price: Money | None = None,
        refund: RefundScope | None = None,
    ) -> Intent:
        pays = price is not None
        try:
            intent = await self._intents.open(
                action,
                order.user_id,
                purpose,
                self._clock.now(),
                pays=pays,
                order=order,
                refund=refund,
            )
        except IntentBusy as exc:
            raise InProgress from exc
        if intent is None:
            assert price is not None
            raise NotEnoughBalance(price, await self._billing.balance(order.user_id))
        return intent

    async def _closing_action(
        self,
        order: StoredOrder,
        provider: Provider,
        action: IntentAction,
        status: OrderStatus,
        promised: RefundScope,
    ) -> ActionResult:
        """Cancel or ban, written ahead; the refund is what the provider's outcome says."""
        async with self.guard.once((order.id, "order")):
            purpose = Purpose.of(order, order.duration_hours)
            intent = await self._open(action, order, purpose, refund=promised)
            crash_point("cancel_after_intent")
            call = provider.ban if status is OrderStatus.BANNED else provider.cancel
            try:
                outcome: CancelOutcome = await call(order.to_order())
            except PurchaseOutcomeUnknown as exc:
                raise ActionUnconfirmed(str(exc)) from exc  # the reconciler reads the status
            except (OrderClosed, OrderNotFound, CancelNotAllowed) as exc:
                await self._intents.failed(intent, f"refused: {exc}", self._clock.now())
                await self._settle(provider, order)
                if isinstance(exc, CancelNotAllowed):
                    # What the provider saw that we had not yet (an SMS, the clock): the
                    # refusal is told in the rules' own words where they now explain it.
                    fresh = await self._reload(order)
                    messages = tuple(await self._messages.list_for_order(order.id))
                    terms = self._terms(provider, fresh, messages)
                    if not terms.allowed:
                        raise CancelRefused(terms) from exc
                raise
            except ProviderError as exc:
                await self._intents.failed(intent, f"refused: {exc}", self._clock.now())
                raise
            crash_point("cancel_after_answer")
            closed, refunded = await self._intents.cancelled(
                intent, status, outcome, self._clock.now()
            )
        if refunded is not None:
            self._metrics.refund(provider.id, status.value)  # cancelled, banned
        log.info(
            "order %s: %s confirmed by %s, provider returned %s, user refunded %s",
            order.id,
            status.value,
            provider.id,
            outcome.refund.value,
            refunded,
        )
        unknown = outcome.refund is RefundScope.UNKNOWN
        if unknown and self._billing.charges(order.user_id):
            log.error(
                "order %s: %s confirmed but what it returned is unknown: nothing refunded to "
                "user %s; check the provider's account",
                order.id,
                provider.id,
                order.user_id,
            )
        return ActionResult(closed, refunded, refund_unknown=unknown)

    async def _got_sms(self, order: StoredOrder) -> bool:
        return bool(await self._messages.list_for_order(order.id))

    async def _renewal_price(
        self, order: StoredOrder, duration_hours: int
    ) -> tuple[Money | None, Money | None]:
        """The provider's renewal price and what a paying user pays for it (None for users who
        do not pay). A paying user's renewal with no known price is refused, never guessed."""
        options = await self.provider(order).renewal_options(order.to_order())
        cost = next(
            (o.price for o in options if o.duration_hours == duration_hours and o.price), None
        )
        if not self._billing.charges(order.user_id):
            return cost, None
        if cost is None:
            raise Unsupported(order.provider, "the renewal price is not known")
        return cost, self._pricing.user_price(cost)

    async def _settle(self, provider: Provider, order: StoredOrder) -> None:
        """The provider refused an action as the order is closed: store what it reports now, so
        the card stops offering actions on a number that is gone."""
        try:
            state = await provider.state(order.to_order())
        except ProviderError as exc:
            log.warning("order %s: state unknown after a refused action: %s", order.id, exc)
            return
        await self.apply_state(order, state)

    def _require_active(self, order: StoredOrder) -> None:
        if not order.is_active:
            raise OrderInactive(order.status)

    async def _reload(self, order: StoredOrder) -> StoredOrder:
        fresh = await self._orders.get(order.id)
        assert fresh is not None
        return fresh
