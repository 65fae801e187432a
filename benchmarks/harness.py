"""What both benchmarks share: the emulators in a process of their own, percentiles, goal lines.

:class:`Emulators` starts ``python -m tests.emulators.control`` (the four provider emulators and
a control endpoint) and talks to it over HTTP, so the process a benchmark measures runs no
emulator code: no emulator CPU, memory or event-loop time is in the bot's figures.
It is a :class:`ControlledProcess`, as is the updates benchmark's fake Telegram.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = ("getsms", "smsbus", "beesms", "smsonline")


@dataclass(frozen=True)
class Request:
    at: float  # time.monotonic() of its arrival at the emulator
    name: str  # method/action or last path part


class ControlledProcess:
    """``async with Sub() as sub``: ``python -m <module>`` steered over HTTP, stopped on exit.

    The process prints one JSON line when it is ready (its ``control`` URL and what else
    :meth:`hello` keeps) and serves until its standard input closes.
    """

    module: ClassVar[str]  # what ``python -m`` runs
    name: ClassVar[str]  # what it is called when it ends before it is ready
    timeout: ClassVar[float | None] = 60  # for each request to its control URL

    def __init__(self) -> None:
        self.pid = 0
        self._process: asyncio.subprocess.Process | None = None
        self._http: httpx.AsyncClient | None = None

    def hello(self, data: dict[str, Any]) -> None:
        """Keep what the process said in its JSON line (``control`` is kept already)."""

    async def __aenter__(self) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.pid = self._process.pid
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 60)
        if not line:
            await self._stop()
            raise RuntimeError(f"{self.name} ended before it was ready")
        hello = json.loads(line)
        self.hello(hello)
        self._http = httpx.AsyncClient(base_url=hello["control"], timeout=self.timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()  # it serves until its stdin closes
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


class Emulators(ControlledProcess):
    """``async with Emulators() as emulators``: the emulator process, stopped on exit."""

    module = "tests.emulators.control"
    name = "the emulator process"

    def __init__(self) -> None:
        super().__init__()
        self.env: dict[str, str] = {}

    def hello(self, data: dict[str, Any]) -> None:
        self.env = dict(data["env"])

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        assert self._http is not None
        response = await self._http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    async def set_latency(self, seconds: float) -> None:
        await self._post("/latency", {"seconds": seconds})

    async def seed(self, provider: str, ages: Sequence[float]) -> list[dict[str, Any]]:
        """Active orders at ``provider``, bought ``ages`` seconds ago (see the control module)."""
        answer = await self._post("/seed", {"provider": provider, "ages": list(ages)})
        return list(answer["orders"])

    async def sms(self, provider: str, order_id: str, code: str) -> None:
        await self._post("/sms", {"provider": provider, "order_id": order_id, "code": code})

    async def requests(self) -> dict[str, list[Request]]:
        assert self._http is not None
        response = await self._http.get("/requests")
        response.raise_for_status()
        data = response.json()["requests"]
        return {name: [Request(at, what) for at, what in data[name]] for name in data}


def percentile(values: Sequence[float], n: int) -> float:
    """The n-th percentile by nearest rank: a value of the sample (``inf`` stays ``inf``)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(n / 100 * len(ordered)) - 1)]


def peak_in_window(times: Sequence[float], width: float = 1.0) -> int:
    """The most of ``times`` that fall in any ``width``-second window [t, t + width)."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + width) - i for i, t in enumerate(ordered)), default=0
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def goal_line(what: str, measured: str, goal: str, ok: bool | None) -> str:
    """One figure next to its goal: ``met``, ``NOT met``, or ``-`` where there is no goal."""
    mark = "-" if ok is None else verdict(ok)
    return f"  {what:<30} {measured:>20}   {goal:<44} {mark}"
