"""A fake Telegram in a process of its own: it feeds updates to bots and counts their answers.

``python -m benchmarks.feed`` starts the tests' fake Bot API (``tests.fakes.bot_server``) on a
free port of 127.0.0.1 and a control server beside it, prints one JSON line
``{"api": "http://...", "control": "http://..."}`` and serves until its standard input is closed.
The updates benchmark runs it so that none of the fake's CPU is in the driver's or a bot's
process, and the fake says how much CPU it used itself.

``POST /run`` (JSON, answered when the run is over) runs one measurement:

* ``workload``: a JSON file ``{"warm_up": [session, ...], "sessions": [session, ...]}``, a
  session being one user's ``[{"label": ..., "update": {...}}, ...]`` (no ``update_id``: the
  fake numbers updates as it serves them). Each user sends their next update once the previous
  one is answered, as people do; every user starts at once. The warm-up sessions run to the end
  first and are not measured.
* ``expect``: per update kind (``message``, ``callback_query``), the Bot API methods that answer
  it in full (e.g. ``["answerCallbackQuery", "editMessageText"]``). A call is the answer of the
  one update its user has in flight: ``chat_id`` names the user (sendMessage, editMessageText),
  so does the callback query's id (answerCallbackQuery). A call no update expects is *extra*.
* ``refusals``: text prefixes of a refusal (the rate limit's "slow down"): an answer starting
  with one ends its update as *refused*, not answered.
* ``webhooks``: ``[{"url", "secret"}, ...]``: updates are POSTed to these, round robin, with
  ``X-Telegram-Bot-Api-Secret-Token``, at most ``in_flight`` sent and not yet answered (a
  failed POST is sent again a second later, as Telegram does). Empty: served by getUpdates
  (long polling), as many as are waiting (at most the call's ``limit``, 100 by default).
* ``stall``: seconds without any update answered after which the run gives up.

It answers what happened: updates answered and refused, the time of the first measured update
served and of its last answer (``time.monotonic()``, the same clock in every process here), each
answered update's latency (served to answered), the Bot API calls in that window by method,
the extra calls (with a few examples), the first answer each step label got, POST failures,
and this process's CPU seconds over the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.emulators.control import serve_control
from tests.fakes.bot_server import BotApiCall, FakeBotServer

ANSWERS = ("sendmessage", "editmessagetext", "answercallbackquery")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
RETRY_AFTER = 1.0  # seconds before a failed webhook POST is sent again
EXAMPLES = 5


@dataclass
class Pending:
    """The one update a user has in flight."""

    update_id: int
    label: str
    waiting: set[str]  # lower-cased methods still expected
    measured: bool
    served: float = 0.0


@dataclass
class Outcome:
    answered: int = 0
    refused: int = 0
    first_served: float | None = None
    last_answer: float | None = None
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    latencies: list[float] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    extra: Counter[str] = field(default_factory=Counter)
    extra_examples: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # step label -> its first answer
    post_failures: Counter[str] = field(default_factory=Counter)
    served_batches: list[int] = field(default_factory=list)  # getUpdates: updates per answer


def _kind(update: dict[str, Any]) -> str:
    return next(key for key in update if key != "update_id")


def _user(update: dict[str, Any]) -> int:
    body = update[_kind(update)]
    return int(body["from"]["id"])


class Run:
    """One measurement: the users' sessions, what each has in flight, what was answered."""

    def __init__(
        self,
        spec: dict[str, Any],
        ids: Iterator[int],
        deliver: Callable[[dict[str, Any]], None],
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        workload = json.loads(Path(spec["workload"]).read_text(encoding="utf-8"))
        self.expect = {
            kind: {m.lower() for m in methods} for kind, methods in spec["expect"].items()
        }
        self.refusals = tuple(spec.get("refusals", ()))
        self.deliver = deliver  # queue an update for getUpdates or a webhook POST
        self.on_end = on_end  # an update ended (answered or refused): frees a webhook slot
        self.warm_up = [deque(s) for s in workload["warm_up"]]
        self.sessions = [deque(s) for s in workload["sessions"]]
        self.total = sum(len(s) for s in self.sessions)
        self.queues: dict[int, deque[dict[str, Any]]] = {}
        self.pending: dict[int, Pending] = {}
        self.queries: dict[str, int] = {}  # callback query id -> user
        self.outcome = Outcome()
        self.progress = 0  # updates ended (warm-up included)
        self.measuring = False
        self.done = asyncio.Event()
        self._ids = ids  # update ids keep growing from run to run, as a bot's do at Telegram
        self._warming = 0

    def start(self) -> None:
        self._warming = sum(len(s) for s in self.warm_up)
        if self._warming:
            self._begin(self.warm_up, measured=False)
        else:
            self._begin_measured()

    def _begin_measured(self) -> None:
        self.measuring = True
        if not self.total:
            self.done.set()
        self._begin(self.sessions, measured=True)

    def _begin(self, sessions: list[deque[dict[str, Any]]], *, measured: bool) -> None:
        for session in sessions:
            if session:
                user = _user(session[0]["update"])
                self.queues[user] = session
                self._release(user, measured)

    def _release(self, user: int, measured: bool) -> None:
        queue = self.queues.get(user)
        if not queue:
            self.queues.pop(user, None)
            return
        step = queue.popleft()
        update = {"update_id": next(self._ids), **step["update"]}
        kind = _kind(update)
        expected = set(self.expect.get(kind, ()))
        self.pending[user] = Pending(update["update_id"], step["label"], expected, measured)
        if kind == "callback_query":
            self.queries[str(update[kind]["id"])] = user
        self.deliver(update)

    def served(self, update: dict[str, Any], now: float) -> None:
        pending = self.pending.get(_user(update))
        if pending is None or pending.update_id != update["update_id"] or pending.served:
            return  # served before (getUpdates serves an update until it is confirmed)
        pending.served = now
        if pending.measured and self.outcome.first_served is None:
            self.outcome.first_served = now
            self.outcome.cpu_start = time.process_time()

    def call(self, call: BotApiCall) -> None:
        method = call.method.lower()
        if self.outcome.first_served is not None and not self.done.is_set():
            self.outcome.calls[call.method] += 1
        if method not in ANSWERS:
            return
        user = self._user_of(method, call.params)
        pending = self.pending.get(user) if user is not None else None
        if pending is None or method not in pending.waiting:
            self.outcome.extra[call.method] += 1
            if len(self.outcome.extra_examples) < EXAMPLES:
                self.outcome.extra_examples.append(f"{call.method} to {user}: {_text(call)[:80]}")
            return
        assert user is not None
        text = _text(call)
        if text and pending.measured:  # what the user reads: sent, or edited under the tap
            self.outcome.answers.setdefault(pending.label, f"{call.method}: {text[:100]}")
        if text and text.startswith(self.refusals):
            self._end(user, pending, refused=True)
            return
        pending.waiting.discard(method)
        if not pending.waiting:
            self._end(user, pending, refused=False)

    def _user_of(self, method: str, params: dict[str, Any]) -> int | None:
        if method == "answercallbackquery":
            return self.queries.get(str(params.get("callback_query_id")))
        try:
            return int(params["chat_id"])
        except (KeyError, TypeError, ValueError):
            return None

    def _end(self, user: int, pending: Pending, *, refused: bool) -> None:
        now = time.monotonic()
        del self.pending[user]
        self.progress += 1
        if pending.measured:
            outcome = self.outcome
            if refused:
                outcome.refused += 1
            else:
                outcome.answered += 1
                outcome.latencies.append(now - pending.served)
            outcome.last_answer = now
            outcome.cpu_end = time.process_time()
            if outcome.answered + outcome.refused == self.total:
                self.done.set()
        else:
            self._warming -= 1
        self.on_end()
        self._release(user, pending.measured)
        if not pending.measured and self._warming == 0:
            self._begin_measured()

    def result(self) -> dict[str, Any]:
        o = self.outcome
        return {
            "updates": self.total,
            "answered": o.answered,
            "refused": o.refused,
            "unanswered": self.total - o.answered - o.refused,
            "first_served": o.first_served,
            "last_answer": o.last_answer,
            "cpu": o.cpu_end - o.cpu_start,
            "latencies": o.latencies,
            "calls": dict(o.calls),
            "extra": dict(o.extra),
            "extra_examples": o.extra_examples,
            "answers": o.answers,
            "post_failures": dict(o.post_failures),
            "served_batches": o.served_batches,
        }


def _text(call: BotApiCall) -> str:
    text = call.params.get("text")
    return text if isinstance(text, str) else ""


class FakeTelegram(FakeBotServer):
    """The fake Bot API, serving a run's updates by getUpdates and counting the answers."""

    def __init__(self) -> None:
        super().__init__()
        self.run: Run | None = None
        self.ids = itertools.count(1)
        self.ready: deque[dict[str, Any]] = deque()
        self.wake = asyncio.Event()

    def queue(self, update: dict[str, Any]) -> None:
        self.ready.append(update)
        self.wake.set()

    async def _result(self, call: BotApiCall) -> Any:
        if call.method.lower() == "getupdates":
            return await self._get_updates(call)
        if self.run is not None:
            self.run.call(call)
        return await super()._result(call)

    async def _get_updates(self, call: BotApiCall) -> list[dict[str, Any]]:
        """As Telegram: the waiting updates from ``offset`` on (those before it are confirmed
        and dropped), at most ``limit``; an update is served again until confirmed (a call
        whose client went away, e.g. a bot stopped mid-poll, loses nothing)."""
        offset = int(call.params.get("offset", 0) or 0)
        while self.ready and self.ready[0]["update_id"] < offset:
            self.ready.popleft()
        if not self.ready:
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(float(call.params.get("timeout", 0)), 1.0)):
                    await self.wake.wait()
            while self.ready and self.ready[0]["update_id"] < offset:
                self.ready.popleft()
        limit = int(call.params.get("limit", 100) or 100)
        batch = list(itertools.islice(self.ready, limit))
        run, now = self.run, time.monotonic()
        if run is not None and batch:
            for update in batch:
                run.served(update, now)
            if run.measuring:
                run.outcome.served_batches.append(len(batch))
        return batch


class Webhooks:
    """Sends a run's updates to webhooks, round robin, at most ``in_flight`` unanswered."""

    def __init__(self, targets: list[dict[str, str]], in_flight: int) -> None:
        self.targets = itertools.cycle(targets)
        self.slots = asyncio.Semaphore(in_flight)
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.in_flight = in_flight
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self, run: Run) -> None:
        connector = aiohttp.TCPConnector(limit=self.in_flight)
        async with aiohttp.ClientSession(connector=connector) as http:
            try:
                while True:
                    update = await self.outbox.get()
                    await self.slots.acquire()
                    task = asyncio.create_task(self._post(http, run, next(self.targets), update))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            finally:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _post(
        self,
        http: aiohttp.ClientSession,
        run: Run,
        target: dict[str, str],
        update: dict[str, Any],
    ) -> None:
        headers = {SECRET_HEADER: target["secret"]} if target.get("secret") else {}
        while True:
            run.served(update, time.monotonic())
            try:
                async with http.post(target["url"], json=update, headers=headers) as response:
                    await response.read()
                    if response.status < 300:
                        return
                    failure = f"HTTP {response.status}"
            except aiohttp.ClientError as exc:
                failure = type(exc).__name__
            run.outcome.post_failures[failure] += 1
            await asyncio.sleep(RETRY_AFTER)


class Control:
    def __init__(self, api: FakeTelegram) -> None:
        self.api = api
        self.app = web.Application(client_max_size=1024**2)
        self.app.router.add_post("/run", self._run)

    async def _run(self, request: web.Request) -> web.Response:
        spec = await request.json()
        api = self.api
        api.ready.clear()
        targets = list(spec.get("webhooks") or ())
        sending: asyncio.Task[None] | None = None
        if targets:
            sender = Webhooks(targets, int(spec.get("in_flight", 100)))
            run = Run(spec, api.ids, sender.outbox.put_nowait, sender.slots.release)
            sending = asyncio.create_task(sender.serve(run))
        else:
            run = Run(spec, api.ids, api.queue)
        api.run = run
        stall = float(spec.get("stall", 30.0))
        try:
            run.start()
            while not run.done.is_set():
                before = run.progress
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(run.done.wait(), stall)
                if run.progress == before:
                    break  # nothing answered for `stall` seconds: give up
        finally:
            api.run = None
            api.ready.clear()
            if sending is not None:
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sending
        return web.json_response(run.result())


async def serve() -> None:
    api = FakeTelegram()
    await api.start()
    control = Control(api)
    try:
        await serve_control(control.app, {"api": api.base_url})
    finally:
        await api.stop()


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
