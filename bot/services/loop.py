"""The one background loop: ``tick()`` now and every ``interval`` until stopped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


async def repeat(
    tick: Callable[[], Awaitable[Any]],
    interval: Callable[[], float],
    stopping: asyncio.Event,
    sleep: Callable[[float], Awaitable[Any]],
    what: str,
    *,
    clear: bool = True,
    steady: bool = False,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``tick`` until ``stopping`` is set; a failing round is logged and the next one
    runs as usual. ``interval`` is read each round (settings may change it in tests).

    ``steady``: rounds *start* every ``interval`` (the pause is what the round left of it, none
    when it took longer), so a round's own length does not stretch the cadence. ``clear``:
    whether to clear ``stopping`` first (False when several loops share one event)."""
    if clear:
        stopping.clear()
    while not stopping.is_set():
        started = monotonic()
        try:
            await tick()
        except Exception:
            log.exception("%s round failed; the next one runs as usual", what)
        pause = interval()
        if steady:
            pause = max(0.0, pause - (monotonic() - started))
        sleeping = asyncio.ensure_future(sleep(pause))
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({sleeping, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sleeping, stopped):
            task.cancel()
