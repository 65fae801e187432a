"""The reconciler: finishes every money-moving call a crash or a lost answer left open.

At start-up and every ``interval`` it takes each intent (:mod:`storage.intents`) that has been
open longer than any request can be in flight (``settle_after``) and resolves it from the
provider's own records:

* **buy**, where the provider lists orders of that kind: the matching new order in the list is
  attached to the intent's user (who is told), the hold captured; no such order means nothing
  was bought: the hold is released and the user told. Where the provider cannot list that kind
  (Get-SMS activations, SMS-BUS), nothing can be found: once the provider's unclaimed window
  has passed (it charges nothing for an order that got no SMS) the hold is released.
* **renew**: the order's end at the provider moved past the one before the call: renewed
  (captured), else not (released).
* **cancel**: the provider reports the order closed: cancelled, refunded by the scope the
  provider's rules promised when it was asked; still active: the cancel did not happen.

A provider that cannot be asked leaves the intent open for the next period; after
``alert_after`` failed periods the admins are told (once), and tries go on. New orders in a
listing that no intent claims and nobody owns are reported to the admins once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot import keyboards, texts
from bot.clock import Clock
from bot.domain import CancelOutcome, OrderState, RefundScope, RemoteStatus
from bot.logs import log_context
from bot.metrics import NO_METRICS, Metrics
from bot.providers.base import Provider, ProviderError, RemoteOrder
from bot.services.loop import repeat
from bot.services.messenger import Messenger
from bot.services.purchase import fits, order_from_listing
from bot.services.replicas import OneReplica
from storage.intents import Intent, IntentAction, IntentClosed, IntentsRepo
from storage.models import OrderStatus, StoredOrder
from storage.orders import DuplicateOrder, OrdersRepo

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[Any]]

_CLOSED = {
    RemoteStatus.CANCELLED: OrderStatus.CANCELLED,
    RemoteStatus.EXPIRED: OrderStatus.EXPIRED,
    RemoteStatus.FINISHED: OrderStatus.FINISHED,
}


@dataclass
class ReconcileReport:
    recovered: list[int] = field(default_factory=list)  # intent ids attached to an order
    released: list[int] = field(default_factory=list)  # intents closed: nothing happened
    settled: list[int] = field(default_factory=list)  # renew/cancel intents completed
    pending: list[int] = field(default_factory=list)  # still open (provider down, window)
    unowned: list[str] = field(default_factory=list)  # "provider/order id" nobody owns

    @property
    def resolved(self) -> int:
        return len(self.recovered) + len(self.released) + len(self.settled)


LEASE_NAME = "reconciler"


class Reconciler:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        intents: IntentsRepo,
        orders: OrdersRepo,
        messenger: Messenger,
        *,
        clock: Clock,
        admins: frozenset[int] = frozenset(),
        settle_after: timedelta = timedelta(minutes=2),
        interval: float = 180.0,
        alert_after: int = 3,
        sleep: Sleep = asyncio.sleep,
        metrics: Metrics = NO_METRICS,
        one_replica: OneReplica | None = None,
    ) -> None:
        self._metrics = metrics
        # Replicas: one reconciles at a time (two would match one lost purchase twice).
        self._one_replica = one_replica
        self._providers = providers
        self._intents = intents
        self._orders = orders
        self._messenger = messenger
        self._clock = clock
        self._admins = admins
        self.settle_after = settle_after
        self.interval = interval
        self._alert_after = alert_after
        self._sleep = sleep
        self._reported: set[str] = set()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """A round now (start-up) and every ``interval`` until :meth:`stop`."""
        try:
            await repeat(
                self.tick, lambda: self.interval, self._stopping, self._sleep, "reconcile"
            )
        finally:
            if self._one_replica is not None:
                await self._one_replica.release(LEASE_NAME)

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> ReconcileReport:
        report = ReconcileReport()
        now = self._clock.now()
        if self._one_replica is not None and not await self._one_replica.holds(
            LEASE_NAME, self.interval
        ):
            return report  # another replica reconciles now
        open_intents = await self._intents.list_open(created_before=now - self.settle_after)
        listings = await self._listings(open_intents)
        claimed: set[tuple[str, str]] = set()
        for intent in open_intents:
            try:
                with log_context(order_id=intent.order_id, provider=intent.provider):
                    await self._resolve(intent, listings, claimed, report)
            except IntentClosed:
                continue  # resolved meanwhile by its own process
            except Exception:
                log.exception("intent %s could not be reconciled", intent.id)
                report.pending.append(intent.id)
        await self._report_unowned(listings, claimed, report)
        self._metrics.reconciled(report)
        if report.resolved or report.unowned:
            log.info(
                "reconciled: %d recovered, %d released, %d settled, %d pending, %d unowned",
                len(report.recovered),
                len(report.released),
                len(report.settled),
                len(report.pending),
                len(report.unowned),
            )
        return report

    async def _listings(self, intents: list[Intent]) -> dict[str, list[RemoteOrder] | None]:
        """Each provider's order list, once per round, where an open purchase needs it
        (None: the listing failed)."""
        wanted = {
            i.provider
            for i in intents
            if i.action is IntentAction.BUY
            and i.provider in self._providers
            and i.kind in self._providers[i.provider].listed_kinds
        }
        listings: dict[str, list[RemoteOrder] | None] = {}
        for pid in sorted(wanted):
            try:
                listings[pid] = await self._providers[pid].list_orders()
            except ProviderError as exc:
                log.warning("reconciler: %s orders could not be listed: %s", pid, exc)
                listings[pid] = None
        return listings

    async def _resolve(
        self,
        intent: Intent,
        listings: dict[str, list[RemoteOrder] | None],
        claimed: set[tuple[str, str]],
        report: ReconcileReport,
    ) -> None:
        provider = self._providers.get(intent.provider)
        if provider is None:
            await self._pending(intent, "the provider is not enabled", report)
            return
        if intent.action is IntentAction.BUY:
            await self._resolve_buy(provider, intent, listings, claimed, report)
        elif intent.action is IntentAction.RENEW:
            await self._resolve_renew(provider, intent, report)
        else:
            await self._resolve_cancel(provider, intent, report)

    async def _resolve_buy(
        self,
        provider: Provider,
        intent: Intent,
        listings: dict[str, list[RemoteOrder] | None],
        claimed: set[tuple[str, str]],
        report: ReconcileReport,
    ) -> None:
        now = self._clock.now()
        if intent.kind not in provider.listed_kinds:
            settles_by = intent.created_at + provider.unclaimed_window(intent.kind)
            if now < settles_by:
                await self._pending(intent, "unlisted: waiting for the unclaimed window", report)
                return
            await self._release(intent, "unlisted; the unclaimed window passed", report)
            return
        listing = listings.get(provider.id)
        if listing is None:
            await self._pending(intent, "the order list could not be read", report)
            return
        candidates = [
            o
            for o in listing
            if (provider.id, o.order_id) not in claimed
            and fits(intent, o)
            and await self._orders.get_by_provider(provider.id, o.order_id) is None
        ]
        candidates.sort(key=lambda o: (o.created_at is None, o.created_at or now, o.order_id))
        if not candidates:
            await self._release(intent, "not in the provider's order list", report)
            return
        found = candidates[0]
        claimed.add((provider.id, found.order_id))
        try:
            stored = await self._intents.bought(
                intent, order_from_listing(provider.id, intent, found), now
            )
        except DuplicateOrder:
            await self._pending(intent, f"order {found.order_id} stored meanwhile", report)
            return
        log.warning(
            "reconciler: intent %s was bought: %s order %s for user %s",
            intent.id,
            provider.id,
            found.order_id,
            intent.user_id,
        )
        report.recovered.append(intent.id)
        await self._messenger.tell(
            stored.user_id,
            lambda: (texts.purchase_recovered(stored), keyboards.open_order(stored)),
        )

    async def _order_state(
        self, provider: Provider, intent: Intent, report: ReconcileReport
    ) -> tuple[StoredOrder, OrderState] | None:
        """The intent's order and its state at the provider; None when it cannot be known
        now (the intent is then released or left pending)."""
        order = await self._order(intent)
        if order is None:
            await self._release(intent, "the order is gone", report, tell=False)
            return None
        try:
            return order, await provider.state(order.to_order())
        except ProviderError as exc:
            await self._pending(intent, f"state unknown: {exc}", report)
            return None

    async def _resolve_renew(
        self, provider: Provider, intent: Intent, report: ReconcileReport
    ) -> None:
        known = await self._order_state(provider, intent, report)
        if known is None:
            return
        order, state = known
        before = intent.expires_before
        ends = state.expires_at or await self._listed_end(provider, order)
        if ends is None or before is None:
            await self._pending(intent, "the provider does not tell the end", report)
            return
        if ends > before + timedelta(minutes=1):
            renewed = await self._intents.renewed(intent, ends, self._clock.now())
            report.settled.append(intent.id)
            await self._messenger.tell(
                renewed.user_id, lambda: (texts.renewal_confirmed(renewed), None)
            )
            return
        await self._release(intent, "the end did not move: not renewed", report)

    async def _resolve_cancel(
        self, provider: Provider, intent: Intent, report: ReconcileReport
    ) -> None:
        known = await self._order_state(provider, intent, report)
        if known is None:
            return
        _, state = known
        if state.status in _CLOSED:
            refund = intent.refund if intent.refund is not RefundScope.AMOUNT else None
            outcome = CancelOutcome(refund or RefundScope.UNKNOWN, detail="seen closed later")
            closed, refunded = await self._intents.cancelled(
                intent, OrderStatus.CANCELLED, outcome, self._clock.now(), state.status
            )
            report.settled.append(intent.id)
            if refunded is not None:
                self._metrics.refund(closed.provider, "reconciled")
            await self._messenger.tell(
                closed.user_id, lambda: (texts.order_ended_refund(closed, refunded), None)
            )
            return
        await self._release(intent, "the order is still active: not cancelled", report)

    async def _listed_end(self, provider: Provider, order: StoredOrder) -> datetime | None:
        """The order's end as the provider's order list tells it (where it lists the kind)."""
        if order.kind not in provider.listed_kinds:
            return None
        try:
            listing = await provider.list_orders()
        except ProviderError as exc:
            log.warning("reconciler: %s orders could not be listed: %s", provider.id, exc)
            return None
        return next((o.expires_at for o in listing if o.order_id == order.provider_order_id), None)

    async def _order(self, intent: Intent) -> StoredOrder | None:
        return None if intent.order_id is None else await self._orders.get(intent.order_id)

    async def _release(
        self, intent: Intent, why: str, report: ReconcileReport, *, tell: bool = True
    ) -> None:
        if not await self._intents.failed(intent, why, self._clock.now()):
            return
        log.warning("reconciler: intent %s (%s) released: %s", intent.id, intent.action, why)
        report.released.append(intent.id)
        if not tell:
            return
        paid = intent.display_price if intent.hold_id is not None else None
        if intent.action is IntentAction.BUY:
            await self._messenger.tell(
                intent.user_id, lambda: (texts.purchase_released(paid), None)
            )
        else:
            await self._messenger.tell(
                intent.user_id, lambda: (texts.action_not_done(intent.action.value, paid), None)
            )

    async def _pending(self, intent: Intent, why: str, report: ReconcileReport) -> None:
        attempts = await self._intents.attempted(intent, why, self._clock.now())
        report.pending.append(intent.id)
        if attempts == self._alert_after and "window" not in why:
            log.error("intent %s unresolved after %d tries: %s", intent.id, attempts, why)
            await self._messenger.tell_all(
                self._admins, lambda: (texts.admin_intent_unresolved(intent, why), None)
            )

    async def _report_unowned(
        self,
        listings: dict[str, list[RemoteOrder] | None],
        claimed: set[tuple[str, str]],
        report: ReconcileReport,
    ) -> None:
        for pid, listing in listings.items():
            for remote in listing or []:
                key = f"{pid}/{remote.order_id}"
                if (
                    remote.status.is_final
                    or (pid, remote.order_id) in claimed
                    or key in self._reported
                    or await self._orders.get_by_provider(pid, remote.order_id) is not None
                ):
                    continue
                self._reported.add(key)
                report.unowned.append(key)
                log.error("reconciler: %s order %s belongs to no user", pid, remote.order_id)
                render = partial(_unowned, pid, remote)
                await self._messenger.tell_all(self._admins, render)


def _unowned(provider: str, remote: RemoteOrder) -> tuple[str, None]:
    return texts.admin_unowned_order(provider, remote.order_id, remote.phone), None
