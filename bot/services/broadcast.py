"""Broadcasts: one admin message to every user, within Telegram's limits, resumable.

The admin writes ``/broadcast <text>`` and sees a preview; confirming fixes the recipients in the
database (see ``storage.broadcasts``) and sends in the background, at most ``per_second``
messages a second (Telegram allows about 30 a second in all; the rest is left to the SMS pushes).
A ``RetryAfter`` is waited out and the same user tried again, up to ``attempts`` times; a user
who blocked the bot is marked and skipped. The admin's progress message is edited every
``report_every`` deliveries (and at least every ``report_interval``) and at the end.

Every delivery's outcome is written when Telegram answers, so after a restart :meth:`resume`
goes on with the users still pending. A crash between Telegram's answer and that write sends
one user the message twice, never more (Telegram offers no idempotency key).

No aiogram here: the app passes ``send`` (deliver one text to one user) and ``report`` (show the
progress to the admin).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.clock import Clock
from storage.broadcasts import Broadcast, BroadcastsRepo, DeliveryStatus, Progress

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[Any]]
TRANSIENT_PAUSE = 1.0  # seconds before another try after a failure without a RetryAfter


class Delivery(enum.StrEnum):
    SENT = "sent"
    BLOCKED = "blocked"  # the user blocked the bot (or the chat is gone)
    RETRY = "retry"  # flood control or a transient failure: the same message can go later
    FAILED = "failed"  # Telegram refused this message for this user


@dataclass(frozen=True, slots=True)
class SendOutcome:
    delivery: Delivery
    retry_after: float | None = None  # RETRY: how long Telegram asked to wait


Send = Callable[[int, str], Awaitable[SendOutcome]]
Report = Callable[[Broadcast, Progress, bool], Awaitable[None]]  # (broadcast, progress, done)


class BroadcastService:
    def __init__(
        self,
        repo: BroadcastsRepo,
        send: Send,
        report: Report,
        *,
        clock: Clock,
        sleep: Sleep,
        per_second: int = 20,
        attempts: int = 5,
        report_every: int = 25,
        report_interval: timedelta = timedelta(seconds=5),
        batch: int = 100,
        replica: str = "main",
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        if per_second < 1 or attempts < 1 or report_every < 1 or batch < 1:
            raise ValueError("per_second, attempts, report_every and batch must be positive")
        self._repo = repo
        self._send = send
        self._report = report
        self._clock = clock
        self._sleep = sleep
        self._per_second = per_second
        self._attempts = attempts
        self._report_every = report_every
        self._report_interval = report_interval
        self._batch = batch
        self._replica = replica  # replicas: the one holding a broadcast sends it
        self._lease = lease
        self._tasks: dict[int, asyncio.Task[Progress]] = {}

    async def draft(self, admin_id: int, text: str) -> tuple[Broadcast, int]:
        """A broadcast to preview, and how many users it would go to now."""
        broadcast = await self._repo.create(admin_id, text, self._clock.now())
        return broadcast, await self._repo.recipients()

    async def get(self, broadcast_id: int) -> Broadcast | None:
        return await self._repo.get(broadcast_id)

    async def cancel(self, broadcast_id: int) -> bool:
        return await self._repo.cancel(broadcast_id, self._clock.now())

    async def confirm(self, broadcast_id: int, chat_id: int, message_id: int) -> Progress | None:
        """Fix the recipients (the progress message is ``message_id`` in ``chat_id``); then
        :meth:`launch` sends. None when it was confirmed or cancelled before."""
        if not await self._repo.start(broadcast_id, chat_id, message_id, self._clock.now()):
            return None
        return await self._repo.progress(broadcast_id)

    def launch(self, broadcast_id: int) -> asyncio.Task[Progress]:
        """Send in a background task (one per broadcast)."""
        task = self._tasks.get(broadcast_id)
        if task is None or task.done():
            task = asyncio.create_task(self.run(broadcast_id), name=f"broadcast-{broadcast_id}")
            self._tasks[broadcast_id] = task
        return task

    async def resume(self) -> list[int]:
        """Go on with every broadcast a restart interrupted (at start-up), or that another
        replica held and let go (called again every so often: see :meth:`keep_resuming`)."""
        ids = [broadcast.id for broadcast in await self._repo.sending()]
        for broadcast_id in ids:
            log.info("resuming broadcast %s", broadcast_id)
            self.launch(broadcast_id)
        return ids

    async def keep_resuming(self, stopping: asyncio.Event) -> None:
        """Until ``stopping``: every half lease, take over what a dead replica was sending."""
        while not stopping.is_set():
            try:
                await self.resume()
            except Exception:
                log.exception("resuming broadcasts failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._lease.total_seconds() / 2)

    async def join(self) -> None:
        """Wait for the running broadcasts to finish (tests, and a graceful stop)."""
        while tasks := [t for t in self._tasks.values() if not t.done()]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Stop sending (at shutdown); what is still pending goes on after the restart."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await self._repo.release_sender(self._replica)
        except Exception:  # the lease runs out by itself
            log.exception("could not let go of the broadcasts this replica sends")

    async def run(self, broadcast_id: int) -> Progress:
        """Send to every pending recipient, then mark the broadcast done."""
        broadcast = await self._repo.get(broadcast_id)
        if broadcast is None:
            raise LookupError(f"no broadcast {broadcast_id}")
        window_start, in_window = self._clock.now(), 0
        reported_at, unreported = self._clock.now(), 0
        held_at = self._clock.now()
        if not await self._repo.hold_sender(broadcast_id, self._replica, held_at, self._lease):
            log.info("broadcast %s is being sent by another replica", broadcast_id)
            return await self._repo.progress(broadcast_id)
        while users := await self._repo.pending(broadcast_id, self._batch):
            for user_id in users:
                if self._clock.now() - held_at >= self._lease / 3:  # keep holding it
                    held_at = self._clock.now()
                    if not await self._repo.hold_sender(
                        broadcast_id, self._replica, held_at, self._lease
                    ):
                        log.warning("broadcast %s: taken over by another replica", broadcast_id)
                        return await self._repo.progress(broadcast_id)
                if in_window >= self._per_second:  # this second's share is used: wait
                    wait = 1.0 - (self._clock.now() - window_start).total_seconds()
                    if wait > 0:
                        await self._sleep(wait)
                    window_start, in_window = self._clock.now(), 0
                in_window += 1
                await self._deliver(broadcast, user_id)
                unreported += 1
                now = self._clock.now()
                if unreported >= self._report_every or now - reported_at >= self._report_interval:
                    progress = await self._repo.progress(broadcast_id)
                    if progress.pending:
                        await self._tell(broadcast, progress, done=False)
                    reported_at, unreported = now, 0
        await self._repo.finish(broadcast_id, self._clock.now())
        progress = await self._repo.progress(broadcast_id)
        log.info(
            "broadcast %s done: %s sent, %s blocked, %s failed",
            broadcast_id,
            progress.sent,
            progress.blocked,
            progress.failed,
        )
        await self._tell(broadcast, progress, done=True)
        return progress

    async def _deliver(self, broadcast: Broadcast, user_id: int) -> None:
        while True:
            outcome = await self._send(user_id, broadcast.text)
            if outcome.delivery is not Delivery.RETRY:
                status = DeliveryStatus(outcome.delivery.value)
                await self._repo.settle(broadcast.id, user_id, status, self._clock.now())
                return
            tries = await self._repo.retried(broadcast.id, user_id, self._clock.now())
            if tries >= self._attempts:
                log.warning("broadcast %s: gave up on user %s", broadcast.id, user_id)
                await self._repo.settle(
                    broadcast.id, user_id, DeliveryStatus.FAILED, self._clock.now()
                )
                return
            wait = outcome.retry_after if outcome.retry_after is not None else TRANSIENT_PAUSE
            await self._sleep(wait)

    async def _tell(self, broadcast: Broadcast, progress: Progress, *, done: bool) -> None:
        try:
            await self._report(broadcast, progress, done)
        except Exception:  # the admin's progress message is a courtesy: sending goes on
            log.exception("broadcast %s: could not show the progress", broadcast.id)
