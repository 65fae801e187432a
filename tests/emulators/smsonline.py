"""Emulator of SMS.online's rent API (SMS-Activate ``handler_api``, profile "smsonline").

One endpoint, ``/stubs/handler_api.php`` (GET query or POST form), routed on ``action``:
getBalance, getRentPrices, getRentNumber, getRentStatus, setRentStatus, getRentList,
continueRentNumber, getContinueRentPrice. Wire details follow
``sms-activate-protocol.md`` §4/§6: text ``ACCESS_BALANCE:<n>``; rent answers
``{"status":"success",…}`` / ``{"status":"error","message":TOKEN}``; a wrong/missing key,
an unknown action and a ban come back as plain text (``BAD_KEY``, ``BAD_ACTION``,
``BANNED:'…'``). Fixed duration menu :data:`RENT_HOURS`; ``getRentStatus`` pages from 0, newest
first, and reports "no SMS yet"/finished/cancelled as ``STATUS_*`` errors; ``getRentList``
answers a JSON array of ``{id, phone, price, hours}``. Time is the :class:`FakeClock`: a rent
past its ``endDate`` is finished; cancel (status 2) is refused after 20 minutes.

Usage::

    emulator = SmsOnlineEmulator(clock, api_key="k", balance=Decimal("100"))
    base_url = await emulator.start()

Seeded stock (:data:`SEED`; SA country ids, price of the 4-hour rent in USD): US(187) tg/wa/go,
GB(16) tg and wa (out of stock), UA(1) tg, DE(43) full, KZ(2) ig. Longer rents cost the 4-hour
price times :data:`DURATION_FACTORS`.

Control methods (plain Python, for tests and benchmarks):

* ``add_account(key, balance)``, ``set_balance(amount, key=None)``, ``balance_of(key=None)``
* ``set_stock(service, country_id, count, price=None)``; ``price_for(service, country_id, hours)``
* ``await inject_sms(rent_id, text, phone_from="Telegram", date=None)``: adds an SMS and, when
  the rent was bought with ``url``/``uri``, POSTs SMS.online's webhook payload there (awaited;
  delivered once, no retries, recorded in ``webhooks``)
* ``expire(rent_id)``, ``revoke(rent_id)`` (STATUS_REVOKE, refunded)
* ``ban(until, key=None)``, ``set_inactive(flag, key=None)``, ``max_active`` (CHANNELS_LIMIT)
* ``queue_error(action, token, times=1, text=False)``: the next calls of ``action`` answer
  ``token`` (JSON envelope, or plain text) instead of being served; ``queue_raw(action, body)``
  answers an exact body
* wire variants: ``ignore_rent_time`` (True by default, as documented: getRentPrices has no
  duration parameter and answers the 4-hour price; False: it prices ``rent_time``/``time``),
  ``rent_list_as_object`` (standard SA ``{"0":…}``), ``quantity_as_int``, ``ignore_page``,
  ``end_date_style`` ("T", "space" or "offset" = Moscow time with ``+03:00``), ``server_zone``
  (the zone of zone-less dates; UTC unless a test says otherwise),
  ``error_field`` ("message"/"msg"), ``error_status`` (HTTP status of error answers),
  ``json_account_errors`` (BAD_KEY/BAD_ACTION in the JSON envelope), ``max_rent_hours``
  (MAX_HOURS_EXCEED), ``webhook_numeric_sender`` (digit senders as JSON numbers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import aiohttp
import phonenumbers
from aiohttp import web

from bot.providers.identifiers import sms_activate_countries
from tests.emulators.base import EmulatorServer, FakeClock

log = logging.getLogger(__name__)

PATH = "/stubs/handler_api.php"
RENT_HOURS: tuple[int, ...] = (4, 8, 12, 24, 72, 168, 360, 720, 2160)
DURATION_FACTORS: Mapping[int, Decimal] = {
    4: Decimal(1),
    8: Decimal("1.5"),
    12: Decimal(2),
    24: Decimal(3),
    72: Decimal(6),
    168: Decimal(10),
    360: Decimal(18),
    720: Decimal(30),
    2160: Decimal(75),
}
CANCEL_WINDOW = timedelta(minutes=20)
DEFAULT_KEY = "smsonline-test-key"
# (SA country id, service) -> (count, price of 4 hours)
SEED: Mapping[tuple[int, str], tuple[int, str]] = {
    (187, "tg"): (25, "1.20"),
    (187, "wa"): (10, "1.50"),
    (187, "go"): (5, "0.90"),
    (16, "tg"): (8, "1.00"),
    (16, "wa"): (0, "1.40"),
    (1, "tg"): (40, "0.50"),
    (43, "full"): (3, "4.00"),
    (2, "ig"): (12, "0.30"),
}
_MOSCOW = timezone(timedelta(hours=3))

RentStatus = Literal["active", "finished", "cancelled", "revoked"]


@dataclass
class Account:
    balance: Decimal
    banned_until: datetime | None = None
    inactive: bool = False


@dataclass
class Stock:
    count: int
    price: Decimal  # 4 hours


@dataclass
class Rental:
    id: int
    key: str
    service: str
    country: int
    phone: str
    hours: int
    price: Decimal
    started: datetime
    end_date: datetime
    url: str | None = None
    status: RentStatus = "active"
    sms: list[dict[str, str]] = field(default_factory=list)


@dataclass
class WebhookDelivery:
    url: str
    payload: dict[str, Any]
    status: int | None  # None: the POST failed


class _Answer(Exception):
    """Raised inside a handler to answer with an error token."""

    def __init__(
        self, token: str, *, text: bool = False, raw: str | None = None, **extra: Any
    ) -> None:
        super().__init__(token)
        self.token = token
        self.text = text
        self.raw = raw  # answer exactly this body (with ``error_status``)
        self.extra = extra


class SmsOnlineEmulator(EmulatorServer):
    profile = "smsonline"

    def __init__(
        self,
        clock: FakeClock | None = None,
        *,
        api_key: str = DEFAULT_KEY,
        balance: Decimal | str = "100",
        seed: bool = True,
    ) -> None:
        super().__init__(clock)
        self.default_key = api_key
        self.accounts: dict[str, Account] = {api_key: Account(Decimal(balance))}
        self.stock: dict[tuple[int, str], Stock] = {}
        if seed:
            for (cid, service), (count, price) in SEED.items():
                self.set_stock(service, cid, count, price)
        self.rentals: dict[int, Rental] = {}
        self.webhooks: list[WebhookDelivery] = []
        self._next_id = 1000
        self._next_phone = 1_000_000
        self._queued: dict[str, list[_Answer]] = {}
        # wire variants (see module docstring)
        self.ignore_rent_time = True  # getRentPrices documents no duration parameter
        self.rent_list_as_object = False
        self.quantity_as_int = False
        self.ignore_page = False
        self.end_date_style: Literal["T", "space", "offset"] = "T"
        # The zone of zone-less dates (the docs do not say; SA-compatible servers differ,
        # some use Moscow time): endDate and SMS dates are written in it.
        self.server_zone: tzinfo = UTC
        self.error_field = "message"
        self.error_status = 200
        self.json_account_errors = False
        self.max_rent_hours = 4320
        self.max_active: int | None = None
        self.webhook_numeric_sender = True
        self._actions: dict[str, Callable[[Account, str, dict[str, str]], web.Response]] = {
            "getBalance": self._get_balance,
            "getRentPrices": self._get_rent_prices,
            "getRentNumber": self._get_rent_number,
            "getRentStatus": self._get_rent_status,
            "setRentStatus": self._set_rent_status,
            "getRentList": self._get_rent_list,
            "continueRentNumber": self._continue_rent_number,
            "getContinueRentPrice": self._get_continue_rent_price,
        }
        self.app.router.add_route("*", PATH, self._handle)

    # --- control -----------------------------------------------------------------------------

    def add_account(self, key: str, balance: Decimal | str = "0") -> None:
        self.accounts[key] = Account(Decimal(balance))

    def set_balance(self, amount: Decimal | str, key: str | None = None) -> None:
        self.accounts[key or self.default_key].balance = Decimal(amount)

    def balance_of(self, key: str | None = None) -> Decimal:
        return self.accounts[key or self.default_key].balance

    def set_stock(
        self, service: str, country_id: int, count: int, price: Decimal | str | None = None
    ) -> None:
        old = self.stock.get((country_id, service))
        if price is None and old is None:
            raise ValueError("a new stock entry needs a price")
        self.stock[(country_id, service)] = Stock(
            count, Decimal(price) if price is not None else old.price if old else Decimal(0)
        )

    def price_for(self, service: str, country_id: int, hours: int) -> Decimal:
        base = self.stock[(country_id, service)].price
        return (base * DURATION_FACTORS[hours]).quantize(Decimal("0.01"), ROUND_HALF_UP)

    def queue_error(self, action: str, token: str, times: int = 1, *, text: bool = False) -> None:
        self._queued.setdefault(action, []).extend(_Answer(token, text=text) for _ in range(times))

    def queue_raw(self, action: str, body: str, times: int = 1) -> None:
        """The next calls of ``action`` answer exactly ``body`` (for shape-variance tests)."""
        self._queued.setdefault(action, []).extend(_Answer("", raw=body) for _ in range(times))

    def ban(self, until: datetime, key: str | None = None) -> None:
        self.accounts[key or self.default_key].banned_until = until

    def set_inactive(self, inactive: bool, key: str | None = None) -> None:
        self.accounts[key or self.default_key].inactive = inactive

    def expire(self, rent_id: int | str) -> None:
        rental = self.rentals[int(rent_id)]
        rental.end_date = min(rental.end_date, self.clock.now())
        self._refresh(rental)

    def revoke(self, rent_id: int | str) -> None:
        rental = self.rentals[int(rent_id)]
        self._refresh(rental)
        if rental.status == "active":
            rental.status = "revoked"
            self.accounts[rental.key].balance += rental.price

    async def inject_sms(
        self,
        rent_id: int | str,
        text: str,
        phone_from: str = "Telegram",
        *,
        date: datetime | None = None,
    ) -> WebhookDelivery | None:
        """Deliver an SMS to an active rent; POST the webhook when the rent has a URL."""
        rental = self.rentals[int(rent_id)]
        self._refresh(rental)
        if rental.status != "active":
            raise ValueError(f"rent {rent_id} is {rental.status}")
        moment = (date or self.clock.now()).astimezone(self.server_zone)
        stamp = moment.strftime("%Y-%m-%d %H:%M:%S")  # zone-less, in the server's zone
        rental.sms.append(
            {"phoneFrom": phone_from, "text": text, "service": rental.service, "date": stamp}
        )
        if not rental.url:
            return None
        sender: str | int = phone_from
        if self.webhook_numeric_sender and phone_from.isdigit():
            sender = int(phone_from)
        payload = {"rentId": rental.id, "sms": {"phoneFrom": sender, "text": text, "date": stamp}}
        delivery = WebhookDelivery(rental.url, payload, None)
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(rental.url, json=payload) as response,
            ):
                delivery.status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.info("webhook for rent %s failed: %s", rental.id, type(exc).__name__)
        self.webhooks.append(delivery)
        return delivery

    # --- plumbing ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.method == "POST":
            form = await request.post()
            params.update({k: str(v) for k, v in form.items()})
        action = params.get("action", "")
        key = params.get("api_key", "")
        account = self.accounts.get(key)
        handler = self._actions.get(action)
        try:
            if account is None:
                raise _Answer("BAD_KEY", text=not self.json_account_errors)
            if handler is None:
                raise _Answer("BAD_ACTION", text=not self.json_account_errors)
            queued = self._queued.get(action)
            if queued:
                raise queued.pop(0)
            if account.banned_until is not None and account.banned_until > self.clock.now():
                until = account.banned_until.strftime("%Y-%m-%d %H-%M-%S")
                raise _Answer(f"BANNED:'{until}'", text=True)
            return handler(account, key, params)
        except _Answer as answer:
            if answer.raw is not None:
                return web.Response(status=self.error_status, text=answer.raw)
            if answer.text:
                return web.Response(status=self.error_status, text=answer.token)
            body = {"status": "error", self.error_field: answer.token, **answer.extra}
            return web.json_response(body, status=self.error_status)

    @staticmethod
    def _ok(**fields: Any) -> web.Response:
        return web.json_response({"status": "success", **fields})

    def _format_end(self, moment: datetime) -> str:
        if self.end_date_style == "offset":
            return moment.astimezone(_MOSCOW).isoformat(timespec="seconds")
        naive = moment.astimezone(self.server_zone).replace(tzinfo=None)
        return naive.strftime(
            "%Y-%m-%d %H:%M:%S" if self.end_date_style == "space" else "%Y-%m-%dT%H:%M:%S"
        )

    def _refresh(self, rental: Rental) -> None:
        if rental.status == "active" and self.clock.now() >= rental.end_date:
            rental.status = "finished"

    def _active(self, key: str) -> list[Rental]:
        for rental in self.rentals.values():
            self._refresh(rental)
        return [r for r in self.rentals.values() if r.key == key and r.status == "active"]

    def _rental(self, key: str, params: dict[str, str]) -> Rental:
        raw = params.get("id", "").strip()
        if not raw:
            raise _Answer("NO_ID_RENT")
        rental = self.rentals.get(int(raw)) if raw.isdigit() else None
        if rental is None or rental.key != key:
            raise _Answer("INVALID_PHONE")
        self._refresh(rental)
        return rental

    @staticmethod
    def _hours(params: dict[str, str], *names: str) -> int:
        raw = next((params[n] for n in names if params.get(n)), "4")  # undocumented default
        if not raw.strip().isdigit() or int(raw) not in RENT_HOURS:
            raise _Answer("INVALID_TIME")
        return int(raw)

    def _country(self, raw: str | None) -> int:
        if raw is None or not raw.strip().lstrip("-").isdigit():
            raise _Answer("BAD_COUNTRY")
        cid = int(raw)
        if str(cid) not in sms_activate_countries() and not any(c == cid for c, _ in self.stock):
            raise _Answer("BAD_COUNTRY")
        return cid

    def _new_phone(self, cid: int) -> str:
        iso = sms_activate_countries().get(str(cid), "")
        code = phonenumbers.country_code_for_region(iso) or 999
        self._next_phone += 1
        return f"{code}{self._next_phone:09d}"

    def _new_rental(self, key: str, **fields: Any) -> Rental:
        self._next_id += 1
        rental = Rental(id=self._next_id, key=key, **fields)
        self.rentals[rental.id] = rental
        return rental

    def _phone_answer(self, rental: Rental) -> web.Response:
        return self._ok(
            phone={
                "id": rental.id,
                "endDate": self._format_end(rental.end_date),
                "number": rental.phone,
            }
        )

    # --- actions -----------------------------------------------------------------------------

    def _get_balance(self, account: Account, key: str, params: dict[str, str]) -> web.Response:
        return web.Response(text=f"ACCESS_BALANCE:{account.balance:.2f}")

    def _get_rent_prices(self, account: Account, key: str, params: dict[str, str]) -> web.Response:
        if not params.get("country"):  # its page marks country required
            raise _Answer("BAD_COUNTRY")
        country = self._country(params["country"])
        hours = 4 if self.ignore_rent_time else self._hours(params, "rent_time", "time")
        values: dict[str, dict[str, dict[str, Any]]] = {}
        for (cid, service), stock in sorted(self.stock.items()):
            if cid != country:
                continue
            cost = self.price_for(service, cid, hours)
            values.setdefault(str(cid), {})[service] = {"cost": float(cost), "count": stock.count}
        return self._ok(values=values or [])

    def _get_rent_number(self, account: Account, key: str, params: dict[str, str]) -> web.Response:
        service = params.get("service", "").strip()
        if not service or not any(s == service for _, s in self.stock):
            raise _Answer("BAD_SERVICE")
        cid = self._country(params.get("country"))
        hours = self._hours(params, "rent_time", "time")
        if account.inactive:
            raise _Answer("ACCOUNT_INACTIVE")
        stock = self.stock.get((cid, service))
        if stock is None or stock.count <= 0:
            raise _Answer("NO_NUMBERS")
        if self.max_active is not None and len(self._active(key)) >= self.max_active:
            raise _Answer("CHANNELS_LIMIT")
        price = self.price_for(service, cid, hours)
        if account.balance < price:
            raise _Answer("NO_BALANCE")
        account.balance -= price
        stock.count -= 1
        now = self.clock.now()
        rental = self._new_rental(
            key,
            service=service,
            country=cid,
            phone=self._new_phone(cid),
            hours=hours,
            price=price,
            started=now,
            end_date=now + timedelta(hours=hours),
            url=params.get("url") or params.get("uri") or None,
        )
        return self._phone_answer(rental)

    def _get_rent_status(self, account: Account, key: str, params: dict[str, str]) -> web.Response:
        rental = self._rental(key, params)
        if rental.status == "finished":
            raise _Answer("STATUS_FINISH")
        if rental.status == "cancelled":
            raise _Answer("STATUS_CANCEL")
        if rental.status == "revoked":
            raise _Answer("STATUS_REVOKE")
        if not rental.sms:
            raise _Answer("STATUS_WAIT_CODE")
        page = 0 if self.ignore_page else int(params.get("page") or 0)
        size = max(1, int(params.get("size") or 10))
        newest_first = list(reversed(rental.sms))
        chunk = newest_first[page * size : (page + 1) * size]
        quantity: int | str = len(rental.sms) if self.quantity_as_int else str(len(rental.sms))
        values: dict[str, Any] | list[Any] = {str(i): sms for i, sms in enumerate(chunk)}
        return self._ok(quantity=quantity, values=values or [])

    def _set_rent_status(self, account: Account, key: str, params: dict[str, str]) -> web.Response:
        rental = self._rental(key, params)
        status = params.get("status", "").strip()
        if status not in ("1", "2"):
            raise _Answer("INCORECT_STATUS")
        if rental.status == "finished":
            raise _Answer("ALREADY_FINISH")
        if rental.status in ("cancelled", "revoked"):
            raise _Answer("ALREADY_CANCEL")
        if status == "1":
            rental.status = "finished"
            rental.end_date = min(rental.end_date, self.clock.now())
            return self._ok()
        if self.clock.now() - rental.started > CANCEL_WINDOW:
            raise _Answer("CANT_CANCEL")
        rental.status = "cancelled"
        account.balance += rental.price
        return self._ok()

    def _get_rent_list(self, account: Account, key: str, params: dict[str, str]) -> web.Response:
        rows = [
            {
                "id": str(rental.id),
                "phone": rental.phone,
                "price": f"{rental.price:.2f}",
                "hours": str(rental.hours),
            }
            for rental in self._active(key)
        ]
        if not rows:
            raise _Answer("NO_NUMBERS")
        if self.rent_list_as_object:
            return self._ok(values={str(i): row for i, row in enumerate(rows)})
        return self._ok(values=rows)

    def _renewal(self, key: str, params: dict[str, str]) -> tuple[Rental, int, Decimal]:
        rental = self._rental(key, params)
        hours = self._hours(params, "rent_time")
        if rental.status in ("cancelled", "revoked") or (rental.country, rental.service) not in (
            self.stock
        ):
            raise _Answer("RENT_DIE")
        remaining = 0
        if rental.status == "active":
            remaining = int((rental.end_date - self.clock.now()).total_seconds() // 3600)
        if remaining + hours > self.max_rent_hours:
            raise _Answer(
                "MAX_HOURS_EXCEED", info={"max": max(0, self.max_rent_hours - remaining)}
            )
        return rental, hours, self.price_for(rental.service, rental.country, hours)

    def _continue_rent_number(
        self, account: Account, key: str, params: dict[str, str]
    ) -> web.Response:
        rental, hours, price = self._renewal(key, params)
        if account.inactive:
            raise _Answer("ACCOUNT_INACTIVE")
        if account.balance < price:
            raise _Answer("NO_BALANCE")
        account.balance -= price
        if rental.status == "active":
            rental.end_date += timedelta(hours=hours)
            rental.hours += hours
            rental.price += price
            return self._phone_answer(rental)
        now = self.clock.now()  # finished: re-ordered under a new id
        renewed = self._new_rental(
            key,
            service=rental.service,
            country=rental.country,
            phone=rental.phone,
            hours=hours,
            price=price,
            started=now,
            end_date=now + timedelta(hours=hours),
            url=rental.url,
        )
        return self._phone_answer(renewed)

    def _get_continue_rent_price(
        self, account: Account, key: str, params: dict[str, str]
    ) -> web.Response:
        _, _, price = self._renewal(key, params)
        return self._ok(price=f"{price:.2f}")
