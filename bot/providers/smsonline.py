"""SMS.online rentals over the SMS-Activate ``handler_api`` protocol.

Everything goes to ``<base>/stubs/handler_api.php`` with ``api_key`` and ``action``. Decisions
taken where the docs (``sms-online-rent.txt``, ``sms-activate-protocol.md``) are vague:

* Bodies: anything not starting with ``{``/``[`` is a text token on *every* method (``BAD_KEY``,
  ``ERROR_SQL``, ``BANNED:'…'``); the JSON error envelope is ``{"status":"error","message":T}``
  (``msg`` accepted). Bodies are parsed whatever the HTTP status. Known tokens become typed
  errors; ``ERROR_SQL``/``SQL_ERROR``/``SERVER_ERROR`` are the provider's own "try again"
  (:class:`ProviderUnavailable`, answer not lost); an unknown token or an unparsable body is a
  lost answer (a purchase becomes :class:`PurchaseOutcomeUnknown` and is reconciled).
* Durations: SMS.online sells a fixed menu (:data:`RENT_HOURS`), but ``getRentPrices`` (its
  page, and sms-activate-protocol.md §6: "no duration param documented") answers ONE cost per
  service and country. That cost is read as the price of the shortest rent, 4 hours (the SA
  default ``rent_time``; ``rent_time=4``/``time=4`` are sent so a server that does honour the
  parameter answers exactly that). :meth:`SmsOnlineProvider.offers` therefore asks once per
  SMS-Activate country id of the ISO country (one or two requests a tap) and offers the 4-hour
  rent only: a longer rent has no documented price before buying, and guessing one would
  misprice it. Longer periods come by renewal, whose prices ``getContinueRentPrice`` documents.
* ``getRentNumber`` does not return the price: it is read from ``getRentList`` (``values`` an
  array of ``{id, phone, price, hours}`` on SMS.online, an object keyed ``"0"``… in standard SA);
  when the id is not there the offer price is kept.
* The webhook URL goes out as both ``url`` (SA) and ``uri`` (SMS.online's webhook page).
* Naive timestamps (``endDate``, SMS ``date``) are taken as UTC.
* SMS ids do not exist on the wire: :func:`sms_id` hashes (date, sender, text) and appends an
  occurrence index for exact duplicates, so :meth:`SmsOnlineProvider.state` and
  :func:`parse_webhook` agree on the id of the same message.
* ``getRentStatus`` pages start at 0 on SMS.online; every page is read (bounded).
* ``STATUS_FINISH`` (also how an expired rent reports) is FINISHED; ``STATUS_CANCEL`` and
  ``STATUS_REVOKE`` (number blocked, refunded) are CANCELLED.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import httpx

from bot.clock import SYSTEM_CLOCK, Clock, parse_datetime
from bot.money import Money
from bot.providers.base import (
    AccountRestricted,
    BadCredentials,
    CancelBlock,
    CancelNotAllowed,
    CancelOutcome,
    CancelTerms,
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
    RefundScope,
    RemoteOrder,
    RemoteStatus,
    Renewal,
    RenewalOption,
    Sms,
    Unsupported,
)
from bot.providers.codes import extract_code
from bot.providers.http import ProviderHttp
from bot.providers.identifiers import canonical_service, reverse, sms_activate_countries

log = logging.getLogger(__name__)

T = TypeVar("T")

PATH = "/stubs/handler_api.php"
RENT_HOURS: tuple[int, ...] = (4, 8, 12, 24, 72, 168, 360, 720, 2160)
PRICED_HOURS = 4  # the one rent getRentPrices prices (see the module notes)
# SMS-Activate country 12 is "USA (virtual)" (sms-activate-protocol.md section 5); 187 is USA.
VIRTUAL_COUNTRIES = frozenset({"12"})
CANCEL_WINDOW = timedelta(minutes=20)
# Gives the webhook URL for one new rent, and what to keep in its order's meta.
RentalHook = Callable[
    [], tuple[str, Mapping[str, str]]
]  # setRentStatus 2 refunds only within 20 minutes
STATUS_PAGE_SIZE = 50
CATALOG_CONCURRENCY = 8  # getRentPrices requests at once while reading the catalog
_UNKNOWN_COUNTRIES: set[str] = set()


def _signed(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _unknown_country(cid: str) -> None:
    """A country id missing from the table: said once per id, never dropped silently."""
    if cid not in _UNKNOWN_COUNTRIES:
        _UNKNOWN_COUNTRIES.add(cid)
        log.warning("smsonline: country id %s is not in the SMS-Activate table: skipped", cid)


STATUS_MAX_PAGES = 20

_ERRORS: Mapping[str, type[ProviderError]] = {
    "BAD_KEY": BadCredentials,
    "NO_KEY": BadCredentials,
    "NO_NUMBERS": NoNumbers,
    "OUT_OF_STOCK": NoNumbers,
    "OPERATORS_NOT_FOUND": NoNumbers,
    "NO_BALANCE": InsufficientBalance,
    "NO_BALANCE_FORWARD": InsufficientBalance,
    "BANNED": AccountRestricted,
    "YOU_TEMPORARY_BANNED": AccountRestricted,
    "CHANNELS_LIMIT": AccountRestricted,
    "ACCOUNT_INACTIVE": AccountRestricted,
    "BAD_ACTION": Unsupported,
    "INVALID_TIME": InvalidRequest,
    "MAX_HOURS_EXCEED": InvalidRequest,
    "INCORECT_STATUS": InvalidRequest,
    "INCORRECT_STATUS": InvalidRequest,
    "ORDER_ALREADY_EXISTS": InvalidRequest,
    "NO_ID_RENT": OrderNotFound,
    "INVALID_PHONE": OrderNotFound,
    "NO_ACTIVATION": OrderNotFound,
    "NO_ACTIVATIONS": OrderNotFound,
    "WRONG_ACTIVATION_ID": OrderNotFound,
    "INVALID_ACTIVATION_ID": OrderNotFound,
    "CANT_CANCEL": CancelNotAllowed,
    "EARLY_CANCEL_DENIED": CancelNotAllowed,
    "ALREADY_FINISH": OrderClosed,
    "ALREADY_CANCEL": OrderClosed,
    "RENT_DIE": OrderClosed,
    "STATUS_FINISH": OrderClosed,
    "STATUS_CANCEL": OrderClosed,
    "STATUS_REVOKE": OrderClosed,
}
_TRANSIENT = frozenset({"ERROR_SQL", "SQL_ERROR", "SERVER_ERROR"})
_RENT_STATES: Mapping[str, RemoteStatus] = {
    "STATUS_WAIT_CODE": RemoteStatus.WAITING,
    "STATUS_FINISH": RemoteStatus.FINISHED,
    "STATUS_CANCEL": RemoteStatus.CANCELLED,
    "STATUS_REVOKE": RemoteStatus.CANCELLED,
}
_TOKEN = re.compile(r"[A-Z][A-Z0-9_]*")

# --- codes and SMS ids -----------------------------------------------------------------------


def _sender(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"bad phoneFrom: {type(value).__name__}")
    return str(value).strip() or None


def _sms_key(sender: str | None, text: str | None, date: str | None) -> str:
    """Hash of (date normalised to UTC ISO, sender, text): equal for the same message."""
    moment = parse_datetime(date) if date else None
    stamp = moment.isoformat() if moment else (date or "").strip()
    raw = "\x1f".join((stamp, sender or "", (text or "").strip()))
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def sms_id(sender: str | None, text: str | None, date: str | None, occurrence: int = 0) -> str:
    """A stable id for a message the wire gives no id; ``occurrence`` numbers exact duplicates."""
    return f"{_sms_key(sender, text, date)}.{occurrence}"


def server_time(value: object, offset: timedelta = timedelta()) -> datetime | None:
    """A server date in UTC: with a zone as given, without one read as UTC + ``offset``
    (the server's clock, configured or calibrated). None on garbage."""
    moment = parse_datetime(value, assume_utc=False)
    if moment is None or moment.tzinfo is not None:
        return moment
    try:
        return (moment - offset).replace(tzinfo=UTC)
    except OverflowError:
        return None


def _make_sms(
    sender: str | None,
    text: str | None,
    date: str | None,
    occurrence: int,
    offset: timedelta = timedelta(),
) -> Sms:
    # The id does not depend on the zone, so a push and a poll always agree on it.
    return Sms(
        id=sms_id(sender, text, date, occurrence),
        text=text,
        code=extract_code(text),
        sender=sender,
        received_at=server_time(date, offset) if date else None,
    )


_SmsFields = tuple[str | None, str | None, str | None]  # sender, text, date


def _sms_fields(item: object) -> _SmsFields:
    """(sender, text, date) of one wire SMS; ValueError on a bad shape."""
    if not isinstance(item, dict):
        raise ValueError("an SMS is not an object")
    text = item.get("text")
    date = item.get("date")
    if text is not None and not isinstance(text, str):
        raise ValueError("bad SMS text")
    if date is not None and not isinstance(date, str):
        raise ValueError("bad SMS date")
    return _sender(item.get("phoneFrom")), text, date


def parse_webhook(body: bytes) -> tuple[str, Sms]:
    """Parse SMS.online's rent webhook ``{"rentId":…,"sms":{"phoneFrom","text","date"}}``.

    Returns (rent id, Sms) with the same :attr:`Sms.id` :meth:`SmsOnlineProvider.state` gives
    that message (the first of exact duplicates). Raises ``ValueError`` on anything else.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("webhook body is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("webhook body is not an object")
    rent_id = data.get("rentId")
    if isinstance(rent_id, bool) or not isinstance(rent_id, int | str):
        raise ValueError("webhook without a rentId")
    rent = str(rent_id).strip()
    if not rent.isdigit():
        raise ValueError("webhook rentId is not numeric")
    sender, text, date = _sms_fields(data.get("sms"))
    if text is None:
        raise ValueError("webhook SMS without text")
    return rent, _make_sms(sender, text, date, 0)


# --- wire helpers ----------------------------------------------------------------------------


def _items(value: object) -> list[Any] | None:
    """A wire list: a JSON array or an object keyed "0","1",… (in key order). None otherwise."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        keys = list(value)
        if all(isinstance(k, str) and k.strip().isdigit() for k in keys):
            keys.sort(key=lambda k: int(k))
        return [value[k] for k in keys]
    return None


def _int(value: object) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an integer: {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an integer: {value!r}") from exc
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError(f"not an integer: {value!r}")
    return int(number)


def _id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("bad id")
    text = str(value).strip()
    if not text:
        raise ValueError("empty id")
    return text


_Prices = dict[str, dict[str, tuple[Money, int]]]


class SmsOnlineProvider:
    """SMS.online number rentals (SMS-Activate-compatible rent API, prices in USD)."""

    def __init__(
        self,
        http: ProviderHttp,
        api_key: str,
        *,
        currency: str = "USD",
        clock: Clock = SYSTEM_CLOCK,
        webhook_url: RentalHook | None = None,
        zone: tzinfo = UTC,
    ) -> None:
        """``zone``: what the server's zone-less dates are in (SMSONLINE_TIMEZONE); a purchase
        calibrates it (see :meth:`calibrate`)."""
        self._http = http
        self._key = api_key
        self._currency = currency
        self._clock = clock
        self._webhook_url = webhook_url
        self._zone = zone
        self.offset = zone.utcoffset(None) or timedelta()  # the server clock minus UTC
        self.zone_note: str | None = None  # set when the server disagrees with ``zone``

    def calibrate(self, end: str | None, asked_at: datetime, hours: int) -> None:
        """A rent of ``hours`` asked at ``asked_at`` ends about then + ``hours``: a zone-less
        ``end`` that is hours away from that reveals the server's zone. The measured offset
        (to 15 minutes) replaces the configured one, said loudly once when they differ."""
        moment = parse_datetime(end, assume_utc=False)
        if moment is None or moment.tzinfo is not None:
            return
        expected = asked_at.astimezone(UTC).replace(tzinfo=None) + timedelta(hours=hours)
        quarters = round((moment - expected) / timedelta(minutes=15))
        measured = timedelta(minutes=15 * quarters)
        if abs(measured) > timedelta(hours=14) or measured == self.offset:
            return
        configured = self._zone.utcoffset(None) or timedelta()
        self.zone_note = (
            f"SMS.online dates are UTC{_signed(measured)}, not UTC{_signed(configured)} as "
            "SMSONLINE_TIMEZONE says: reading them as measured; set SMSONLINE_TIMEZONE to match"
        )
        log.warning("smsonline: %s", self.zone_note)
        self.offset = measured

    @property
    def id(self) -> str:
        return "smsonline"

    @property
    def title(self) -> str:
        return "SMS.online"

    @property
    def currency(self) -> str:
        return self._currency

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(
            {
                Capability.RENTALS,
                Capability.FINISH,
                Capability.CANCEL,
                Capability.RENEW,
                Capability.RENEW_PRICE,
                Capability.LIST_ORDERS,
                Capability.WEBHOOK,
            }
        )

    # --- transport ---------------------------------------------------------------------------

    async def _call(
        self,
        action: str,
        params: Mapping[str, str | int],
        parse: Callable[[str, httpx.Response], T],
        *,
        safe: bool,
    ) -> T:
        query: dict[str, str | int] = {"api_key": self._key, "action": action, **params}
        return await self._http.call(
            PATH, query, lambda response: parse(action, response), safe=safe
        )

    def _decode(self, response: httpx.Response) -> tuple[str | None, Any]:
        """(token, None) for a text or JSON-error answer, (None, data) for any other JSON."""
        body = self._http.text(response)
        if not body:
            raise self._http.unavailable(response, "empty body")
        if body[0] not in "{[":
            return body, None
        data = self._http.json(response)
        if isinstance(data, dict) and "status" not in data and isinstance(data.get("title"), str):
            # Hero-SMS (SA-compatible) errors: HTTP 4xx with {"title": TOKEN, "details": text}.
            return data["title"].strip() or "UNKNOWN", data
        if isinstance(data, dict) and str(data.get("status", "")).strip().lower() == "error":
            token = data.get("message", data.get("msg"))
            if not isinstance(token, str) or not token.strip():
                raise self._http.unavailable(response, "error without a message")
            return token.strip(), data
        return None, data

    def _error(self, action: str, token: str, response: httpx.Response) -> ProviderError:
        name, _, rest = token.partition(":")
        name = name.strip().upper()
        rest = rest.strip().strip("'\"").strip()[:60].replace(self._key, "***")
        detail = f"{action}: {name}" + (f" ({rest})" if rest else "")
        if name in _TRANSIENT:
            return ProviderUnavailable(self.id, detail)
        error = _ERRORS.get(name)
        if error is None and name.startswith(("WRONG_", "BAD_")):
            error = InvalidRequest
        if error is not None:
            return error(self.id, detail)
        if _TOKEN.fullmatch(name):
            return self._http.unavailable(response, f"{action}: unknown answer")
        return self._http.unavailable(response, f"{action}: unparsable body")

    def _success(self, action: str, response: httpx.Response) -> dict[str, Any]:
        """A JSON success object, or the typed error the answer stands for."""
        token, data = self._decode(response)
        if token is not None:
            raise self._error(action, token, response)
        if not isinstance(data, dict):
            raise self._http.unavailable(response, f"{action}: unexpected shape")
        if "status" not in data and (response.status_code >= 400 or action == "setRentStatus"):
            # A 4xx/5xx JSON is never a success; and setRentStatus's only success signal is
            # {"status":"success"}: a body without it must not read as a confirmed cancel.
            raise self._http.unavailable(response, f"{action}: no status in the answer")
        status = str(data.get("status", "success")).strip().lower()
        if status != "success":
            raise self._http.unavailable(response, f"{action}: unexpected status")
        return data

    # --- reads -------------------------------------------------------------------------------

    async def balance(self) -> Money:
        def parse(action: str, response: httpx.Response) -> Money:
            token, _ = self._decode(response)
            if token is None:
                raise self._http.unavailable(response, f"{action}: unexpected JSON")
            name, _, value = token.partition(":")
            if name.strip().upper() != "ACCESS_BALANCE":
                raise self._error(action, token, response)
            try:
                return Money.parse(value, self._currency)
            except ValueError:
                raise self._http.unavailable(response, f"{action}: bad amount") from None

        return await self._call("getBalance", {}, parse, safe=True)

    def _parse_prices(self, country: str | None) -> Callable[[str, httpx.Response], _Prices]:
        def parse(action: str, response: httpx.Response) -> _Prices:
            data = self._success(action, response)
            values = data.get("values")
            if values == []:
                return {}  # PHP's empty array: nothing in stock
            if not isinstance(values, dict):
                raise self._http.unavailable(response, f"{action}: values is not an object")
            if country is not None and country not in values and _looks_like_services(values):
                values = {country: values}
            result: _Prices = {}
            try:
                for cid, services in values.items():
                    if services == []:
                        continue
                    if not isinstance(services, dict):
                        raise ValueError("services is not an object")
                    entries: dict[str, tuple[Money, int]] = {}
                    for code, entry in services.items():
                        if not isinstance(entry, dict):
                            raise ValueError("price entry is not an object")
                        cost = Money.parse(entry.get("cost"), self._currency)
                        entries[str(code)] = (cost, _int(entry.get("count")))
                    result[str(cid).strip()] = entries
            except ValueError as exc:
                raise self._http.unavailable(response, f"{action}: {exc}") from None
            return result

        return parse

    async def catalog(self) -> ProviderCatalog:
        """Every (service, country) on sale. getRentPrices marks ``country`` required (its
        own page), so each SMS-Activate country id is asked for, a few at a time."""
        table = sms_activate_countries()
        limit = asyncio.Semaphore(CATALOG_CONCURRENCY)

        async def one(cid: str) -> dict[str, dict[str, tuple[Money, int]]]:
            async with limit:
                params: dict[str, str | int] = {"country": cid}
                return await self._call(
                    "getRentPrices", params, self._parse_prices(cid), safe=True
                )

        answers = await _gather_skipping_invalid([one(cid) for cid in sorted(table, key=int)])
        if all(answer is None for answer in answers):
            raise ProviderUnavailable(self.id, "getRentPrices refused every country")
        pairs: set[tuple[str, str]] = set()
        for prices in answers:
            for cid, services in (prices or {}).items():
                iso = table.get(cid)
                if iso is None:
                    _unknown_country(cid)
                    continue
                for code, (_, count) in services.items():
                    if count > 0:
                        pairs.add((canonical_service(code), iso))
        return ProviderCatalog(pairs=frozenset(pairs))

    async def offers(self, service: str, country: str) -> list[Offer]:
        service = canonical_service(service)
        iso = country.strip().upper()
        cids = sorted(reverse(sms_activate_countries()).get(iso, []), key=int)
        if not cids:
            return []

        async def price(cid: str) -> tuple[Money, int] | None:
            params: dict[str, str | int] = {"country": cid, "rent_time": PRICED_HOURS}
            params["time"] = PRICED_HOURS  # the name some SA servers use
            prices = await self._call("getRentPrices", params, self._parse_prices(cid), safe=True)
            for code, entry in prices.get(cid, {}).items():
                if canonical_service(code) == service:
                    return entry
            return None

        answers = await _gather_skipping_invalid([price(cid) for cid in cids])
        offers: list[Offer] = []
        for cid, answer in zip(cids, answers, strict=True):
            found = {} if answer is None else {PRICED_HOURS: answer}
            for hours, (money, count) in sorted(found.items()):
                if count <= 0:
                    continue
                offers.append(
                    Offer(
                        provider=self.id,
                        service=service,
                        country=iso,
                        kind=OrderKind.RENTAL,
                        price=money,
                        stock=count,
                        duration_hours=hours,
                        ref=cid,
                        virtual=cid in VIRTUAL_COUNTRIES,
                    )
                )
        return offers

    def _parse_status(self, action: str, response: httpx.Response) -> RemoteStatus | _Page:
        token, data = self._decode(response)
        if token is not None:
            state = _RENT_STATES.get(token.partition(":")[0].strip().upper())
            if state is not None:
                return state
            raise self._error(action, token, response)
        if not isinstance(data, dict) or str(data.get("status", "success")).lower() != "success":
            raise self._http.unavailable(response, f"{action}: unexpected shape")
        values = data.get("values")
        items = [] if values is None and "quantity" in data else _items(values)
        if items is None:
            raise self._http.unavailable(response, f"{action}: values is not a list")
        try:
            quantity = data.get("quantity")
            total = _int(quantity) if quantity is not None else None
            return _Page(total, [_sms_fields(item) for item in items])
        except ValueError as exc:
            raise self._http.unavailable(response, f"{action}: {exc}") from None

    async def state(self, order: Order) -> OrderState:
        collected: list[_SmsFields] = []
        previous: list[_SmsFields] | None = None
        for page in range(STATUS_MAX_PAGES):
            params: dict[str, str | int] = {
                "id": order.order_id,
                "page": page,
                "size": STATUS_PAGE_SIZE,
            }
            answer = await self._call("getRentStatus", params, self._parse_status, safe=True)
            if isinstance(answer, RemoteStatus):
                if page == 0 or answer.is_final:
                    return OrderState(answer)
                break  # past the last page
            if not answer.items or answer.items == previous:
                break  # an empty page, or the server ignores ``page``
            previous = answer.items
            collected.extend(answer.items)
            # ``quantity`` is the rent's total in SA; a short page alone is not the end when the
            # server ignores ``size``, and a total alone is not when it counts only the page.
            short = len(answer.items) < STATUS_PAGE_SIZE
            if short and (answer.total is None or len(collected) >= answer.total):
                break
        if not collected:
            return OrderState(RemoteStatus.WAITING)
        return OrderState(RemoteStatus.RECEIVED, messages=_messages(collected, self.offset))

    def _parse_rent_list(self, action: str, response: httpx.Response) -> list[_Rent]:
        token, data = self._decode(response)
        if token is not None:
            if token.partition(":")[0].strip().upper() == "NO_NUMBERS":
                return []
            raise self._error(action, token, response)
        if not isinstance(data, dict) or str(data.get("status", "success")).lower() != "success":
            raise self._http.unavailable(response, f"{action}: unexpected shape")
        items = _items(data.get("values"))
        if items is None:
            raise self._http.unavailable(response, f"{action}: values is not a list")
        rents: list[_Rent] = []
        try:
            for item in items:
                if not isinstance(item, dict):
                    raise ValueError("a rent is not an object")
                price = item.get("price")
                hours = item.get("hours")
                rents.append(
                    _Rent(
                        _id(item.get("id")),
                        _id(item.get("phone")),
                        Money.parse(price, self._currency) if price is not None else None,
                        _int(hours) if hours is not None else None,
                    )
                )
        except ValueError as exc:
            raise self._http.unavailable(response, f"{action}: {exc}") from None
        return rents

    async def list_orders(self) -> list[RemoteOrder]:
        rents = await self._call("getRentList", {}, self._parse_rent_list, safe=True)
        return [
            RemoteOrder(
                order_id=rent.id,
                kind=OrderKind.RENTAL,
                phone=rent.phone,
                status=RemoteStatus.WAITING,
            )
            for rent in rents
        ]

    async def renewal_options(self, order: Order) -> list[RenewalOption]:
        def parse(action: str, response: httpx.Response) -> Money:
            data = self._success(action, response)
            try:
                return Money.parse(data.get("price"), self._currency)
            except ValueError:
                raise self._http.unavailable(response, f"{action}: bad price") from None

        async def option(hours: int) -> RenewalOption:
            params: dict[str, str | int] = {"id": order.order_id, "rent_time": hours}
            price = await self._call("getContinueRentPrice", params, parse, safe=True)
            return RenewalOption(hours, price)

        answers = await _gather_skipping_invalid([option(hours) for hours in RENT_HOURS])
        return [answer for answer in answers if answer is not None]

    # --- money-moving ------------------------------------------------------------------------

    def _parse_phone(self, action: str, response: httpx.Response) -> _Phone:
        data = self._success(action, response)
        phone = data.get("phone")
        try:
            if not isinstance(phone, dict):
                raise ValueError("no phone object")
            rent_id, number = _id(phone.get("id")), _id(phone.get("number"))
        except ValueError as exc:
            raise self._http.unavailable(response, f"{action}: {exc}") from None
        raw = phone.get("endDate")
        return _Phone(
            rent_id,
            number,
            server_time(raw, self.offset),
            raw if isinstance(raw, str) else None,
        )

    async def buy(
        self, offer: Offer, *, max_price: Money | None = None, auto_renew: bool = False
    ) -> Order:
        if offer.provider != self.id or offer.kind is not OrderKind.RENTAL:
            raise InvalidRequest(self.id, "not an SMS.online rental offer")
        hours = offer.duration_hours
        if hours not in RENT_HOURS:
            raise InvalidRequest(self.id, f"rent duration must be one of {RENT_HOURS} hours")
        if auto_renew:
            raise Unsupported(self.id, "auto-renewal")
        if (
            max_price is not None
            and max_price.currency == offer.price.currency
            and offer.price.amount > max_price.amount
        ):
            raise PriceAboveLimit(self.id, f"{offer.price} > {max_price}")
        cid = self._country_id(offer)
        params: dict[str, str | int] = {
            "service": offer.service,
            "country": cid,
            "rent_time": hours,
        }
        hook_meta: Mapping[str, str] = {}
        if self._webhook_url is not None:  # a URL of this rent's own (bot.webhook.RentalHooks)
            url, hook_meta = self._webhook_url()
            params["url"] = url
            params["uri"] = url
        asked_at = self._clock.now()
        phone = await self._call("getRentNumber", params, self._parse_phone, safe=False)
        self.calibrate(phone.end_raw, asked_at, hours)
        expires = server_time(phone.end_raw, self.offset) if phone.end_raw else phone.end_date
        if expires is None:
            log.warning("smsonline: rent %s has no usable endDate; assuming %sh", phone.id, hours)
            expires = self._clock.now().astimezone(UTC) + timedelta(hours=hours)
        return Order(
            provider=self.id,
            order_id=phone.id,
            kind=OrderKind.RENTAL,
            phone=phone.number,
            service=offer.service,
            country=offer.country,
            price=await self._charged(phone.id, offer.price),
            expires_at=expires,
            duration_hours=hours,
            meta={"country_id": cid, **hook_meta},
        )

    def _country_id(self, offer: Offer) -> str:
        table = sms_activate_countries()
        if offer.ref and table.get(offer.ref) == offer.country:
            return offer.ref
        cids = reverse(table).get(offer.country, [])
        if len(cids) != 1:
            raise InvalidRequest(self.id, f"no unique SMS.online country for {offer.country}")
        return cids[0]

    async def _charged(self, rent_id: str, fallback: Money) -> Money:
        """The price getRentList shows for a fresh rent; the offer price if it does not say."""
        try:
            rents = await self._call("getRentList", {}, self._parse_rent_list, safe=True)
        except ProviderError as exc:
            log.warning(
                "smsonline: price of rent %s unknown (%s); using the offer price",
                rent_id,
                type(exc).__name__,
            )
            return fallback
        for rent in rents:
            if rent.id == rent_id and rent.price is not None:
                return rent.price
        return fallback

    async def _set_status(self, order: Order, status: int) -> None:
        def parse(action: str, response: httpx.Response) -> None:
            self._success(action, response)

        params: dict[str, str | int] = {"id": order.order_id, "status": status}
        await self._call("setRentStatus", params, parse, safe=False)

    async def finish(self, order: Order) -> None:
        await self._set_status(order, 1)

    def cancel_terms(self, order: Order, sms_at: Sequence[datetime], now: datetime) -> CancelTerms:
        """setRentStatus 2 refunds "only within the first 20 min", then CANT_CANCEL
        (sms-activate-protocol.md §4, getRentNumber "Lifecycle"; the bought rent's start).

        What comes back is left open in two cases, so the terms say UNKNOWN, not ALL: after an
        SMS (the same "Lifecycle" line: SA refunds within 20 min whatever arrived, Get-SMS's
        rent API refuses once an SMS came, and SMS.online's own setRentStatus page gives no
        refund rule at all), and after a renewal (no source says whether it is returned)."""
        start = order.bought_at
        if start is None:  # not stored yet: the provider's answer decides
            return CancelTerms(None, RefundScope.ALL)
        closes = start + CANCEL_WINDOW
        if now >= closes:
            return CancelTerms(CancelBlock.TOO_LATE, RefundScope.NONE, closes_at=closes)
        if order.renewed_at is not None or any(at >= start for at in sms_at):
            return CancelTerms(None, RefundScope.UNKNOWN, closes_at=closes)
        return CancelTerms(None, RefundScope.ALL, closes_at=closes)

    async def cancel(self, order: Order) -> CancelOutcome:
        """setRentStatus 2. Before it, getRentStatus tells whether an SMS came (after the cancel
        the rent only answers STATUS_CANCEL): with one, or after a renewal, or when that read
        fails, what came back is UNKNOWN (see :meth:`cancel_terms`); otherwise ALL."""
        why = ""
        if order.renewed_at is not None:
            why = "renewed: the docs do not say whether a renewal is returned"
        else:
            try:
                if (await self.state(order)).messages:
                    why = "an SMS came: the docs leave the refund after an SMS open"
            except (ProviderUnavailable, InvalidRequest) as exc:
                why = f"whether an SMS came is unknown ({type(exc).__name__})"
        await self._set_status(order, 2)
        if why:
            log.warning("smsonline: cancelled rent %s, refund unknown: %s", order.order_id, why)
            return CancelOutcome(RefundScope.UNKNOWN, detail=f"setRentStatus 2: {why}")
        return CancelOutcome(RefundScope.ALL, detail="setRentStatus 2 within 20 min, no SMS")

    @property
    def listed_kinds(self) -> frozenset[OrderKind]:
        return frozenset({OrderKind.RENTAL})  # getRentList

    def notices(self) -> tuple[str, ...]:
        return () if self.zone_note is None else (self.zone_note,)

    def unclaimed_window(self, kind: OrderKind) -> timedelta:
        # Charged at purchase, refundable for 20 minutes: a lost rent is found in getRentList.
        return CANCEL_WINDOW

    async def renew(self, order: Order, duration_hours: int) -> Renewal:
        if duration_hours not in RENT_HOURS:
            raise InvalidRequest(self.id, f"rent duration must be one of {RENT_HOURS} hours")
        params: dict[str, str | int] = {"id": order.order_id, "rent_time": duration_hours}
        phone = await self._call("continueRentNumber", params, self._parse_phone, safe=False)
        return Renewal(order_id=phone.id, expires_at=phone.end_date)

    # --- not offered -------------------------------------------------------------------------

    async def another_code(self, order: Order) -> Mapping[str, str]:
        raise Unsupported(self.id, "another code")

    async def ban(self, order: Order) -> CancelOutcome:
        raise Unsupported(self.id, "ban")

    async def reuse(self, order: Order) -> Order:
        raise Unsupported(self.id, "reuse")


@dataclass(frozen=True, slots=True)
class _Rent:
    id: str
    phone: str
    price: Money | None
    hours: int | None


@dataclass(frozen=True, slots=True)
class _Phone:
    id: str
    number: str
    end_date: datetime | None
    end_raw: str | None = None  # as the server wrote it (zone calibration)


@dataclass(frozen=True, slots=True)
class _Page:
    total: int | None  # ``quantity``: every SMS of the rent, not just this page
    items: list[_SmsFields]


def _looks_like_services(values: Mapping[str, Any]) -> bool:
    return bool(values) and all(
        isinstance(entry, dict) and "cost" in entry for entry in values.values()
    )


def _messages(fields: list[_SmsFields], offset: timedelta = timedelta()) -> tuple[Sms, ...]:
    """Oldest first (SA pages are newest first); exact duplicates get increasing indexes."""
    oldest_first = list(reversed(fields))
    floor = datetime.min.replace(tzinfo=UTC)
    oldest_first.sort(key=lambda f: (parse_datetime(f[2]) if f[2] else None) or floor)
    seen: dict[str, int] = {}
    result: list[Sms] = []
    for sender, text, date in oldest_first:
        key = _sms_key(sender, text, date)
        index = seen.get(key, 0)
        seen[key] = index + 1
        result.append(_make_sms(sender, text, date, index, offset))
    return tuple(result)


async def _gather_skipping_invalid(jobs: list[Awaitable[T]]) -> list[T | None]:
    """Run concurrently; an InvalidRequest (e.g. INVALID_TIME for one duration) becomes None,
    any other error is raised (the first one)."""
    results = await asyncio.gather(*jobs, return_exceptions=True)
    answers: list[T | None] = []
    for result in results:
        if isinstance(result, InvalidRequest):
            answers.append(None)
        elif isinstance(result, BaseException):
            raise result
        else:
            answers.append(result)
    return answers
