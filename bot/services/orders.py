"""Actions on a bought number: refresh, cancel, another code, finish, ban, renew, reuse.

Each action runs once at a time per order (a repeated tap is told it is in progress), calls the
provider, and records the outcome in one transaction. Ownership is checked by the caller via
:meth:`OrderService.get` before anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bot.clock import SYSTEM_CLOCK, Clock
from bot.money import MissingExchangeRate, Money
from bot.providers.base import (
    Capability,
    OrderClosed,
    OrderKind,
    OrderNotFound,
    OrderState,
    Provider,
    ProviderError,
    RemoteStatus,
    Renewal,
    RenewalOption,
    Unsupported,
)
from bot.services.billing import FREE, Billing
from bot.services.guard import OnceGuard
from bot.services.pricing import Pricing
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


@dataclass(frozen=True, slots=True)
class OrderView:
    order: StoredOrder
    messages: tuple[StoredMessage, ...]
    capabilities: frozenset[Capability]


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
        *,
        clock: Clock = SYSTEM_CLOCK,
        billing: Billing = FREE,
    ) -> None:
        """Users ``billing`` charges pay renewals; confirmed cancels are refunded."""
        self._providers = providers
        self._orders = orders
        self._messages = messages
        self._pricing = pricing
        self._billing = billing
        self._clock = clock
        self.guard: OnceGuard[None] = OnceGuard(remember=0)

    async def get(self, order_id: int, user_id: int) -> StoredOrder | None:
        """The order if it is ``user_id``'s own; None otherwise (missing or someone else's)."""
        return await self._orders.get_for_user(order_id, user_id)

    async def view(self, order: StoredOrder) -> OrderView:
        provider = self._providers.get(order.provider)
        caps = provider.capabilities if provider else frozenset()
        messages = tuple(await self._messages.list_for_order(order.id))
        return OrderView(order, messages, caps)

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

    async def refresh(self, order: StoredOrder) -> StoredOrder:
        """Ask the provider for SMS and status now; store new messages and a final status."""
        if not order.is_active:
            return order
        state = await self.provider(order).state(order.to_order())
        return (await self.apply_state(order, state)).order

    async def apply_state(self, order: StoredOrder, state: OrderState) -> AppliedState:
        """Store what the provider reported: new messages, a final status, a new end date."""
        now = self._clock.now()
        new = await self._messages.add_new(order.id, list(state.messages), now)
        closed = False
        if state.status.is_final:
            closed = await self._orders.set_status(
                order.id, _FINAL[state.status], state.status, now
            )
        elif order.remote_status != state.status:
            await self._orders.set_remote_status(order.id, state.status, now)
        if state.expires_at and state.expires_at != order.expires_at:
            await self._orders.update_expiry(order.id, state.expires_at, now=now)
        stored = await self._reload(order)
        if (
            closed
            and stored.kind is OrderKind.ACTIVATION
            and stored.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED)
            and not await self._got_sms(order)
        ):
            await self._refund(stored)  # the provider closed it without an SMS: not charged
        return AppliedState(stored, tuple(new), closed)

    async def cancel(self, order: StoredOrder) -> StoredOrder:
        return await self._final_action(order, "cancel", OrderStatus.CANCELLED)

    async def finish(self, order: StoredOrder) -> StoredOrder:
        return await self._final_action(order, "finish", OrderStatus.FINISHED)

    async def ban(self, order: StoredOrder) -> StoredOrder:
        return await self._final_action(order, "ban", OrderStatus.BANNED)

    async def another_code(self, order: StoredOrder) -> None:
        self._require_active(order)
        async with self.guard.once((order.id, "order")):
            await self.provider(order).another_code(order.to_order())

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

    async def renew(self, order: StoredOrder, duration_hours: int) -> tuple[StoredOrder, Renewal]:
        self._require_active(order)
        if order.kind is not OrderKind.RENTAL:
            raise Unsupported(order.provider, "only rentals can be renewed")
        async with self.guard.once((order.id, "order")):
            price = await self._renewal_price(order, duration_hours)
            async with self._billing.charged(order.user_id, price) as charge:
                renewal = await self.provider(order).renew(order.to_order(), duration_hours)
                charge.order_id = order.id
            new_id = renewal.order_id if renewal.order_id != order.provider_order_id else None
            await self._orders.update_expiry(
                order.id, renewal.expires_at, now=self._clock.now(), provider_order_id=new_id
            )
        log.info("order %s renewed for %sh", order.id, duration_hours)
        return await self._reload(order), renewal

    async def _final_action(
        self, order: StoredOrder, action: str, status: OrderStatus
    ) -> StoredOrder:
        self._require_active(order)
        provider = self.provider(order)
        async with self.guard.once((order.id, "order")):
            call = {"cancel": provider.cancel, "finish": provider.finish, "ban": provider.ban}
            try:
                await call[action](order.to_order())
            except (OrderClosed, OrderNotFound):
                await self._settle(provider, order)
                raise
            await self._orders.set_status(order.id, status, None, self._clock.now())
        log.info("order %s: %s confirmed by %s", order.id, action, provider.id)
        closed = await self._reload(order)
        if action == "cancel" or (action == "ban" and not await self._got_sms(order)):
            await self._refund(closed)  # the provider confirmed: the money came back
        return closed

    async def _got_sms(self, order: StoredOrder) -> bool:
        return bool(await self._messages.list_for_order(order.id))

    async def _refund(self, order: StoredOrder) -> Money | None:
        refunded = await self._billing.refund(order.id)
        if refunded is not None:
            log.info("order %s: %s refunded to user %s", order.id, refunded, order.user_id)
        return refunded

    async def _renewal_price(self, order: StoredOrder, duration_hours: int) -> Money | None:
        """What a paying user pays for the renewal; unknown prices can't be charged."""
        if not self._billing.charges(order.user_id):
            return None
        options = await self.provider(order).renewal_options(order.to_order())
        price = next(
            (o.price for o in options if o.duration_hours == duration_hours and o.price), None
        )
        if price is None:
            raise Unsupported(order.provider, "the renewal price is not known")
        return self._pricing.user_price(price)

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
