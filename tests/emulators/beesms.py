"""An in-process BEE-SMS rental API (``/v1/rental/...``) for tests and benchmarks.

``BeeSmsEmulator(clock=None, *, token=DEFAULT_TOKEN, balance_cents=100_000, seed=True)``
serves the documented endpoints (services, prices, purchase, numbers, order, sms, renew, cancel)
with the documented JSON shapes and error codes. Amounts are integer cents; times follow the
:class:`FakeClock`. With ``seed`` it sells Telegram (``tg``), WhatsApp (``whatsapp``, an alias
of ``wa``) and Google (``go``) in ``us``, ``uk`` (alias of GB) and ``de``, for 7 and 30 days.

Control methods (plain Python, no HTTP):

- ``add_service(code, name)``, ``set_price(service, area, days, amount, actual_amount=None,
  qty=10)``, ``set_stock(service, area, days, qty)``, ``remove_price(service, area)``
- ``set_balance(cents)`` / ``balance`` (cents)
- ``inject_sms(order_id, text, sender="+12125551234")`` -> the SMS record id
- ``expire(order_id)`` ends a rental now; ``rental(order_id)`` returns its record
- ``queue_error(endpoint, code, times=1)``: the next calls of ``endpoint`` (``"renew"``, ...)
  answer a documented error code with its documented message, without acting
- ``queue_response(endpoint, body, status=200)``: the next call answers ``body`` verbatim (a
  JSON-able value, or a ``str`` sent as is) - for malformed or unusual answers
- ``max_page_size`` caps ``page_size`` like a real server (default 100);
  ``max_in_flight`` is the highest number of requests served at once
- ``error_status``: ``"mirror"`` (default: HTTP 400/401/404 for those codes, 200 otherwise) or
  ``"200"`` (every error with HTTP 200; the code is only in the body)

A rental on auto-renew is renewed for its last duration when it reaches its end, if the balance
pays for it. Cancel refunds the last charge (the purchase or the latest renewal, recorded in
``refunds``) within 24 hours of it and only if no SMS arrived since; otherwise it answers 50303.
``balance`` is the account's money, so a test can assert what the provider kept.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web

from tests.emulators.base import EmulatorServer, FakeClock, Handler

DEFAULT_TOKEN = "bee-test-token"
OK = (200, "Operation Success")
INVALID = (400, "Invalid Parameter")
UNAUTHORIZED = (401, "Not yet logged in or certificate has expired")
NOT_FOUND = (404, "Not Found")
BALANCE = (50001, "Balance not enough")
NO_NUMBERS = (50111, "No number available, please try again later.")
ABOVE_MAX = (50115, "Failed to order because the price exceeded the maximum price.")
ORDER_NOT_FOUND = (50302, "Rental order not found.")
NOT_REFUNDABLE = (50303, "This order is not eligible for refund.")
RENEW_FAILED = (50304, "Rental renewal failed, please try again.")
ERRORS = {
    code: (code, message)
    for code, message in (
        INVALID,
        UNAUTHORIZED,
        NOT_FOUND,
        BALANCE,
        NO_NUMBERS,
        ABOVE_MAX,
        ORDER_NOT_FOUND,
        NOT_REFUNDABLE,
        RENEW_FAILED,
    )
}

AREAS: dict[str, tuple[str, str]] = {  # area code -> (dialing code, name)
    "us": ("1", "United States"),
    "uk": ("44", "United Kingdom"),
    "de": ("49", "Germany"),
    "id": ("62", "Indonesia"),
}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Duration:
    days: int
    amount: int
    actual_amount: int
    qty: int


@dataclass
class SmsRecord:
    id: str
    sender: str
    text: str
    received_at: datetime


@dataclass
class Rental:
    order_id: str
    service: str
    area: str
    dialing_code: str
    mobile_number: str
    duration: int  # days of the last period bought
    start: datetime
    end: datetime
    amount: int
    actual_amount: int  # the last charge
    auto_renew: bool
    last_renewal_at: datetime
    cancelled: bool = False
    sms: list[SmsRecord] = field(default_factory=list)

    def status(self, now: datetime) -> str:
        if self.cancelled:
            return "CANCELLED"
        return "ACTIVE" if now < self.end else "EXPIRED"


@dataclass
class OrderRecord:
    order_id: str
    order_type: Literal["PURCHASE", "RENEWAL"]
    rental_id: str
    duration: int
    amount: int
    actual_amount: int
    created_at: datetime
    status: Literal["COMPLETED", "CANCELLED"] = "COMPLETED"


class BeeSmsEmulator(EmulatorServer):
    def __init__(
        self,
        clock: FakeClock | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        balance_cents: int = 100_000,
        seed: bool = True,
    ) -> None:
        super().__init__(clock)
        self.token = token
        self.balance = balance_cents
        self.balance_endpoint = True
        self.refunds: list[tuple[str, int]] = []  # (rental order id, cents) per refunded cancel
        self.error_status: Literal["mirror", "200"] = "mirror"
        self.services: dict[str, str] = {}
        self.prices: dict[tuple[str, str], dict[int, Duration]] = {}
        self.rentals: dict[str, Rental] = {}
        self.orders: dict[str, OrderRecord] = {}
        self.max_page_size = 100
        self.in_flight = 0
        self.max_in_flight = 0
        self._queued: dict[str, deque[tuple[Any, int]]] = {}
        self._ids = itertools.count(3541517119212500001)
        self._mobile_numbers = itertools.count(4155550001)
        self._sms_ids = itertools.count(1234567890)
        if seed:
            self._seed()
        for name in ("services", "prices", "purchase", "numbers", "order", "sms", "renew"):
            self.app.router.add_get(f"/v1/rental/{name}", getattr(self, f"_{name}"))
        self.app.router.add_get("/v1/rental/cancel", self._cancel)
        self.app.router.add_get("/v1/user/balance", self._user_balance)
        self.app.middlewares.insert(0, self._counting_middleware)  # outermost: sees latency
        self.app.middlewares.append(self._queued_middleware)

    def _seed(self) -> None:
        self.add_service("tg", "Telegram")
        self.add_service("whatsapp", "WhatsApp")
        self.add_service("go", "Google")
        for service, base in (("tg", 1500), ("whatsapp", 2000), ("go", 1000)):
            for area, factor in (("us", 1.0), ("uk", 1.2), ("de", 0.8)):
                monthly = int(base * factor)
                self.set_price(service, area, 7, monthly // 3, monthly // 3 - 10, qty=10)
                self.set_price(service, area, 30, monthly, monthly * 95 // 100, qty=24)

    # --- control ----------------------------------------------------------------------------

    def add_service(self, code: str, name: str) -> None:
        self.services[code] = name

    def set_price(
        self,
        service: str,
        area: str,
        days: int,
        amount: int,
        actual_amount: int | None = None,
        qty: int = 10,
    ) -> None:
        self.services.setdefault(service, service)
        actual = amount if actual_amount is None else actual_amount
        self.prices.setdefault((service, area), {})[days] = Duration(days, amount, actual, qty)

    def set_stock(self, service: str, area: str, days: int, qty: int) -> None:
        self.prices[(service, area)][days].qty = qty

    def remove_price(self, service: str, area: str) -> None:
        self.prices.pop((service, area), None)

    def set_balance(self, cents: int) -> None:
        self.balance = cents

    async def _user_balance(self, request: web.Request) -> web.Response:
        """Not in the rental docs; public clients reportedly use it (amount in cents). With
        ``balance_endpoint`` off the account answers 404 "Not Found", as for unknown paths."""
        if not self._authorized(request):
            return self._reply(UNAUTHORIZED)
        if not self.balance_endpoint:
            return self._reply(NOT_FOUND)
        return self._reply(OK, {"balance": self.balance})

    def rental(self, order_id: str) -> Rental:
        return self.rentals[order_id]

    def inject_sms(self, order_id: str, text: str, sender: str = "+12125551234") -> str:
        rental = self.rentals[order_id]
        record = SmsRecord(str(next(self._sms_ids)), sender, text, self.clock.now())
        rental.sms.append(record)
        return record.id

    def expire(self, order_id: str) -> None:
        rental = self.rentals[order_id]
        rental.auto_renew = False
        rental.end = min(rental.end, self.clock.now())

    def queue_error(self, endpoint: str, code: int, times: int = 1) -> None:
        code, message = ERRORS[code]
        for _ in range(times):
            self.queue_response(endpoint, {"code": code, "message": message})

    def queue_response(self, endpoint: str, body: Any, status: int = 200) -> None:
        self._queued.setdefault(endpoint, deque()).append((body, status))

    @web.middleware
    async def _counting_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    @web.middleware
    async def _queued_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        queue = self._queued.get(request.path.rsplit("/", 1)[-1])
        if not queue:
            return await handler(request)
        body, status = queue.popleft()
        if isinstance(body, dict) and body.get("code") in (400, 401, 404):
            status = body["code"] if self.error_status == "mirror" else status
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, content_type="application/json")

    # --- helpers ----------------------------------------------------------------------------

    def _reply(
        self, status: tuple[int, str], data: Any = None, *, with_data: bool = True
    ) -> web.Response:
        code, message = status
        body: dict[str, Any] = {"code": code, "message": message}
        if code == 200 and with_data:
            body["data"] = data
        http_status = 200
        if self.error_status == "mirror" and code in (400, 401, 404):
            http_status = code
        return web.json_response(body, status=http_status)

    def _authorized(self, request: web.Request) -> bool:
        return request.query.get("token") == self.token

    def _tick(self) -> None:
        """Apply auto-renewals that came due on the clock."""
        now = self.clock.now()
        for rental in self.rentals.values():
            while rental.auto_renew and not rental.cancelled and rental.end <= now:
                option = self.prices.get((rental.service, rental.area), {}).get(rental.duration)
                if option is None or self.balance < option.actual_amount:
                    rental.auto_renew = False
                    break
                self._charge_renewal(rental, option, rental.end)

    def _charge_renewal(self, rental: Rental, option: Duration, at: datetime) -> None:
        self.balance -= option.actual_amount
        rental.end += timedelta(days=option.days)
        rental.duration = option.days
        rental.amount = option.amount
        rental.actual_amount = option.actual_amount
        rental.last_renewal_at = at
        order_id = str(next(self._ids))
        self.orders[order_id] = OrderRecord(
            order_id,
            "RENEWAL",
            rental.order_id,
            option.days,
            option.amount,
            option.actual_amount,
            at,
        )

    def _page(self, request: web.Request) -> tuple[int, int] | None:
        try:
            page_num = int(request.query.get("page_num") or 1)
            page_size = int(request.query.get("page_size") or 20)
        except ValueError:
            return None
        if page_num < 1 or page_size < 1:
            return None
        return page_num, min(page_size, self.max_page_size)

    def _rental_json(self, rental: Rental) -> dict[str, Any]:
        return {
            "order_id": rental.order_id,
            "status": rental.status(self.clock.now()),
            "dialing_code": rental.dialing_code,
            "mobile_number": rental.mobile_number,
            "area_code": rental.area,
            "area_name": AREAS.get(rental.area, ("", rental.area))[1],
            "service_code": rental.service,
            "service_name": self.services.get(rental.service, rental.service),
            "duration": rental.duration,
            "rental_end_at": iso(rental.end),
            "actual_amount": rental.actual_amount,
            "amount": rental.amount,
            "sms_received_count": len(rental.sms),
        }

    # --- endpoints --------------------------------------------------------------------------

    async def _services(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._reply(UNAUTHORIZED)
        data = [
            {"code": code, "name": name, "image": f"https://example.com/{code}.png"}
            for code, name in self.services.items()
        ]
        return self._reply(OK, data)

    async def _prices(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._reply(UNAUTHORIZED)
        service = request.query.get("service")
        area = request.query.get("area")
        if not service and not area:
            return self._reply(INVALID)
        data = []
        for (svc, ar), durations in self.prices.items():
            if (service and svc != service) or (area and ar != area):
                continue
            area_name = AREAS.get(ar, ("", ar))[1]
            data.append(
                {
                    "service_code": svc,
                    "service_name": self.services.get(svc, svc),
                    "service_image": f"https://example.com/{svc}.png",
                    "area_code": ar,
                    "area_name": area_name,
                    "area_image": f"https://example.com/{ar}.png",
                    "durations": [
                        {
                            "days": d.days,
                            "amount": d.amount,
                            "actual_amount": d.actual_amount,
                            "qty": d.qty,
                        }
                        for d in sorted(durations.values(), key=lambda d: d.days)
                    ],
                }
            )
        return self._reply(OK, data)

    async def _purchase(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._reply(UNAUTHORIZED)
        query = request.query
        service, area = query.get("service", ""), query.get("area", "")
        try:
            days = int(query.get("duration", ""))
            max_amount = int(query["max_amount"]) if "max_amount" in query else None
        except ValueError:
            return self._reply(INVALID)
        auto_renew = query.get("auto_renew", "false").lower()
        if auto_renew not in ("true", "false", "1", "0"):
            return self._reply(INVALID)
        option = self.prices.get((service, area), {}).get(days)
        if option is None:
            return self._reply(INVALID)
        if option.qty <= 0:
            return self._reply(NO_NUMBERS)
        if max_amount is not None and option.actual_amount > max_amount:
            return self._reply(ABOVE_MAX)
        if self.balance < option.actual_amount:
            return self._reply(BALANCE)
        now = self.clock.now()
        option.qty -= 1
        self.balance -= option.actual_amount
        order_id = str(next(self._ids))
        rental = Rental(
            order_id=order_id,
            service=service,
            area=area,
            dialing_code=AREAS.get(area, ("1", area))[0],
            mobile_number=str(next(self._mobile_numbers)),
            duration=days,
            start=now,
            end=now + timedelta(days=days),
            amount=option.amount,
            actual_amount=option.actual_amount,
            auto_renew=auto_renew in ("true", "1"),
            last_renewal_at=now,
        )
        self.rentals[order_id] = rental
        self.orders[order_id] = OrderRecord(
            order_id, "PURCHASE", order_id, days, option.amount, option.actual_amount, now
        )
        return self._reply(
            OK,
            {
                "order_id": order_id,
                "dialing_code": rental.dialing_code,
                "mobile_number": rental.mobile_number,
                "area_code": area,
                "area_name": AREAS.get(area, ("", area))[1],
                "service_code": service,
                "service_name": self.services.get(service, service),
                "duration": days,
                "rental_start_at": iso(rental.start),
                "rental_end_at": iso(rental.end),
                "actual_amount": option.actual_amount,
                "amount": option.amount,
                "is_auto_renew": rental.auto_renew,
                "create_at": iso(now),
            },
        )

    async def _numbers(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._reply(UNAUTHORIZED)
        self._tick()
        page = self._page(request)
        if page is None:
            return self._reply(INVALID)
        page_num, page_size = page
        status = request.query.get("status")
        mobile = request.query.get("mobile_number")
        now = self.clock.now()
        rows = [
            r
            for r in reversed(self.rentals.values())  # newest first
            if (not status or r.status(now) == status)
            and (not mobile or r.mobile_number == mobile)
        ]
        start = (page_num - 1) * page_size
        return self._reply(
            OK,
            {
                "page_num": page_num,
                "page_size": page_size,
                "total": len(rows),
                "total_page": (len(rows) + page_size - 1) // page_size,
                "list": [self._rental_json(r) for r in rows[start : start + page_size]],
            },
        )

    async def _order(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._reply(UNAUTHORIZED)
        self._tick()
        record = self.orders.get(request.query.get("order_id", ""))
        if record is None:
            return self._reply(NOT_FOUND)
        rental = self.rentals[record.rental_id]
        return self._reply(
            OK,
            {
                "order_id": record.order_id,
                "order_type": record.order_type,
                "status": record.status,
                "dialing_code": rental.dialing_code,
                "mobile_number": rental.mobile_number,
                "area_code": rental.area,
                "area_name": AREAS.get(rental.area, ("", rental.area))[1],
                "service_code": rental.service,
                "service_name": self.services.get(rental.service, rental.service),
                "duration": record.duration,
                "actual_amount": record.actual_amount,
                "amount": record.amount,
                "create_at": iso(record.created_at),
            },
        )

    async def _sms(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._reply(UNAUTHORIZED)
        rental = self.rentals.get(request.query.get("order_id", ""))
        if rental is None:
            return self._reply(NOT_FOUND)
        page = self._page(request)
        if page is None:
            return self._reply(INVALID)
        page_num, page_size = page
        newest_first = sorted(rental.sms, key=lambda s: s.received_at, reverse=True)
        start = (page_num - 1) * page_size
        return self._reply(
            OK,
            [
                {
                    "id": s.id,
                    "from": s.sender,
                    "sms_content": s.text,
                    "received_at": iso(s.received_at),
                }
                for s in newest_first[start : start + page_size]
            ],
        )

    async def _renew(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._reply(UNAUTHORIZED)
        self._tick()
        rental = self.rentals.get(request.query.get("order_id", ""))
        if rental is None:
            return self._reply(NOT_FOUND)
        try:
            days = int(request.query.get("duration", ""))
        except ValueError:
            return self._reply(INVALID)
        option = self.prices.get((rental.service, rental.area), {}).get(days)
        if option is None:
            return self._reply(INVALID)
        if rental.status(self.clock.now()) != "ACTIVE":
            return self._reply(RENEW_FAILED)
        if self.balance < option.actual_amount:
            return self._reply(BALANCE)
        self._charge_renewal(rental, option, self.clock.now())
        return self._reply(OK, with_data=False)

    async def _cancel(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._reply(UNAUTHORIZED)
        self._tick()
        rental = self.rentals.get(request.query.get("order_id", ""))
        if rental is None:
            return self._reply(NOT_FOUND)
        now = self.clock.now()
        if rental.status(now) != "ACTIVE":
            return self._reply(NOT_REFUNDABLE)
        # bee-sms-rental.txt: refund "if no SMS has been received within 24 hours of the last
        # renewal" - read (as the issue tracker does) as: within 24 h of the last charge and
        # without an SMS since it; the refund is that last charge, never the earlier ones.
        last = rental.last_renewal_at
        if now >= last + timedelta(days=1) or any(s.received_at >= last for s in rental.sms):
            return self._reply(NOT_REFUNDABLE)
        self.balance += rental.actual_amount
        self.refunds.append((rental.order_id, rental.actual_amount))
        rental.cancelled = True
        rental.auto_renew = False
        for record in self.orders.values():
            if record.rental_id == rental.order_id:
                record.status = "CANCELLED"
        return self._reply(OK, with_data=False)
