"""The four emulators in a process of their own, steered over HTTP: for benchmarks.

``python -m tests.emulators.control [--latency-ms N]`` starts the four provider emulators on free
ports of 127.0.0.1 (real time: a :class:`~tests.emulators.base.WallClock`) and a control server
beside them, prints one JSON line ``{"env": {...}, "control": "http://..."}`` (the settings
that point a bot at the emulators, and the control URL), then serves until its standard input
is closed. Nothing about the emulators changes: this only drives their control methods from
another process, so a benchmark measures a bot process that runs nothing else.

Control endpoints (JSON, never delayed by the emulators' latency):

* ``POST /latency`` ``{"seconds": 0.1}``: added to every provider request from now on.
* ``POST /seed`` ``{"provider", "count", "ages"}``: ``count`` active orders at ``provider``
  as if bought ``ages[i]`` seconds ago (Get-SMS and SMS-BUS: Telegram activations in Russia;
  BEE-SMS: 7-day Telegram rentals in the US; SMS.online: 4-hour Telegram rentals in the US),
  with no request logged; answers ``{"orders": [...]}``, what each purchase answer would
  have told the bot (ids, number, price, end).
* ``POST /sms`` ``{"provider", "order_id", "code"}``: an SMS carrying ``code`` arrives.
* ``GET /requests``: ``{"now": t, "requests": {provider: [[t, name], ...]}}``, every provider
  request since the start with the ``time.monotonic()`` of its arrival (before the latency)
  and its name (``method``/``action`` or the last path part).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from tests.emulators import beesms, getsms
from tests.emulators.base import Handler, RecordedRequest, WallClock, _name
from tests.emulators.suite import EmulatorSuite

GETSMS_SLUG = "ru"  # Russia at Get-SMS
SMSBUS_COUNTRY, SMSBUS_PROJECT = 1, 1  # Russia, Telegram at SMS-BUS
BEESMS_AREA, BEESMS_DAYS = "us", 7
SMSONLINE_COUNTRY, SMSONLINE_HOURS = 187, 4  # United States, the 4-hour rent
SERVICE = "tg"


class Control:
    """The suite, its request times and the control routes."""

    def __init__(self, suite: EmulatorSuite) -> None:
        self.suite = suite
        self.times: dict[str, list[tuple[float, str]]] = {name: [] for name in suite.servers}
        for name, server in suite.servers.items():
            server.app.middlewares.insert(0, self._stamp(name))  # outermost: before latency
        self.app = web.Application()
        self.app.router.add_post("/latency", self._latency)
        self.app.router.add_post("/seed", self._seed)
        self.app.router.add_post("/sms", self._sms)
        self.app.router.add_get("/requests", self._requests)

    def _stamp(self, provider: str) -> Any:
        log = self.times[provider]

        @web.middleware
        async def stamp(request: web.Request, handler: Handler) -> web.StreamResponse:
            log.append((time.monotonic(), _name_of(request)))
            return await handler(request)

        return stamp

    async def _latency(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.suite.set_latency(float(body["seconds"]))
        return web.json_response({"ok": True})

    async def _requests(self, request: web.Request) -> web.Response:
        return web.json_response({"now": time.monotonic(), "requests": self.times})

    async def _seed(self, request: web.Request) -> web.Response:
        body = await request.json()
        provider, ages = str(body["provider"]), [float(a) for a in body["ages"]]
        now = self.suite.clock.now()
        seed = {
            "getsms": self._seed_getsms,
            "smsbus": self._seed_smsbus,
            "beesms": self._seed_beesms,
            "smsonline": self._seed_smsonline,
        }[provider]
        orders = [seed(now - timedelta(seconds=age)) for age in ages]
        return web.json_response({"orders": orders})

    def _seed_getsms(self, started: datetime) -> dict[str, Any]:
        em = self.suite.getsms
        price = em.stock[(GETSMS_SLUG, SERVICE)].price
        act = getsms.Activation(
            id=str(next(em._ids)),
            key=em.api_key,
            service=SERVICE,
            slug=GETSMS_SLUG,
            phone=em._phone(GETSMS_SLUG),
            price=price,
            started=started,
        )
        em.activations[act.id] = act
        account = em.accounts[em.api_key]
        account.balance -= price
        account.reserved += price
        return {
            "order_id": act.id,
            "phone": act.phone,
            "slug": act.slug,
            "price": str(price),
            "started": started.isoformat(),
        }

    def _seed_smsbus(self, started: datetime) -> dict[str, Any]:
        em = self.suite.smsbus
        cost = em.prices[(SMSBUS_COUNTRY, SMSBUS_PROJECT)].cost
        number = f"7{next(em._serial):010d}"
        request_id = em._new_request(SMSBUS_COUNTRY, SMSBUS_PROJECT, number, cost)
        em.orders[request_id].created_at = started
        return {
            "order_id": str(request_id),
            "phone": number,
            "country_id": SMSBUS_COUNTRY,
            "project_id": SMSBUS_PROJECT,
            "price": str(cost),
        }

    def _seed_beesms(self, started: datetime) -> dict[str, Any]:
        em = self.suite.beesms
        option = em.prices[(SERVICE, BEESMS_AREA)][BEESMS_DAYS]
        order_id = str(next(em._ids))
        rental = beesms.Rental(
            order_id=order_id,
            service=SERVICE,
            area=BEESMS_AREA,
            dialing_code=beesms.AREAS.get(BEESMS_AREA, ("1", BEESMS_AREA))[0],
            mobile_number=str(next(em._mobile_numbers)),
            duration=BEESMS_DAYS,
            start=started,
            end=started + timedelta(days=BEESMS_DAYS),
            amount=option.amount,
            actual_amount=option.actual_amount,
            auto_renew=False,
            last_renewal_at=started,
        )
        em.rentals[order_id] = rental
        em.orders[order_id] = beesms.OrderRecord(
            order_id,
            "PURCHASE",
            order_id,
            BEESMS_DAYS,
            option.amount,
            option.actual_amount,
            started,
        )
        em.balance -= option.actual_amount
        return {
            "order_id": order_id,
            "service_code": SERVICE,
            "area_code": BEESMS_AREA,
            "dialing_code": rental.dialing_code,
            "mobile_number": rental.mobile_number,
            "duration": BEESMS_DAYS,
            "rental_end_at": beesms.iso(rental.end),
            "actual_amount": option.actual_amount,
        }

    def _seed_smsonline(self, started: datetime) -> dict[str, Any]:
        em = self.suite.smsonline
        price = em.price_for(SERVICE, SMSONLINE_COUNTRY, SMSONLINE_HOURS)
        rental = em._new_rental(
            em.default_key,
            service=SERVICE,
            country=SMSONLINE_COUNTRY,
            phone=em._new_phone(SMSONLINE_COUNTRY),
            hours=SMSONLINE_HOURS,
            price=price,
            started=started,
            end_date=started + timedelta(hours=SMSONLINE_HOURS),
        )
        em.accounts[em.default_key].balance -= price
        return {
            "order_id": str(rental.id),
            "phone": rental.phone,
            "country_id": SMSONLINE_COUNTRY,
            "hours": SMSONLINE_HOURS,
            "price": str(price),
            "end_date": rental.end_date.isoformat(),
        }

    async def _sms(self, request: web.Request) -> web.Response:
        body = await request.json()
        provider, order_id, code = str(body["provider"]), str(body["order_id"]), str(body["code"])
        if provider == "getsms":
            self.suite.getsms.inject_sms(order_id, f"Your Telegram code {code}", code=code)
        elif provider == "smsbus":
            self.suite.smsbus.inject_code(order_id, code)
        elif provider == "beesms":
            self.suite.beesms.inject_sms(order_id, f"Telegram code: {code}. Do not share it.")
        elif provider == "smsonline":
            await self.suite.smsonline.inject_sms(order_id, f"Telegram code {code}")
        else:
            raise web.HTTPBadRequest(text=f"unknown provider {provider}")
        return web.json_response({"ok": True})


def _name_of(request: web.Request) -> str:
    return _name(RecordedRequest(request.method, request.path, dict(request.query)))


def stock_up(suite: EmulatorSuite) -> None:
    """Money and stock enough for any benchmark (seeded orders do not count against stock)."""
    suite.getsms.set_balance(10**9)
    suite.smsbus.set_balance("1000000000")
    suite.smsbus.waiting_limit = 10**9
    suite.beesms.set_balance(10**12)
    suite.smsonline.set_balance("1000000000")


async def serve_control(app: web.Application, hello: dict[str, Any]) -> None:
    """Serve ``app`` on a free port of 127.0.0.1 until standard input is closed.

    Once it listens, one JSON line goes to standard output: ``hello`` and ``"control"``, the
    app's URL (what :class:`benchmarks.harness.ControlledProcess` reads).
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(json.dumps({**hello, "control": f"http://127.0.0.1:{port}"}), flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        await stdin.read()  # until the parent closes it (or dies)
    finally:
        await runner.cleanup()


async def serve(latency: float) -> None:
    suite = EmulatorSuite(WallClock())
    control = Control(suite)
    stock_up(suite)
    suite.set_latency(latency)
    await suite.start()
    try:
        await serve_control(control.app, {"env": suite.env()})
    finally:
        await suite.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.control", description=__doc__)
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="added to every provider request"
    )
    args = parser.parse_args()
    asyncio.run(serve(args.latency_ms / 1000))


if __name__ == "__main__":
    main()
