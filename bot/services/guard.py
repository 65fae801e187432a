"""Exactly one call per action: a repeated tap is told "in progress" or "done", never re-run.

:class:`Guard` is what the services use; :class:`OnceGuard` keeps it in this process, and
:mod:`bot.redis_backends` in Redis, shared by every replica. Either is only about telling a
repeated tap apart nicely: what must never happen twice (a purchase per quote, one open intent
per order) is a database constraint.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Hashable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, Protocol, TypeVar

R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)


class InProgress(Exception):
    """The same action is running right now."""


class GuardUnavailable(InProgress):
    """Whether the action runs elsewhere cannot be known now (the shared guard is down):
    nothing was done; the caller may try again in a moment."""


class AlreadyDone(Exception, Generic[R]):
    def __init__(self, result: R) -> None:
        super().__init__("already done")
        self.result = result


class Guard(Protocol[R_contra]):
    """``once(key)``: enter only if ``key`` is neither running nor done (else InProgress or
    AlreadyDone(result)); ``done(key, result)`` inside it remembers the result."""

    def once(self, key: Hashable) -> AbstractAsyncContextManager[None]: ...

    async def done(self, key: Hashable, result: R_contra) -> None: ...


class Locks(Protocol):
    """``hold(name)``: wait for the one lock of that name (GuardUnavailable if it cannot be
    known or had)."""

    def hold(self, name: str) -> AbstractAsyncContextManager[None]: ...


class OnceGuard(Generic[R]):
    """Remembers running keys and the results of the last ``remember`` finished ones."""

    def __init__(self, remember: int = 10_000) -> None:
        self._running: set[Hashable] = set()
        self._done: OrderedDict[Hashable, R] = OrderedDict()
        self._remember = remember

    @asynccontextmanager
    async def once(self, key: Hashable) -> AsyncIterator[None]:
        """Enter only if ``key`` is neither running nor done; no await between check and mark."""
        if key in self._done:
            raise AlreadyDone(self._done[key])
        if key in self._running:
            raise InProgress
        self._running.add(key)
        try:
            yield
        finally:
            self._running.discard(key)

    async def done(self, key: Hashable, result: R) -> None:
        self._done[key] = result
        self._done.move_to_end(key)
        while len(self._done) > self._remember:
            self._done.popitem(last=False)

    def running(self, key: Hashable) -> bool:
        return key in self._running

    def finished(self, key: Hashable) -> bool:
        return key in self._done


class LocalLocks:
    """One :class:`asyncio.Lock` per name, in this process."""

    def __init__(self) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        async with self._locks[name]:
            yield
