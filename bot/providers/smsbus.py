"""SMS-BUS (sms-bus.com) adapter: activations with cancel and number reuse.

Quirks kept here:

* every answer is a JSON envelope ``{"code": 200, "message": ..., "data": ...}``; the ``code``
  field decides, whatever the HTTP status (``401``/``400`` "Wrong token!" included);
* countries and projects have numeric ids: countries map to ISO via their ``code`` (when it is a
  real ISO code) or the ``smsbus_countries`` table; project codes are *not* SMS-Activate codes
  (``pp`` is PayPal there, Huya at SMS-Activate), so projects map by exact title first;
* ``get/sms`` returns the code only (no text); ``50101`` is "waiting", ``50102`` "released or
  timed out" (one code for both: a request this adapter cancelled reads as cancelled, any other
  as expired); the request lifetime is not documented, so ``expires_at`` stays ``None``;
* prices are per country (``list/prices?country_id=N``) and ``50001`` there means "nothing sold".
  The doc's examples disagree on country ids (``list/countries`` shows USA as 1, its country
  table and the ``list/prices`` example as 5): a price row answers the country asked for, and
  its own ``country_id`` is only used to notice a row whose ``code`` names another country.

Money (sms-bus.md never states a refund rule in words; what it shows): ``get/balance`` reports
``frozen`` beside ``balance``, i.e. a request's price is held, not spent, while it waits; the
request closes with its code ("the request has already closed", 50103, for any later cancel),
so a cancel can only succeed on a request that got no code, whose hold is returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from bot.clock import SYSTEM_CLOCK, Clock
from bot.money import Money, to_decimal
from bot.providers import identifiers
from bot.providers.base import (
    AccountRestricted,
    BadCredentials,
    CancelBlock,
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
from bot.providers.http import ProviderHttp
from bot.redact import Redactor

log = logging.getLogger(__name__)

T = TypeVar("T")

PROVIDER_ID = "smsbus"
_PREFIX = "api/control"
_OK = 200
_NO_SERVICE = 50001
_SMS_WAITING = 50101
_SMS_GONE = 50102
# The request lifetime is not documented (sms-bus.md has no word on it); requests are commonly
# said to live 20 minutes. A lost purchase's hold is kept three times that before it is released.
UNCLAIMED_WINDOW = timedelta(hours=1)

# Documented error codes -> typed errors (the operation may override some, see _Envelope).
_ERRORS: Mapping[int, type[ProviderError]] = {
    401: BadCredentials,
    _NO_SERVICE: NoNumbers,  # "No service available" (get number / reuse)
    50002: NoNumbers,  # "No number available"
    50007: InvalidRequest,  # reuse: "The number doesn't exist."
    50102: OrderClosed,  # "Number has been released or timeout"
    50103: OrderClosed,  # "the request has already closed"
    50104: AccountRestricted,  # too many waiting requests
    50107: InvalidRequest,  # reuse: "The number cannot be reused."
    50108: InvalidRequest,  # reuse: "The number cannot be reused."
    50109: OrderClosed,  # reuse: "The number is expired."
    50201: InsufficientBalance,
    50208: AccountRestricted,  # account not activated
    50214: AccountRestricted,  # "blocked from ordering this service for the next 24 hours"
}


@dataclass(frozen=True, slots=True)
class _Failure:
    """A well-formed envelope whose ``code`` is not 200."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class _Project:
    project_id: int
    service: str
    title: str


@dataclass(frozen=True, slots=True)
class _Maps:
    """Id maps loaded from ``list/countries`` and ``list/projects``."""

    country_iso: Mapping[int, str]  # SMS-BUS country id -> ISO
    iso_countries: Mapping[str, tuple[int, ...]]  # ISO -> SMS-BUS ids (usually one)
    projects: Mapping[int, _Project]  # project id -> canonical service
    service_project: Mapping[str, int]  # canonical service -> project id


@dataclass(frozen=True, slots=True)
class _Price:
    country_id: int  # the country asked for
    project_id: int
    cost: Decimal
    count: int


class SmsBusProvider:
    """The SMS-BUS API (``/api/control/...`` with ``token=KEY``) as a :class:`Provider`."""

    def __init__(
        self,
        http: ProviderHttp,
        api_key: str,
        *,
        currency: str = "USD",
        clock: Clock = SYSTEM_CLOCK,
        concurrency: int = 5,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._http = http
        self._key = api_key
        self._redact = Redactor((api_key,))
        self._currency = currency
        self._clock = clock
        self._concurrency = concurrency
        self._maps: _Maps | None = None
        self._maps_lock = asyncio.Lock()
        # Requests this process sent a cancel for: their 50102 "released" means cancelled.
        self._cancelled: set[str] = set()

    @property
    def id(self) -> str:
        return PROVIDER_ID

    @property
    def title(self) -> str:
        return "SMS-BUS"

    @property
    def currency(self) -> str:
        return self._currency

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.ACTIVATIONS, Capability.CANCEL, Capability.REUSE})

    @property
    def listed_kinds(self) -> frozenset[OrderKind]:
        return frozenset()  # the API has no order list

    def notices(self) -> tuple[str, ...]:
        return ()

    def unclaimed_window(self, kind: OrderKind) -> timedelta:
        return UNCLAIMED_WINDOW

    def cancel_terms(self, order: Order, sms_at: Sequence[datetime], now: datetime) -> CancelTerms:
        if order.kind is not OrderKind.ACTIVATION:
            return CancelTerms(CancelBlock.UNSUPPORTED, RefundScope.NONE)
        if sms_at:
            # The request closed with its code: cancel answers 50103.
            return CancelTerms(CancelBlock.SMS_RECEIVED, RefundScope.NONE)
        # No minimum wait and no window are documented; the lifetime is unknown (an expired
        # request answers 50103 too, and cost nothing).
        return CancelTerms(None, RefundScope.ALL)

    # --- reads ----------------------------------------------------------------------------

    async def balance(self) -> Money:
        return await self._get("get/balance", {}, self._parse_balance, safe=True)

    async def catalog(self) -> ProviderCatalog:
        maps = await self._load_maps()
        semaphore = asyncio.Semaphore(self._concurrency)

        async def one(country_id: int) -> list[_Price]:
            async with semaphore:
                return await self._prices(country_id)

        ids = sorted(maps.country_iso)
        results = await asyncio.gather(*(one(cid) for cid in ids), return_exceptions=True)
        pairs: set[tuple[str, str]] = set()
        names: dict[str, str] = {}
        for result in results:
            if isinstance(result, BaseException):
                raise result
            for price in result:
                project = maps.projects.get(price.project_id)
                iso = maps.country_iso.get(price.country_id)
                if project is None or iso is None or price.count <= 0:
                    continue
                pairs.add((project.service, iso))
                names.setdefault(project.service, project.title)
        return ProviderCatalog(pairs=frozenset(pairs), service_names=names)

    async def offers(self, service: str, country: str) -> list[Offer]:
        maps = await self._maps_or_load()
        project_id = maps.service_project.get(identifiers.canonical_service(service))
        country_ids = maps.iso_countries.get(country.upper(), ())
        if project_id is None or not country_ids:
            return []
        offers: list[Offer] = []
        for country_id in country_ids:
            for price in await self._prices(country_id):
                if price.project_id != project_id:
                    continue
                offers.append(
                    Offer(
                        provider=PROVIDER_ID,
                        service=maps.projects[project_id].service,
                        country=country.upper(),
                        kind=OrderKind.ACTIVATION,
                        price=Money(price.cost, self._currency),
                        stock=price.count,
                        ref=f"{country_id}:{project_id}",
                    )
                )
        return offers

    async def state(self, order: Order) -> OrderState:
        result = await self._call(
            "get/sms",
            {"request_id": order.order_id},
            _parse_code,
            safe=True,
            keep=(_SMS_WAITING, _SMS_GONE),
        )
        if isinstance(result, _Failure):
            if result.code == _SMS_WAITING:
                return OrderState(RemoteStatus.WAITING)
            # "Number has been released or timeout": one code for both.
            if order.order_id in self._cancelled:
                return OrderState(RemoteStatus.CANCELLED)
            log.info("sms-bus: request %s released or timed out: read as expired", order.order_id)
            return OrderState(RemoteStatus.EXPIRED)
        code = result
        digest = hashlib.sha256(code.encode()).hexdigest()[:16]
        sms = Sms(id=f"code-{digest}", text=None, code=code)
        # SMS-BUS closes the request with its code ("the request has already closed" for any
        # later cancel); one more code means a new request (reuse), so the order is done.
        return OrderState(RemoteStatus.FINISHED, messages=(sms,))

    # --- money-moving calls ---------------------------------------------------------------

    async def buy(
        self, offer: Offer, *, max_price: Money | None = None, auto_renew: bool = False
    ) -> Order:
        if offer.kind is not OrderKind.ACTIVATION:
            raise InvalidRequest(PROVIDER_ID, "SMS-BUS sells activations only")
        if auto_renew:
            raise Unsupported(PROVIDER_ID, "auto-renewal")
        if (
            max_price is not None
            and max_price.currency == offer.price.currency
            and offer.price.amount > max_price.amount
        ):
            # The API takes no price ceiling: refuse on the quoted price.
            raise PriceAboveLimit(PROVIDER_ID, f"{offer.price} > {max_price}")
        country_id, project_id = await self._offer_ids(offer)
        params = {"country_id": country_id, "project_id": project_id}
        request_id, phone = await self._get("get/number", params, _parse_number, safe=False)
        return Order(
            provider=PROVIDER_ID,
            order_id=request_id,
            kind=OrderKind.ACTIVATION,
            phone=phone,
            service=offer.service,
            country=offer.country,
            price=offer.price,
            meta={"country_id": str(country_id), "project_id": str(project_id)},
        )

    async def reuse(self, order: Order) -> Order:
        country_id, project_id = await self._order_ids(order)
        params: dict[str, str | int] = {
            "country_id": country_id,
            "project_id": project_id,
            "mobile_number": order.phone,
        }
        request_id, phone = await self._get("reuse", params, _parse_number, safe=False)
        return Order(
            provider=PROVIDER_ID,
            order_id=request_id,
            kind=OrderKind.ACTIVATION,
            phone=phone,
            service=order.service,
            country=order.country,
            price=None,  # the reuse answer does not say what was charged
            meta={"country_id": str(country_id), "project_id": str(project_id)},
        )

    async def cancel(self, order: Order) -> CancelOutcome:
        # 50103 (OrderClosed) once a code came or the request was released: state() tells which.
        # Remembered before sending: if the answer is lost, a later "released" is this cancel.
        self._cancelled.add(order.order_id)
        await self._get("cancel", {"request_id": order.order_id}, _ignore, safe=False)
        return CancelOutcome(
            RefundScope.ALL, detail="cancel of a request without a code: its frozen price returns"
        )

    # --- unsupported ----------------------------------------------------------------------

    async def another_code(self, order: Order) -> Mapping[str, str]:
        raise Unsupported(PROVIDER_ID, "another code")

    async def finish(self, order: Order) -> None:
        """Unsupported: sms-bus.md documents no finish or complete call (only get/number,
        get/sms, cancel and reuse), and needs none: a request closes with its code (any later
        cancel is 50103 "the request has already closed"), so :meth:`state` reports the order
        finished as soon as its code is read, and the card stops being active by itself."""
        raise Unsupported(PROVIDER_ID, "finish")

    async def ban(self, order: Order) -> CancelOutcome:
        raise Unsupported(PROVIDER_ID, "ban")

    async def renewal_options(self, order: Order) -> list[RenewalOption]:
        raise Unsupported(PROVIDER_ID, "renewal")

    async def renew(self, order: Order, duration_hours: int) -> Renewal:
        raise Unsupported(PROVIDER_ID, "renewal")

    async def list_orders(self) -> list[RemoteOrder]:
        raise Unsupported(PROVIDER_ID, "listing orders")

    # --- id maps --------------------------------------------------------------------------

    async def _maps_or_load(self) -> _Maps:
        if self._maps is not None:
            return self._maps
        async with self._maps_lock:
            if self._maps is None:
                self._maps = await self._fetch_maps()
            return self._maps

    async def _load_maps(self) -> _Maps:
        """Fetch fresh maps (the catalog refreshes them)."""
        async with self._maps_lock:
            self._maps = await self._fetch_maps()
            return self._maps

    async def _fetch_maps(self) -> _Maps:
        country_iso = await self._get("list/countries", {}, _parse_countries, safe=True)
        project_map = await self._get("list/projects", {}, _parse_projects, safe=True)
        iso_countries: dict[str, list[int]] = {}
        for country_id, iso in sorted(country_iso.items()):
            iso_countries.setdefault(iso, []).append(country_id)
        return _Maps(
            country_iso=country_iso,
            iso_countries={iso: tuple(ids) for iso, ids in iso_countries.items()},
            projects=project_map,
            service_project={p.service: pid for pid, p in project_map.items()},
        )

    async def _offer_ids(self, offer: Offer) -> tuple[int, int]:
        ids = _split_ref(offer.ref)
        if ids is not None:
            return ids
        return await self._ids_for(offer.service, offer.country)

    async def _order_ids(self, order: Order) -> tuple[int, int]:
        country_id = _int_or_none(order.meta.get("country_id"))
        project_id = _int_or_none(order.meta.get("project_id"))
        if country_id is not None and project_id is not None:
            return country_id, project_id
        return await self._ids_for(order.service, order.country)

    async def _ids_for(self, service: str, country: str) -> tuple[int, int]:
        maps = await self._maps_or_load()
        project_id = maps.service_project.get(identifiers.canonical_service(service))
        country_ids = maps.iso_countries.get(country.upper())
        if project_id is None:
            raise InvalidRequest(PROVIDER_ID, f"service {service!r} is not sold")
        if not country_ids:
            raise InvalidRequest(PROVIDER_ID, f"country {country!r} is not sold")
        return country_ids[0], project_id

    async def _prices(self, country_id: int) -> list[_Price]:
        maps = self._maps
        asked_iso = maps.country_iso.get(country_id) if maps is not None else None
        result = await self._call(
            "list/prices",
            {"country_id": country_id},
            lambda data: _parse_prices(data, country_id, asked_iso),
            safe=True,
            keep=(_NO_SERVICE,),
        )
        if isinstance(result, _Failure):
            return []  # "No service available": nothing sold in that country
        return result

    # --- transport ------------------------------------------------------------------------

    async def _get(
        self,
        op: str,
        params: Mapping[str, str | int],
        convert: Callable[[Any], T],
        *,
        safe: bool,
    ) -> T:
        result = await self._call(op, params, convert, safe=safe, keep=())
        assert not isinstance(result, _Failure)
        return result

    async def _call(
        self,
        op: str,
        params: Mapping[str, str | int],
        convert: Callable[[Any], T],
        *,
        safe: bool,
        keep: tuple[int, ...],
    ) -> T | _Failure:
        """One API call: ``convert(data)``, or a :class:`_Failure` for the codes in ``keep``.

        ``convert`` runs inside the HTTP parser, so a success whose data has an unknown shape is
        a lost answer (ambiguous for a purchase), never a silent empty result.
        """
        query: dict[str, str | int] = {"token": self._key, **params}

        def parse(response: httpx.Response) -> T | _Failure:
            data = self._envelope(op, response, keep)
            if isinstance(data, _Failure):
                return data
            try:
                return convert(data)
            except (KeyError, TypeError, ValueError) as exc:
                why = self._clean(str(exc))[:80]
                raise self._http.unavailable(response, f"{op}: unexpected data ({why})") from None

        return await self._http.call(f"{_PREFIX}/{op}", query, parse, safe=safe)

    def _envelope(self, op: str, response: httpx.Response, keep: tuple[int, ...]) -> Any:
        """``data`` of a success; typed errors for documented codes, whatever the HTTP status."""
        body = self._http.json(response)
        code = _int_or_none(body.get("code")) if isinstance(body, dict) else None
        if code is None:
            raise self._http.unavailable(response, f"{op}: unexpected answer")
        if code == _OK:
            return body.get("data")
        message = self._clean(str(body.get("message") or "")).strip()[:200]
        if code in keep:
            return _Failure(code, message)
        detail = f"{op}: code {code}" + (f" ({message})" if message else "")
        if code == 401 or "token" in message.lower():
            raise BadCredentials(PROVIDER_ID, detail)
        error = _ERRORS.get(code)
        if error is not None:
            raise error(PROVIDER_ID, detail)
        if response.status_code >= 500:
            raise self._http.unavailable(response, f"{op}: undocumented error code {code}")
        log.warning("sms-bus %s: undocumented error code %s", op, code)
        raise ProviderUnavailable(PROVIDER_ID, f"undocumented error: {detail}")

    def _clean(self, text: str) -> str:
        """Provider text for an error: never with the key, even if the provider echoes it."""
        return self._redact(text)

    def _parse_balance(self, data: Any) -> Money:
        if not isinstance(data, dict):
            raise TypeError("balance data is not an object")
        return Money(to_decimal(data["balance"]), self._currency)


# --- shape parsers (pure; raise KeyError/TypeError/ValueError on unexpected shapes) -----------


def _items(data: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    """A list, or an object keyed by anything: (key, item) pairs. ``[]``/``{}`` are empty."""
    if isinstance(data, dict):
        pairs: Iterable[tuple[str, Any]] = ((str(k), v) for k, v in data.items())
    elif isinstance(data, list):
        pairs = ((str(i), v) for i, v in enumerate(data))
    else:
        raise TypeError(f"expected a list or an object, got {type(data).__name__}")
    result = []
    for key, item in pairs:
        if not isinstance(item, dict):
            raise TypeError(f"item {key!r} is not an object")
        result.append((key, item))
    return result


def _int(value: Any) -> int:
    number = to_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"not an integer: {value!r}")
    return int(number)


def _int_or_none(value: Any) -> int | None:
    try:
        return _int(value)
    except ValueError:
        return None


def _parse_countries(data: Any) -> dict[int, str]:
    table = identifiers.smsbus_countries()
    result: dict[int, str] = {}
    for key, item in _items(data):
        country_id = _int(item.get("id", key))
        code = str(item.get("code") or "").strip().upper()
        iso = code if identifiers.is_country(code) else table.get(str(country_id))
        if iso is None:
            log.debug(
                "sms-bus: skipping country %s (%r, code %r): no ISO code",
                country_id,
                item.get("title"),
                item.get("code"),
            )
            continue
        result[country_id] = iso
    return result


def _service_by_title(title: str) -> str | None:
    """The canonical service whose name (or alias) is exactly ``title``, case-insensitively."""
    wanted = title.strip().casefold()
    if not wanted:
        return None
    alias = identifiers.canonical_service(title)
    names = identifiers.service_names()
    for code in identifiers.find_services(title):
        if code == alias or names.get(code, "").strip().casefold() == wanted:
            return code
    return None


def _parse_projects(data: Any) -> dict[int, _Project]:
    by_title: list[tuple[int, str, str]] = []
    by_code: list[tuple[int, str, str]] = []
    for key, item in _items(data):
        project_id = _int(item.get("id", key))
        title = str(item.get("title") or "").strip()
        code = str(item.get("code") or "").strip()
        service = _service_by_title(title)
        if service is not None:
            by_title.append((project_id, service, title))
        elif code:
            by_code.append((project_id, identifiers.canonical_service(code), title or code))
        else:
            log.debug("sms-bus: skipping project %s (%r): no code", project_id, title)
    # A title match is trusted over a code match when both claim the same service.
    result: dict[int, _Project] = {}
    taken: dict[str, int] = {}
    for project_id, service, title in sorted(by_title) + sorted(by_code):
        if service in taken:
            log.debug(
                "sms-bus: project %s (%r) maps to %r, already project %s; skipped",
                project_id,
                title,
                service,
                taken[service],
            )
            continue
        taken[service] = project_id
        result[project_id] = _Project(project_id, service, title)
    return result


def _row_iso(item: Mapping[str, Any]) -> str | None:
    """The ISO country a price row names by its own ``code``, if it names a real one."""
    code = str(item.get("code") or "").strip().upper()
    return code if identifiers.is_country(code) else None


def _parse_prices(data: Any, country_id: int, asked_iso: str | None = None) -> list[_Price]:
    """Rows of ``list/prices?country_id=N``: every row is country N's.

    The row's own ``country_id`` is not trusted as the country: the doc's examples number
    countries two ways (``list/countries`` has USA as 1, the country table and this call's
    example as 5). A row whose ``code`` names a different country than the one asked is the
    only contradiction the body itself shows: it is skipped, with a warning.
    """
    prices: list[_Price] = []
    for _key, item in _items(data):
        row_country = _int_or_none(item.get("country_id"))
        row_iso = _row_iso(item)
        if asked_iso is not None and row_iso is not None and row_iso != asked_iso:
            log.warning(
                "sms-bus: list/prices for country %s (%s) has a row for %s (country_id %s); "
                "skipped",
                country_id,
                asked_iso,
                row_iso,
                item.get("country_id"),
            )
            continue
        if row_country is not None and row_country != country_id:
            log.debug(
                "sms-bus: list/prices for country %s: row says country_id %s (code %r); read as "
                "the country asked",
                country_id,
                row_country,
                item.get("code"),
            )
        prices.append(
            _Price(
                country_id=country_id,
                project_id=_int(item["project_id"]),
                cost=to_decimal(item["cost"]),
                count=max(0, _int(item["total_count"])),
            )
        )
    return prices


def _parse_number(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        raise TypeError("number data is not an object")
    request_id = str(_int(data["request_id"]))
    phone = "".join(ch for ch in str(data["number"]) if ch.isdigit())
    if not phone:
        raise ValueError("empty phone number")
    return request_id, phone


def _parse_code(data: Any) -> str:
    if isinstance(data, bool) or not isinstance(data, str | int):
        raise TypeError("sms data is not a code")
    code = str(data).strip()
    if not code:
        raise ValueError("empty code")
    return code


def _ignore(data: Any) -> None:
    return None


def _split_ref(ref: str) -> tuple[int, int] | None:
    country, _, project = ref.partition(":")
    country_id, project_id = _int_or_none(country), _int_or_none(project)
    if country_id is None or project_id is None:
        return None
    return country_id, project_id
