"""The one provider interface: typed DTOs, capabilities and the error tree.

Everything above the adapters speaks these types only. Identifiers are canonical:
services are SMS-Activate-style codes (``tg``, ``wa``, ``go``), countries ISO 3166-1
alpha-2 (``US``), phone numbers digits with the calling code and no ``+``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot.money import Money


class OrderKind(enum.StrEnum):
    ACTIVATION = "activation"
    RENTAL = "rental"


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


class RemoteStatus(enum.StrEnum):
    """An order's state as the provider reports it."""

    WAITING = "waiting"  # active, no (new) SMS yet
    RECEIVED = "received"  # active, at least one SMS arrived
    FINISHED = "finished"  # completed / paid
    CANCELLED = "cancelled"  # cancelled, money returned
    EXPIRED = "expired"  # lifetime over (activations: without SMS -> not charged)

    @property
    def is_final(self) -> bool:
        return self in (RemoteStatus.FINISHED, RemoteStatus.CANCELLED, RemoteStatus.EXPIRED)


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


@dataclass(frozen=True, slots=True)
class Order:
    """A bought number. Everything an adapter needs to act on it later is here."""

    provider: str
    order_id: str
    kind: OrderKind
    phone: str
    service: str
    country: str
    price: Money | None = None
    expires_at: datetime | None = None  # timezone-aware UTC
    auto_renew: bool = False
    duration_hours: int | None = None
    meta: Mapping[str, str] = field(default_factory=dict)  # opaque adapter state


@dataclass(frozen=True, slots=True)
class Sms:
    """One received message. ``id`` is stable across polls (derived if the provider has none)."""

    id: str
    text: str | None
    code: str | None
    sender: str | None = None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderState:
    status: RemoteStatus
    messages: tuple[Sms, ...] = ()
    expires_at: datetime | None = None


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

    async def another_code(self, order: Order) -> None: ...

    async def finish(self, order: Order) -> None: ...

    async def cancel(self, order: Order) -> None:
        """Cancel; returning means the provider confirmed (money returned where it says so)."""
        ...

    async def ban(self, order: Order) -> None: ...

    async def renewal_options(self, order: Order) -> list[RenewalOption]: ...

    async def renew(self, order: Order, duration_hours: int) -> Renewal: ...

    async def reuse(self, order: Order) -> Order: ...

    async def list_orders(self) -> list[RemoteOrder]: ...


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
