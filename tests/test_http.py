"""The shared HTTP rules, against a real local server."""

from __future__ import annotations

import logging

import httpx
import pytest
from aiohttp import web

from bot.providers.base import BadCredentials, ProviderUnavailable, PurchaseOutcomeUnknown
from bot.providers.http import ProviderHttp, RetryPolicy
from tests.emulators.base import EmulatorServer
from tests.helpers import free_port

KEY = "sekret-key-123456"


class Echo(EmulatorServer):
    """Answers ``{"ok": true}`` on /api, 401 JSON when the key is wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_get("/api", self._api)

    async def _api(self, request: web.Request) -> web.Response:
        if request.query.get("key") != KEY:
            return web.json_response({"error": "bad key"}, status=401)
        return web.json_response({"ok": True})


def parse(http: ProviderHttp):  # type: ignore[no-untyped-def]
    def _parse(response: httpx.Response) -> dict[str, object]:
        data = http.json(response)
        if response.status_code == 401:
            raise BadCredentials(http.provider)
        if not isinstance(data, dict):
            raise http.unavailable(response, "unexpected shape")
        return data

    return _parse


@pytest.fixture
async def server():  # type: ignore[no-untyped-def]
    async with Echo() as emulator:
        yield emulator


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make(client: httpx.AsyncClient, url: str, *, timeout: float = 5.0) -> ProviderHttp:
    return ProviderHttp(
        "demo",
        client,
        url,
        secrets=(KEY,),
        timeout=timeout,
        retry=RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.5),
        sleep=SleepRecorder(),
    )


async def test_read_is_retried_after_a_server_error(server: Echo, http_client) -> None:  # type: ignore[no-untyped-def]
    http = make(http_client, server.base_url)
    server.fail("5xx")
    server.fail("garbage")
    assert await http.call("/api", {"key": KEY}, parse(http), safe=True) == {"ok": True}
    assert len(server.requests) == 3


async def test_read_gives_up_after_the_bounded_attempts(server: Echo, http_client) -> None:  # type: ignore[no-untyped-def]
    http = make(http_client, server.base_url)
    server.fail("5xx", times=5)
    with pytest.raises(ProviderUnavailable) as info:
        await http.call("/api", {"key": KEY}, parse(http), safe=True)
    assert not isinstance(info.value, PurchaseOutcomeUnknown)
    assert len(server.requests) == 3


async def test_typed_errors_are_not_retried(server: Echo, http_client) -> None:  # type: ignore[no-untyped-def]
    http = make(http_client, server.base_url)
    with pytest.raises(BadCredentials):
        await http.call("/api", {"key": "wrong"}, parse(http), safe=True)
    assert len(server.requests) == 1


async def test_money_moving_call_is_sent_once_and_ambiguous_on_garbage(
    server: Echo,
    http_client: httpx.AsyncClient,
) -> None:
    http = make(http_client, server.base_url)
    server.fail("garbage")
    with pytest.raises(PurchaseOutcomeUnknown):
        await http.call("/api", {"key": KEY}, parse(http), safe=False)
    assert len(server.requests) == 1


async def test_refused_connection_is_not_ambiguous(http_client) -> None:  # type: ignore[no-untyped-def]
    http = make(http_client, f"http://127.0.0.1:{free_port()}")  # a port nobody listens on
    with pytest.raises(ProviderUnavailable) as info:
        await http.call("/api", {"key": KEY}, parse(http), safe=False)
    assert not isinstance(info.value, PurchaseOutcomeUnknown)


async def test_timeout_on_purchase_is_ambiguous(server: Echo, http_client) -> None:  # type: ignore[no-untyped-def]
    http = make(http_client, server.base_url, timeout=0.2)
    server.fail("timeout")
    with pytest.raises(PurchaseOutcomeUnknown) as info:
        await http.call("/api", {"key": KEY}, parse(http), safe=False)
    assert "timed out" in str(info.value)


async def test_retry_after_is_honoured_within_the_cap(http_client) -> None:  # type: ignore[no-untyped-def]
    class Limited(Echo):
        def __init__(self) -> None:
            super().__init__()
            self.limited = 1
            self.app.middlewares.insert(0, self._limit)

        @web.middleware
        async def _limit(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
            if self.limited:
                self.limited -= 1
                return web.Response(status=429, headers={"Retry-After": "0.3"})
            return await handler(request)

    async with Limited() as server:
        http = make(http_client, server.base_url)
        assert await http.call("/api", {"key": KEY}, parse(http), safe=True) == {"ok": True}
        sleeper = http._sleep
        assert isinstance(sleeper, SleepRecorder)
        assert sleeper.delays and 0.3 <= sleeper.delays[0] <= 0.5


async def test_key_never_leaks_into_errors_or_logs(
    server: Echo,
    http_client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    http = make(http_client, server.base_url, timeout=0.2)
    failures: list[Exception] = []
    for mode in ("5xx", "garbage", "timeout"):
        server.fail(mode, times=3)
        with pytest.raises(ProviderUnavailable) as info:
            await http.call("/api", {"key": KEY}, parse(http), safe=True)
        failures.append(info.value)
        server.release()
        server._faults.clear()
    for exc in failures:
        text = f"{exc!s} {exc!r} {exc.__cause__!r} {exc.__context__!r}"
        assert KEY not in text
    assert KEY not in caplog.text
