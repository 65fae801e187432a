"""Domain types shared by every layer: orders, SMS, and what a cancel gives back.

Storage, services and adapters all speak these; nothing here knows a provider's wire format.
Money is :class:`bot.money.Money` (``Decimal`` with its currency).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.money import Money


class OrderKind(enum.StrEnum):
    ACTIVATION = "activation"
    RENTAL = "rental"


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
    bought_at: datetime | None = None  # when the bot bought it (UTC); set once stored
    renewed_at: datetime | None = None  # the latest renewal the bot made, if any


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


# --- cancels and refunds --------------------------------------------------------------------


class RefundScope(enum.StrEnum):
    """What a provider gave back for a confirmed cancel (or would give for one now)."""

    ALL = "all"  # every charge on the order (the purchase and any renewals)
    LAST = "last"  # the latest charge only: the purchase, or the latest renewal
    AMOUNT = "amount"  # exactly ``CancelOutcome.amount`` (the provider said how much)
    NONE = "none"  # nothing: the provider keeps the money
    UNKNOWN = "unknown"  # confirmed, but the provider does not say what came back


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """A cancel the provider confirmed, and what it returned to the operator's account."""

    refund: RefundScope
    amount: Money | None = None  # with RefundScope.AMOUNT, in the provider's currency
    detail: str = ""  # for logs: the provider's words or the doc rule applied

    def __post_init__(self) -> None:
        if (self.refund is RefundScope.AMOUNT) != (self.amount is not None):
            raise ValueError("an amount goes with RefundScope.AMOUNT, and only with it")


class CancelBlock(enum.StrEnum):
    """Why a cancel cannot succeed now (the card shows the matching text)."""

    UNSUPPORTED = "unsupported"  # the provider has no cancel for this kind
    TOO_EARLY = "too_early"  # a minimum wait applies: possible from ``opens_at``
    TOO_LATE = "too_late"  # the cancel window closed
    SMS_RECEIVED = "sms_received"  # the provider refuses a cancel once an SMS came


@dataclass(frozen=True, slots=True)
class CancelTerms:
    """Whether a cancel can succeed now and what it would return, by the provider's rules.

    ``refund`` is what a cancel now returns (NONE: the provider would keep the money, so the
    button must say so). ``opens_at``/``closes_at`` bound the window where the docs give one.
    """

    blocked: CancelBlock | None
    refund: RefundScope
    opens_at: datetime | None = None
    closes_at: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.blocked is None
