"""The one background loop: ``tick()`` now and every ``interval`` until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


async def repeat(
    tick: Callable[[], Awaitable[Any]],
    interval: Callable[[], float],
    stopping: asyncio.Event,
    sleep: Callable[[float], Awaitable[Any]],
    what: str,
) -> None:
    """Run ``tick`` until ``stopping`` is set; a failing round is logged and the next one
    runs as usual. ``interval`` is read each round (settings may change it in tests)."""
    stopping.clear()
    while not stopping.is_set():
        try:
            await tick()
        except Exception:
            log.exception("%s round failed; the next one runs as usual", what)
        sleeping = asyncio.ensure_future(sleep(interval()))
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({sleeping, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sleeping, stopped):
            task.cancel()
