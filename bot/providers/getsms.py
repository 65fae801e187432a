"""Get-SMS adapter: the native JSON APIs (activations ``/api/v1/``, rentals ``/api/v2/rent/``).

Wire quirks handled here and nowhere else:

* Every answer is ``{"status": <code>, "data": {...}}`` and that ``status`` is authoritative
  whatever the HTTP status; ``getallcount`` and ``getorders`` answer with the bare object/array.
* The documented ``getbalance`` body (``"balance": 100,00``) is not JSON: parsed with a regex.
* Countries are slugs (``ru``, ``ssha``, ``usavirt``); ISO ``US`` has two, so offers carry the
  slug in :attr:`Offer.ref`. ``getcount`` uses service aliases (``wapp``, ``vbr``).
* Naive rental dates (``end_time``, ``date_at``, SMS ``date``) are Moscow time: the doc's
  ``end_time`` is exactly ``end_time_timestamp`` + 3 h.
* Rental SMS have no ids: a stable id is derived from date, text and duplicate index.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, TypeVar

import httpx

from bot.clock import SYSTEM_CLOCK, Clock, parse_datetime
from bot.money import Money, to_decimal
from bot.providers.base import (
    AccountRestricted,
    BadCredentials,
    CancelNotAllowed,
    Capability,
    InsufficientBalance,
    InvalidRequest,
    NoNumbers,
    Offer,
    Order,
    OrderClosed,
    OrderKind,
    OrderNotFound,
    OrderState,
    PriceAboveLimit,
    ProviderCatalog,
    ProviderError,
    ProviderUnavailable,
    RemoteOrder,
    RemoteStatus,
    Renewal,
    RenewalOption,
    Sms,
    Unsupported,
)
from bot.providers.codes import extract_code
from bot.providers.http import ProviderHttp
from bot.providers.identifiers import canonical_service, getsms_countries, reverse

log = logging.getLogger(__name__)

T = TypeVar("T")

V1_PATH: Final = "/api/v1/"
RENT_PATH: Final = "/api/v2/rent/"
ACTIVATION_LIFETIME: Final = timedelta(minutes=15)
RENT_DAYS: Final = range(1, 8)  # getcountprices sells 1day..7day
MOSCOW: Final = timezone(timedelta(hours=3), "MSK")

_BALANCE_RE = re.compile(r'"balance"\s*:\s*"?\s*(-?\d+(?:[.,]\d+)?)')
_STATUS_RE = re.compile(r'"status"\s*:\s*"?(\d{3})\b')

ErrorTable = Mapping[int, tuple[type[ProviderError], str]]

_COMMON: Final[ErrorTable] = {
    401: (BadCredentials, "API key missing or wrong"),
    404: (InvalidRequest, "unknown method"),
}
_READ_ERRORS: Final[ErrorTable] = {
    **_COMMON,
    500: (ProviderUnavailable, "query processing error"),
    502: (ProviderUnavailable, "internal error"),
}
_V1_BUY: Final[ErrorTable] = {
    **_COMMON,
    500: (NoNumbers, "no number available"),
    502: (InvalidRequest, "service does not exist"),
    503: (InvalidRequest, "operator does not exist"),
    504: (InsufficientBalance, "insufficient funds"),
    505: (InvalidRequest, "country does not exist"),
    506: (AccountRestricted, "temporarily blocked until the next day"),
    507: (ProviderUnavailable, "technical work in progress"),
}
_V1_GETCODE: Final[ErrorTable] = {
    **_COMMON,
    502: (ProviderUnavailable, "internal error"),
    504: (InsufficientBalance, "insufficient funds"),
    505: (OrderNotFound, "order not found"),
    506: (InvalidRequest, "order_id not specified"),
}
_V1_WRONGCODE: Final[ErrorTable] = {
    **_COMMON,
    500: (OrderClosed, "order lifetime expired"),
    501: (InvalidRequest, "bad parameter"),
    502: (ProviderUnavailable, "internal error"),
    504: (InvalidRequest, "no SMS received yet: another code needs a first one"),
    505: (OrderNotFound, "order not found"),
    506: (InvalidRequest, "order_id not specified"),
}
_V1_CLOSE: Final[ErrorTable] = {  # refusenumber, bannumber
    **_COMMON,
    500: (OrderClosed, "order lifetime expired"),
    502: (ProviderUnavailable, "internal error"),
    505: (OrderNotFound, "order not found"),  # not documented for these; getcode's meaning
    506: (InvalidRequest, "order_id not specified"),
}
_RENT_PRICES: Final[ErrorTable] = {
    **_READ_ERRORS,
    505: (InvalidRequest, "country does not exist"),
}
_RENT_BUY: Final[ErrorTable] = {
    **_COMMON,
    500: (NoNumbers, "no numbers available for rental"),
    502: (InvalidRequest, "service does not exist"),
    503: (ProviderUnavailable, "internal error, order later"),
    504: (InsufficientBalance, "insufficient funds"),
    505: (InvalidRequest, "country does not exist"),
    506: (InvalidRequest, "bad period or period type"),
    507: (ProviderUnavailable, "technical maintenance in progress"),
}
_RENT_GETCODE: Final[ErrorTable] = {
    **_COMMON,
    503: (OrderNotFound, "order not found"),
}
_RENT_PROLONG: Final[ErrorTable] = {
    **_COMMON,
    502: (OrderNotFound, "no such rental"),
    504: (InvalidRequest, "bad period or period type"),
    505: (InsufficientBalance, "insufficient funds to extend"),
    506: (InvalidRequest, "cannot extend for this period"),
    507: (ProviderUnavailable, "internal error"),
}
_RENT_REFUSE: Final[ErrorTable] = {
    **_COMMON,
    400: (CancelNotAllowed, "over 20 minutes passed or an SMS was received"),
    500: (InvalidRequest, "rentid not specified"),
    501: (OrderClosed, "rental already cancelled"),
    502: (OrderClosed, "rental completed"),
    503: (OrderNotFound, "order not found"),
}
_RENT_ORDER_STATUS: Final[Mapping[int, RemoteStatus]] = {
    0: RemoteStatus.EXPIRED,
    1: RemoteStatus.WAITING,
    2: RemoteStatus.CANCELLED,
}


def rental_sms_id(date: str, text: str, occurrence: int = 0) -> str:
    """A stable id for a rental SMS (the API gives none): date + text + duplicate index."""
    digest = hashlib.sha256(f"{date}\x1f{text}\x1f{occurrence}".encode()).hexdigest()
    return f"r{digest[:20]}"


def parse_rent_datetime(value: object) -> datetime | None:
    """A rental timestamp: UNIX seconds, ISO with offset, or a naive Moscow-time string."""
    if isinstance(value, str) and value.strip() and not value.strip().isdigit():
        naive = parse_datetime(value, assume_utc=False)
        if naive is not None and naive.tzinfo is None:
            return naive.replace(tzinfo=MOSCOW).astimezone(UTC)
        return naive
    return parse_datetime(value)


class GetSmsProvider:
    """The :class:`~bot.providers.base.Provider` for get-sms.com."""

    def __init__(
        self,
        http: ProviderHttp,
        api_key: str,
        *,
        currency: str = "USD",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._http = http
        self._key = api_key
        self._currency = currency.upper()
        self._clock = clock
        self._slugs = dict(getsms_countries())
        self._slugs_by_iso = {iso: sorted(slugs) for iso, slugs in reverse(self._slugs).items()}

    @property
    def id(self) -> str:
        return "getsms"

    @property
    def title(self) -> str:
        return "Get-SMS"

    @property
    def currency(self) -> str:
        return self._currency

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(
            {
                Capability.ACTIVATIONS,
                Capability.RENTALS,
                Capability.ANOTHER_CODE,
                Capability.CANCEL,
                Capability.BAN,
                Capability.RENEW,
                Capability.RENEW_PRICE,
                Capability.LIST_ORDERS,
            }
        )

    # --- reads ------------------------------------------------------------------------------

    async def balance(self) -> Money:
        return await self._v1({"method": "getbalance"}, self._parse_balance, safe=True)

    async def catalog(self) -> ProviderCatalog:
        body = await self._v1({"method": "getallcount"}, self._bare(_READ_ERRORS), safe=True)
        pairs: set[tuple[str, str]] = set()
        names: dict[str, str] = {}
        for slug, entries in self._items(body, "getallcount"):
            iso = self._slugs.get(slug)
            if iso is None:
                log.debug("getsms: unknown country slug %r skipped", slug)
                continue
            for entry in self._list(entries, "getallcount"):
                for code, info in self._items(entry, "getallcount"):
                    service = canonical_service(code)
                    pairs.add((service, iso))
                    if isinstance(info, Mapping) and isinstance(info.get("name"), str):
                        names.setdefault(service, info["name"])
        return ProviderCatalog(frozenset(pairs), names)

    async def offers(self, service: str, country: str) -> list[Offer]:
        slugs = self._slugs_by_iso.get(country.upper(), [])
        if not slugs:
            return []
        service = canonical_service(service)
        results = await asyncio.gather(
            self._activation_offers(service, country.upper(), slugs),
            *(self._rental_offers(service, country.upper(), slug) for slug in slugs),
            return_exceptions=True,
        )
        offers: list[Offer] = []
        for batch in results:
            if isinstance(batch, BaseException):
                raise batch
            offers.extend(batch)
        return offers

    async def country_offers(self, country: str, operator: str = "ANY") -> list[Offer]:
        """Activation offers for every service in one country (``getcount``, any operator)."""
        offers: list[Offer] = []
        for slug in self._slugs_by_iso.get(country.upper(), []):
            data = await self._v1(
                {"method": "getcount", "country": slug}, self._enveloped(_READ_ERRORS), safe=True
            )
            if not isinstance(data, Mapping):
                raise ProviderUnavailable(self.id, "getcount: unexpected shape")
            operators = {str(k).upper(): v for k, v in data.items()}
            for code, info in self._items(operators.get(operator.upper(), {}), "getcount"):
                price, stock = self._price_count(info, "count", "getcount")
                offers.append(
                    self._offer(canonical_service(code), country, price, stock, slug=slug)
                )
        return offers

    async def state(self, order: Order) -> OrderState:
        if order.kind is OrderKind.RENTAL:
            return await self._rental_state(order)
        return await self._activation_state(order)

    async def renewal_options(self, order: Order) -> list[RenewalOption]:
        self._need_rental(order, "renewal_options")
        slug = order.meta.get("slug") or self._slug_for(order.country, "")
        code = order.meta.get("service") or order.service
        data = await self._rent(
            {"method": "getcountprices", "country": slug},
            self._enveloped(_RENT_PRICES),
            safe=True,
        )
        prices: Mapping[str, Any] = {}
        for name, info in self._items(data, "getcountprices"):
            if canonical_service(name) == canonical_service(code) and isinstance(info, Mapping):
                raw = info.get("price")
                prices = raw if isinstance(raw, Mapping) else {}
        options = []
        for days in RENT_DAYS:
            price = prices.get(f"{days}day")
            money = self._money(price, "getcountprices") if price is not None else None
            options.append(RenewalOption(days * 24, money))
        return options

    async def list_orders(self) -> list[RemoteOrder]:
        body = await self._rent({"method": "getorders"}, self._bare(_READ_ERRORS), safe=True)
        orders: list[RemoteOrder] = []
        for row in self._list(body, "getorders"):
            if not isinstance(row, Mapping) or "id" not in row:
                raise ProviderUnavailable(self.id, "getorders: unexpected row")
            status = _RENT_ORDER_STATUS.get(self._int(row.get("status"), "getorders"))
            if status is None:
                log.warning("getsms: rental %s has an undocumented status, skipped", row["id"])
                continue
            orders.append(
                RemoteOrder(
                    order_id=str(row["id"]),
                    kind=OrderKind.RENTAL,
                    phone=str(row.get("phone") or ""),
                    status=status,
                    expires_at=parse_rent_datetime(row.get("date_at")),
                )
            )
        return orders

    # --- money-moving -----------------------------------------------------------------------

    async def buy(
        self, offer: Offer, *, max_price: Money | None = None, auto_renew: bool = False
    ) -> Order:
        if auto_renew:
            raise Unsupported(self.id, "auto-renewal")
        if (
            max_price is not None
            and max_price.currency == offer.price.currency
            and offer.price.amount > max_price.amount
        ):
            raise PriceAboveLimit(self.id, f"{offer.price} > {max_price}")
        slug = self._slug_for(offer.country, offer.ref)
        if offer.kind is OrderKind.RENTAL:
            return await self._buy_rental(offer, slug)
        data = await self._v1(
            {"method": "getnumber", "service": offer.service, "country": slug},
            self._purchase(_V1_BUY),
            safe=False,
        )
        started = parse_datetime(data.get("start_time")) or self._clock.now()
        return Order(
            provider=self.id,
            order_id=str(data["order_id"]),
            kind=OrderKind.ACTIVATION,
            phone=data["phone"],
            service=offer.service,
            country=offer.country,
            price=offer.price,
            expires_at=started + ACTIVATION_LIFETIME,
            meta={"slug": slug, "service": offer.service},
        )

    async def another_code(self, order: Order) -> None:
        """``wrongcode`` with ``last_id`` = the newest SMS id, read first with ``getcode``."""
        self._need_activation(order, "another_code")
        state = await self._activation_state(order)
        if state.status is RemoteStatus.EXPIRED:
            raise OrderClosed(self.id, "order lifetime expired")
        if not state.messages:
            raise InvalidRequest(self.id, "no SMS received yet: another code needs a first one")
        await self._v1(
            {
                "method": "wrongcode",
                "order_id": order.order_id,
                "last_id": state.messages[-1].id,
            },
            self._enveloped(_V1_WRONGCODE, ok=(200, 400)),
            safe=False,
        )

    async def finish(self, order: Order) -> None:
        raise Unsupported(self.id, "finish (the native API has none)")

    async def cancel(self, order: Order) -> None:
        if order.kind is OrderKind.RENTAL:
            await self._rent(
                {"method": "refuse", "rentid": order.order_id},
                self._enveloped(_RENT_REFUSE),
                safe=False,
            )
            return
        await self._v1(
            {"method": "refusenumber", "order_id": order.order_id},
            self._enveloped(_V1_CLOSE),
            safe=False,
        )

    async def ban(self, order: Order) -> None:
        self._need_activation(order, "ban")
        await self._v1(
            {"method": "bannumber", "order_id": order.order_id},
            self._enveloped(_V1_CLOSE),
            safe=False,
        )

    async def renew(self, order: Order, duration_hours: int) -> Renewal:
        self._need_rental(order, "renew")
        days = self._days(duration_hours)
        await self._rent(
            {"method": "prolong", "type": "day", "period": days, "rentid": order.order_id},
            self._enveloped(_RENT_PROLONG),
            safe=False,
        )
        expires_at: datetime | None = None
        try:  # the answer has no end date: read it back
            for remote in await self.list_orders():
                if remote.order_id == order.order_id:
                    expires_at = remote.expires_at
        except ProviderError as exc:
            log.warning("getsms: rental %s renewed, new end unknown: %s", order.order_id, exc)
        if expires_at is None and order.expires_at is not None:
            expires_at = max(order.expires_at, self._clock.now()) + timedelta(days=days)
        return Renewal(order_id=order.order_id, expires_at=expires_at)

    async def reuse(self, order: Order) -> Order:
        raise Unsupported(self.id, "reuse")

    # --- activations / rentals internals ----------------------------------------------------

    async def _activation_offers(self, service: str, iso: str, slugs: list[str]) -> list[Offer]:
        body = await self._v1(
            {"method": "getallcount", "service": service}, self._bare(_READ_ERRORS), safe=True
        )
        found = dict(self._items(body, "getallcount"))
        offers = []
        for slug in slugs:
            if slug not in found:
                continue
            entries = self._list(found[slug], "getallcount")
            for entry in entries:
                info = entry
                if isinstance(entry, Mapping) and "price" not in entry:
                    matches = [v for k, v in entry.items() if canonical_service(k) == service]
                    info = matches[0] if matches else None
                if info is None:
                    continue
                price, stock = self._price_count(info, "count_all", "getallcount")
                offers.append(self._offer(service, iso, price, stock, slug=slug))
        return offers

    async def _rental_offers(self, service: str, iso: str, slug: str) -> list[Offer]:
        try:
            data = await self._rent(
                {"method": "getcountprices", "country": slug},
                self._enveloped(_RENT_PRICES),
                safe=True,
            )
        except InvalidRequest:  # no rentals in this country
            return []
        offers = []
        for code, info in self._items(data, "getcountprices"):
            if canonical_service(code) != service:
                continue
            if not isinstance(info, Mapping) or not isinstance(info.get("price"), Mapping):
                raise ProviderUnavailable(self.id, "getcountprices: unexpected shape")
            stock = self._int(info.get("count", 0), "getcountprices")
            for key, value in info["price"].items():
                match = re.fullmatch(r"(\d+)day", str(key))
                if not match:
                    continue
                offers.append(
                    Offer(
                        provider=self.id,
                        service=service,
                        country=iso,
                        kind=OrderKind.RENTAL,
                        price=self._money(value, "getcountprices"),
                        stock=stock,
                        duration_hours=int(match.group(1)) * 24,
                        ref=slug,
                    )
                )
        return sorted(offers, key=lambda o: o.duration_hours or 0)

    async def _buy_rental(self, offer: Offer, slug: str) -> Order:
        days = self._days(offer.duration_hours or 24)
        data = await self._rent(
            {
                "method": "getnumber",
                "type": "day",
                "period": days,
                "service": offer.service,
                "country": slug,
            },
            self._purchase(_RENT_BUY),
            safe=False,
        )
        expires_at = parse_rent_datetime(data.get("end_time_timestamp")) or parse_rent_datetime(
            data.get("end_time")
        )
        if expires_at is None:
            expires_at = self._clock.now() + timedelta(days=days)
        return Order(
            provider=self.id,
            order_id=str(data["order_id"]),
            kind=OrderKind.RENTAL,
            phone=data["phone"],
            service=offer.service,
            country=offer.country,
            price=offer.price,
            expires_at=expires_at,
            duration_hours=days * 24,
            meta={"slug": slug, "service": offer.service},
        )

    async def _activation_state(self, order: Order) -> OrderState:
        status, data = await self._v1(
            {"method": "getcode", "order_id": order.order_id},
            self._status_and_data(_V1_GETCODE, ok=(200, 400, 500)),
            safe=True,
        )
        if status == 500:
            return OrderState(RemoteStatus.EXPIRED, expires_at=order.expires_at)
        if status == 400:
            return OrderState(RemoteStatus.WAITING, expires_at=order.expires_at)
        if not isinstance(data, Mapping) or data.get("id") in (None, ""):
            raise ProviderUnavailable(self.id, "getcode: SMS without id")
        text = data.get("fullSms")
        code = data.get("code")
        sms = Sms(
            id=str(data["id"]),
            text=str(text) if text is not None else None,
            code=str(code) if code not in (None, "") else extract_code(str(text or "")),
            sender=str(data.get("sender") or "") or None,
            received_at=parse_datetime(data.get("receivedDate")),
        )
        return OrderState(RemoteStatus.RECEIVED, (sms,), order.expires_at)

    async def _rental_state(self, order: Order) -> OrderState:
        status, data = await self._rent(
            {"method": "getcode", "rentid": order.order_id},
            self._status_and_data(_RENT_GETCODE, ok=(200, 400, 501, 502)),
            safe=True,
        )
        if status == 502:
            return OrderState(RemoteStatus.FINISHED, expires_at=order.expires_at)
        if status == 501:  # cancelled or expired: getorders tells which
            closed = RemoteStatus.EXPIRED
            for remote in await self.list_orders():
                if remote.order_id == order.order_id and remote.status.is_final:
                    closed = remote.status
            return OrderState(closed, expires_at=order.expires_at)
        if status == 400:
            return OrderState(RemoteStatus.WAITING, expires_at=order.expires_at)
        raw = data.get("sms_list") if isinstance(data, Mapping) else None
        messages = self._rental_messages(self._list(raw, "getcode"))
        status_now = RemoteStatus.RECEIVED if messages else RemoteStatus.WAITING
        return OrderState(status_now, messages, order.expires_at)

    def _rental_messages(self, rows: Iterable[Any]) -> tuple[Sms, ...]:
        seen: dict[tuple[str, str], int] = {}
        messages = []
        for row in rows:
            if not isinstance(row, Mapping) or not isinstance(row.get("text"), str):
                raise ProviderUnavailable(self.id, "getcode: unexpected SMS shape")
            date, text = str(row.get("date") or ""), row["text"]
            occurrence = seen.get((date, text), 0)
            seen[(date, text)] = occurrence + 1
            messages.append(
                Sms(
                    id=rental_sms_id(date, text, occurrence),
                    text=text,
                    code=extract_code(text),
                    received_at=parse_rent_datetime(date),
                )
            )
        return tuple(messages)

    # --- wire helpers -----------------------------------------------------------------------

    async def _v1(
        self, params: dict[str, str | int], parse: Callable[[httpx.Response], T], *, safe: bool
    ) -> T:
        return await self._http.call(V1_PATH, {**params, "userkey": self._key}, parse, safe=safe)

    async def _rent(
        self, params: dict[str, str | int], parse: Callable[[httpx.Response], T], *, safe: bool
    ) -> T:
        return await self._http.call(RENT_PATH, {**params, "userkey": self._key}, parse, safe=safe)

    def _envelope(self, response: httpx.Response) -> tuple[int | None, Any]:
        """``(status, data)`` from ``{"status", "data"}``, or ``(None, body)`` for a bare body."""
        body = self._http.json(response)
        if isinstance(body, Mapping) and "status" in body:
            try:
                return int(str(body["status"]).strip()), body.get("data")
            except ValueError:
                raise self._http.unavailable(response, "bad status field") from None
        if response.status_code >= 500:
            raise self._http.unavailable(response, "server error")
        return None, body

    def _status_and_data(
        self, table: ErrorTable, ok: tuple[int, ...] = (200,)
    ) -> Callable[[httpx.Response], tuple[int, Any]]:
        def parse(response: httpx.Response) -> tuple[int, Any]:
            status, data = self._envelope(response)
            if status is None:
                raise self._http.unavailable(response, "no status field")
            if status not in ok:
                raise self._error(status, data, table)
            return status, data

        return parse

    def _enveloped(
        self, table: ErrorTable, ok: tuple[int, ...] = (200,)
    ) -> Callable[[httpx.Response], Any]:
        def parse(response: httpx.Response) -> Any:
            return self._status_and_data(table, ok)(response)[1]

        return parse

    def _bare(self, table: ErrorTable) -> Callable[[httpx.Response], Any]:
        """For ``getallcount``/``getorders``: success is the bare body, errors an envelope."""

        def parse(response: httpx.Response) -> Any:
            status, body = self._envelope(response)
            if status is None:
                return body
            if status != 200:
                raise self._error(status, body, table)
            return body if body is not None else {}

        return parse

    def _parse_balance(self, response: httpx.Response) -> Money:
        try:
            status, data = self._envelope(response)
        except ProviderUnavailable:
            # The documented body is ``"balance": 100,00``: not JSON. Read it with a regex.
            status_match = _STATUS_RE.search(response.text)
            balance_match = _BALANCE_RE.search(response.text)
            if status_match is None:
                raise
            status = int(status_match.group(1))
            if status != 200:
                raise self._error(status, None, _READ_ERRORS) from None
            if balance_match is None:
                raise
            return Money(to_decimal(balance_match.group(1)), self._currency)
        if status is None:
            raise self._http.unavailable(response, "no status field")
        if status != 200:
            raise self._error(status, data, _READ_ERRORS)
        if not isinstance(data, Mapping) or "balance" not in data:
            raise self._http.unavailable(response, "no balance")
        try:
            return Money(to_decimal(data["balance"]), self._currency)
        except ValueError:
            raise self._http.unavailable(response, "bad balance") from None

    def _error(self, status: int, data: Any, table: ErrorTable) -> ProviderError:
        kind, meaning = table.get(status) or _COMMON.get(status) or (ProviderUnavailable, "")
        message = ""
        if isinstance(data, Mapping) and isinstance(data.get("msg"), str):
            message = data["msg"][:200].replace(self._key, "***") if self._key else data["msg"]
        detail = f"status {status}" + (f" ({meaning})" if meaning else " (undocumented)")
        if message:
            detail += f": {message}"
        return kind(self.id, detail)

    def _items(self, value: Any, method: str) -> list[tuple[str, Any]]:
        if isinstance(value, Mapping):
            return [(str(k), v) for k, v in value.items()]
        if isinstance(value, list) and not value:
            return []  # PHP encodes an empty object as []
        raise ProviderUnavailable(self.id, f"{method}: expected an object")

    def _list(self, value: Any, method: str) -> list[Any]:
        """A JSON list, an object keyed "0","1",... or (defensively) one object."""
        if isinstance(value, list):
            return value
        if isinstance(value, Mapping):
            if value and all(str(k).isdigit() for k in value):
                return [value[k] for k in sorted(value, key=lambda k: int(str(k)))]
            return [value] if value else []
        raise ProviderUnavailable(self.id, f"{method}: expected a list")

    def _int(self, value: Any, method: str) -> int:
        try:
            return int(to_decimal(value))
        except (ValueError, ArithmeticError):
            raise ProviderUnavailable(self.id, f"{method}: not a number") from None

    def _money(self, value: Any, method: str) -> Money:
        try:
            return Money(to_decimal(value), self._currency)
        except ValueError:
            raise ProviderUnavailable(self.id, f"{method}: not a price") from None

    def _price_count(self, info: Any, count_key: str, method: str) -> tuple[Money, int | None]:
        if not isinstance(info, Mapping) or "price" not in info:
            raise ProviderUnavailable(self.id, f"{method}: unexpected shape")
        count = info.get(count_key)
        return self._money(info["price"], method), (
            None if count is None else self._int(count, method)
        )

    def _offer(
        self, service: str, iso: str, price: Money, stock: int | None, *, slug: str
    ) -> Offer:
        return Offer(self.id, service, iso.upper(), OrderKind.ACTIVATION, price, stock, ref=slug)

    def _purchase(self, table: ErrorTable) -> Callable[[httpx.Response], Mapping[str, Any]]:
        """A ``getnumber`` answer; a success without an order is a lost answer (money moved?)."""
        enveloped = self._enveloped(table)

        def parse(response: httpx.Response) -> Mapping[str, Any]:
            data = enveloped(response)
            if (
                not isinstance(data, Mapping)
                or not data.get("order_id")
                or not re.sub(r"\D", "", str(data.get("phone") or ""))
            ):
                raise self._http.unavailable(response, "success without an order")
            return {**data, "phone": re.sub(r"\D", "", str(data["phone"]))}

        return parse

    def _slug_for(self, country: str, ref: str) -> str:
        if ref and ref in self._slugs:
            return ref
        slugs = self._slugs_by_iso.get(country.upper())
        if not slugs:
            raise InvalidRequest(self.id, f"country {country} not sold")
        return slugs[0]

    def _days(self, hours: int) -> int:
        if hours % 24 or hours // 24 not in RENT_DAYS:
            raise InvalidRequest(self.id, f"rental duration {hours} h (1-7 whole days)")
        return hours // 24

    def _need_rental(self, order: Order, what: str) -> None:
        if order.kind is not OrderKind.RENTAL:
            raise Unsupported(self.id, f"{what} on an activation")

    def _need_activation(self, order: Order, what: str) -> None:
        if order.kind is not OrderKind.ACTIVATION:
            raise Unsupported(self.id, f"{what} on a rental")
