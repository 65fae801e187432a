"""The one provider interface: capabilities, the Protocol, provider DTOs and the error tree.

Everything above the adapters speaks these types (and :mod:`bot.domain`) only. Identifiers are
canonical: services are SMS-Activate-style codes (``tg``, ``wa``, ``go``), countries ISO 3166-1
alpha-2 (``US``), phone numbers digits with the calling code and no ``+``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from bot.domain import (
    CancelBlock,
    CancelOutcome,
    CancelTerms,
    Order,
    OrderKind,
    OrderState,
    RefundScope,
    RemoteStatus,
    Sms,
)
from bot.money import Money

__all__ = [
    "AccountRestricted",
    "BadCredentials",
    "BatchPolling",
    "CancelBlock",
    "CancelNotAllowed",
    "CancelOutcome",
    "CancelTerms",
    "Capability",
    "InsufficientBalance",
    "InvalidRequest",
    "ListedOrder",
    "ListingPage",
    "NoNumbers",
    "Offer",
    "Order",
    "OrderClosed",
    "OrderKind",
    "OrderNotFound",
    "OrderState",
    "PriceAboveLimit",
    "Provider",
    "ProviderCatalog",
    "ProviderError",
    "ProviderUnavailable",
    "PurchaseOutcomeUnknown",
    "RefundScope",
    "RemoteOrder",
    "RemoteStatus",
    "Renewal",
    "RenewalOption",
    "Sms",
    "Unsupported",
]


class Capability(enum.StrEnum):
    ACTIVATIONS = "activations"
    RENTALS = "rentals"
    ANOTHER_CODE = "another_code"  # ask for one more SMS on an activation, free
    FINISH = "finish"
    CANCEL = "cancel"
    BAN = "ban"  # report the number as unusable
    RENEW = "renew"
    RENEW_PRICE = "renew_price"  # renewal_options() returns prices
    REUSE = "reuse"  # buy the same number again for the same service
    LIST_ORDERS = "list_orders"
    MAX_PRICE = "max_price"  # the purchase call accepts a price ceiling
    AUTO_RENEW = "auto_renew"  # native auto-renewal on purchase
    WEBHOOK = "webhook"  # pushes incoming SMS to a URL given at purchase


@dataclass(frozen=True, slots=True)
class Offer:
    """One thing a provider sells: price, stock and kind for a service in a country."""

    provider: str
    service: str
    country: str
    kind: OrderKind
    price: Money
    stock: int | None
    duration_hours: int | None = None  # rentals only
    ref: str = ""  # opaque adapter data needed to buy exactly this offer (a variant key)
    # The provider sells it as a virtual number (Get-SMS "usavirt", SMS-Activate id 12): what
    # tells it apart from the same provider's other offer in the country, for the buyer.
    virtual: bool = False


@dataclass(frozen=True, slots=True)
class RenewalOption:
    duration_hours: int
    price: Money | None  # None when the API does not tell


@dataclass(frozen=True, slots=True)
class Renewal:
    order_id: str  # may differ from the old one (SMS-Activate re-orders finished rents)
    expires_at: datetime | None
    price: Money | None = None


@dataclass(frozen=True, slots=True)
class RemoteOrder:
    """An order as listed by the provider's account, for reconciliation after a crash."""

    order_id: str
    kind: OrderKind
    phone: str
    status: RemoteStatus
    expires_at: datetime | None = None
    service: str | None = None
    country: str | None = None
    created_at: datetime | None = None  # UTC, where the listing tells


@dataclass(frozen=True, slots=True)
class ProviderCatalog:
    """What a provider sells: canonical (service, country) pairs and the names it gave."""

    pairs: frozenset[tuple[str, str]]
    service_names: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Provider(Protocol):
    """One SMS provider. Adapters raise only :class:`ProviderError` subclasses."""

    @property
    def id(self) -> str:
        """Stable identifier: ``getsms``, ``smsbus``, ``beesms``, ``smsonline``."""
        ...

    @property
    def title(self) -> str:
        """Display name: ``Get-SMS``, ``SMS-BUS``, ``BEE-SMS``, ``SMS.online``."""
        ...

    @property
    def currency(self) -> str:
        """The account currency, ISO 4217 alphabetic."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    async def balance(self) -> Money: ...

    async def catalog(self) -> ProviderCatalog: ...

    async def offers(self, service: str, country: str) -> list[Offer]:
        """Every offer for the pair: activations and each rental duration sold."""
        ...

    async def buy(
        self, offer: Offer, *, max_price: Money | None = None, auto_renew: bool = False
    ) -> Order:
        """Buy an offer. Never retried: an ambiguous outcome raises PurchaseOutcomeUnknown."""
        ...

    async def state(self, order: Order) -> OrderState:
        """The order's status and every SMS received so far."""
        ...

    async def another_code(self, order: Order) -> Mapping[str, str]:
        """Ask for one more SMS (free). Returns entries for :attr:`Order.meta` that the adapter
        needs from now on (kept with the order, so a restart keeps asking), possibly none."""
        ...

    async def finish(self, order: Order) -> None: ...

    def cancel_terms(self, order: Order, sms_at: Sequence[datetime], now: datetime) -> CancelTerms:
        """Whether a cancel of ``order`` can succeed at ``now`` and what it would return, by the
        provider's documented rules. ``sms_at``: when each SMS of the order arrived. No I/O."""
        ...

    async def cancel(self, order: Order) -> CancelOutcome:
        """Cancel. Returning means the provider confirmed; the outcome says what it returned
        (by its answer where it tells, else by its documented rules). Refusals raise
        CancelNotAllowed with the real reason."""
        ...

    async def ban(self, order: Order) -> CancelOutcome:
        """Report the number unusable and close the order; the outcome as for :meth:`cancel`."""
        ...

    async def renewal_options(self, order: Order) -> list[RenewalOption]: ...

    async def renew(self, order: Order, duration_hours: int) -> Renewal: ...

    async def reuse(self, order: Order) -> Order: ...

    async def list_orders(self) -> list[RemoteOrder]:
        """The account's orders of the kinds in :attr:`listed_kinds` (reconciliation)."""
        ...

    @property
    def listed_kinds(self) -> frozenset[OrderKind]:
        """The kinds ``list_orders`` reports: a lost purchase of another kind cannot be found."""
        ...

    def notices(self) -> tuple[str, ...]:
        """What the adapter learned at run time that the operator must fix (a server zone
        that disagrees with the setting...); none normally. Told to admins, shown by doctor."""
        ...

    def unclaimed_window(self, kind: OrderKind) -> timedelta:
        """How long after a purchase an order of ``kind`` that got no SMS can still cost money:
        past it, a purchase whose answer was lost and that cannot be listed has certainly cost
        nothing (the provider closed it without charge), so its hold can be released."""
        ...


@dataclass(frozen=True, slots=True)
class ListedOrder:
    """One active order as a provider's listing shows it: no SMS bodies, only their count."""

    order_id: str
    status: RemoteStatus
    sms_count: int
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListingPage:
    orders: tuple[ListedOrder, ...]
    last: bool  # no page after this one
    pages: int | None = None  # how many pages the listing has, where the provider tells


@runtime_checkable
class BatchPolling(Protocol):
    """Optional, beside :class:`Provider`: the account's active orders listed in pages with
    their SMS counts, so a poller reads one listing a round and SMS only where a count moved."""

    async def active_page(self, page: int) -> ListingPage:
        """Page ``page`` (from 1) of the account's active orders."""
        ...

    async def listed_state(self, order: Order, listed: ListedOrder) -> OrderState:
        """The order's state with every SMS, for a listed order whose count changed: only the
        SMS are read; status and expiry come from ``listed``."""
        ...


# --- errors -----------------------------------------------------------------------------


class ProviderError(Exception):
    """Base of every error an adapter raises. ``str()`` never contains a secret."""

    def __init__(self, provider: str, detail: str = "") -> None:
        self.provider = provider
        self.detail = detail
        super().__init__(f"{provider}: {type(self).__name__}" + (f": {detail}" if detail else ""))


class BadCredentials(ProviderError):
    """The API key is missing, wrong or expired."""


class NoNumbers(ProviderError):
    """Nothing in stock for this request."""


class InsufficientBalance(ProviderError):
    """The operator's account at the provider cannot pay."""


class PriceAboveLimit(ProviderError):
    """The price is above the maximum the caller accepted."""


class OrderNotFound(ProviderError):
    """The provider does not know the order (or it is someone else's)."""


class OrderClosed(ProviderError):
    """The order is already finished, cancelled or expired."""


class CancelNotAllowed(ProviderError):
    """Cancel is refused: too early, too late, or an SMS already arrived."""


class InvalidRequest(ProviderError):
    """The provider rejected a parameter (service, country, duration)."""


class AccountRestricted(ProviderError):
    """The account is banned, inactive or over its parallel-order limit."""


class Unsupported(ProviderError):
    """The provider does not offer this operation."""


class ProviderUnavailable(ProviderError):
    """5xx, timeout, connection failure, an unparsable body, or the provider's own "temporary
    error, try again". Transient by nature.

    ``answer_lost`` is true when no usable answer came back (5xx page, garbage, timeout): for a
    money-moving call that outcome is ambiguous and becomes :class:`PurchaseOutcomeUnknown`.
    """

    def __init__(
        self,
        provider: str,
        detail: str = "",
        retry_after: float | None = None,
        *,
        answer_lost: bool = False,
    ) -> None:
        super().__init__(provider, detail)
        self.retry_after = retry_after
        self.answer_lost = answer_lost


class PurchaseOutcomeUnknown(ProviderUnavailable):
    """A money-moving request may have reached the provider but its answer was lost.

    Never retry blindly: reconcile with ``list_orders`` (or ask the operator).
    """
