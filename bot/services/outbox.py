"""The watcher's messages, queued per chat: one chat that must wait never holds another's.

Each chat has its own queue of jobs, run in order by a task of its own. A job sends (or tries
to send) one thing and returns ``None`` when it is done, or the moment before which the chat
must not be tried again (Telegram's ``retry_after``, a pause after a 5xx): the job then stays at
the head of its chat's queue, the chat is *parked* on the clock (nobody sleeps), and
:meth:`Outbox.pump` (every delivery round) starts it again once the moment has passed. Other
chats' jobs run meanwhile.

Bounded: a job with a key (``("sms", order_id)``...) is queued once while it waits; a chat holds
at most ``per_chat`` jobs (more are dropped with a warning: such a chat is broken anyway); jobs
bound their own retries. A failing job is logged and dropped; the queue goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime

from bot.clock import Clock
from bot.logs import log_context

log = logging.getLogger(__name__)
Job = Callable[[], Awaitable[datetime | None]]


@dataclass
class _Entry:
    key: Hashable | None
    job: Job
    tried: asyncio.Future[None]  # set once the job ran (or was dropped)
    running: bool = False


@dataclass
class _Chat:
    jobs: deque[_Entry] = field(default_factory=deque)
    parked_until: datetime | None = None
    worker: asyncio.Task[None] | None = None


class Outbox:
    def __init__(self, clock: Clock, *, per_chat: int = 100) -> None:
        self._clock = clock
        self._per_chat = per_chat
        self._chats: dict[int, _Chat] = {}

    def submit(self, chat_id: int, job: Job, key: Hashable | None = None) -> asyncio.Future[None]:
        """Queue ``job`` for the chat; the future is set once it ran (at once for a chat that
        is parked: the job waits in the queue, and whoever submitted it need not)."""
        chat = self._chats.setdefault(chat_id, _Chat())
        if key is not None:
            for entry in chat.jobs:
                if entry.key == key and not entry.running:
                    return entry.tried  # the same job waits already (parked, or queued)
        tried: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(chat.jobs) >= self._per_chat:
            log.warning(
                "chat %s has %s messages waiting; one more dropped", chat_id, len(chat.jobs)
            )
            tried.set_result(None)
            return tried
        chat.jobs.append(_Entry(key, job, tried))
        if self.parked(chat_id):
            tried.set_result(None)
        else:
            self._start(chat_id, chat)
        return tried

    def parked(self, chat_id: int) -> bool:
        chat = self._chats.get(chat_id)
        if chat is None or chat.parked_until is None:
            return False
        if self._clock.now() >= chat.parked_until:
            chat.parked_until = None
            return False
        return True

    def park(self, chat_id: int, until: datetime) -> None:
        """No job of the chat runs before ``until`` (what is queued stays queued)."""
        chat = self._chats.setdefault(chat_id, _Chat())
        if chat.parked_until is None or until > chat.parked_until:
            chat.parked_until = until

    def pump(self) -> None:
        """Start every chat whose pause is over and that has jobs waiting."""
        for chat_id, chat in list(self._chats.items()):
            if chat.jobs and not self.parked(chat_id):
                self._start(chat_id, chat)
            elif not chat.jobs and chat.worker is None and chat.parked_until is None:
                del self._chats[chat_id]

    async def drain(self) -> None:
        """Wait until no chat's job is running (parked chats stay parked)."""
        while running := [c.worker for c in self._chats.values() if c.worker is not None]:
            await asyncio.gather(*running, return_exceptions=True)

    def waiting(self) -> int:
        """Jobs queued in every chat (parked ones included)."""
        return sum(len(chat.jobs) for chat in self._chats.values())

    async def close(self) -> None:
        for chat in self._chats.values():
            if chat.worker is not None:
                chat.worker.cancel()
        await self.drain()

    def _start(self, chat_id: int, chat: _Chat) -> None:
        if chat.worker is None:
            chat.worker = asyncio.create_task(self._work(chat_id, chat), name=f"chat {chat_id}")

    async def _work(self, chat_id: int, chat: _Chat) -> None:
        try:
            while chat.jobs and not self.parked(chat_id):
                entry = chat.jobs[0]
                entry.running = True
                try:
                    with log_context(user_id=chat_id):
                        again_at = await entry.job()
                except Exception:
                    log.exception("a message to chat %s failed; the next one goes on", chat_id)
                    again_at = None
                finally:
                    entry.running = False
                if not entry.tried.done():
                    entry.tried.set_result(None)
                if again_at is not None:
                    self.park(chat_id, again_at)
                    break
                chat.jobs.popleft()
        finally:
            chat.worker = None
