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
import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import Any, Final, TypeVar

import httpx

from bot.clock import SYSTEM_CLOCK, Clock, parse_datetime
from bot.money import Money, to_decimal
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
from bot.providers.identifiers import canonical_service, getsms_countries, reverse

log = logging.getLogger(__name__)

T = TypeVar("T")

V1_PATH: Final = "/api/v1/"
RENT_PATH: Final = "/api/v2/rent/"
# get-sms.txt "Obtaining a telephone number": "a virtual order that allows you to receive an SMS
# from the issued number within 15 minutes"; the price is held in reserve meanwhile.
ACTIVATION_LIFETIME: Final = timedelta(minutes=15)
# The lifetime counts from the provider's start_time; a purchase whose answer was lost started a
# little after the bot wrote its intent (up to the request timeout, plus clock skew): margin.
UNCLAIMED_MARGIN: Final = timedelta(minutes=5)
# get-sms.txt "Obtaining a telephone number for rent": "If you do not receive an SMS within 15
# minutes, you have the option to cancel the order, and the full amount will be refunded. After
# 20 minutes, refunds are not available"; refuse's 400: "more than 20 minutes have passed or SMS
# has already been received". No "too early" error is documented for refuse, so no minimum wait.
RENT_REFUND_WINDOW: Final = timedelta(minutes=20)
RENT_DAYS: Final = range(1, 8)  # getcountprices sells 1day..7day
# How many additional SMS one state() follows through ``wrongcode`` (each answer's id is the next
# ``last_id``); the docs set no limit, this bounds a poll.
MAX_EXTRA_SMS: Final = 20
# Order.meta key the services layer sets (to "1") once ``another_code`` succeeded, so that the
# adapter keeps asking ``wrongcode`` after a restart (it also remembers it in memory).
ANOTHER_CODE_META: Final = "another_code"
MOSCOW: Final = timezone(timedelta(hours=3), "MSK")
# get-sms.txt, List of countries: "usavirt USA (Virtual) 12" (the other US slug is "ssha").
VIRTUAL_SLUGS: Final = frozenset({"usavirt"})

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


@functools.cache
def doc_service_names() -> Mapping[str, str]:
    """Get-SMS service code -> name, from get-sms.txt's "List of services"."""
    raw = resources.files("bot.providers").joinpath("data", "getsms_services.json")
    names = json.loads(raw.read_text("utf-8"))["names"]
    return {str(k): str(v) for k, v in names.items()}


def _sms_digest(sms: Sms) -> str:
    received = sms.received_at.isoformat() if sms.received_at else ""
    content = f"{received}\x1f{sms.text or ''}\x1f{sms.code or ''}"
    return hashlib.sha256(content.encode()).hexdigest()


def parse_rent_datetime(value: object) -> datetime | None:
    """A rental timestamp: UNIX seconds, ISO with offset, or a naive Moscow-time string."""
    if isinstance(value, str) and value.strip() and not value.strip().isdigit():
        naive = parse_datetime(value, assume_utc=False)
        if naive is not None and naive.tzinfo is None:
            return naive.replace(tzinfo=MOSCOW).astimezone(UTC)
        return naive
    return parse_datetime(value)


class GetSmsProvider:
    """The :class:`~bot.providers.base.Provider` for get-sms.com.

    ``currency`` is required: the docs leave the account currency uncertain (the compatible
    API's getBalance says "$", the native examples' prices look like roubles), so the operator
    states it; a wrong guess would misprice every offer.
    """

    def __init__(
        self,
        http: ProviderHttp,
        api_key: str,
        *,
        currency: str,
        clock: Clock = SYSTEM_CLOCK,
        price_list_seconds: float = 60.0,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z]{3}", currency or ""):
            raise ValueError("Get-SMS needs its account currency (ISO 4217, e.g. USD or RUB)")
        self._http = http
        self._key = api_key
        self._currency = currency.upper()
        self._clock = clock
        self._slugs = dict(getsms_countries())
        self._slugs_by_iso = {iso: sorted(slugs) for iso, slugs in reverse(self._slugs).items()}
        # Activations whose user asked for another code in this process (see ANOTHER_CODE_META).
        self._wants_more: set[str] = set()
        # Rental price lists per country slug, with when they were read (_country_prices).
        self._price_lists: dict[str, tuple[datetime, Any]] = {}
        self._price_list_ttl = timedelta(seconds=price_list_seconds)

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
                Capability.LIST_ORDERS,  # rentals only: see listed_kinds
            }
        )

    @property
    def listed_kinds(self) -> frozenset[OrderKind]:
        # getorders is the rent API's; the activation API has no order list (get-sms.txt).
        return frozenset({OrderKind.RENTAL})

    def notices(self) -> tuple[str, ...]:
        return ()

    def unclaimed_window(self, kind: OrderKind) -> timedelta:
        if kind is OrderKind.ACTIVATION:
            # 15-minute lifetime, and getcode: "In any case money will not be deducted from
            # your account if no SMS was received".
            return ACTIVATION_LIFETIME + UNCLAIMED_MARGIN
        # A rental is charged at purchase and kept unless refused within 20 minutes: a lost
        # rental purchase is never free, it is found in getorders instead. Past the longest
        # period sold (7 days) it has certainly ended and can cost nothing more.
        return timedelta(days=max(RENT_DAYS)) + UNCLAIMED_MARGIN

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
                    name = info.get("name") if isinstance(info, Mapping) else None
                    if not isinstance(name, str) or not name.strip():
                        # Some services come without a display name (``ai``): the docs' own
                        # service list names them; else the code is shown.
                        name = doc_service_names().get(code)
                    if name:
                        names.setdefault(service, name.strip())
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

    async def another_code(self, order: Order) -> Mapping[str, str]:
        """Ask for one more SMS: ``wrongcode`` with ``last_id`` = the newest SMS id.

        get-sms.txt (wrongcode): its answer *is* the additional SMS, and the call "must be
        repeated either until you receive an SMS or until an error occurs". So from now on
        :meth:`state` asks ``wrongcode`` after ``getcode`` and returns what it gives. This
        process remembers it, and the returned ``meta[ANOTHER_CODE_META] = "1"`` is stored with the
        order so that a restart keeps asking.
        """
        self._need_activation(order, "another_code")
        status, first = await self._first_sms(order)
        if status == 500:
            raise OrderClosed(self.id, "order lifetime expired")
        if first is None:
            raise InvalidRequest(self.id, "no SMS received yet: another code needs a first one")
        self._wants_more.add(order.order_id)
        # The walk ends with the wrongcode call for the newest id: that call is the request.
        await self._extra_sms(order, first, asking=True)
        return {ANOTHER_CODE_META: "1"}

    def cancel_terms(self, order: Order, sms_at: Sequence[datetime], now: datetime) -> CancelTerms:
        if order.kind is OrderKind.RENTAL:
            if sms_at:
                return CancelTerms(CancelBlock.SMS_RECEIVED, RefundScope.NONE)
            start = self._rental_start(order)
            closes = start + RENT_REFUND_WINDOW if start is not None else None
            if closes is not None and now >= closes:
                return CancelTerms(CancelBlock.TOO_LATE, RefundScope.NONE, closes_at=closes)
            # refuse's success: "The funds for the rental are returned to the user's balance."
            return CancelTerms(None, RefundScope.ALL, closes_at=closes)
        closes = order.expires_at
        if closes is None and order.bought_at is not None:
            closes = order.bought_at + ACTIVATION_LIFETIME
        if closes is not None and now >= closes:
            # The order's lifetime is over (refusenumber answers 500); it closed by itself.
            return CancelTerms(CancelBlock.TOO_LATE, RefundScope.NONE, closes_at=closes)
        # refusenumber is accepted with or without an SMS, but "money will not be deducted from
        # your account if no SMS was received" is the only refund rule: after an SMS, nothing.
        refund = RefundScope.NONE if sms_at else RefundScope.ALL
        return CancelTerms(None, refund, closes_at=closes)

    async def finish(self, order: Order) -> None:
        """Unsupported: no documented call finishes what this adapter buys.

        get-sms.txt's native API (where activations are bought: ``getnumber``) has getcode,
        wrongcode, refusenumber and bannumber, and no finish: an order is "a kind of
        temporary rental" of 15 minutes that ends by itself, its price taken only if an SMS
        came. The compatible API's ``setStatus&status=6`` ("complete activation") takes "Order
        ID received from getNumber request", i.e. an id of that API's own ``getNumber``; the
        docs never say the two APIs share ids, and warn that the compatible one "is not updated
        or properly supported". Sending it a native ``order_id`` would rest on a guess, and
        buying through it instead would trade the documented native flow (and wrongcode's free
        extra SMS) for an API the provider discourages. Rentals end on expiry or refuse.
        """
        raise Unsupported(self.id, "finish (the native API has none)")

    async def cancel(self, order: Order) -> CancelOutcome:
        if order.kind is OrderKind.RENTAL:
            # 400 (over 20 minutes, or an SMS came) -> CancelNotAllowed with the provider's msg.
            await self._rent(
                {"method": "refuse", "rentid": order.order_id},
                self._enveloped(_RENT_REFUSE),
                safe=False,
            )
            self._wants_more.discard(order.order_id)
            return CancelOutcome(
                RefundScope.ALL, detail="refuse: 'The funds for the rental are returned'"
            )
        return await self._close_activation(order, "refusenumber")

    async def ban(self, order: Order) -> CancelOutcome:
        self._need_activation(order, "ban")
        return await self._close_activation(order, "bannumber")

    async def _close_activation(self, order: Order, method: str) -> CancelOutcome:
        """refusenumber/bannumber, and what the provider kept by its one refund rule.

        The answer does not say whether money was taken; the docs: "money will not be deducted
        from your account if no SMS was received". So getcode is read first: an SMS there means
        the money is kept. (An SMS landing between the two calls cannot be seen; the window is
        one round trip.)
        """
        status, first = await self._first_sms(order)
        if status == 500:
            raise OrderClosed(self.id, "order lifetime expired")
        await self._v1(
            {"method": method, "order_id": order.order_id},
            self._enveloped(_V1_CLOSE),
            safe=False,
        )
        self._wants_more.discard(order.order_id)
        if first is not None:
            return CancelOutcome(
                RefundScope.NONE, detail=f"{method} after an SMS: the provider keeps the price"
            )
        return CancelOutcome(
            RefundScope.ALL, detail=f"{method} without an SMS: nothing is deducted"
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

    async def _country_prices(self, slug: str, *, fresh: bool = False) -> Any:
        """A country's rental price list (``getcountprices``: every service, every length),
        kept for ``price_list_seconds``: offers of another service there, or the same pair's
        again, cost no request meanwhile. None: no rentals in this country."""
        kept = self._price_lists.get(slug)
        now = self._clock.now()
        if not fresh and kept is not None and now - kept[0] < self._price_list_ttl:
            return kept[1]
        try:
            data = await self._rent(
                {"method": "getcountprices", "country": slug},
                self._enveloped(_RENT_PRICES),
                safe=True,
            )
        except InvalidRequest:  # no rentals in this country
            data = None
        self._price_lists[slug] = (now, data)  # bounded: one per country slug of the table
        return data

    async def _rental_offers(
        self, service: str, iso: str, slug: str, *, fresh: bool = False
    ) -> list[Offer]:
        data = await self._country_prices(slug, fresh=fresh)
        if data is None:
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
                        virtual=slug in VIRTUAL_SLUGS,
                    )
                )
        return sorted(offers, key=lambda o: o.duration_hours or 0)

    async def _buy_rental(self, offer: Offer, slug: str) -> Order:
        days = self._days(offer.duration_hours or 24)
        # The offer may come from a kept price list: the price is asked again right before
        # buying (getnumber takes no maximum), so nobody pays more than the offer said.
        current = next(
            (
                o
                for o in await self._rental_offers(offer.service, offer.country, slug, fresh=True)
                if o.duration_hours == days * 24
            ),
            None,
        )
        if current is None or current.stock == 0:
            raise NoNumbers(self.id, f"no {days}-day rental in {slug} now")
        price = current.price
        if price.currency != offer.price.currency or price.amount > offer.price.amount:
            raise PriceAboveLimit(self.id, f"{price} > {offer.price}")
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
        status, first = await self._first_sms(order)
        if status == 500:
            self._wants_more.discard(order.order_id)
            return OrderState(RemoteStatus.EXPIRED, expires_at=order.expires_at)
        if first is None:
            return OrderState(RemoteStatus.WAITING, expires_at=order.expires_at)
        messages = [first]
        if order.order_id in self._wants_more or order.meta.get(ANOTHER_CODE_META) == "1":
            messages += await self._extra_sms(order, first)
        return OrderState(RemoteStatus.RECEIVED, tuple(messages), order.expires_at)

    async def _first_sms(self, order: Order) -> tuple[int, Sms | None]:
        """getcode: ``(200, sms)``, ``(400, None)`` while waiting, ``(500, None)`` expired."""
        status, data = await self._v1(
            {"method": "getcode", "order_id": order.order_id},
            self._status_and_data(_V1_GETCODE, ok=(200, 400, 500)),
            safe=True,
        )
        if status != 200:
            return status, None
        return status, self._activation_sms(data, "getcode", seen={})

    async def _extra_sms(self, order: Order, first: Sms, *, asking: bool = False) -> list[Sms]:
        """The SMS after ``first``: ``wrongcode`` with each answer's id as the next ``last_id``,
        until it answers 400 (none yet: that call is the request for one), 500 (lifetime over)
        or repeats itself. When polling, a read (retried; 500 ends the walk); when ``asking``
        (the user's request), sent once and a 500 is :class:`OrderClosed`."""
        seen = {first.id: _sms_digest(first)}
        extra: list[Sms] = []
        last_id = first.id
        ok = (200, 400) if asking else (200, 400, 500)
        for _ in range(MAX_EXTRA_SMS):
            status, data = await self._v1(
                {"method": "wrongcode", "order_id": order.order_id, "last_id": last_id},
                self._status_and_data(_V1_WRONGCODE, ok=ok),
                safe=not asking,
            )
            if status != 200:
                return extra
            sms = self._activation_sms(data, "wrongcode", seen=seen)
            if sms is None:  # the SMS already seen, again: nothing newer
                return extra
            extra.append(sms)
            raw_id = sms.id.split("~", 1)[0]
            if raw_id == last_id:  # the id did not advance: asking again would loop
                return extra
            last_id = raw_id
        log.warning("getsms: order %s has over %d extra SMS", order.order_id, MAX_EXTRA_SMS)
        return extra

    def _activation_sms(self, data: Any, method: str, *, seen: dict[str, str]) -> Sms | None:
        """One SMS of getcode/wrongcode. Its ``id`` is the provider's; where that id was already
        used by another text (the docs' own examples repeat the order id), the id gets a digest
        of the text so both are kept. None when exactly this SMS was seen already."""
        if not isinstance(data, Mapping) or data.get("id") in (None, ""):
            raise ProviderUnavailable(self.id, f"{method}: SMS without id")
        text = data.get("fullSms")
        code = data.get("code")
        sms = Sms(
            id=str(data["id"]),
            text=str(text) if text is not None else None,
            code=str(code) if code not in (None, "") else extract_code(str(text or "")),
            sender=str(data.get("sender") or "") or None,
            received_at=parse_datetime(data.get("receivedDate")),
        )
        digest = _sms_digest(sms)
        if digest in seen.values():
            return None
        if sms.id in seen:
            sms = Sms(f"{sms.id}~{digest[:12]}", sms.text, sms.code, sms.sender, sms.received_at)
        seen[sms.id] = digest
        return sms

    def _rental_start(self, order: Order) -> datetime | None:
        """When the rental was bought (the 20-minute refund window counts from it)."""
        if order.bought_at is not None:
            return order.bought_at
        if order.renewed_at is None and order.expires_at and order.duration_hours:
            return order.expires_at - timedelta(hours=order.duration_hours)
        return None

    async def _rental_state(self, order: Order) -> OrderState:
        status, data = await self._rent(
            {"method": "getcode", "rentid": order.order_id},
            self._status_and_data(_RENT_GETCODE, ok=(200, 400, 501, 502)),
            safe=True,
        )
        if status == 502:
            return OrderState(RemoteStatus.FINISHED)
        if status == 501:  # cancelled or expired: getorders tells which
            closed = RemoteStatus.EXPIRED
            for remote in await self.list_orders():
                if remote.order_id == order.order_id and remote.status.is_final:
                    closed = remote.status
            return OrderState(closed)
        if status == 400:
            return OrderState(RemoteStatus.WAITING)
        raw = data.get("sms_list") if isinstance(data, Mapping) else None
        messages = self._rental_messages(self._list(raw, "getcode"))
        status_now = RemoteStatus.RECEIVED if messages else RemoteStatus.WAITING
        # getcode does not tell the end (getorders does): None, never our own copy echoed.
        return OrderState(status_now, messages)

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
        return Offer(
            self.id,
            service,
            iso.upper(),
            OrderKind.ACTIVATION,
            price,
            stock,
            ref=slug,
            virtual=slug in VIRTUAL_SLUGS,
        )

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
