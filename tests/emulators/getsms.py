"""An offline Get-SMS: the native activation API (``/api/v1/``) and rental API (``/api/v2/rent/``).

Wire format as documented in ``get-sms.txt``: every answer is ``{"status": N, "data": {...}}``
served with HTTP 200 (``http_mirror_status = True`` serves HTTP N instead), except the bare
bodies of ``getallcount`` and ``getorders``. Naive dates are Moscow time (UTC+3).

    emu = GetSmsEmulator(clock, api_key="getsms-test-key", balance="100")
    base_url = await emu.start()          # or ``async with emu:``

Seeded stock (``seed=True``): activations for ``tg``/``wa``/``vk``/``go`` in ``ru``, ``tg``/``wa``
in ``ssha``, ``tg`` in ``usavirt`` and ``england`` (``go`` in ``ru`` has 0 left); rentals of
``tg``/``wa`` in ``ru`` and ``tg`` in ``ssha``, 1..7 days.

Money: an activation reserves its price at purchase and is charged when its first SMS arrives;
cancel, ban or the 15-minute lifetime ending without an SMS returns the reserve; after an SMS,
``refusenumber``/``bannumber`` still answer 200 and the provider keeps the price ("money will not
be deducted from your account if no SMS was received" is the docs' only refund rule). A rental
is charged at purchase and refunded by ``refuse`` within 20 minutes if no SMS came, else 400.

Additional SMS (docs, wrongcode): ``getcode`` keeps answering the *first* SMS (its id is the
order id: "last_id ... almost always the same as order_id"); each further SMS is the answer of
``wrongcode`` with ``last_id`` = the previous SMS id, 400 while none came after it.

Control methods:

* ``add_account(key, balance)``, ``set_balance(amount, key=None)``, ``balance_of(key=None)``,
  ``reserved_of(key=None)``, ``ban_account(key=None, banned=True)``
* ``set_stock(service, slug, price=..., count=..., name=None)`` (activations),
  ``set_rent_stock(service, slug, count=..., prices={days: price})``
* ``inject_sms(order_id, text, code=None, sender="")`` for an activation or a rental;
  ``expire(order_id)``; ``complete_rental(rent_id)``
* ``force_status(method, status, api="v1", times=1)``: the next calls of ``method`` answer
  that documented error status (e.g. ``force_status("getnumber", 507)``);
  ``raw_reply(method, body, api="v1", http_status=200)``: the next call gets exactly ``body``;
  ``cloudflare_block(method, api="v1", status=403)``: the next call is refused by a Cloudflare
  HTML page before it reaches the API (nothing happens)
* flags: ``maintenance`` (getnumber answers 507), ``balance_comma`` (getbalance answers the
  doc's literal non-JSON ``"balance": 100,00``), ``http_mirror_status``, ``auto_sms_after``
  (seconds on the clock after which an activation/rental waiting for an SMS gets one)
* inspection: ``activations``, ``rentals`` (dicts by id), ``requests``/``calls(name)`` (base)
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from aiohttp import web

from bot.providers.identifiers import canonical_service, getsms_countries, service_names
from tests.emulators.base import EmulatorServer, FakeClock

MOSCOW = timezone(timedelta(hours=3))
LIFETIME = timedelta(minutes=15)
REFUND_WINDOW = timedelta(minutes=20)
OPERATORS = ("ANY", "TELE2", "BEELINE", "MEGAFON", "MTS")
GETCOUNT_ALIASES = {"wa": "wapp", "vi": "vbr"}  # getcount's own service codes
CALLING_CODES = {"ru": "7", "ssha": "1", "usavirt": "1", "england": "44", "ukr": "380"}

# The shape of Cloudflare's block page (error 1020 / "Sorry, you have been blocked").
CLOUDFLARE_PAGE = (
    '<!DOCTYPE html>\n<html lang="en-US"><head><title>Attention Required! | Cloudflare'
    "</title></head><body><h1>Sorry, you have been blocked</h1><h2>You are unable to access "
    "get-sms.com</h2><p>Cloudflare Ray ID: 8f1c2d3e4a5b6c7d</p></body></html>"
)
_NOT_FOUND = "The SMS has not been found yet"
_ADVICE = "The SMS has probably not been received yet. Please try the request again in 10 seconds"

# Documented messages: (api, method) -> status -> msg. "*" holds the codes every method shares.
MESSAGES: dict[tuple[str, str], dict[int, str]] = {
    ("v1", "*"): {
        401: "User API KEY not specified or incorrect",
        404: "Incorrect method parameter",
    },
    ("v1", "getbalance"): {500: "Query processing error"},
    ("v1", "getcount"): {500: "Failed to generate a service count"},
    ("v1", "getnumber"): {
        500: "No phone number was found for this request",
        502: "Service does not exist",
        503: "Operator does not exist",
        504: "Insufficient funds",
        505: "Country does not exist",
        506: "You are temporarily blocked until the next day",
        507: "Technical work in progress",
    },
    ("v1", "getcode"): {
        400: _NOT_FOUND,
        500: "Order lifetime expired",
        502: "Internal error, try again",
        504: "Insufficient funds",
        505: "Order not found in the system",
        506: "order_id parameter is not specified",
    },
    ("v1", "wrongcode"): {
        400: _NOT_FOUND,
        500: "Order lifetime expired",
        501: "Parameter method is incorrect",
        502: "Internal error, try the request again",
        504: "You have not yet received the first sms from the getcode method",
        505: "Order not found in the system",
        506: "order_id parameter is not specified",
    },
    ("v1", "refusenumber"): {
        500: "Order lifetime expired",
        502: "Internal error, try again",
        505: "Order not found in the system",  # undocumented here; getcode's code
        506: "order_id parameter is not specified",
    },
    ("v1", "bannumber"): {
        500: "Order lifetime expired",
        502: "Internal error, try again",
        505: "Order not found in the system",
        506: "order_id parameter is not specified",
    },
    ("v1", "getallcount"): {502: "Internal error, try making the request again"},
    ("v2", "*"): {
        401: "User API KEY not provided",
        404: "Incorrectly specified 'method' parameter",
    },
    ("v2", "getcountprices"): {505: "Country does not exist"},  # undocumented; getnumber's code
    ("v2", "getnumber"): {
        500: "No available numbers for rental",
        502: "Service does not exist",
        503: "Internal error, please try to order a number later",
        504: "Insufficient funds",
        505: "Country does not exist",
        506: "Incorrectly specified period or period type",
        507: "Technical maintenance in progress",
    },
    ("v2", "getcode"): {
        400: "No SMS received on this number yet",
        501: "Rental was canceled or the rental order time has expired",
        502: "Rental completed",
        503: "Order not found",
    },
    ("v2", "prolong"): {
        502: "Rent ID not provided or no such order in the system",
        504: "Incorrectly specified period or period type",
        505: "Insufficient funds to extend the rental",
        506: "Unable to extend the rental for the specified period",
        507: "Internal error, please try to resend the request",
    },
    ("v2", "refuse"): {
        400: "Unable to cancel the rental of this number, as more than 20 minutes have passed "
        "or SMS has already been received",
        500: "Rent ID not provided",
        501: "Rental has already been canceled",
        502: "Rental is completed",
        503: "Order not found",
    },
    ("v2", "delete"): {500: "Rent ID not provided"},
    ("v2", "getorders"): {},
}


@dataclass
class Account:
    key: str
    balance: Decimal
    reserved: Decimal = Decimal(0)
    banned: bool = False


@dataclass
class ActivationStock:
    name: str
    price: Decimal
    count: int


@dataclass
class RentStock:
    count: int
    prices: dict[int, Decimal]  # days -> price


@dataclass
class Message:
    id: str
    text: str
    code: str | None
    sender: str
    at: datetime


@dataclass
class Activation:
    id: str
    key: str
    service: str
    slug: str
    phone: str
    price: Decimal
    started: datetime
    status: str = "active"  # active | cancelled | banned | expired
    charged: bool = False
    sms: list[Message] = field(default_factory=list)
    waiting_since: datetime | None = None  # for auto_sms_after: when an SMS became awaited

    @property
    def expires(self) -> datetime:
        return self.started + LIFETIME


@dataclass
class Rental:
    id: str
    key: str
    service: str
    slug: str
    phone: str
    price: Decimal
    started: datetime
    ends: datetime
    status: int = 1  # 0 expired, 1 active, 2 cancelled, 3 completed
    sms: list[tuple[datetime, str]] = field(default_factory=list)


Method = Callable[[Account, dict[str, str]], Awaitable[web.Response]]


class GetSmsEmulator(EmulatorServer):
    """Stateful Get-SMS. See the module docstring for the control methods."""

    def __init__(
        self,
        clock: FakeClock | None = None,
        *,
        api_key: str = "getsms-test-key",
        balance: Decimal | str | int = "100",
        seed: bool = True,
        auto_sms_after: float | None = None,
    ) -> None:
        super().__init__(clock)
        self.api_key = api_key
        self.accounts: dict[str, Account] = {api_key: Account(api_key, Decimal(str(balance)))}
        self.stock: dict[tuple[str, str], ActivationStock] = {}  # (slug, service)
        self.rent_stock: dict[tuple[str, str], RentStock] = {}
        self.activations: dict[str, Activation] = {}
        self.rentals: dict[str, Rental] = {}
        self.maintenance = False
        self.balance_comma = False
        self.http_mirror_status = False
        self.auto_sms_after = auto_sms_after
        self._forced: dict[tuple[str, str], list[int]] = {}
        self._raw: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self._blocked: dict[tuple[str, str], list[int]] = {}
        self._ids = itertools.count(377253343)
        self._random = random.Random(4242)  # fake phone numbers and codes
        self._v1_methods: dict[str, Method] = {
            "getbalance": self._getbalance,
            "getcount": self._getcount,
            "getallcount": self._getallcount,
            "getnumber": self._getnumber,
            "getcode": self._getcode,
            "wrongcode": self._wrongcode,
            "refusenumber": self._refusenumber,
            "bannumber": self._bannumber,
        }
        self._v2_methods: dict[str, Method] = {
            "getcountprices": self._getcountprices,
            "getnumber": self._rent_getnumber,
            "getcode": self._rent_getcode,
            "prolong": self._prolong,
            "refuse": self._refuse,
            "delete": self._delete,
            "getorders": self._getorders,
        }
        for path in ("/api/v1/", "/api/v1"):
            self.app.router.add_route("*", path, self._handle_v1)
        for path in ("/api/v2/rent/", "/api/v2/rent"):
            self.app.router.add_route("*", path, self._handle_v2)
        if seed:
            self._seed()

    def _seed(self) -> None:
        for slug, service, name, price, count in (
            ("ru", "tg", "Telegram", "0.50", 50),
            ("ru", "wa", "Whatsapp", "0.80", 30),
            ("ru", "vk", "VK", "0.20", 100),
            ("ru", "go", "Google,youtube,Gmail", "0.30", 0),
            ("ssha", "tg", "Telegram", "1.20", 10),
            ("ssha", "wa", "Whatsapp", "1.50", 5),
            ("usavirt", "tg", "Telegram", "0.40", 20),
            ("england", "tg", "Telegram", "0.90", 8),
        ):
            self.set_stock(service, slug, price=price, count=count, name=name)
        base = {"ru": Decimal("2.00"), "ssha": Decimal("4.00")}
        for slug, service, count in (("ru", "tg", 5), ("ru", "wa", 3), ("ssha", "tg", 2)):
            prices = {d: base[slug] + Decimal("1.50") * (d - 1) for d in range(1, 8)}
            self.set_rent_stock(service, slug, count=count, prices=prices)

    # --- control ----------------------------------------------------------------------------

    def add_account(self, key: str, balance: Decimal | str | int = 0) -> Account:
        self.accounts[key] = Account(key, Decimal(str(balance)))
        return self.accounts[key]

    def set_balance(self, amount: Decimal | str | int, key: str | None = None) -> None:
        self.accounts[key or self.api_key].balance = Decimal(str(amount))

    def balance_of(self, key: str | None = None) -> Decimal:
        self._tick()
        return self.accounts[key or self.api_key].balance

    def reserved_of(self, key: str | None = None) -> Decimal:
        self._tick()
        return self.accounts[key or self.api_key].reserved

    def ban_account(self, key: str | None = None, banned: bool = True) -> None:
        self.accounts[key or self.api_key].banned = banned

    def set_stock(
        self,
        service: str,
        slug: str,
        *,
        price: Decimal | str | int,
        count: int,
        name: str | None = None,
    ) -> None:
        name = name or service_names().get(service, service)
        self.stock[(slug, service)] = ActivationStock(name, Decimal(str(price)), count)

    def set_rent_stock(
        self,
        service: str,
        slug: str,
        *,
        count: int,
        prices: Mapping[int, Decimal | str | int],
    ) -> None:
        table = {int(d): Decimal(str(p)) for d, p in prices.items()}
        self.rent_stock[(slug, service)] = RentStock(count, table)

    def force_status(self, method: str, status: int, *, api: str = "v1", times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``status`` (a documented code)."""
        known = MESSAGES[(api, "*")] | MESSAGES[(api, method)]
        if status not in known:
            raise ValueError(f"{api} {method} does not document status {status}")
        self._forced.setdefault((api, method), []).extend([status] * times)

    def raw_reply(
        self, method: str, body: str, *, api: str = "v1", http_status: int = 200
    ) -> None:
        """The next call of ``method`` gets exactly ``body`` (shape variants, odd answers)."""
        self._raw.setdefault((api, method), []).append((http_status, body))

    def cloudflare_block(self, method: str, *, api: str = "v1", status: int = 403) -> None:
        """The next call of ``method`` never reaches the API: a Cloudflare HTML refusal."""
        self._blocked.setdefault((api, method), []).append(status)

    def inject_sms(
        self, order_id: str | int, text: str, *, code: str | None = None, sender: str = ""
    ) -> str:
        """Deliver an SMS to an active activation or rental; returns the activation SMS id.

        ``code=None`` lets the "system" find a 4-8 digit code in the text (``null`` if none);
        ``code=""`` sends ``null`` whatever the text says.
        """
        self._tick()
        order_id = str(order_id)
        now = self.clock.now()
        if order_id in self.rentals:
            rental = self.rentals[order_id]
            if rental.status != 1:
                raise ValueError(f"rental {order_id} is not active")
            rental.sms.append((now, text))
            return ""  # rental SMS have no ids on the wire
        act = self.activations[order_id]
        if act.status != "active":
            raise ValueError(f"activation {order_id} is {act.status}")
        return self._deliver(act, text, code, sender)

    def _deliver(self, act: Activation, text: str, code: str | None, sender: str) -> str:
        now = self.clock.now()
        if code is None:
            found = re.search(r"(?<!\d)\d{4,8}(?!\d)", text)
            code = found.group(0) if found else None
        sms_id = act.id if not act.sms else str(next(self._ids))
        act.sms.append(Message(sms_id, text, code or None, sender, now))
        act.waiting_since = None
        if not act.charged:  # the reserve becomes a charge
            self.accounts[act.key].reserved -= act.price
            act.charged = True
        return sms_id

    def expire(self, order_id: str | int) -> None:
        """End the lifetime/rental period now."""
        order_id = str(order_id)
        if order_id in self.rentals:
            self.rentals[order_id].ends = self.clock.now()
        else:
            self.activations[order_id].started = self.clock.now() - LIFETIME
        self._tick()

    def complete_rental(self, rent_id: str | int) -> None:
        self.rentals[str(rent_id)].status = 3

    # --- time -------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.clock.now()
        for act in self.activations.values():
            if act.status != "active":
                continue
            if now >= act.expires:
                self._close(act, "expired")
            elif (
                self.auto_sms_after is not None
                and act.waiting_since is not None
                and now >= act.waiting_since + timedelta(seconds=self.auto_sms_after)
            ):
                code = f"{self._random.randrange(10**5, 10**6)}"
                self._deliver(act, f"Your code: {code}", code, "")
        for rental in self.rentals.values():
            if rental.status == 1 and now >= rental.ends:
                rental.status = 0
            elif (
                rental.status == 1
                and self.auto_sms_after is not None
                and not rental.sms
                and now >= rental.started + timedelta(seconds=self.auto_sms_after)
            ):
                code = f"{self._random.randrange(10**5, 10**6)}"
                rental.sms.append((now, f"Your code: {code}"))

    def _close(self, act: Activation, status: str) -> None:
        act.status = status
        act.waiting_since = None
        if not act.charged:
            account = self.accounts[act.key]
            account.reserved -= act.price
            account.balance += act.price

    # --- plumbing ---------------------------------------------------------------------------

    async def _handle_v1(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch("v1", request, self._v1_methods)

    async def _handle_v2(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch("v2", request, self._v2_methods)

    async def _dispatch(
        self, api: str, request: web.Request, methods: Mapping[str, Method]
    ) -> web.StreamResponse:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        blocked = self._blocked.get((api, params.get("method", "")))
        if blocked:
            return web.Response(
                status=blocked.pop(0),
                text=CLOUDFLARE_PAGE,
                content_type="text/html",
                headers={"Server": "cloudflare", "CF-RAY": "8f1c2d3e4a5b6c7d-FRA"},
            )
        self._tick()
        account = self.accounts.get(params.get("userkey", ""))
        if account is None:
            return self._error(api, "*", 401)
        name = params.get("method", "")
        handler = methods.get(name)
        if handler is None:
            return self._error(api, "*", 404)
        raw = self._raw.get((api, name))
        if raw:
            http_status, body = raw.pop(0)
            return web.Response(status=http_status, text=body, content_type="application/json")
        forced = self._forced.get((api, name))
        if forced:
            return self._error(api, name, forced.pop(0))
        return await handler(account, params)

    def _reply(self, status: int, body: str) -> web.Response:
        http_status = status if self.http_mirror_status and status >= 400 else 200
        return web.Response(status=http_status, text=body, content_type="application/json")

    def _ok(self, data: Any) -> web.Response:
        return self._reply(200, json.dumps({"status": 200, "data": data}))

    def _bare(self, body: Any) -> web.Response:
        return self._reply(200, json.dumps(body))

    def _error(self, api: str, method: str, status: int, **extra: str) -> web.Response:
        msg = MESSAGES.get((api, method), {}).get(status) or MESSAGES[(api, "*")][status]
        data = {"msg": msg, **extra}
        if status == 400 and method in ("getcode", "wrongcode") and api == "v1":
            data["advice"] = _ADVICE
        return self._reply(status, json.dumps({"status": status, "data": data}))

    def _phone(self, slug: str) -> str:
        return CALLING_CODES.get(slug, "999") + "".join(
            str(self._random.randrange(10)) for _ in range(10)
        )

    def _known_service(self, code: str) -> bool:
        return (
            code in service_names()
            or any(s == code for _, s in self.stock)
            or any(s == code for _, s in self.rent_stock)
        )

    # --- /api/v1/ ---------------------------------------------------------------------------

    async def _getbalance(self, account: Account, params: dict[str, str]) -> web.Response:
        amount = f"{account.balance:.2f}"
        if self.balance_comma:
            amount = amount.replace(".", ",")
        body = '{\n   "status": 200,\n   "data": {\n      "balance": ' + amount + "\n   }\n}"
        return self._reply(200, body)

    async def _getcount(self, account: Account, params: dict[str, str]) -> web.Response:
        slug = params.get("country") or "ru"
        if slug not in getsms_countries():
            return self._error("v1", "getcount", 500)
        services = {
            GETCOUNT_ALIASES.get(service, service): {"count": s.count, "price": f"{s.price}"}
            for (s_slug, service), s in self.stock.items()
            if s_slug == slug
        }
        return self._ok({operator: services for operator in OPERATORS})

    async def _getallcount(self, account: Account, params: dict[str, str]) -> web.Response:
        if params.get("service"):
            wanted = canonical_service(params["service"])
            return self._bare(
                {
                    slug: {"price": f"{s.price}", "count_all": str(s.count)}
                    for (slug, service), s in self.stock.items()
                    if service == wanted
                }
            )
        body: dict[str, list[dict[str, Any]]] = {}
        for (slug, service), s in self.stock.items():
            entry = {"name": s.name, "price": f"{s.price}", "count_all": str(s.count)}
            body.setdefault(slug, [{}])[0][service] = entry
        return self._bare(body)

    async def _getnumber(self, account: Account, params: dict[str, str]) -> web.Response:
        service = canonical_service(params.get("service", ""))
        slug = params.get("country") or "ru"
        operator = params.get("operator")
        if not service or not self._known_service(service):
            return self._error("v1", "getnumber", 502)
        if slug not in getsms_countries():
            return self._error("v1", "getnumber", 505)
        if operator and operator.upper() not in OPERATORS:
            return self._error("v1", "getnumber", 503)
        if account.banned:
            return self._error("v1", "getnumber", 506)
        if self.maintenance:
            return self._error("v1", "getnumber", 507)
        stock = self.stock.get((slug, service))
        if stock is None or stock.count <= 0:
            return self._error(
                "v1",
                "getnumber",
                500,
                advice="Please try to retrieve the phone number later, "
                "after new numbers become available",
            )
        if account.balance < stock.price:
            return self._error("v1", "getnumber", 504)
        now = self.clock.now()
        act = Activation(
            id=str(next(self._ids)),
            key=account.key,
            service=service,
            slug=slug,
            phone=self._phone(slug),
            price=stock.price,
            started=now,
            waiting_since=now,
        )
        self.activations[act.id] = act
        stock.count -= 1
        account.balance -= stock.price
        account.reserved += stock.price
        started = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now:%f}"[:3] + "Z"
        return self._ok({"order_id": act.id, "phone": act.phone, "start_time": started})

    def _find(
        self, account: Account, params: dict[str, str], method: str
    ) -> Activation | web.Response:
        order_id = params.get("order_id", "")
        if not order_id:
            return self._error("v1", method, 506)
        act = self.activations.get(order_id)
        if act is None or act.key != account.key:
            return self._error("v1", method, 505)
        if act.status != "active":
            return self._error("v1", method, 500)
        return act

    def _sms_data(self, act: Activation, sms: Message) -> dict[str, str | None]:
        return {
            "code": sms.code,
            "fullSms": sms.text,
            "phone": act.phone,
            "receivedDate": sms.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "sender": sms.sender,
            "id": sms.id,
            "phonePass": "",
        }

    async def _getcode(self, account: Account, params: dict[str, str]) -> web.Response:
        act = self._find(account, params, "getcode")
        if isinstance(act, web.Response):
            return act
        if not act.sms:
            return self._error("v1", "getcode", 400)
        # The first SMS, always: the next ones are wrongcode's answers (see the module doc).
        return self._ok(self._sms_data(act, act.sms[0]))

    async def _wrongcode(self, account: Account, params: dict[str, str]) -> web.Response:
        act = self._find(account, params, "wrongcode")
        if isinstance(act, web.Response):
            return act
        if not act.sms:
            return self._error("v1", "wrongcode", 504)
        ids = [sms.id for sms in act.sms]
        last_id = params.get("last_id", "")
        if last_id not in ids:
            return self._error("v1", "wrongcode", 501)
        position = ids.index(last_id)
        if position + 1 < len(act.sms):
            return self._ok(self._sms_data(act, act.sms[position + 1]))
        act.waiting_since = act.waiting_since or self.clock.now()
        return self._error("v1", "wrongcode", 400)

    async def _refusenumber(self, account: Account, params: dict[str, str]) -> web.Response:
        act = self._find(account, params, "refusenumber")
        if isinstance(act, web.Response):
            return act
        self._close(act, "cancelled")
        return self._ok({"msg": "The phone number order has been canceled"})

    async def _bannumber(self, account: Account, params: dict[str, str]) -> web.Response:
        act = self._find(account, params, "bannumber")
        if isinstance(act, web.Response):
            return act
        self._close(act, "banned")
        return self._ok({"msg": "The phone number is banned"})

    # --- /api/v2/rent/ ----------------------------------------------------------------------

    @staticmethod
    def _msk(moment: datetime) -> str:
        return moment.astimezone(MOSCOW).strftime("%Y-%m-%d %H:%M:%S")

    @staticmethod
    def _period_days(params: dict[str, str]) -> int | None:
        kind = params.get("type", "")
        try:
            period = int(params.get("period", ""))
        except ValueError:
            return None
        if kind not in ("day", "week") or period < 1:
            return None
        return period * (7 if kind == "week" else 1)

    async def _getcountprices(self, account: Account, params: dict[str, str]) -> web.Response:
        slug = params.get("country") or "ru"
        if slug not in getsms_countries():
            return self._error("v2", "getcountprices", 505)
        data = {
            service: {
                "count": str(s.count),
                "price": {f"{d}day": f"{p}" for d, p in sorted(s.prices.items())},
            }
            for (s_slug, service), s in self.rent_stock.items()
            if s_slug == slug
        }
        return self._ok(data)

    async def _rent_getnumber(self, account: Account, params: dict[str, str]) -> web.Response:
        days = self._period_days(params)
        service = canonical_service(params.get("service", ""))
        slug = params.get("country") or "ru"
        if days is None or days > 7:
            return self._error("v2", "getnumber", 506)
        if not service or not self._known_service(service):
            return self._error("v2", "getnumber", 502)
        if slug not in getsms_countries():
            return self._error("v2", "getnumber", 505)
        if self.maintenance:
            return self._error("v2", "getnumber", 507)
        stock = self.rent_stock.get((slug, service))
        if stock is None or stock.count <= 0 or days not in stock.prices:
            return self._error("v2", "getnumber", 500)
        price = stock.prices[days]
        if account.balance < price:
            return self._error("v2", "getnumber", 504)
        now = self.clock.now()
        rental = Rental(
            id=str(next(self._ids)),
            key=account.key,
            service=service,
            slug=slug,
            phone=self._phone(slug),
            price=price,
            started=now,
            ends=now + timedelta(days=days),
        )
        self.rentals[rental.id] = rental
        stock.count -= 1
        account.balance -= price
        return self._ok(
            {
                "order_id": int(rental.id),
                "phone": rental.phone,
                "end_time_timestamp": int(rental.ends.timestamp()),
                "end_time": self._msk(rental.ends),
                "start_timestamp": int(now.timestamp()),
            }
        )

    def _rental(self, account: Account, params: dict[str, str]) -> Rental | None:
        rental = self.rentals.get(params.get("rentid", ""))
        return rental if rental is not None and rental.key == account.key else None

    async def _rent_getcode(self, account: Account, params: dict[str, str]) -> web.Response:
        rental = self._rental(account, params)
        if rental is None:
            return self._error("v2", "getcode", 503)
        if rental.status in (0, 2):
            return self._error("v2", "getcode", 501)
        if rental.status == 3:
            return self._error("v2", "getcode", 502)
        if not rental.sms:
            return self._error("v2", "getcode", 400, advice="No SMS received on this number yet")
        sms_list = [{"date": self._msk(at), "text": text} for at, text in rental.sms]
        return self._ok({"msg": "List of all SMS", "sms_list": sms_list})

    async def _prolong(self, account: Account, params: dict[str, str]) -> web.Response:
        rental = self._rental(account, params)
        if rental is None:
            return self._error("v2", "prolong", 502)
        days = self._period_days(params)
        if days is None:
            return self._error("v2", "prolong", 504)
        stock = self.rent_stock.get((rental.slug, rental.service))
        if rental.status != 1 or stock is None or days not in stock.prices:
            return self._error("v2", "prolong", 506)
        price = stock.prices[days]
        if account.balance < price:
            return self._error("v2", "prolong", 505)
        account.balance -= price
        rental.ends += timedelta(days=days)
        return self._ok(
            {"phone": rental.phone, "msg": "You have extended the rental of the number"}
        )

    async def _refuse(self, account: Account, params: dict[str, str]) -> web.Response:
        if not params.get("rentid"):
            return self._error("v2", "refuse", 500)
        rental = self._rental(account, params)
        if rental is None:
            return self._error("v2", "refuse", 503)
        if rental.status == 2:
            return self._error("v2", "refuse", 501)
        if rental.status == 3:
            return self._error("v2", "refuse", 502)
        too_late = self.clock.now() - rental.started > REFUND_WINDOW
        if rental.status == 0 or too_late or rental.sms:
            return self._error("v2", "refuse", 400)
        rental.status = 2
        account.balance += rental.price
        return self._ok(
            {
                "msg": "Rental canceled",
                "advice": "Your phone number rental order is canceled. The money is refunded.",
            }
        )

    async def _delete(self, account: Account, params: dict[str, str]) -> web.Response:
        if not params.get("rentid"):
            return self._error("v2", "delete", 500)
        rental = self._rental(account, params)
        if rental is not None:
            del self.rentals[rental.id]
        return self._ok(
            {
                "msg": "Order deleted",
                "advice": "The phone number rental order has been deleted from the system",
            }
        )

    async def _getorders(self, account: Account, params: dict[str, str]) -> web.Response:
        rows = [
            {
                "id": rental.id,
                "phone": rental.phone,
                "status": str(rental.status if rental.status != 3 else 0),
                "date_at": self._msk(rental.ends),
            }
            for rental in self.rentals.values()
            if rental.key == account.key
        ]
        return self._bare(rows)
