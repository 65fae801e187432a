"""A minimal Bot API over HTTP on 127.0.0.1, for running the real ``python -m bot`` process.

It answers what long polling needs (getMe, deleteWebhook, getUpdates, setMyCommands,
sendMessage, answerCallbackQuery...) and records every call. ``push`` queues an update for
the next getUpdates; getUpdates waits (bounded by the bot's own ``timeout``) for one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.emulators.base import EmulatorServer

BOT_USER = {"id": 42, "is_bot": True, "first_name": "Numbers Bot", "username": "numbers_bot"}


@dataclass
class BotApiCall:
    token: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)


class FakeBotServer(EmulatorServer):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[BotApiCall] = []
        self.updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.called = asyncio.Condition()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle)

    def push(self, update: dict[str, Any]) -> None:
        self.updates.put_nowait({"update_id": next(self._update_ids), **update})

    async def wait_for(self, method: str, within: float = 20.0) -> BotApiCall:
        """The first recorded call of ``method`` (waiting for it, at most ``within`` s)."""

        def found() -> BotApiCall | None:
            return next((c for c in self.log if c.method.lower() == method.lower()), None)

        async with asyncio.timeout(within), self.called:
            await self.called.wait_for(lambda: found() is not None)
        call = found()
        assert call is not None
        return call

    async def _handle(self, request: web.Request) -> web.Response:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    text = value
                elif isinstance(value, bytes | bytearray):
                    text = bytes(value).decode()
                else:
                    text = value.file.read().decode()
                try:
                    params[key] = json.loads(text)
                except ValueError:
                    params[key] = text
        call = BotApiCall(request.match_info["token"], request.match_info["method"], params)
        self.log.append(call)
        async with self.called:
            self.called.notify_all()
        return web.json_response({"ok": True, "result": await self._result(call)})

    async def _result(self, call: BotApiCall) -> Any:
        method = call.method.lower()
        if method == "getme":
            return BOT_USER
        if method == "getupdates":
            try:
                wait = float(call.params.get("timeout", 0))
                async with asyncio.timeout(min(wait, 1.0)):
                    return [await self.updates.get()]
            except TimeoutError:
                return []
        if method == "sendmessage":
            chat_id = int(call.params["chat_id"])
            return {
                "message_id": next(self._message_ids),
                "date": 1767268800,
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
                "text": str(call.params.get("text", "")),
            }
        return True
