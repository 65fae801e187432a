"""A minimal Bot API over HTTP on 127.0.0.1, for running the real ``python -m bot`` process.

It answers what long polling needs (getMe, deleteWebhook, getUpdates, setMyCommands,
sendMessage, answerCallbackQuery...) and records every call. ``push`` queues an update for
the next getUpdates; getUpdates waits (bounded by the bot's own ``timeout``) for one.

Webhooks as Telegram has them: ``setWebhook`` keeps the URL, the secret token and the allowed
updates (``webhook``); while one is set, getUpdates is refused with Telegram's 409 Conflict
until ``deleteWebhook``. ``post_update`` sends an update to the webhook with its secret, as
Telegram does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from tests.emulators.base import EmulatorServer

BOT_USER = {"id": 42, "is_bot": True, "first_name": "Numbers Bot", "username": "numbers_bot"}
CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
    "delete the webhook first"
)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class BotApiCall:
    token: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    result: Any = None  # what the fake answered (a sent message's id is in it)


class FakeBotServer(EmulatorServer):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[BotApiCall] = []
        self.updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.called = asyncio.Condition()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self.webhook: dict[str, Any] | None = None  # setWebhook's parameters while one is set
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle)

    def push(self, update: dict[str, Any]) -> None:
        self.updates.put_nowait({"update_id": next(self._update_ids), **update})

    async def post_update(self, update: dict[str, Any], *, secret: str | None = None) -> int:
        """POST ``update`` to the webhook set, with its secret token (or ``secret``, a forged
        one; ``""``: none), as Telegram does; the HTTP status the bot answered."""
        assert self.webhook is not None, "no webhook is set"
        token = self.webhook.get("secret_token") if secret is None else secret
        headers = {SECRET_HEADER: str(token)} if token else {}
        body = {"update_id": next(self._update_ids), **update}
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(str(self.webhook["url"]), json=body, headers=headers)
        return response.status_code

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
        if call.method.lower() == "getupdates" and self.webhook is not None:
            error = {"ok": False, "error_code": 409, "description": CONFLICT}
            return web.json_response(error, status=409)
        call.result = await self._result(call)
        return web.json_response({"ok": True, "result": call.result})

    async def _result(self, call: BotApiCall) -> Any:
        method = call.method.lower()
        if method == "getme":
            return BOT_USER
        if method == "setwebhook":
            self.webhook = dict(call.params)
            return True
        if method == "deletewebhook":
            self.webhook = None
            return True
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
