"""What every emulator shares: an aiohttp server on 127.0.0.1, a request log, latency and faults.

Faults are injected for the next N requests: ``"5xx"`` (HTTP 502 with an HTML body),
``"garbage"`` (HTTP 200 with a body that is not what the API sends), ``"timeout"`` (the request
is held until the server stops or :meth:`release` is called, so the client's timeout fires).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from aiohttp import web

FaultMode = Literal["5xx", "garbage", "timeout"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeClock:
    """A clock tests move by hand; shared by emulators and the bot under test."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


class WallClock(FakeClock):
    """Real time (for manual runs), still movable forward with :meth:`advance`."""

    def __init__(self) -> None:
        super().__init__()
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, **delta: float) -> None:
        self._offset += timedelta(**delta)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]


class EmulatorServer:
    """Base class: subclasses add routes to ``self.app`` in ``__init__``."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.latency = 0.0  # seconds added to every answer (benchmarks)
        self.requests: list[RecordedRequest] = []
        self._faults: list[FaultMode] = []
        self._held = asyncio.Event()
        self._gated: set[str] = set()
        self._gate_skip = 0
        self._gate = asyncio.Event()
        self.gated_arrived = asyncio.Event()  # a gated request is waiting
        self.gated_done = asyncio.Event()  # ... and was handled after the gate opened
        self.app = web.Application(middlewares=[self._middleware])
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def fail(self, mode: FaultMode, times: int = 1) -> None:
        self._faults.extend([mode] * times)

    def release(self) -> None:
        """Let held ("timeout") requests finish."""
        self._held.set()

    def gate(self, name: str, *, skip: int = 0) -> None:
        """Hold requests named ``name`` (after the first ``skip`` of them) *before* they are
        handled, until :meth:`open_gate`; then they are handled as usual, even if the client
        went away meanwhile (a purchase in flight when the bot was killed still happens)."""
        self._gated.add(name)
        self._gate_skip = skip
        self._gate = asyncio.Event()
        self.gated_arrived = asyncio.Event()
        self.gated_done = asyncio.Event()

    def open_gate(self) -> None:
        self._gated.clear()
        self._gate.set()

    def calls(self, name: str) -> int:
        """How many requests named ``name`` (``method``/``action`` param or last path part)."""
        return sum(1 for r in self.requests if _name(r) == name)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.query)))
        if self.latency:
            await asyncio.sleep(self.latency)
        gated = False
        if self._gated and _name(self.requests[-1]) in self._gated:
            if self._gate_skip:
                self._gate_skip -= 1
            else:
                gated = True
                self.gated_arrived.set()
                await self._gate.wait()
        if self._faults:
            mode = self._faults.pop(0)
            if mode == "5xx":
                return web.Response(status=502, text="<html>502 Bad Gateway</html>")
            if mode == "garbage":
                return web.Response(status=200, text="<html>maintenance</html>")
            await self._held.wait()
            return web.Response(status=504, text="held")
        response = await handler(request)
        if gated:
            self.gated_done.set()
        return response

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1 (a free port unless ``port`` is given); returns the base URL."""
        self._held = asyncio.Event()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None)
        assert sockets
        port = sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        self._held.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _name(request: RecordedRequest) -> str:
    return (
        request.query.get("method")
        or request.query.get("action")
        or request.path.rsplit("/", 1)[-1]
    )
