"""The background watcher: what someone waits for is polled often, every new SMS pushed once.

Polling (per provider, each on its own loop in :meth:`Watcher.run`, so a provider that hangs
delays no other): a round asks the provider about its active orders by
:mod:`bot.services.scheduler`: *hot* orders (:mod:`bot.services.heat`: an activation waiting for
its code, an order just bought, just looked at or with a fresh SMS, a rental near a reminder)
every ``POLL_INTERVAL``, cold rentals every ``POLL_COLD_INTERVAL``, within the provider's rate
cap (hot ones first when it binds; cold ones are not asked later than ``COLD_SHARE`` of the
interval into a round, so a round keeps to its interval and the next one's hot orders are
asked on time). A provider that lists its active orders with their SMS counts
(:class:`BatchPolling`, BEE-SMS) is read from that listing once a round (its pages
``concurrency`` at a time where the first tells how many), what it shows changed is written in
one transaction, and SMS are read only for orders whose count moved. What the watcher keeps per
order (when it was asked, the count last read) is pruned each round to the active orders; the
rentals' reminders, renewals and ends work on the orders the round's poll read. A provider
that stops answering is asked one request a round (the most urgent one: a probe) until it
answers, so its recovery is noticed within one interval; a round stops early once
``concurrency`` requests in a row went unanswered.

Delivery (:mod:`bot.services.outbox`): every push, reminder and notice waits only for its own
chat. Telegram's ``retry_after`` or a failure (5xx, network, an HTML page instead of JSON)
parks that chat on the clock; other chats go on. Exactly once: an SMS is stored (unique per
order and provider SMS id) before it is pushed and marked delivered right after Telegram
accepted it, so a restart neither loses nor repeats one (the one gap: a crash between
Telegram's answer and that UPDATE).

Never stalled by one message: a push is built within Telegram's limits (a long text shortened,
the code first); if Telegram refuses its content it is sent again as plain text, then without
buttons; each refusal is counted in the database and after ``give_up_after`` of them the
message is marked failed (the admins see it). A message Telegram keeps failing to take
(``give_up_transient`` failures in a row, with growing pauses) is marked failed too, and the
order's later SMS go on. A round never aborts because of one order: every per-order step is
isolated (logged, skipped).

Rentals: reminders before the end, auto-renewal (``AUTO_RENEW_BEFORE``), the notice when an order
ends; each provider's rentals in that provider's loop. Auto-renew without money: the user is
told once, before the end, what is missing (with a top-up button); the renewal is tried again
every ``short_retry`` until the end, so a top-up in time still renews.

:meth:`Watcher.tick` runs one round of everything and waits for the sends it caused (tests and
scripts drive it with a fake clock).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot import keyboards, texts, timezones
from bot.clock import Clock
from bot.i18n import pick_locale
from bot.logs import log_context
from bot.providers.base import (
    BatchPolling,
    Capability,
    ListedOrder,
    ListingPage,
    OrderKind,
    OrderState,
    Provider,
    ProviderError,
    ProviderUnavailable,
    Sms,
)
from bot.services.admin import AdminService
from bot.services.guard import InProgress
from bot.services.heat import Heat
from bot.services.loop import repeat
from bot.services.notifier import Notifier, Outcome, SendResult
from bot.services.orders import ActionUnconfirmed, CancelRefused, OrderInactive, OrderService
from bot.services.outbox import Outbox
from bot.services.scheduler import Planned, RateCap, budget, is_hot, plan_round
from bot.services.wallet import NotEnoughBalance
from storage.messages import MessagesRepo, SmsSummary
from storage.models import OrderStatus, StoredMessage, StoredOrder
from storage.notices import NoticesRepo
from storage.orders import ListedChange, OrdersRepo
from storage.reminders import RemindersRepo
from storage.users import UsersRepo

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[Any]]
Ask = Callable[[], Awaitable[bool]]  # one request to a provider; False: it did not answer
Rendered = tuple[str, InlineKeyboardMarkup | None]
AUTO_RENEW_MARK = -1  # a "reminder" lead that records an auto-renew attempt for this expiry
AUTO_RENEW_SHORT = -2  # ... and one that records "your wallet cannot pay the auto-renewal"
MAX_BACKOFF = timedelta(minutes=5)
MAX_LISTING_PAGES = 1000  # 100,000 active rentals at 100 a page
COLD_SHARE = 0.8  # no cold order is asked later than this share of the interval into a round


@dataclass(frozen=True, slots=True)
class Reader:
    """Whom a message is rendered for: their language and time zone (None: UTC)."""

    locale: str
    zone: str | None


@dataclass(frozen=True, slots=True)
class WatchSettings:
    interval: float = 5.0  # seconds between two rounds: how often a hot order is asked
    concurrency: int = 8
    rate: float = 10.0  # requests per second per provider
    hot_for: timedelta = timedelta(minutes=10)
    cold_interval: float = 180.0  # seconds between two polls of a cold rental
    reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))
    auto_renew_before: timedelta = timedelta(minutes=30)
    grace: timedelta = timedelta(minutes=5)  # past the end, before the bot closes it itself
    give_up_after: int = 3  # refusals of a message's content before it is marked failed
    give_up_transient: int = 10  # failed sends in a row (5xx, network...): then marked failed
    transient_pause: timedelta = timedelta(seconds=5)  # a chat's pause after a 5xx/network
    short_retry: timedelta = timedelta(minutes=5)  # auto-renew again after "not enough money"
    # Replicas: this process's name in the leases, and how long a lease (of an order to poll,
    # of an SMS to send) lasts without renewal: a dead replica's orders move on within it.
    replica: str = "main"
    lease: timedelta = timedelta(seconds=60)


@dataclass
class _ProviderPace:
    limiter: RateCap
    down: bool = False  # not answering: each round sends one probe


@dataclass
class TickReport:
    polled: int = 0  # orders asked one by one (an SMS read after a listing included)
    listed: int = 0  # orders seen in a provider's listing
    pages: int = 0  # listing pages read
    failed: int = 0
    skipped_providers: list[str] = field(default_factory=list)  # down: only probed
    delivered: int = 0
    ended: int = 0
    fresh: dict[int, StoredOrder] = field(default_factory=dict)  # stored anew this round


class Watcher:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        orders: OrderService,
        order_repo: OrdersRepo,
        messages: MessagesRepo,
        reminders: RemindersRepo,
        users: UsersRepo,
        notifier: Notifier,
        i18n: I18n,
        *,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        settings: WatchSettings = WatchSettings(),
        admin: AdminService | None = None,
        admins: frozenset[int] = frozenset(),
        notices: NoticesRepo | None = None,
        heat: Heat | None = None,
    ) -> None:
        self._providers = providers
        self._orders = orders
        self._repo = order_repo
        self._messages = messages
        self._reminders = reminders
        self._users = users
        self._notifier = notifier
        self._i18n = i18n
        self._clock = clock
        self._sleep = sleep
        self.settings = settings
        self._admin = admin
        self._admins = admins
        self._notices = notices
        self.heat = heat or Heat(clock, settings.hot_for, settings.reminders)
        self.outbox = Outbox(clock)
        # Never more than ``rate`` requests in any second, at each provider.
        self._pace = {pid: _ProviderPace(RateCap(settings.rate, name=pid)) for pid in providers}
        # Per provider, per active order (pruned each round to the orders still active):
        self._asked_at: dict[str, dict[int, datetime]] = {pid: {} for pid in providers}
        self._read_at_count: dict[str, dict[int, int]] = {pid: {} for pid in providers}
        self._send_failures: dict[int, int] = {}  # message id -> failed sends in a row
        # ... and the next auto-renew try of an order whose wallet was short
        self._renew_retry: dict[str, dict[int, datetime]] = {pid: {} for pid in providers}
        self.delivered = 0  # SMS pushes Telegram accepted since the start
        # When the latest delivery sweep ended (``/readyz`` wants it recent): None before one.
        self.last_round_at: datetime | None = None
        self._stopping = asyncio.Event()

    # --- the loops -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Until :meth:`stop`: each provider's rounds on a loop of their own (every
        ``interval``, from start to start), the delivery sweep and the side checks on theirs.
        A failing round is logged and the next one runs as usual."""
        self._stopping.clear()

        def every() -> float:
            return self.settings.interval

        loops = [
            repeat(
                partial(self.provider_round, pid),
                every,
                self._stopping,
                self._sleep,
                f"{pid} polling",
                clear=False,
                steady=True,
            )
            for pid in self._providers
        ]
        loops.append(
            repeat(
                self.delivery_round, every, self._stopping, self._sleep, "delivery", clear=False
            )
        )
        loops.append(
            repeat(self.side_round, every, self._stopping, self._sleep, "checks", clear=False)
        )
        try:
            await asyncio.gather(*loops)
        finally:
            await self.outbox.drain()
            # another replica takes this one's orders at once, not after their leases
            with self._isolated("releasing the leases"):
                await self._repo.release_leases(self.settings.replica)

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> TickReport:
        """One round of everything (every provider, the sweep, the checks), then the sends it
        caused: what a test or a script runs instead of :meth:`run`."""
        report = TickReport()
        before = self.delivered
        await asyncio.gather(*(self.provider_round(pid, report) for pid in self._providers))
        await self.delivery_round()
        await self.side_round()
        await self.outbox.drain()
        report.delivered = self.delivered - before
        return report

    async def provider_round(self, pid: str, report: TickReport | None = None) -> TickReport:
        """One provider's round: its polls, then its rentals (reminders, renewals, ends)."""
        report = report if report is not None else TickReport()
        orders: list[StoredOrder] | None = None
        with log_context(provider=pid), self._isolated(f"polling {pid}"):
            orders = await self._poll_provider(pid, report)
        with self._isolated(f"looking after the rentals at {pid}"):
            await self._look_after_rentals(pid, report, orders)
        return report

    async def delivery_round(self) -> None:
        """Queue what the polls did not push (after a restart, a parked chat) and start the
        chats whose pause is over."""
        with self._isolated("the delivery sweep"):
            await self.deliver_pending()
        self.outbox.pump()
        self.last_round_at = self._clock.now()

    async def side_round(self) -> None:
        await self._alert_low_balances()
        with self._isolated("the provider notices"):
            await self._forward_notices()

    async def _forward_notices(self) -> None:
        """What an adapter learned that the operator must fix: kept, and told to admins once."""
        if self._notices is None:
            return
        for pid, provider in self._providers.items():
            for notice in provider.notices():
                if not await self._notices.add(pid, notice, self._clock.now()):
                    continue
                log.warning("%s: %s", pid, notice)
                for admin in sorted(self._admins):
                    self._tell(
                        admin,
                        partial(self._plain, admin, texts.admin_provider_notice, pid, notice),
                    )

    @contextmanager
    def _isolated(self, what: str, order_id: int | None = None) -> Iterator[None]:
        """One order's step (or one side task) that fails is logged and skipped: the round
        goes on with the others."""
        try:
            with log_context(order_id=order_id):
                yield
        except Exception:
            where = f" for order {order_id}" if order_id is not None else ""
            with log_context(order_id=order_id):
                log.exception("%s failed%s; the round goes on", what, where)

    async def _alert_low_balances(self) -> None:
        if self._admin is None:
            return
        with self._isolated("the low-balance check"):
            await self._alert_low_balances_now()

    async def _alert_low_balances_now(self) -> None:
        assert self._admin is not None
        for line in await self._admin.low_balances():
            assert line.balance is not None
            for admin in sorted(self._admins):
                self._tell(
                    admin,
                    partial(self._plain, admin, texts.low_balance, line.provider, line.balance),
                )

    # --- polling -----------------------------------------------------------------------------

    async def _leased(self, pid: str) -> list[StoredOrder]:
        """The provider's active orders this replica polls and looks after (all of them
        when it runs alone; another replica's until its lease runs out)."""
        return await self._repo.lease_active(
            pid, self.settings.replica, self._clock.now(), self.settings.lease
        )

    async def _poll_provider(self, pid: str, report: TickReport) -> list[StoredOrder] | None:
        """Poll the provider; its active orders as they were at the start of the round."""
        provider = self._providers.get(pid)
        if provider is None:
            return None
        orders = await self._leased(pid)
        self._forget_inactive(pid, orders)
        if not orders:
            return orders
        now = self._clock.now()
        summaries = await self._messages.active_summaries(pid)
        plan = plan_round(
            orders,
            now,
            self.heat,
            summaries,
            self._asked_at[pid],
            cold_every=timedelta(seconds=self.settings.cold_interval),
            budget=budget(self.settings.rate, self.settings.interval),
        )
        if not plan:
            return orders
        if isinstance(provider, BatchPolling) and await self._poll_listing(
            pid, provider, orders, plan, summaries, report
        ):
            return orders
        # Cold orders fill the round only while it keeps to its interval: one that ran long
        # (the cap's pace, slow answers) leaves the rest for the next (they come first there),
        # so the hot ones of the next round are asked on time.
        late = now + timedelta(seconds=self.settings.interval * COLD_SHARE)
        asks = [
            ask if p.hot else self._in_time(late, ask)
            for p, ask in ((p, self._state_ask(pid, p.order, report)) for p in plan)
        ]
        await self._ask(pid, asks, report)
        return orders

    def _in_time(self, late: datetime, ask: Ask) -> Ask:
        """``ask``, unless the round is past ``late`` when its turn comes."""

        async def cold() -> bool:
            if self._clock.now() > late:
                return True  # not asked (nor marked asked): first in line next round
            return await ask()

        return cold

    def _forget_inactive(self, pid: str, active: Sequence[StoredOrder]) -> None:
        """Keep what the watcher remembers per order only for the provider's active orders."""
        ids = {order.id for order in active}
        memories: tuple[dict[int, Any], ...] = (
            self._asked_at[pid],
            self._read_at_count[pid],
            self._renew_retry[pid],
        )
        for memory in memories:
            for gone in [order_id for order_id in memory if order_id not in ids]:
                del memory[gone]

    async def _ask(
        self, pid: str, asks: Sequence[Ask], report: TickReport, *, probe: bool = True
    ) -> None:
        """Make the requests, ``concurrency`` at a time. A provider that is down gets the first
        one alone (the probe); ``concurrency`` unanswered in a row mark it down."""
        pace = self._pace[pid]
        pending = deque(asks)
        if not pending:
            return
        if pace.down and probe:
            if not await pending.popleft()():
                report.skipped_providers.append(pid)
                return
            self._recovered(pid)
        if not pending:
            return
        limit = min(self.settings.concurrency, len(pending))
        in_row = 0

        async def worker() -> None:
            nonlocal in_row
            while pending and in_row < limit:
                ask = pending.popleft()
                if await ask():
                    in_row = 0
                else:
                    in_row += 1

        await asyncio.gather(*(worker() for _ in range(limit)))
        if in_row >= limit:
            self._went_down(pid, left=len(pending))

    def _went_down(self, pid: str, left: int = 0) -> None:
        pace = self._pace[pid]
        if not pace.down:
            log.warning(
                "%s is not answering (%s requests not made); one probe a round until it does",
                pid,
                left,
            )
        pace.down = True

    def _recovered(self, pid: str) -> None:
        pace = self._pace[pid]
        if pace.down:
            log.info("%s answers again", pid)
        pace.down = False

    def _state_ask(self, pid: str, order: StoredOrder, report: TickReport) -> Ask:
        async def ask() -> bool:
            provider = self._providers[pid]
            try:
                async with self._pace[pid].limiter:
                    state = await provider.state(order.to_order())
            except ProviderUnavailable as exc:
                report.failed += 1
                log.debug("order %s: %s", order.id, exc)
                return False
            except ProviderError as exc:
                report.failed += 1
                self._asked_at[pid][order.id] = self._clock.now()
                log.warning("order %s: %s", order.id, exc)
                return True
            report.polled += 1
            self._asked_at[pid][order.id] = self._clock.now()
            await self._apply(order, state, report)
            return True

        return ask

    async def _apply(self, order: StoredOrder, state: OrderState, report: TickReport) -> None:
        with self._isolated("applying a poll", order.id):
            applied = await self._orders.apply_state(order, state)
            if applied.order is not order:  # stored anew: this round's copy is out of date
                report.fresh[order.id] = applied.order
            if applied.new:  # pushed now, not after the whole round
                self._deliver_soon(applied.order)
            if applied.closed:
                report.ended += 1
                await self._announce_end(applied.order)

    async def _poll_listing(
        self,
        pid: str,
        provider: BatchPolling,
        orders: Sequence[StoredOrder],
        plan: Sequence[Planned],
        summaries: Mapping[int, SmsSummary],
        report: TickReport,
    ) -> bool:
        """One listing of the provider's active orders, then SMS only where a count moved
        (every one of those: an SMS someone may wait for; hot orders first), and the order's
        own state only for a due order the listing does not show (just bought, or ended).
        False when the listing is not to be had (the caller polls one by one)."""
        listed, complete = await self._read_listing(pid, provider, report)
        if listed is None:
            refused = complete
            return not refused  # down: nothing more this round; refused: one by one
        now = self._clock.now()
        due = {p.order.id for p in plan}
        asked_at, read_at_count = self._asked_at[pid], self._read_at_count[pid]
        reads: list[tuple[bool, StoredOrder, ListedOrder]] = []
        unlisted: list[StoredOrder] = []
        moved: list[ListedChange] = []  # still active, another status or end: one write
        for order in orders:
            entry = listed.get(order.provider_order_id)
            if entry is None:
                if complete and order.id in due:
                    unlisted.append(order)
                continue
            report.listed += 1
            asked_at[order.id] = now
            summary = summaries.get(order.id)
            stored = summary.count if summary else 0
            if entry.sms_count > stored and read_at_count.get(order.id) != entry.sms_count:
                hot = entry.status.is_final or is_hot(order, now, self.heat, summaries)
                reads.append((hot, order, entry))
                continue
            ends = entry.expires_at if entry.expires_at != order.expires_at else None
            if entry.status.is_final:
                await self._apply(order, OrderState(entry.status, (), entry.expires_at), report)
            elif entry.status != order.remote_status or ends is not None:
                moved.append(ListedChange(order.id, entry.status, ends))
                report.fresh[order.id] = replace(
                    order, remote_status=entry.status, expires_at=ends or order.expires_at
                )
        if moved:
            await self._repo.record_listing(moved, now)
        reads.sort(key=lambda r: not r[0])  # hot first
        asks = [self._listed_ask(pid, provider, order, entry, report) for _, order, entry in reads]
        asks += [self._state_ask(pid, order, report) for order in unlisted]
        await self._ask(pid, asks, report, probe=False)
        return True

    async def _read_listing(
        self, pid: str, provider: BatchPolling, report: TickReport
    ) -> tuple[dict[str, ListedOrder] | None, bool]:
        """(order id -> entry, whether every page was read). (None, False): the first page
        did not come (the provider is down); (None, True): the provider refused the listing.
        Where the first page tells how many there are, the others are read ``concurrency`` at
        a time (within the cap), else one after the other until the last."""
        pace = self._pace[pid]
        listed: dict[str, ListedOrder] = {}
        try:
            first = await self._listing_page(pid, provider, 1, report)
        except ProviderUnavailable:
            if pace.down:
                report.skipped_providers.append(pid)
            else:
                self._went_down(pid)
            return None, False
        except ProviderError:
            return None, True
        self._recovered(pid)
        listed.update((e.order_id, e) for e in first.orders)
        if first.last:
            return listed, True
        if first.pages is not None:
            return listed, await self._read_pages(pid, provider, first.pages, listed, report)
        for page in range(2, MAX_LISTING_PAGES + 1):
            try:
                result = await self._listing_page(pid, provider, page, report)
            except ProviderError:
                return listed, False
            fresh = {e.order_id: e for e in result.orders if e.order_id not in listed}
            listed.update(fresh)
            if result.last or not fresh:
                return listed, True
        log.warning("%s: listing longer than %s pages; the rest not read", pid, MAX_LISTING_PAGES)
        return listed, False

    async def _read_pages(
        self,
        pid: str,
        provider: BatchPolling,
        pages: int,
        listed: dict[str, ListedOrder],
        report: TickReport,
    ) -> bool:
        """Pages 2 to ``pages`` into ``listed``, ``concurrency`` at a time; whether all came."""
        if pages > MAX_LISTING_PAGES:
            log.warning("%s: listing of %s pages; only %s read", pid, pages, MAX_LISTING_PAGES)
        left = deque(range(2, min(pages, MAX_LISTING_PAGES) + 1))
        complete = pages <= MAX_LISTING_PAGES

        async def worker() -> None:
            nonlocal complete
            while left and complete:
                try:
                    result = await self._listing_page(pid, provider, left.popleft(), report)
                except ProviderError:
                    complete = False
                    return
                listed.update((e.order_id, e) for e in result.orders)

        await asyncio.gather(*(worker() for _ in range(min(self.settings.concurrency, len(left)))))
        return complete

    async def _listing_page(
        self, pid: str, provider: BatchPolling, page: int, report: TickReport
    ) -> ListingPage:
        """One page, within the cap; a failure counted and logged, then raised."""
        try:
            async with self._pace[pid].limiter:
                result = await provider.active_page(page)
        except ProviderUnavailable as exc:
            report.failed += 1
            log.debug("%s: listing page %s: %s", pid, page, exc)
            raise
        except ProviderError as exc:
            report.failed += 1
            log.warning(
                "%s: listing page %s refused (%s); orders asked one by one", pid, page, exc
            )
            raise
        report.pages += 1
        return result

    def _listed_ask(
        self,
        pid: str,
        provider: BatchPolling,
        order: StoredOrder,
        entry: ListedOrder,
        report: TickReport,
    ) -> Ask:
        async def ask() -> bool:
            try:
                async with self._pace[pid].limiter:
                    state = await provider.listed_state(order.to_order(), entry)
            except ProviderUnavailable as exc:
                report.failed += 1
                log.debug("order %s: %s", order.id, exc)
                return False
            except ProviderError as exc:
                report.failed += 1
                log.warning("order %s: %s", order.id, exc)
                return True
            report.polled += 1
            self._read_at_count[pid][order.id] = entry.sms_count
            await self._apply(order, state, report)
            return True

        return ask

    async def pushed_order(self, provider: str, provider_order_id: str) -> StoredOrder | None:
        """The stored order a provider's push names (whatever its status), for the webhook's
        checks before :meth:`receive`."""
        return await self._repo.get_by_provider(provider, provider_order_id)

    async def receive(self, provider: str, provider_order_id: str, sms: Sms) -> bool:
        """An SMS a provider pushed (webhook): store it and push it now (waiting for that one
        try only). False if the order is unknown or no longer active (nothing is stored)."""
        order = await self._repo.get_by_provider(provider, provider_order_id)
        if order is None or not order.is_active:
            return False
        if await self._messages.add_new(order.id, [sms], self._clock.now()):
            await self._deliver_soon(order)
        return True

    # --- delivery ----------------------------------------------------------------------------

    async def deliver_pending(self) -> int:
        """Queue every order that has stored, undelivered SMS (oldest first); how many."""
        order_ids = dict.fromkeys(m.order_id for m in await self._messages.undelivered())
        for order_id in order_ids:
            with self._isolated("delivery", order_id):
                order = await self._repo.get(order_id)
                if order is not None:
                    self._deliver_soon(order)
        return len(order_ids)

    def _deliver_soon(self, order: StoredOrder) -> asyncio.Future[None]:
        """The order's undelivered SMS, pushed by its chat's queue (once queued at a time)."""
        return self.outbox.submit(
            order.user_id, partial(self._deliver_order, order.id), key=("sms", order.id)
        )

    async def _deliver_order(self, order_id: int) -> datetime | None:
        """Push the order's undelivered SMS, oldest first; when Telegram cannot take them now,
        the moment to try again (the chat waits, the SMS stay stored). A message refused for
        its content (or given up on) does not hold back the next; a blocked chat keeps them."""
        order = await self._repo.get(order_id)
        if order is None:
            return None
        replica = self.settings.replica
        for message in await self._messages.undelivered(order.id):
            if not await self._messages.claim(
                message.id, replica, self._clock.now(), self.settings.lease
            ):
                return None  # another replica is sending this order's SMS
            outcome, again_at = await self._push(order, message)
            if outcome is Outcome.SENT:
                await self._messages.mark_delivered(message.id, self._clock.now())
                self.delivered += 1
                self._notifier.metrics.sms_pushed(order.provider, message, self._clock.now())
            elif outcome is Outcome.RETRY:
                await self._messages.unclaim(message.id, replica)
                return again_at
            elif outcome is Outcome.BLOCKED:
                await self._messages.unclaim(message.id, replica)
                return None  # kept until they write to the bot again
        return None

    async def _push(
        self, order: StoredOrder, message: StoredMessage
    ) -> tuple[Outcome, datetime | None]:
        """Send one SMS in the first form Telegram accepts: HTML with buttons, plain text with
        buttons, plain text alone. Each refusal is counted; REFUSED when none was accepted (or
        the message was given up on). RETRY comes with the moment to try again."""
        provider = self._providers.get(order.provider)
        caps = provider.capabilities if provider else frozenset[Capability]()
        with self._user_locale(await self._locale(order.user_id)):
            markup = keyboards.sms_push(order, message.code, caps)
            now = self._clock.now()
            plain = texts.sms_push(order, message, plain=True, now=now)
            forms = [
                (texts.sms_push(order, message, now=now), markup, False),
                (plain, markup, True),
                (plain, None, True),
            ]
        for text, buttons, is_plain in forms:
            result = await self._notifier.send(
                order.user_id, text, buttons, plain=is_plain, wait=False
            )
            if result.outcome is Outcome.RETRY:
                return await self._failed_send(order, message, result)
            self._send_failures.pop(message.id, None)
            if result.outcome is not Outcome.REFUSED:
                return result.outcome, None
            now = self._clock.now()
            counted = await self._messages.refused(
                message.id, result.detail, now, give_up_after=self.settings.give_up_after
            )
            if counted is None or counted.failed_at is not None:
                log.error(
                    "SMS %s of order %s given up after %s refusals by Telegram: %s",
                    message.id,
                    order.id,
                    counted.attempts if counted else "?",
                    result.detail,
                )
                break
        return Outcome.REFUSED, None

    async def _failed_send(
        self, order: StoredOrder, message: StoredMessage, result: SendResult
    ) -> tuple[Outcome, datetime | None]:
        """Telegram did not take the message now. Flood control (``retry_after``): wait as
        asked. Anything else (5xx, network, a page that is not the Bot API's): wait longer each
        time, and after ``give_up_transient`` failures in a row mark it failed, so the order's
        later SMS go on."""
        now = self._clock.now()
        if result.retry_after is not None:
            wait = timedelta(seconds=result.retry_after)
            return Outcome.RETRY, now + max(wait, self.settings.transient_pause)
        failures = self._send_failures.get(message.id, 0) + 1
        self._send_failures[message.id] = failures
        if failures < self.settings.give_up_transient:
            pause = min(self.settings.transient_pause * _growth(failures), MAX_BACKOFF)
            return Outcome.RETRY, now + pause
        self._send_failures.pop(message.id, None)
        reason = f"not sent after {failures} tries: {result.detail}"
        await self._messages.refused(message.id, reason, now, give_up_after=1)
        log.error("SMS %s of order %s given up: %s", message.id, order.id, reason)
        return Outcome.REFUSED, None

    def _tell(
        self,
        user_id: int,
        render: Callable[[], Awaitable[Rendered | None]],
        *,
        key: tuple[str, int] | None = None,
        on_sent: Callable[[], Awaitable[Any]] | None = None,
        on_unsent: Callable[[], Awaitable[Any]] | None = None,
    ) -> asyncio.Future[None]:
        """Queue a message (rendered when its turn comes; None: nothing to say any more) in the
        user's chat. It waits only for that chat; tried at most ``give_up_transient`` times."""
        tries = 0

        async def job() -> datetime | None:
            nonlocal tries
            rendered = await render()
            if rendered is None:
                return None
            text, markup = rendered
            result = await self._notifier.send(user_id, text, markup, wait=False)
            if result.outcome is Outcome.RETRY:
                tries += 1
                if tries < self.settings.give_up_transient:
                    pause = self.settings.transient_pause * _growth(tries)
                    if result.retry_after is not None:
                        pause = timedelta(seconds=result.retry_after)
                    return self._clock.now() + min(pause, MAX_BACKOFF)
                log.warning("a message to %s not sent after %s tries: dropped", user_id, tries)
            if result and on_sent is not None:
                await on_sent()
            elif not result and on_unsent is not None:
                await on_unsent()
            return None

        return self.outbox.submit(user_id, job, key=key)

    async def _plain(self, user_id: int, text: Callable[..., str], *args: Any) -> Rendered:
        """``text(*args)`` in the user's language, without buttons."""
        with self._user_locale(await self._locale(user_id)):
            return text(*args), None

    # --- rentals and endings -----------------------------------------------------------------

    async def _look_after_rentals(
        self, pid: str, report: TickReport, orders: Sequence[StoredOrder] | None = None
    ) -> None:
        """Reminders, renewals and ends of the provider's active orders: those the round's
        poll started from (not read again; as the poll stored them, where it did, and not
        those it closed); all of them, read now, when the poll did not get that far."""
        now = self._clock.now()
        if orders is None:
            orders = await self._leased(pid)
        for listed in orders:
            order = report.fresh.get(listed.id, listed)
            if not order.is_active:
                continue
            with self._isolated("looking after an order", order.id):
                await self._look_after(order, now, report)

    async def _look_after(self, order: StoredOrder, now: datetime, report: TickReport) -> None:
        if order.expires_at is None:
            return
        left = order.expires_at - now
        if left <= -self.settings.grace:
            if await self._close_overdue(order):
                report.ended += 1
            return
        if order.kind is not OrderKind.RENTAL or left <= timedelta():
            self._renew_retry[order.provider].pop(order.id, None)
            return
        if order.auto_renew and left <= self.settings.auto_renew_before:
            await self._auto_renew(order)
            return
        await self._remind(order, left)

    def _due_reminders(self, order: StoredOrder, left: timedelta) -> list[int]:
        # A lead as long as the rental itself would remind right after the purchase.
        length = timedelta(hours=order.duration_hours) if order.duration_hours else None
        return [
            int(lead.total_seconds())
            for lead in self.settings.reminders
            if left <= lead and (length is None or lead < length)
        ]

    async def _remind(self, order: StoredOrder, left: timedelta) -> None:
        keys = self._due_reminders(order, left)
        if not keys or all([await self._reminders.was_sent(order.id, key) for key in keys]):
            return

        async def render() -> Rendered | None:
            # Only the nearest reminder is sent; ones missed while the bot was down are skipped.
            if all([await self._reminders.was_sent(order.id, key) for key in keys]):
                return None  # sent meanwhile
            assert order.expires_at is not None
            left_now = max(order.expires_at - self._clock.now(), timedelta())
            options = await self._renewal_options(order)
            with self._user_locale(await self._locale(order.user_id)):
                text = texts.rental_reminder(order, texts.time_left(left_now.total_seconds()))
                return text, keyboards.reminder(order, options)

        async def sent() -> None:
            for key in keys:
                await self._reminders.mark_sent(order.id, key, self._clock.now())

        self._tell(order.user_id, render, key=("remind", order.id), on_sent=sent)

    async def _renewal_options(self, order: StoredOrder) -> list[tuple[Any, Any]]:
        try:
            options = await self._orders.renewal_options(order)
        except (ProviderError, OrderInactive) as exc:
            log.info("order %s: no renewal options (%s)", order.id, exc)
            return []
        return [(option, self._orders.to_display(option.price)) for option in options]

    async def _auto_renew(self, order: StoredOrder) -> None:
        now = self._clock.now()
        retry_at = self._renew_retry[order.provider].get(order.id)
        if retry_at is not None and now < retry_at:
            return  # the wallet was short a moment ago
        if not await self._reminders.mark_sent(order.id, AUTO_RENEW_MARK, now):
            return  # tried already for this end date (a renewal clears the mark)
        hours = order.duration_hours or 24
        locale = await self._locale(order.user_id)
        try:
            renewed, _ = await self._orders.renew(order, hours)
        except InProgress:
            return
        except NotEnoughBalance as exc:
            await self._short_of_money(order, exc, locale)
            return
        except ActionUnconfirmed as exc:  # the reconciler finds out and tells the user
            log.warning("order %s: auto-renew unconfirmed: %s", order.id, exc)
            return
        except (ProviderError, OrderInactive) as exc:
            log.warning("order %s: auto-renew failed: %s", order.id, exc)
            with self._user_locale(locale):
                reason = (
                    texts.provider_error(exc)
                    if isinstance(exc, ProviderError)
                    else texts.order_not_active()
                )
                failed: Rendered = (texts.auto_renew_failed(order, reason), None)
            self._tell(order.user_id, partial(_ready, failed))
            return
        self._renew_retry[order.provider].pop(order.id, None)
        with self._user_locale(locale):
            done: Rendered = (texts.auto_renewed(renewed), None)
        self._tell(order.user_id, partial(_ready, done))

    async def _short_of_money(
        self, order: StoredOrder, exc: NotEnoughBalance, locale: Reader
    ) -> None:
        """Nothing was held or sent to the provider. Tell the user once, with what is missing,
        and try again later in the window (a top-up in time still renews)."""
        now = self._clock.now()
        log.info("order %s: auto-renew needs %s more in the wallet", order.id, exc.missing)
        await self._reminders.unmark(order.id, AUTO_RENEW_MARK)
        self._renew_retry[order.provider][order.id] = now + self.settings.short_retry
        if not await self._reminders.mark_sent(order.id, AUTO_RENEW_SHORT, now):
            return  # told already for this end date
        with self._user_locale(locale):
            text = texts.auto_renew_no_money(order, exc.price, exc.balance, exc.missing)
            short: Rendered = (text, keyboards.need_top_up())

        async def untold() -> None:
            await self._reminders.unmark(order.id, AUTO_RENEW_SHORT)  # told on a later try

        self._tell(order.user_id, partial(_ready, short), on_unsent=untold)

    async def _close_overdue(self, order: StoredOrder) -> bool:
        """Past the end (and the grace) while the provider still calls it open.

        An activation without SMS is cancelled at the provider (which refunds it); the order is
        closed here only once the provider confirmed. A rental simply ended.
        """
        got_sms = bool(await self._messages.list_for_order(order.id))
        if order.kind is OrderKind.ACTIVATION and not got_sms:
            try:
                closed = (await self._orders.cancel(order)).order
            except (
                ProviderError,
                InProgress,
                OrderInactive,
                CancelRefused,
                ActionUnconfirmed,
            ) as exc:
                log.info("order %s is overdue; cancel not possible yet (%s)", order.id, exc)
                return False
        else:
            status = OrderStatus.FINISHED if got_sms else OrderStatus.EXPIRED
            if not await self._repo.set_status(order.id, status, None, self._clock.now()):
                return False
            reloaded = await self._repo.get(order.id)
            assert reloaded is not None
            closed = reloaded
        await self._announce_end(closed)
        return True

    async def _announce_end(self, order: StoredOrder) -> None:
        got_sms = bool(await self._messages.list_for_order(order.id))
        if order.kind is OrderKind.ACTIVATION and got_sms and order.status is OrderStatus.FINISHED:
            return  # the code was pushed; "finished" is no news
        with self._user_locale(await self._locale(order.user_id)):
            text = texts.order_ended(order, got_sms)
            markup = keyboards.open_order(order)  # the card, and buy the same again
        self._tell(order.user_id, partial(_ready, (text, markup)), key=("end", order.id))

    # --- language ----------------------------------------------------------------------------

    async def _locale(self, user_id: int) -> Reader:
        user = await self._users.get(user_id)
        if user is None:
            return Reader(self._i18n.default_locale, None)
        locale = pick_locale(user.language, user.telegram_language, self._i18n.available_locales)
        return Reader(locale, user.timezone)

    @contextmanager
    def _user_locale(self, reader: Reader) -> Iterator[None]:
        i18n = self._i18n
        with i18n.context(), i18n.use_locale(reader.locale), timezones.use(reader.zone):
            yield


def _growth(failures: int) -> int:
    """How many pauses to wait after ``failures`` failed sends in a row: 1, 1, 2, 4, 8..."""
    return 1 << max(0, failures - 2)


async def _ready(rendered: Rendered) -> Rendered:
    """A message rendered already (in the user's language, when it was decided)."""
    return rendered
