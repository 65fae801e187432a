"""BEE-SMS adapter: long-term rental numbers only (``/v1/rental/...``).

Wire rules: every request is a GET with ``token=KEY`` in the query; every answer is JSON
``{"code": ..., "message": ..., "data": ...}`` where ``code`` 200 means success and anything else
is an error, whatever the HTTP status. All amounts are integer US cents.

Identifiers: service codes go through :func:`identifiers.canonical_service`, area codes (lower-case
ISO codes with a few aliases such as ``uk``) through :func:`identifiers.beesms_area_to_iso`. The
provider's own codes travel in :attr:`Offer.ref` and :attr:`Order.meta` so nothing above this
module needs them.

There is no balance endpoint, no activations and no per-SMS actions (finish, ban, another code).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import httpx

from bot.clock import SYSTEM_CLOCK, Clock, parse_datetime
from bot.money import Money, to_decimal
from bot.providers import identifiers
from bot.providers.base import (
    BadCredentials,
    CancelBlock,
    CancelNotAllowed,
    CancelOutcome,
    CancelTerms,
    Capability,
    InsufficientBalance,
    InvalidRequest,
    ListedOrder,
    ListingPage,
    NoNumbers,
    Offer,
    Order,
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
from bot.providers.http import Params, ProviderHttp

log = logging.getLogger(__name__)
REFUND_WINDOW = timedelta(hours=24)  # cancel: no SMS within 24 h of the last renewal

PROVIDER_ID = "beesms"
PREFIX = "/v1/rental"
CENTS = Decimal(100)

NUMBERS_PAGE_SIZE = 100  # the list carries total_page, so a smaller server cap is harmless
SMS_PAGE_SIZE = 20  # the documented default: the SMS list has no totals, a short page ends it
MAX_PAGES = 50  # a sane bound on any paginated read

# Error ``code`` -> (typed error, whether the answer counts as lost).
_ERRORS: Mapping[int, type[ProviderError]] = {
    400: InvalidRequest,
    401: BadCredentials,
    404: OrderNotFound,
    50001: InsufficientBalance,
    50111: NoNumbers,
    50115: PriceAboveLimit,
    50302: OrderNotFound,
    50303: CancelNotAllowed,
}
_RENEWAL_FAILED = 50304  # "Rental renewal failed, please try again.": a clear, transient failure

# Keys of a refunded amount (cents) that a cancel answer might carry; the docs show none.
_REFUND_KEYS = ("refund_amount", "refunded_amount", "amount")

_STATUSES = {"EXPIRED": RemoteStatus.EXPIRED, "CANCELLED": RemoteStatus.CANCELLED}


class BeeSmsProvider:
    """BEE-SMS rentals. Prices are USD; the API works in integer cents."""

    def __init__(
        self,
        http: ProviderHttp,
        api_key: str,
        *,
        currency: str = "USD",
        clock: Clock = SYSTEM_CLOCK,
        catalog_concurrency: int = 5,
    ) -> None:
        self._http = http
        self._key = api_key
        self._currency = currency
        self._clock = clock
        self._concurrency = max(1, catalog_concurrency)
        # canonical service -> BEE-SMS service code, learned from the services list
        self._service_codes: dict[str, str] = {}
        # (canonical service, ISO) -> BEE-SMS area code, learned from price lists
        self._area_codes: dict[tuple[str, str], str] = {}

    # --- identity ---------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return PROVIDER_ID

    @property
    def title(self) -> str:
        return "BEE-SMS"

    @property
    def currency(self) -> str:
        return self._currency

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(
            {
                Capability.RENTALS,
                Capability.CANCEL,
                Capability.RENEW,
                Capability.RENEW_PRICE,
                Capability.LIST_ORDERS,
                Capability.MAX_PRICE,
                Capability.AUTO_RENEW,
            }
        )

    # --- wire -------------------------------------------------------------------------------

    async def _get(
        self,
        endpoint: str,
        params: Mapping[str, str | int],
        shape: Callable[[httpx.Response, Any], Any],
        *,
        safe: bool,
    ) -> Any:
        """Call ``/v1/rental/<endpoint>``; ``shape`` checks and returns the success ``data``."""
        query: Params = {"token": self._key, **params}

        def parse(response: httpx.Response) -> Any:
            return shape(response, self._data(response, endpoint))

        return await self._http.call(f"{PREFIX}/{endpoint}", query, parse, safe=safe)

    def _data(self, response: httpx.Response, endpoint: str) -> Any:
        """The ``data`` of a success answer, or the typed error for the body's ``code``."""
        try:
            body = self._http.json(response)
        except ProviderUnavailable:
            # A bare 4xx page without JSON still tells us enough.
            error = _ERRORS.get(response.status_code)
            if error is not None:
                raise error(PROVIDER_ID, f"{endpoint}: HTTP {response.status_code}") from None
            raise
        code = _int(body.get("code")) if isinstance(body, dict) else None
        if code is None:
            why = "server error" if response.status_code >= 500 else "unexpected answer"
            raise self._http.unavailable(response, f"{endpoint}: {why}")
        if code == 200:
            return body.get("data")
        message = self._clean(str(body.get("message") or ""))[:120]
        detail = f"{endpoint}: {code} {message}".strip()
        error = _ERRORS.get(code)
        if error is not None:
            raise error(PROVIDER_ID, detail)
        if code == _RENEWAL_FAILED:
            raise ProviderUnavailable(PROVIDER_ID, detail, answer_lost=False)
        # An undocumented code: we cannot tell whether a purchase went through.
        raise ProviderUnavailable(PROVIDER_ID, detail, answer_lost=True)

    def _clean(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _money(self, cents: object) -> Money:
        return Money(to_decimal(cents) / CENTS, self._currency)

    # --- catalog and offers -----------------------------------------------------------------

    async def balance(self) -> Money:
        """``GET /v1/user/balance`` (cents). The rental docs do not list it; the issue tracker
        reports public clients using it, its shape unconfirmed: ``data`` as cents, or an object
        with ``balance``/``amount`` in cents. An account without it (404 / "Not Found") is
        "unknown" (Unsupported), not an error."""

        def parse(response: httpx.Response) -> Money:
            try:
                data = self._data(response, "user/balance")
            except OrderNotFound:
                raise Unsupported(PROVIDER_ID, "the account has no balance endpoint") from None
            cents = data.get("balance", data.get("amount")) if isinstance(data, dict) else data
            try:
                return self._money(cents)
            except (ValueError, ArithmeticError):
                raise self._http.unavailable(response, "user/balance: no amount") from None

        query: Params = {"token": self._key}
        return await self._http.call("/v1/user/balance", query, parse, safe=True)

    async def _services(self) -> dict[str, str]:
        """BEE-SMS service code -> name."""

        def shape(response: httpx.Response, data: Any) -> dict[str, str]:
            result: dict[str, str] = {}
            for item in _items(data, response, self._http, "services"):
                code = item.get("code")
                if not isinstance(code, str) or not code.strip():
                    raise self._http.unavailable(response, "services: entry without a code")
                name = item.get("name")
                result[code.strip()] = str(name) if name else code.strip()
            return result

        services: dict[str, str] = await self._get("services", {}, shape, safe=True)
        for code in services:
            self._service_codes.setdefault(identifiers.canonical_service(code), code)
        return services

    async def _prices(self, service: str | None, area: str | None = None) -> list[_PriceRow]:
        params: dict[str, str | int] = {}
        if service is not None:
            params["service"] = service
        if area is not None:
            params["area"] = area

        def shape(response: httpx.Response, data: Any) -> list[_PriceRow]:
            try:
                rows = [
                    _PriceRow.parse(item) for item in _items(data, response, self._http, "prices")
                ]
            except (KeyError, TypeError, ValueError) as exc:
                raise self._http.unavailable(response, f"prices: bad entry ({exc})") from None
            return rows

        rows: list[_PriceRow] = await self._get("prices", params, shape, safe=True)
        for row in rows:
            iso = identifiers.beesms_area_to_iso(row.area)
            if iso is not None:
                canonical = identifiers.canonical_service(row.service)
                self._service_codes.setdefault(canonical, row.service)
                self._area_codes[(canonical, iso)] = row.area
        return rows

    async def catalog(self) -> ProviderCatalog:
        """Every service from ``services``, then its price list (a few at a time)."""
        services = await self._services()
        limit = asyncio.Semaphore(self._concurrency)

        async def prices(code: str) -> list[_PriceRow]:
            async with limit:
                return await self._prices(code)

        results = await asyncio.gather(*(prices(code) for code in services))
        pairs: set[tuple[str, str]] = set()
        names: dict[str, str] = {}
        for code, rows in zip(services, results, strict=True):
            canonical = identifiers.canonical_service(code)
            names.setdefault(canonical, services[code])
            for row in rows:
                iso = identifiers.beesms_area_to_iso(row.area)
                if iso is None:
                    log.debug("beesms: unknown area code %r", row.area)
                    continue
                if row.durations:
                    pairs.add((identifiers.canonical_service(row.service), iso))
        return ProviderCatalog(pairs=frozenset(pairs), service_names=names)

    async def _service_code(self, service: str) -> str | None:
        if service not in self._service_codes:
            await self._services()
        return self._service_codes.get(service)

    async def offers(self, service: str, country: str) -> list[Offer]:
        """One rental offer per duration sold for the pair (price after the loyalty discount)."""
        iso = country.upper()
        code = await self._service_code(service)
        if code is None:
            return []
        area = self._area_codes.get((service, iso))
        # Without a known area spelling, ask for the whole service and filter by ISO code.
        rows = await self._prices(code, area)
        offers: list[Offer] = []
        for row in rows:
            if identifiers.canonical_service(row.service) != service:
                continue
            if identifiers.beesms_area_to_iso(row.area) != iso:
                continue
            for duration in row.durations:
                offers.append(
                    Offer(
                        provider=PROVIDER_ID,
                        service=service,
                        country=iso,
                        kind=OrderKind.RENTAL,
                        price=self._money(duration.actual_cents),
                        stock=duration.qty,
                        duration_hours=duration.days * 24,
                        ref=f"{row.service}|{row.area}|{duration.days}",
                    )
                )
        return offers

    # --- buying -----------------------------------------------------------------------------

    async def _offer_target(self, offer: Offer) -> tuple[str, str, int]:
        """(service code, area code, days) for an offer, from its ref or its canonical ids."""
        parts = offer.ref.split("|")
        if len(parts) == 3 and all(parts) and parts[2].isdigit():
            return parts[0], parts[1], int(parts[2])
        hours = offer.duration_hours
        if hours is None or hours <= 0 or hours % 24:
            raise InvalidRequest(PROVIDER_ID, f"rental duration must be whole days: {hours}h")
        code = await self._service_code(offer.service) or offer.service
        area = self._area_codes.get((offer.service, offer.country.upper()))
        return code, area or offer.country.lower(), hours // 24

    async def buy(
        self, offer: Offer, *, max_price: Money | None = None, auto_renew: bool = False
    ) -> Order:
        """Rent a number. ``max_price`` is sent in cents rounded down (never accept more)."""
        if offer.kind != OrderKind.RENTAL:
            raise Unsupported(PROVIDER_ID, "BEE-SMS sells rentals only")
        target = await self._offer_target(offer)
        service, area, days = target
        params: dict[str, str | int] = {
            "service": service,
            "area": area,
            "duration": days,
            "auto_renew": "true" if auto_renew else "false",
        }
        if max_price is not None:
            if max_price.currency != self._currency:
                raise InvalidRequest(
                    PROVIDER_ID, f"max_price must be in {self._currency}, not {max_price.currency}"
                )
            cents = (max_price.amount * CENTS).to_integral_value(rounding=ROUND_FLOOR)
            params["max_amount"] = int(cents)

        def shape(response: httpx.Response, data: Any) -> Order:
            if not isinstance(data, dict):
                raise self._http.unavailable(response, "purchase: no order in the answer")
            try:
                return self._order(data, offer, target, auto_renew)
            except (KeyError, TypeError, ValueError) as exc:
                raise self._http.unavailable(response, f"purchase: bad order ({exc})") from None

        order: Order = await self._get("purchase", params, shape, safe=False)
        log.info("beesms: rented order %s for %s days", order.order_id, days)
        return order

    def _order(
        self, data: Mapping[str, Any], offer: Offer, target: tuple[str, str, int], renew: bool
    ) -> Order:
        order_id = _text(data["order_id"])
        mobile = _text(data["mobile_number"])
        dialing = _text(data.get("dialing_code") or "")
        phone = _digits(dialing + mobile)
        if not order_id or not phone:
            raise ValueError("empty order id or number")
        service = _text(data.get("service_code") or "") or target[0]
        area = _text(data.get("area_code") or "") or target[1]
        days = _int(data.get("duration")) or target[2]
        is_auto_renew = data.get("is_auto_renew")
        price = data.get("actual_amount")
        return Order(
            provider=PROVIDER_ID,
            order_id=order_id,
            kind=OrderKind.RENTAL,
            phone=phone,
            service=identifiers.canonical_service(service),
            country=identifiers.beesms_area_to_iso(area) or offer.country,
            price=self._money(price) if price is not None else offer.price,
            expires_at=parse_datetime(data.get("rental_end_at")),
            auto_renew=is_auto_renew if isinstance(is_auto_renew, bool) else renew,
            duration_hours=days * 24,
            meta={
                "service": service,
                "area": area,
                "mobile_number": mobile,
                "dialing_code": dialing,
            },
        )

    # --- order state ------------------------------------------------------------------------

    async def _numbers(self, mobile_number: str | None = None) -> list[_Rental]:
        """Every rental in the account (optionally for one number), all pages."""
        rentals: list[_Rental] = []
        seen: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            params: dict[str, str | int] = {"page_num": page, "page_size": NUMBERS_PAGE_SIZE}
            if mobile_number:
                params["mobile_number"] = mobile_number
            batch, total_pages = await self._numbers_page(params)
            fresh = [r for r in batch if r.order_id not in seen]
            seen.update(r.order_id for r in fresh)
            rentals.extend(fresh)
            if total_pages is not None:
                if page >= total_pages:
                    return rentals
            elif len(batch) < NUMBERS_PAGE_SIZE:
                return rentals
            if not fresh:  # the server ignores page_num: nothing more to learn
                return rentals
        log.warning("beesms: numbers list longer than %d pages, truncated", MAX_PAGES)
        return rentals

    async def _numbers_page(
        self, params: dict[str, str | int]
    ) -> tuple[list[_Rental], int | None]:
        """One page of ``numbers``: its rentals and the ``total_page`` it states."""

        def shape(response: httpx.Response, data: Any) -> tuple[list[_Rental], int | None]:
            if not isinstance(data, dict):
                raise self._http.unavailable(response, "numbers: no page in the answer")
            items = _items(data.get("list") or [], response, self._http, "numbers")
            try:
                return [_Rental.parse(item) for item in items], _int(data.get("total_page"))
            except (KeyError, TypeError, ValueError) as exc:
                raise self._http.unavailable(response, f"numbers: bad entry ({exc})") from None

        page: tuple[list[_Rental], int | None] = await self._get(
            "numbers", params, shape, safe=True
        )
        return page

    async def active_page(self, page: int) -> ListingPage:
        """``numbers?status=ACTIVE``, one page: every active rental with its
        ``sms_received_count`` (the watcher's one listing a round)."""
        params: dict[str, str | int] = {
            "status": "ACTIVE",
            "page_num": page,
            "page_size": NUMBERS_PAGE_SIZE,
        }

        batch, total_pages = await self._numbers_page(params)
        listed: list[ListedOrder] = []
        for rental in batch:
            try:
                status = self._status(rental, rental.sms_count > 0)
            except ProviderUnavailable:
                log.warning("beesms: order %s has unknown status, skipped", rental.order_id)
                continue
            listed.append(
                ListedOrder(rental.order_id, status, rental.sms_count, rental.expires_at)
            )
        last = page >= total_pages if total_pages is not None else len(batch) < NUMBERS_PAGE_SIZE
        return ListingPage(tuple(listed), last=last or not batch, pages=total_pages)

    async def listed_state(self, order: Order, listed: ListedOrder) -> OrderState:
        """The SMS of a rental the listing showed with a new count (``sms`` pages only)."""
        messages = await self._messages(order.order_id)
        status = listed.status
        if status is RemoteStatus.WAITING and messages:
            status = RemoteStatus.RECEIVED
        return OrderState(status=status, messages=messages, expires_at=listed.expires_at)

    async def _messages(self, order_id: str) -> tuple[Sms, ...]:
        """Every SMS of a rental, all pages (the list has no totals: a short page is the last)."""
        messages: dict[str, Sms] = {}
        for page in range(1, MAX_PAGES + 1):
            params: dict[str, str | int] = {
                "order_id": order_id,
                "page_num": page,
                "page_size": SMS_PAGE_SIZE,
            }

            def shape(response: httpx.Response, data: Any) -> list[Sms]:
                if isinstance(data, dict) and "list" in data:  # tolerate a numbers-style page
                    data = data["list"]
                items = _items(data if data is not None else [], response, self._http, "sms")
                try:
                    return [_sms(item) for item in items]
                except (KeyError, TypeError, ValueError) as exc:
                    raise self._http.unavailable(response, f"sms: bad entry ({exc})") from None

            batch: list[Sms] = await self._get("sms", params, shape, safe=True)
            fresh = [sms for sms in batch if sms.id not in messages]
            messages.update((sms.id, sms) for sms in fresh)
            if len(batch) < SMS_PAGE_SIZE or not fresh:
                break
        else:
            log.warning(
                "beesms: SMS list of %s longer than %d pages, truncated", order_id, MAX_PAGES
            )
        return tuple(sorted(messages.values(), key=_sms_order))

    async def _rental(self, order: Order) -> _Rental:
        """The rental record of an order; the order detail settles a missing one."""
        mobile = order.meta.get("mobile_number")
        for rental in await self._numbers(mobile or None):
            if rental.order_id == order.order_id:
                return rental
        record = await self._order_record(order.order_id)  # OrderNotFound if unknown
        if record.get("status") == "CANCELLED":
            return _Rental(order.order_id, "CANCELLED", order.phone)
        raise ProviderUnavailable(PROVIDER_ID, "numbers: order exists but is not listed yet")

    async def _order_record(self, order_id: str) -> dict[str, Any]:
        def shape(response: httpx.Response, data: Any) -> dict[str, Any]:
            if not isinstance(data, dict) or "order_id" not in data:
                raise self._http.unavailable(response, "order: no record in the answer")
            return data

        record: dict[str, Any] = await self._get("order", {"order_id": order_id}, shape, safe=True)
        return record

    def _status(self, rental: _Rental, has_sms: bool) -> RemoteStatus:
        status = _STATUSES.get(rental.status)
        if status is not None:
            return status
        if rental.status != "ACTIVE":
            raise ProviderUnavailable(PROVIDER_ID, f"numbers: unknown status {rental.status!r}")
        if rental.expires_at is not None and rental.expires_at <= self._clock.now():
            return RemoteStatus.EXPIRED
        return RemoteStatus.RECEIVED if has_sms else RemoteStatus.WAITING

    async def state(self, order: Order) -> OrderState:
        rental, messages = await asyncio.gather(
            self._rental(order), self._messages(order.order_id)
        )
        return OrderState(
            status=self._status(rental, bool(messages)),
            messages=messages,
            expires_at=rental.expires_at,  # None when not told: never our own copy
        )

    async def list_orders(self) -> list[RemoteOrder]:
        result: list[RemoteOrder] = []
        for rental in await self._numbers():
            try:
                status = self._status(rental, rental.sms_count > 0)
            except ProviderUnavailable:
                log.warning("beesms: order %s has unknown status, skipped", rental.order_id)
                continue
            result.append(
                RemoteOrder(
                    order_id=rental.order_id,
                    kind=OrderKind.RENTAL,
                    phone=rental.phone,
                    status=status,
                    expires_at=rental.expires_at,
                    service=identifiers.canonical_service(rental.service)
                    if rental.service
                    else None,
                    country=identifiers.beesms_area_to_iso(rental.area) if rental.area else None,
                )
            )
        return result

    # --- order actions ----------------------------------------------------------------------

    def cancel_terms(self, order: Order, sms_at: Sequence[datetime], now: datetime) -> CancelTerms:
        """bee-sms-rental.txt (cancel): "refunds the remaining balance if no SMS has been
        received within 24 hours of the last renewal", else 50303 "not eligible for refund".

        Read as the issue tracker states the rule: the window is the 24 hours after the last
        charge (the purchase, or the latest renewal the bot made); an SMS since that charge, or
        a cancel after the window, is refused. The docs leave open whether a cancel after 24 h
        without SMS is refunded: the bot does not offer it (it never promises a refund the
        provider may keep)."""
        last = order.renewed_at or order.bought_at
        if last is None:  # not stored yet: the provider's answer decides
            return CancelTerms(None, RefundScope.LAST)
        closes = last + REFUND_WINDOW
        if any(at >= last for at in sms_at):
            return CancelTerms(CancelBlock.SMS_RECEIVED, RefundScope.NONE, closes_at=closes)
        if now >= closes:
            return CancelTerms(CancelBlock.TOO_LATE, RefundScope.NONE, closes_at=closes)
        return CancelTerms(None, RefundScope.LAST, closes_at=closes)

    async def cancel(self, order: Order) -> CancelOutcome:
        """Cancel and refund; CancelNotAllowed (50303, the provider's words) otherwise.

        The documented answer carries no amount: the refund is then the last charge (the
        purchase or the latest renewal, RefundScope.LAST), as the issue tracker states the
        docs' "remaining balance". Should the answer's ``data`` name an amount in cents
        (``refund_amount``/``refunded_amount``/``amount``), that amount is what came back."""

        def shape(response: httpx.Response, data: Any) -> Any:
            return data

        data = await self._get("cancel", {"order_id": order.order_id}, shape, safe=False)
        log.info("beesms: cancelled order %s", order.order_id)
        named = [k for k in _REFUND_KEYS if isinstance(data, dict) and k in data]
        if named:
            try:
                cents = to_decimal(data[named[0]])
            except ValueError:
                cents = Decimal(-1)
            if cents < 0:  # confirmed, but what came back cannot be read: say so
                log.warning("beesms: cancel of %s answered an unreadable amount", order.order_id)
                return CancelOutcome(RefundScope.UNKNOWN, detail=f"cancel: bad {named[0]}")
            return CancelOutcome(
                RefundScope.AMOUNT, amount=self._money(cents), detail="cancel: amount answered"
            )
        return CancelOutcome(RefundScope.LAST, detail="cancel: 'refunds the remaining balance'")

    @property
    def listed_kinds(self) -> frozenset[OrderKind]:
        return frozenset({OrderKind.RENTAL})  # rental/numbers lists every rental

    def notices(self) -> tuple[str, ...]:
        return ()

    def unclaimed_window(self, kind: OrderKind) -> timedelta:
        # A rental is charged at purchase and never free: a lost one is found in the listing.
        return REFUND_WINDOW

    async def renewal_options(self, order: Order) -> list[RenewalOption]:
        """The durations currently sold for the order's service and area, at the listed price."""
        service = order.meta.get("service") or await self._service_code(order.service)
        area = order.meta.get("area") or self._area_codes.get(
            (order.service, order.country.upper())
        )
        if not service:
            return []
        options: dict[int, RenewalOption] = {}
        for row in await self._prices(service, area):
            if row.service != service:
                continue
            if area and row.area != area:
                continue
            if not area and identifiers.beesms_area_to_iso(row.area) != order.country.upper():
                continue
            for duration in row.durations:
                hours = duration.days * 24
                options[hours] = RenewalOption(hours, self._money(duration.actual_cents))
        return [options[hours] for hours in sorted(options)]

    async def renew(self, order: Order, duration_hours: int) -> Renewal:
        """Extend by whole days. The answer has no data: the new expiry is read back afterwards
        (``None`` if that read fails, as the renewal itself did succeed)."""
        if duration_hours <= 0 or duration_hours % 24:
            raise InvalidRequest(PROVIDER_ID, f"renewal must be whole days, not {duration_hours}h")
        params: dict[str, str | int] = {
            "order_id": order.order_id,
            "duration": duration_hours // 24,
        }
        await self._get("renew", params, _ignore, safe=False)
        log.info("beesms: renewed order %s by %d days", order.order_id, duration_hours // 24)
        rental, options = await asyncio.gather(
            self._rental(order), self.renewal_options(order), return_exceptions=True
        )
        expires_at: datetime | None = None
        if isinstance(rental, _Rental):
            expires_at = rental.expires_at
        else:
            log.warning("beesms: renewed %s but could not read the new expiry", order.order_id)
        price: Money | None = None
        if isinstance(options, list):
            price = next((o.price for o in options if o.duration_hours == duration_hours), None)
        return Renewal(order_id=order.order_id, expires_at=expires_at, price=price)

    async def another_code(self, order: Order) -> Mapping[str, str]:
        raise Unsupported(PROVIDER_ID, "rentals receive every SMS without asking")

    async def finish(self, order: Order) -> None:
        raise Unsupported(PROVIDER_ID, "rentals end on expiry or cancel")

    async def ban(self, order: Order) -> CancelOutcome:
        raise Unsupported(PROVIDER_ID, "the API cannot report a number")

    async def reuse(self, order: Order) -> Order:
        raise Unsupported(PROVIDER_ID, "use renew() to keep a rented number")


# --- parsing helpers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Duration:
    days: int
    actual_cents: Decimal
    qty: int


@dataclass(frozen=True, slots=True)
class _PriceRow:
    service: str
    area: str
    durations: list[_Duration]

    @classmethod
    def parse(cls, item: Mapping[str, Any]) -> _PriceRow:
        durations: list[_Duration] = []
        raw = item.get("durations") or []
        if isinstance(raw, dict):
            raw = list(raw.values())
        if not isinstance(raw, list):
            raise TypeError("durations is not a list")
        for entry in raw:
            if not isinstance(entry, dict):
                raise TypeError("duration is not an object")
            days = _int(entry["days"])
            if days is None or days <= 0:
                raise ValueError(f"bad days {entry['days']!r}")
            actual = entry.get("actual_amount")
            cents = to_decimal(actual if actual is not None else entry["amount"])
            qty = _int(entry.get("qty"))
            durations.append(_Duration(days, cents, max(qty or 0, 0)))
        return cls(_text(item["service_code"]), _text(item["area_code"]), durations)


@dataclass(frozen=True, slots=True)
class _Rental:
    order_id: str
    status: str
    phone: str
    service: str = ""
    area: str = ""
    expires_at: datetime | None = None
    sms_count: int = 0

    @classmethod
    def parse(cls, item: Mapping[str, Any]) -> _Rental:
        order_id = _text(item["order_id"])
        if not order_id:
            raise ValueError("empty order_id")
        return cls(
            order_id=order_id,
            status=_text(item["status"]).upper(),
            phone=_digits(_text(item.get("dialing_code") or "") + _text(item["mobile_number"])),
            service=_text(item.get("service_code") or ""),
            area=_text(item.get("area_code") or ""),
            expires_at=parse_datetime(item.get("rental_end_at")),
            sms_count=_int(item.get("sms_received_count")) or 0,
        )


def _items(data: Any, response: httpx.Response, http: ProviderHttp, what: str) -> list[Any]:
    """A JSON list of objects (also accepted: an object keyed "0", "1", ...)."""
    if isinstance(data, dict) and all(str(k).isdigit() for k in data):
        data = [data[k] for k in sorted(data, key=lambda k: int(k))]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise http.unavailable(response, f"{what}: expected a list of objects")
    return data


def _sms(item: Mapping[str, Any]) -> Sms:
    text = item.get("sms_content")
    text = None if text is None else str(text)
    received = parse_datetime(item.get("received_at"))
    sms_id = _text(item.get("id") or "")
    if not sms_id:  # no id: derive a stable one
        sms_id = f"{received.isoformat() if received else ''}|{text or ''}"
    sender = item.get("from")
    return Sms(
        id=sms_id,
        text=text,
        code=extract_code(text),
        sender=str(sender) if sender else None,
        received_at=received,
    )


def _sms_order(sms: Sms) -> tuple[bool, float, str]:
    stamp = sms.received_at.timestamp() if sms.received_at else 0.0
    return sms.received_at is None, stamp, sms.id


def _ignore(response: httpx.Response, data: Any) -> None:
    return None


def _text(value: object) -> str:
    if isinstance(value, bool) or value is None:
        raise TypeError(f"expected a string, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _int(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = to_decimal(value)
    except ValueError:
        return None
    if number != number.to_integral_value():
        return None
    return int(number)
