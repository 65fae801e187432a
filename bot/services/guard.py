"""Exactly one call per action: a repeated tap is told "in progress" or "done", never re-run."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

R = TypeVar("R")


class InProgress(Exception):
    """The same action is running right now."""


class AlreadyDone(Exception, Generic[R]):
    def __init__(self, result: R) -> None:
        super().__init__("already done")
        self.result = result


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

    def done(self, key: Hashable, result: R) -> None:
        self._done[key] = result
        self._done.move_to_end(key)
        while len(self._done) > self._remember:
            self._done.popitem(last=False)

    def running(self, key: Hashable) -> bool:
        return key in self._running

    def finished(self, key: Hashable) -> bool:
        return key in self._done
