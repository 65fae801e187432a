"""The background watcher: every active order polled, every new SMS pushed once, rentals kept.

One round (:meth:`Watcher.tick`) polls each provider's active orders (bounded concurrency and
rate per provider; a provider that is down is skipped with growing pauses until it answers),
stores new SMS, pushes every undelivered SMS, then looks after rentals: reminders before the
end, auto-renewal, and the notice when an order ends. :meth:`Watcher.run` repeats rounds every
``POLL_INTERVAL``. Tests call ``tick`` directly with a fake clock.

Exactly once: an SMS is stored (unique per order and provider SMS id) before it is pushed and
marked delivered right after Telegram accepted it, so a restart neither loses nor repeats one.
The only gap is a crash between Telegram's answer and that one UPDATE.

Never stalled by one message: a push is built within Telegram's limits (a long text shortened,
the code first); if Telegram refuses its content it is sent again as plain text, then without
buttons; every refusal is counted in the database and after ``give_up_after`` of them the
message is marked failed (the admins see it) and the order's later SMS go on. Transient
failures (429, 5xx, network, a non-JSON answer) leave the SMS stored and pause only that chat
(for Telegram's ``retry_after`` where it gave one), so other chats' codes are not delayed. A
round never aborts because of one order: every per-order step is isolated (logged, skipped).

Auto-renew without money: the user is told once, before the end, what is missing (with a top-up
button); the renewal is tried again every ``short_retry`` until the end, so a top-up in time
still renews.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiogram.utils.i18n import I18n
from aiolimiter import AsyncLimiter

from bot import keyboards, texts
from bot.clock import Clock
from bot.i18n import pick_locale
from bot.providers.base import (
    Capability,
    OrderKind,
    Provider,
    ProviderError,
    ProviderUnavailable,
    Sms,
)
from bot.services.admin import AdminService
from bot.services.guard import InProgress
from bot.services.loop import repeat
from bot.services.notifier import Notifier, Outcome
from bot.services.orders import ActionUnconfirmed, CancelRefused, OrderInactive, OrderService
from bot.services.wallet import NotEnoughBalance
from storage.messages import MessagesRepo
from storage.models import OrderStatus, StoredMessage, StoredOrder
from storage.notices import NoticesRepo
from storage.orders import OrdersRepo
from storage.reminders import RemindersRepo
from storage.users import UsersRepo

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[Any]]
AUTO_RENEW_MARK = -1  # a "reminder" lead that records an auto-renew attempt for this expiry
AUTO_RENEW_SHORT = -2  # ... and one that records "your wallet cannot pay the auto-renewal"
MAX_BACKOFF = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class WatchSettings:
    interval: float = 5.0
    concurrency: int = 8
    rate: float = 10.0  # requests per second per provider
    reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))
    auto_renew_before: timedelta = timedelta(minutes=30)
    grace: timedelta = timedelta(minutes=5)  # past the end, before the bot closes it itself
    give_up_after: int = 3  # refusals of a message's content before it is marked failed
    transient_pause: timedelta = timedelta(seconds=5)  # a chat's pause after a 5xx/network
    short_retry: timedelta = timedelta(minutes=5)  # auto-renew again after "not enough money"


@dataclass
class _ProviderPace:
    semaphore: asyncio.Semaphore
    limiter: AsyncLimiter
    failures: int = 0
    resume_at: datetime | None = None


@dataclass
class TickReport:
    polled: int = 0
    failed: int = 0
    skipped_providers: list[str] = field(default_factory=list)
    delivered: int = 0
    ended: int = 0


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
        self._pace = {
            pid: _ProviderPace(
                asyncio.Semaphore(settings.concurrency), AsyncLimiter(settings.rate, 1)
            )
            for pid in providers
        }
        self._delivering: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._chat_paused: dict[int, datetime] = {}  # user id -> no pushes before
        self._renew_retry: dict[int, datetime] = {}  # order id -> next auto-renew try (no money)
        self._stopping = asyncio.Event()

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Rounds every ``interval`` seconds until :meth:`stop`; a failing round is logged."""
        await repeat(
            self.tick, lambda: self.settings.interval, self._stopping, self._sleep, "watch"
        )

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> TickReport:
        report = TickReport()
        by_provider: dict[str, list[StoredOrder]] = defaultdict(list)
        for order in await self._repo.list_active():
            by_provider[order.provider].append(order)
        await asyncio.gather(
            *(self._poll_provider(pid, orders, report) for pid, orders in by_provider.items())
        )
        report.delivered += await self.deliver_pending()  # what the polls did not push
        await self._look_after_rentals(report)
        await self._alert_low_balances()
        with self._isolated("the provider notices"):
            await self._forward_notices()
        return report

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
                    with self._user_locale(await self._locale(admin)):
                        text = texts.admin_provider_notice(pid, notice)
                    await self._notifier.send(admin, text)

    @contextmanager
    def _isolated(self, what: str, order_id: int | None = None) -> Iterator[None]:
        """One order's step (or one side task) that fails is logged and skipped: the round
        goes on with the others."""
        try:
            yield
        except Exception:
            where = f" for order {order_id}" if order_id is not None else ""
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
                with self._user_locale(await self._locale(admin)):
                    text = texts.low_balance(line.provider, line.balance)
                await self._notifier.send(admin, text)

    # --- polling -----------------------------------------------------------------------------

    async def _poll_provider(
        self, pid: str, orders: list[StoredOrder], report: TickReport
    ) -> None:
        pace = self._pace.get(pid)
        if pace is None:  # the provider is not enabled any more: nothing to ask
            return
        now = self._clock.now()
        if pace.resume_at is not None and now < pace.resume_at:
            report.skipped_providers.append(pid)
            return
        results = await asyncio.gather(*(self._poll(pace, order, report) for order in orders))
        if results and not any(results):
            pace.failures += 1
            pause = min(timedelta(seconds=self.settings.interval * 2**pace.failures), MAX_BACKOFF)
            pace.resume_at = now + pause
            log.warning("%s is not answering; next try in %ss", pid, pause.total_seconds())
        else:
            if pace.failures:
                log.info("%s answers again", pid)
            pace.failures, pace.resume_at = 0, None

    async def _poll(self, pace: _ProviderPace, order: StoredOrder, report: TickReport) -> bool:
        """Poll one order; False only when the provider did not answer."""
        provider = self._providers[order.provider]
        try:
            async with pace.semaphore, pace.limiter:
                state = await provider.state(order.to_order())
        except ProviderUnavailable as exc:
            report.failed += 1
            log.debug("order %s: %s", order.id, exc)
            return False
        except ProviderError as exc:
            report.failed += 1
            log.warning("order %s: %s", order.id, exc)
            return True
        report.polled += 1
        with self._isolated("applying a poll", order.id):
            applied = await self._orders.apply_state(order, state)
            if applied.new:  # pushed now, not after the whole round
                report.delivered += await self._deliver_order(applied.order)
            if applied.closed:
                report.ended += 1
                await self._announce_end(applied.order)
        return True

    async def pushed_order(self, provider: str, provider_order_id: str) -> StoredOrder | None:
        """The stored order a provider's push names (whatever its status), for the webhook's
        checks before :meth:`receive`."""
        return await self._repo.get_by_provider(provider, provider_order_id)

    async def receive(self, provider: str, provider_order_id: str, sms: Sms) -> bool:
        """An SMS a provider pushed (webhook): store it and push it now. False if the order is
        unknown or no longer active (nothing is stored then)."""
        order = await self._repo.get_by_provider(provider, provider_order_id)
        if order is None or not order.is_active:
            return False
        if await self._messages.add_new(order.id, [sms], self._clock.now()):
            await self._deliver_order(order)
        return True

    # --- delivery ----------------------------------------------------------------------------

    async def deliver_pending(self) -> int:
        """Push every stored, undelivered SMS (oldest first, order by order)."""
        sent = 0
        order_ids = dict.fromkeys(m.order_id for m in await self._messages.undelivered())
        for order_id in order_ids:
            with self._isolated("delivery", order_id):
                order = await self._repo.get(order_id)
                if order is not None:
                    sent += await self._deliver_order(order)
        return sent

    async def _deliver_order(self, order: StoredOrder) -> int:
        """Push the order's undelivered SMS, oldest first. One delivery per order at a time, so
        the poll, the webhook and the end-of-round sweep never push the same SMS twice. A message
        refused for its content does not hold back the next; a chat that cannot take messages
        now (blocked, flood control, Telegram down) keeps them all for later."""
        sent = 0
        async with self._delivering[order.id]:
            for message in await self._messages.undelivered(order.id):
                if self._paused(order.user_id):
                    break
                outcome = await self._push(order, message)
                if outcome is Outcome.SENT:
                    await self._messages.mark_delivered(message.id, self._clock.now())
                    sent += 1
                elif outcome is not Outcome.REFUSED:
                    break  # RETRY / BLOCKED: kept for a later round
        return sent

    async def _push(self, order: StoredOrder, message: StoredMessage) -> Outcome:
        """Send one SMS in the first form Telegram accepts: HTML with buttons, plain text with
        buttons, plain text alone. Each refusal is counted; REFUSED when none was accepted."""
        provider = self._providers.get(order.provider)
        caps = provider.capabilities if provider else frozenset[Capability]()
        with self._user_locale(await self._locale(order.user_id)):
            markup = keyboards.sms_push(order, message.code, caps)
            plain = texts.sms_push(order, message, plain=True)
            forms = [
                (texts.sms_push(order, message), markup, False),
                (plain, markup, True),
                (plain, None, True),
            ]
        for text, buttons, is_plain in forms:
            result = await self._notifier.send(
                order.user_id, text, buttons, plain=is_plain, wait=False
            )
            if result.outcome is Outcome.RETRY:
                pause = self.settings.transient_pause
                if result.retry_after is not None:
                    pause = max(pause, timedelta(seconds=result.retry_after))
                self._chat_paused[order.user_id] = self._clock.now() + pause
            if result.outcome is not Outcome.REFUSED:
                return result.outcome
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
        return Outcome.REFUSED

    def _paused(self, user_id: int) -> bool:
        until = self._chat_paused.get(user_id)
        if until is None:
            return False
        if self._clock.now() >= until:
            del self._chat_paused[user_id]
            return False
        return True

    # --- rentals and endings -----------------------------------------------------------------

    async def _look_after_rentals(self, report: TickReport) -> None:
        now = self._clock.now()
        for order in await self._repo.list_active():
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
            self._renew_retry.pop(order.id, None)
            return
        if order.auto_renew and left <= self.settings.auto_renew_before:
            await self._auto_renew(order)
            return
        await self._remind(order, left)

    async def _remind(self, order: StoredOrder, left: timedelta) -> None:
        # A lead as long as the rental itself would remind right after the purchase.
        length = timedelta(hours=order.duration_hours) if order.duration_hours else None
        due = [
            lead
            for lead in self.settings.reminders
            if left <= lead and (length is None or lead < length)
        ]
        if not due:
            return
        keys = [int(lead.total_seconds()) for lead in due]
        if all([await self._reminders.was_sent(order.id, key) for key in keys]):
            return
        # Only the nearest reminder is sent; ones missed while the bot was down are skipped.
        options = await self._renewal_options(order)
        with self._user_locale(await self._locale(order.user_id)):
            text = texts.rental_reminder(order, texts.time_left(left.total_seconds()))
            markup = keyboards.reminder(order, options)
        if await self._notifier.send(order.user_id, text, markup):
            for key in keys:
                await self._reminders.mark_sent(order.id, key, self._clock.now())

    async def _renewal_options(self, order: StoredOrder) -> list[tuple[Any, Any]]:
        try:
            options = await self._orders.renewal_options(order)
        except (ProviderError, OrderInactive) as exc:
            log.info("order %s: no renewal options (%s)", order.id, exc)
            return []
        return [(option, self._orders.to_display(option.price)) for option in options]

    async def _auto_renew(self, order: StoredOrder) -> None:
        now = self._clock.now()
        retry_at = self._renew_retry.get(order.id)
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
                text = texts.auto_renew_failed(order, reason)
            await self._notifier.send(order.user_id, text)
            return
        self._renew_retry.pop(order.id, None)
        with self._user_locale(locale):
            text = texts.auto_renewed(renewed)
        await self._notifier.send(order.user_id, text)

    async def _short_of_money(
        self, order: StoredOrder, exc: NotEnoughBalance, locale: str
    ) -> None:
        """Nothing was held or sent to the provider. Tell the user once, with what is missing,
        and try again later in the window (a top-up in time still renews)."""
        now = self._clock.now()
        log.info("order %s: auto-renew needs %s more in the wallet", order.id, exc.missing)
        await self._reminders.unmark(order.id, AUTO_RENEW_MARK)
        self._renew_retry[order.id] = now + self.settings.short_retry
        if not await self._reminders.mark_sent(order.id, AUTO_RENEW_SHORT, now):
            return  # told already for this end date
        with self._user_locale(locale):
            text = texts.auto_renew_no_money(order, exc.price, exc.balance, exc.missing)
            markup = keyboards.need_top_up()
        if not await self._notifier.send(order.user_id, text, markup):
            await self._reminders.unmark(order.id, AUTO_RENEW_SHORT)  # told on a later try

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
        await self._notifier.send(order.user_id, text)

    # --- language ----------------------------------------------------------------------------

    async def _locale(self, user_id: int) -> str:
        user = await self._users.get(user_id)
        if user is None:
            return self._i18n.default_locale
        return pick_locale(user.language, user.telegram_language, self._i18n.available_locales)

    @contextmanager
    def _user_locale(self, locale: str) -> Iterator[None]:
        with self._i18n.context(), self._i18n.use_locale(locale):
            yield
