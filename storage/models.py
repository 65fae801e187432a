"""Typed rows of the bot's tables."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain import Order, OrderKind, RemoteStatus, Sms
from bot.money import Money


class OrderStatus(enum.StrEnum):
    """An order's local status. Only ``ACTIVE`` ever changes, and only once."""

    ACTIVE = "active"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    BANNED = "banned"
    FAILED = "failed"


class Access(enum.StrEnum):
    NONE = "none"
    REQUESTED = "requested"
    APPROVED = "approved"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class User:
    id: int  # Telegram user id
    language: str | None
    first_seen: datetime
    blocked_bot: bool = False
    telegram_language: str | None = None  # what Telegram last said; ``language`` is a choice
    access: Access = Access.NONE  # private mode: may this user buy?
    blocked: bool = False  # blocked by an admin: refused everywhere
    full_name: str | None = None  # as Telegram last reported it
    username: str | None = None  # without the @
    timezone: str | None = None  # IANA name chosen in /settings; None: UTC


@dataclass(frozen=True, slots=True)
class StoredOrder:
    id: int
    user_id: int
    provider: str
    provider_order_id: str
    kind: OrderKind
    service: str
    country: str
    phone: str
    price: Money | None  # what the provider charged, in its account currency
    display_price: Money | None  # what the user was shown
    status: OrderStatus
    remote_status: RemoteStatus | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    auto_renew: bool
    duration_hours: int | None
    meta: Mapping[str, str] = field(default_factory=dict)
    renewed_at: datetime | None = None  # the latest renewal the bot made

    @property
    def is_active(self) -> bool:
        return self.status is OrderStatus.ACTIVE

    def to_order(self) -> Order:
        """The provider-facing order, as the adapter returned it (with any later expiry)."""
        return Order(
            provider=self.provider,
            order_id=self.provider_order_id,
            kind=self.kind,
            phone=self.phone,
            service=self.service,
            country=self.country,
            price=self.price,
            expires_at=self.expires_at,
            auto_renew=self.auto_renew,
            duration_hours=self.duration_hours,
            meta=dict(self.meta),
            bought_at=self.created_at,
            renewed_at=self.renewed_at,
        )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    order_id: int
    sms_id: str
    code: str | None
    text: str | None
    sender: str | None
    received_at: datetime | None
    stored_at: datetime
    delivered_at: datetime | None
    attempts: int = 0  # sends Telegram refused for the content
    failed_at: datetime | None = None  # given up: never sent again (the card still shows it)
    failure: str | None = None  # Telegram's last refusal

    def to_sms(self) -> Sms:
        return Sms(
            id=self.sms_id,
            text=self.text,
            code=self.code,
            sender=self.sender,
            received_at=self.received_at,
        )
