"""An SMS-BUS emulator: ``/api/control/...`` with ``token=KEY``, JSON envelopes as documented.

One account (``token``) with a balance and ``frozen`` money: getting a number holds its price,
an SMS charges it, a cancel or a timeout returns it. Seeded with five countries (RU 1, US 5,
UK 25 sent with code ``uk`` so the adapter must use its id table, IT 88, DE 48) and five
projects, one of them ``pp`` titled "Paypal" (PayPal is ``ts`` at SMS-Activate).

Wire style: business errors come with HTTP 200 and the code in the body; wrong tokens with
HTTP 401 (``400`` for ``reuse``, as its doc shows). ``numbers_as_strings`` sends every number as
a string and ``lists_as_arrays`` sends ``data`` collections as JSON arrays, to exercise lenient
parsing.

Control methods for tests and benchmarks:

* ``set_balance(amount)``, ``balance``/``frozen`` attributes, ``activated`` (50208 when false),
  ``waiting_limit`` (50104), ``lifetime`` (request timeout, default 20 minutes -> 50102),
  ``reuse_window`` (how long after its last SMS a number may be reused, else 50109);
* ``add_country(id, title, code)``, ``add_project(id, title, code)``,
  ``set_price(country_id, project_id, cost, count)``, ``set_stock(...)``,
  ``remove_price(...)``;
* ``inject_code(request_id, code)`` delivers the SMS code (charges the held money);
  ``expire(request_id)`` times a request out now; ``forbid_reuse(number)`` (50108);
* ``force(endpoint, body, status=200, times=1)`` answers the next calls of an endpoint
  (``"number"``, ``"sms"``, ``"prices"``...) with an arbitrary JSON body;
  ``force_html(endpoint, status=403)``: the next call is refused by a Cloudflare HTML page
  before the API sees it (nothing happens);
* ``row_country_ids``: ``{asked id: id written in the rows}`` for ``list/prices``. The doc's own
  examples number countries two ways (``list/countries``: USA 1, Russia 2; the country table
  and the ``list/prices`` example: USA 5, Russia 1), so rows may carry another id than asked;
* a request released by ``cancel`` and one that timed out both answer ``get/sms`` with 50102
  ("released or timeout"), as documented: the API does not tell them apart.
* ``max_prices_in_flight`` records how many ``list/prices`` calls overlapped at most.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.emulators.base import EmulatorServer, FakeClock

OK = 200
DEFAULT_TOKEN = "bus-test-token"
WRONG_TOKEN = "Wrong token!"
MESSAGES: dict[int, str] = {
    50001: "No service available",
    50002: "No number available",
    50007: "The number doesn't exist.",
    50101: "Not received sms yet",
    50102: "Number has been released or timeout, please reacquire",
    50103: "Can't change request status because the request has already closed.",
    50104: (
        "The number of waiting requests exceeds the limit, please complete or cancel it and "
        "try again."
    ),
    50107: "The number cannot be reused.",
    50108: "The number cannot be reused.",
    50109: "The number is expired.",
    50201: "Balance not enough",
    50208: (
        "This account is not activated, please click the activation link in the mailbox to "
        "activate"
    ),
}
# Calling codes for generated numbers, by lower-case country code.
CALLING_CODES: dict[str, str] = {"ru": "7", "us": "1", "uk": "44", "it": "39", "de": "49"}


@dataclass
class Country:
    id: int
    title: str
    code: str


@dataclass
class Project:
    id: int
    title: str
    code: str


@dataclass
class Price:
    cost: Decimal
    count: int


@dataclass
class Request:
    id: int
    country_id: int
    project_id: int
    number: str
    cost: Decimal
    created_at: datetime
    status: str = "waiting"  # waiting | received | cancelled | timeout
    code: str | None = None


CLOUDFLARE_PAGE = (
    '<!DOCTYPE html>\n<html lang="en-US"><head><title>Attention Required! | Cloudflare'
    "</title></head><body><h1>Sorry, you have been blocked</h1><h2>You are unable to access "
    "sms-bus.com</h2><p>Cloudflare Ray ID: 8f1c2d3e4a5b6c7d</p></body></html>"
)


@dataclass(frozen=True)
class _CloudflarePage:
    status: int


@dataclass
class _Forced:
    body: Any
    status: int
    times: int


@dataclass
class _History:
    """What a number did: its country and when it last got an SMS, per project."""

    country_id: int
    last_sms: dict[int, datetime] = field(default_factory=dict)


class SmsBusEmulator(EmulatorServer):
    """The SMS-BUS API for one account. See the module docstring for the control methods."""

    def __init__(
        self,
        clock: FakeClock | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        balance: Decimal | str = "10.00",
        lifetime: timedelta = timedelta(minutes=20),
        waiting_limit: int = 10,
        seed: bool = True,
    ) -> None:
        super().__init__(clock)
        self.token = token
        self.balance = Decimal(balance)
        self.frozen = Decimal(0)
        self.activated = True
        self.lifetime = lifetime
        self.reuse_window = timedelta(days=1)
        self.waiting_limit = waiting_limit
        self.numbers_as_strings = False
        self.lists_as_arrays = False
        self.row_country_ids: dict[int, int] = {}
        self.countries: dict[int, Country] = {}
        self.projects: dict[int, Project] = {}
        self.prices: dict[tuple[int, int], Price] = {}
        self.orders: dict[int, Request] = {}
        self.max_prices_in_flight = 0
        self._prices_in_flight = 0
        self._history: dict[str, _History] = {}
        self._no_reuse: set[str] = set()
        self._forced: dict[str, list[_Forced]] = {}
        self._ids = itertools.count(1001)
        self._serial = itertools.count(1000000)
        if seed:
            self._seed()
        routes = {
            "get/balance": self._balance,
            "list/countries": self._countries,
            "list/projects": self._projects,
            "list/prices": self._prices,
            "get/number": self._number,
            "get/sms": self._sms,
            "cancel": self._cancel,
            "reuse": self._reuse,
        }
        for path, handler in routes.items():
            self.app.router.add_get(f"/api/control/{path}", self._wrap(path, handler))

    def _seed(self) -> None:
        for cid, title, code in (
            (1, "Russia", "ru"),
            (5, "United States of America", "us"),
            (25, "United Kingdom", "uk"),
            (88, "Italy", "it"),
            (48, "Germany", "de"),
        ):
            self.add_country(cid, title, code)
        for pid, title, code in (
            (1, "Telegram", "tg"),
            (2, "Paypal", "pp"),
            (3, "WhatsApp", "wa"),
            (4, "Google", "go"),
            (5, "Instagram", "ins"),
        ):
            self.add_project(pid, title, code)
        self.set_price(1, 1, "0.25", 500)
        self.set_price(1, 3, "0.40", 120)
        self.set_price(5, 1, "1.10", 80)
        self.set_price(5, 2, "0.90", 1023)
        self.set_price(5, 4, "0.50", 0)  # listed, out of stock
        self.set_price(25, 3, "0.75", 30)
        self.set_price(25, 5, "0.35", 12)
        self.set_price(88, 4, "0.20", 7)
        # Germany (48) sells nothing: list/prices answers 50001.

    # --- control ----------------------------------------------------------------------------

    def add_country(self, country_id: int, title: str, code: str) -> None:
        self.countries[country_id] = Country(country_id, title, code)

    def add_project(self, project_id: int, title: str, code: str) -> None:
        self.projects[project_id] = Project(project_id, title, code)

    def set_price(self, country_id: int, project_id: int, cost: Decimal | str, count: int) -> None:
        self.prices[(country_id, project_id)] = Price(Decimal(cost), count)

    def set_stock(self, country_id: int, project_id: int, count: int) -> None:
        self.prices[(country_id, project_id)].count = count

    def remove_price(self, country_id: int, project_id: int) -> None:
        self.prices.pop((country_id, project_id), None)

    def set_balance(self, amount: Decimal | str) -> None:
        self.balance = Decimal(amount)

    def inject_code(self, request_id: int | str, code: str) -> None:
        """The SMS arrives: the request completes and its held price is charged."""
        self._tick()
        request = self.orders[int(request_id)]
        if request.status != "waiting":
            raise ValueError(f"request {request_id} is {request.status}")
        request.status = "received"
        request.code = code
        self.frozen -= request.cost
        history = self._history.setdefault(request.number, _History(request.country_id))
        history.last_sms[request.project_id] = self.clock.now()

    def expire(self, request_id: int | str) -> None:
        """Time the request out now (as if its lifetime were over)."""
        request = self.orders[int(request_id)]
        if request.status == "waiting":
            self._release(request, "timeout")

    def forbid_reuse(self, number: str) -> None:
        self._no_reuse.add(number)

    def force(self, endpoint: str, body: Any, status: int = 200, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``endpoint`` (``"number"``, ``"get/number"``...)."""
        paths = [p for p in _ENDPOINTS if endpoint in (p, p.rsplit("/", 1)[-1])]
        if not paths:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        key = paths[0]
        self._forced.setdefault(key, []).append(_Forced(body, status, times))

    def force_html(self, endpoint: str, status: int = 403) -> None:
        """The next call to ``endpoint`` is refused in front of the API (Cloudflare page)."""
        self.force(endpoint, _CloudflarePage(status))

    def waiting(self) -> list[Request]:
        self._tick()
        return [r for r in self.orders.values() if r.status == "waiting"]

    # --- plumbing ---------------------------------------------------------------------------

    def _wrap(self, path: str, handler: Any) -> Any:
        async def route(request: web.Request) -> web.StreamResponse:
            forced = self._forced.get(path)
            if forced:
                head = forced[0]
                head.times -= 1
                if head.times <= 0:
                    forced.pop(0)
                if isinstance(head.body, _CloudflarePage):
                    return web.Response(
                        status=head.body.status,
                        text=CLOUDFLARE_PAGE,
                        content_type="text/html",
                        headers={"Server": "cloudflare", "CF-RAY": "8f1c2d3e4a5b6c7d-AMS"},
                    )
                return web.json_response(head.body, status=head.status)
            if request.query.get("token") != self.token:
                code = 400 if path == "reuse" else 401
                return web.json_response({"code": code, "message": WRONG_TOKEN}, status=code)
            self._tick()
            result: web.StreamResponse = await handler(request)
            return result

        return route

    def _tick(self) -> None:
        deadline = self.clock.now() - self.lifetime
        for request in self.orders.values():
            if request.status == "waiting" and request.created_at <= deadline:
                self._release(request, "timeout")

    def _release(self, request: Request, status: str) -> None:
        request.status = status
        self.frozen -= request.cost
        self.balance += request.cost
        price = self.prices.get((request.country_id, request.project_id))
        if price is not None and request.number not in self._history:
            price.count += 1  # an unused number goes back on sale

    def _num(self, value: Decimal | int) -> Any:
        if self.numbers_as_strings:
            return str(value)
        return float(value) if isinstance(value, Decimal) else value

    def _collection(self, items: dict[str, Any]) -> Any:
        return list(items.values()) if self.lists_as_arrays else items

    @staticmethod
    def _ok(data: Any = None) -> web.Response:
        body: dict[str, Any] = {"code": OK, "message": "Operation Success"}
        if data is not None:
            body["data"] = data
        return web.json_response(body)

    @staticmethod
    def _error(code: int) -> web.Response:
        return web.json_response({"code": code, "message": MESSAGES[code]})

    def _new_request(self, country_id: int, project_id: int, number: str, cost: Decimal) -> int:
        request_id = next(self._ids)
        self.orders[request_id] = Request(
            request_id, country_id, project_id, number, cost, self.clock.now()
        )
        self.balance -= cost
        self.frozen += cost
        return request_id

    def _number_answer(self, request_id: int, number: str) -> web.Response:
        return self._ok({"request_id": self._num(request_id), "number": number})

    # --- endpoints --------------------------------------------------------------------------

    async def _balance(self, request: web.Request) -> web.Response:
        return self._ok({"frozen": self._num(self.frozen), "balance": self._num(self.balance)})

    async def _countries(self, request: web.Request) -> web.Response:
        items = {
            str(c.id): {"id": self._num(c.id), "title": c.title, "code": c.code}
            for c in self.countries.values()
        }
        return self._ok(self._collection(items))

    async def _projects(self, request: web.Request) -> web.Response:
        items = {
            str(p.id): {"id": self._num(p.id), "title": p.title, "code": p.code}
            for p in self.projects.values()
        }
        return self._ok(self._collection(items))

    async def _prices(self, request: web.Request) -> web.Response:
        self._prices_in_flight += 1
        self.max_prices_in_flight = max(self.max_prices_in_flight, self._prices_in_flight)
        try:
            await asyncio.sleep(0)
            country_id = _int(request.query.get("country_id"))
            country = self.countries.get(country_id) if country_id is not None else None
            if country is None:
                return self._error(50001)
            # Keyed by project id; each item repeats the country's title and code, as documented.
            items = {
                str(pid): {
                    "country_id": self._num(self.row_country_ids.get(cid, cid)),
                    "project_id": self._num(pid),
                    "cost": self._num(price.cost),
                    "total_count": self._num(price.count),
                    "title": country.title,
                    "code": country.code,
                }
                for (cid, pid), price in sorted(self.prices.items())
                if cid == country_id and pid in self.projects
            }
            if not items:
                return self._error(50001)
            return self._ok(self._collection(items))
        finally:
            self._prices_in_flight -= 1

    async def _number(self, request: web.Request) -> web.Response:
        country_id = _int(request.query.get("country_id"))
        project_id = _int(request.query.get("project_id"))
        if not self.activated:
            return self._error(50208)
        if len(self.waiting()) >= self.waiting_limit:
            return self._error(50104)
        price = self.prices.get((country_id or 0, project_id or 0))
        if country_id is None or project_id is None or price is None or price.count <= 0:
            return self._error(50002)
        if self.balance < price.cost:
            return self._error(50201)
        price.count -= 1
        code = CALLING_CODES.get(self.countries[country_id].code, "999")
        number = f"{code}{next(self._serial):010d}"
        return self._number_answer(
            self._new_request(country_id, project_id, number, price.cost), number
        )

    async def _sms(self, request: web.Request) -> web.Response:
        request_id = _int(request.query.get("request_id"))
        order = self.orders.get(request_id) if request_id is not None else None
        if order is None or order.status in ("cancelled", "timeout"):
            return self._error(50102)
        if order.status == "waiting":
            return self._error(50101)
        return self._ok(order.code)

    async def _cancel(self, request: web.Request) -> web.Response:
        request_id = _int(request.query.get("request_id"))
        order = self.orders.get(request_id) if request_id is not None else None
        if order is None or order.status != "waiting":
            return self._error(50103)
        self._release(order, "cancelled")
        return self._ok()

    async def _reuse(self, request: web.Request) -> web.Response:
        country_id = _int(request.query.get("country_id"))
        project_id = _int(request.query.get("project_id"))
        number = request.query.get("mobile_number", "").lstrip("+")
        if not self.activated:
            return self._error(50208)
        price = self.prices.get((country_id or 0, project_id or 0))
        if country_id is None or project_id is None or price is None:
            return self._error(50001)
        history = self._history.get(number)
        issued = any(r.number == number for r in self.orders.values())
        if not issued or (history is not None and history.country_id != country_id):
            return self._error(50007)
        if history is None or project_id not in history.last_sms:
            return self._error(50107)  # never received an SMS from this service
        busy = any(r.number == number and r.status == "waiting" for r in self.orders.values())
        if busy or number in self._no_reuse:
            return self._error(50108)
        if self.clock.now() - history.last_sms[project_id] > self.reuse_window:
            return self._error(50109)
        if self.balance < price.cost:
            return self._error(50201)
        return self._number_answer(
            self._new_request(country_id, project_id, number, price.cost), number
        )


_ENDPOINTS = (
    "get/balance",
    "list/countries",
    "list/projects",
    "list/prices",
    "get/number",
    "get/sms",
    "cancel",
    "reuse",
)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
