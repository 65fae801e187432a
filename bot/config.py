"""Typed settings from the environment and ``.env``, validated at start.

Secrets are ``SecretStr`` so ``repr`` and error messages never show them; :func:`load_settings`
turns a validation failure into one clear line per bad value, without echoing any input.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.services.access import AccessMode

_TOKEN_RE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{30,}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # setWebhook's secret_token
# Paths of the bot's own HTTP server that the Telegram webhook's path must not take.
_OWN_PATHS = ("/healthz", "/readyz", "/metrics", "/webhooks/")


_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``2d`` -> timedelta (positive)."""
    match = _DURATION_RE.match(text)
    if not match or int(match.group(1)) == 0:  # the value is not echoed: it may be a secret
        raise ValueError("bad duration: a positive number with s, m, h or d, e.g. 24h")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])


def _decimal_pairs(
    text: str, normalise: Callable[[str], str], valid: Callable[[str], object], example: str
) -> dict[str, Decimal]:
    """``KEY=number,KEY=number`` (blank items skipped) -> {KEY: Decimal}."""
    pairs: dict[str, Decimal] = {}
    items = filter(None, (p.strip() for p in text.split(",")))
    for place, item in enumerate(items, start=1):  # named by place: a value may be a secret
        key, sep, number = item.partition("=")
        key = normalise(key.strip())
        if not sep or not valid(key):
            raise ValueError(f"bad item #{place}: expected KEY=number, e.g. {example}")
        try:
            pairs[key] = Decimal(number.strip())
        except InvalidOperation:
            raise ValueError(f"bad number for {key} (item #{place})") from None
    return pairs


_OFFSET_RE = re.compile(r"^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$")


def parse_zone(text: str) -> timezone:
    """``UTC``, an offset (``+03:00``, ``UTC+3``) or an IANA name (``Europe/Moscow``, read at
    its offset now) as a fixed-offset zone."""
    value = text.strip()
    if value.upper() in ("UTC", "Z", "GMT"):
        return UTC
    match = _OFFSET_RE.match(value.upper())
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > timedelta(hours=14):
            raise ValueError("an offset is at most 14 hours")
        return timezone(-delta if sign == "-" else delta)
    try:
        zone = ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            "must be UTC, an offset like +03:00, or a zone like Europe/Moscow"
        ) from None
    offset = datetime.now(zone).utcoffset() or timedelta()
    return timezone(offset, value)


class SettingsError(Exception):
    """Settings are invalid; the message lists each bad value (never a secret)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Telegram
    bot_token: SecretStr | None = None
    telegram_api_url: str | None = None
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    access_mode: AccessMode = AccessMode.PRIVATE
    wallet_in_private_mode: bool = False
    price_markup_percent: Decimal = Field(default=Decimal(0), ge=0, le=1000)
    stars_per_unit: Decimal = Field(default=Decimal(80), gt=0, le=100_000)
    # The most an admin may /credit or /debit at once, in the display currency.
    admin_credit_max: Decimal = Field(default=Decimal(10_000), gt=0, le=10**9, allow_inf_nan=False)
    # Per-user flood limit: at most RATE_LIMIT_COUNT messages and taps per RATE_LIMIT_WINDOW
    # seconds (admins are not limited); 0 turns it off.
    rate_limit_count: int = Field(default=30, ge=0, le=10_000)
    rate_limit_window: float = Field(default=10.0, gt=0, le=3600)
    low_balance_alert: Annotated[dict[str, Decimal], NoDecode] = Field(default_factory=dict)
    # Storage
    database_path: Path = Path("data/bot.sqlite3")
    # postgresql://user:password@host:5432/db: PostgreSQL instead of the SQLite file (replicas)
    database_url: SecretStr | None = None
    # Several replicas: the FSM and the short-lived guards (double taps, rate limit, the
    # per-provider purchase lock) in Redis, shared by every replica; unset, in this process.
    redis_url: SecretStr | None = None  # redis://[:password@]host:port/db (may hold a password)
    redis_prefix: str = Field(default="smsbot", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    # Money
    display_currency: str = "USD"
    exchange_rates: Annotated[dict[str, Decimal], NoDecode] = Field(default_factory=dict)

    # Providers: enabled when the key is set
    getsms_api_key: SecretStr | None = None
    getsms_base_url: str = "https://get-sms.com"
    getsms_currency: str | None = None  # required with the key: see _getsms_currency_stated
    smsbus_token: SecretStr | None = None
    smsbus_base_url: str = "https://sms-bus.com"
    beesms_token: SecretStr | None = None
    beesms_base_url: str = "https://api.bee-sms.com"
    smsonline_api_key: SecretStr | None = None
    smsonline_base_url: str = "https://api.sms.online"
    smsonline_currency: str = "USD"
    smsonline_timezone: str = "UTC"

    # HTTP behaviour towards providers
    provider_timeout: float = Field(default=15.0, gt=0, le=120)
    provider_retries: int = Field(default=3, ge=1, le=10)
    # The offers screen shows what answered within this many seconds, names the providers
    # still asked, and adds their offers to the message when they answer.
    offers_deadline: float = Field(default=3.0, gt=0, le=60)
    # Buy waits at most this many seconds for the providers' catalogs (of many countries and
    # services, slower than offers); a late one is merged when it comes.
    catalog_deadline: float = Field(default=10.0, gt=0, le=120)

    # Background delivery of SMS, reminders and renewals
    poll_interval: float = Field(default=5.0, gt=0, le=300)
    poll_concurrency: int = Field(default=8, ge=1, le=100)
    poll_rate: float = Field(default=10.0, gt=0, le=1000)
    # An order is hot (asked every poll_interval) while an activation waits for its code and
    # this long after its purchase, its last SMS, its user's last look or tap, and before each
    # reminder; other rentals are asked every poll_cold_interval seconds.
    poll_hot_for: Annotated[timedelta, NoDecode] = timedelta(minutes=10)
    poll_cold_interval: float = Field(default=180.0, gt=0, le=3600)
    # Replicas: this process's name in the order leases (default: the host name, stable over
    # a restart, unique per container), and how long a lease lasts without being renewed.
    replica_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=100)
    order_lease: float = Field(default=60.0, ge=1, le=3600)
    rental_reminders: Annotated[tuple[timedelta, ...], NoDecode] = (
        timedelta(hours=24),
        timedelta(hours=1),
    )
    auto_renew_before: Annotated[timedelta, NoDecode] = timedelta(minutes=30)
    reconcile_interval: float = Field(default=180.0, gt=0, le=3600)
    # How offers deliver: a badge once an offer has this many recent outcomes (of the last 100
    # kept per offer); an offer "delivers well" when at least this share of them got a code.
    offer_stats_min_samples: int = Field(default=20, ge=1, le=100)
    offer_stats_good_percent: int = Field(default=70, ge=1, le=100)
    # "Tell me when" alerts: checked every this many seconds; an alert lapses after a while.
    stock_alert_interval: float = Field(default=300.0, gt=0, le=86_400)
    stock_alert_lifetime: Annotated[timedelta, NoDecode] = timedelta(days=7)
    # Keep trying (activations): a try with no code this long after its purchase is cancelled
    # and the next offer bought (sooner where the provider's cancel window closes sooner).
    keep_trying_wait: Annotated[timedelta, NoDecode] = timedelta(minutes=10)
    # Admins who turn on the daily summary (/admin -> Delivery) get it at this hour, UTC:
    # yesterday's orders, codes and money, and the offers that deliver best and worst.
    admin_summary_hour: int = Field(default=9, ge=0, le=23)
    support_contact: str | None = None
    terms_text: str | None = None
    terms_url: str | None = None
    webhook_base_url: str | None = None
    webhook_host: str = "0.0.0.0"  # noqa: S104 - the webhook server must be reachable
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    # Telegram updates by webhook at this URL (unset: long polling); Telegram sends the
    # secret in X-Telegram-Bot-Api-Secret-Token (unset: derived from the bot token).
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    log_format: Literal["text", "json"] = "text"

    @field_validator("bot_token", mode="after")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("does not look like a bot token from @BotFather (digits:secret)")
        return value

    @field_validator(
        "getsms_api_key", "smsbus_token", "beesms_token", "smsonline_api_key", mode="before"
    )
    @classmethod
    def _blank_key_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "bot_token",
        "telegram_api_url",
        "support_contact",
        "terms_text",
        "terms_url",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_url", "database_url", mode="before")
    @classmethod
    def _blank_redis_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_url", mode="after")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.match(
            r"^(redis|rediss|unix)://\S+$", value.get_secret_value().strip()
        ):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if not all(p.lstrip("-").isdigit() for p in parts):
                raise ValueError("must be comma-separated Telegram user ids, e.g. 12345,67890")
            return frozenset(int(p) for p in parts)
        return value

    @field_validator("smsonline_timezone", mode="after")
    @classmethod
    def _zone(cls, value: str) -> str:
        parse_zone(value)  # ValueError names what is accepted
        return value

    def smsonline_zone(self) -> timezone:
        return parse_zone(self.smsonline_timezone)

    @field_validator("display_currency", "getsms_currency", "smsonline_currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            if not _CURRENCY_RE.match(value):
                raise ValueError("must be a three-letter ISO 4217 code, e.g. USD")
        return value

    @field_validator("exchange_rates", mode="before")
    @classmethod
    def _parse_rates(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        rates = _decimal_pairs(value, lambda key: key.upper(), _CURRENCY_RE.match, "RUB=0.011")
        for code, rate in rates.items():
            if not rate.is_finite() or rate <= 0:
                raise ValueError(f"rate for {code} must be a positive number")
        return rates

    @field_validator("low_balance_alert", mode="before")
    @classmethod
    def _parse_thresholds(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        known = ("getsms", "smsbus", "beesms", "smsonline")
        return _decimal_pairs(value, str.lower, lambda key: key in known, "getsms=5")

    @field_validator("rental_reminders", mode="before")
    @classmethod
    def _parse_leads(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        leads = {parse_duration(part) for part in value.split(",") if part.strip()}
        return tuple(sorted(leads, reverse=True))

    @field_validator(
        "auto_renew_before",
        "stock_alert_lifetime",
        "poll_hot_for",
        "keep_trying_wait",
        mode="before",
    )
    @classmethod
    def _parse_lead(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator(
        "webhook_base_url", "telegram_webhook_url", "telegram_webhook_secret", mode="before"
    )
    @classmethod
    def _blank_url_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_webhook_secret", mode="after")
    @classmethod
    def _secret_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_TOKEN_RE.match(value.get_secret_value()):
            raise ValueError(
                "must be 1-256 characters, each A-Z, a-z, 0-9, _ or - as Telegram requires"
            )
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_name(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "webhook_base_url",
        "telegram_webhook_url",
        "telegram_api_url",
        "getsms_base_url",
        "smsbus_base_url",
        "beesms_base_url",
        "smsonline_base_url",
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL, e.g. https://example.com")
        return value.rstrip("/") if value else value

    @field_validator("replica_id", mode="before")
    @classmethod
    def _blank_replica_is_the_host(cls, value: Any) -> Any:
        return socket.gethostname() if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError(
                "must be a postgresql:// URL (leave it out to use the SQLite DATABASE_PATH)"
            )
        return value

    @field_validator("getsms_currency", mode="before")
    @classmethod
    def _blank_currency_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _getsms_currency_stated(self) -> Settings:
        if self.getsms_api_key is not None and self.getsms_currency is None:
            raise ValueError(
                "GETSMS_CURRENCY is required when GETSMS_API_KEY is set: the Get-SMS docs do "
                "not say which currency the account is in (the compatible API says $, the "
                "example prices look like roubles), and a wrong guess misprices every offer; "
                "set it to the currency your balance shows on get-sms.com (e.g. USD or RUB) "
                "and compare with `python -m bot doctor`"
            )
        return self

    @model_validator(mode="after")
    def _webhook_path_free(self) -> Settings:
        path = self.telegram_webhook_path
        if path is not None and any(path.startswith(own.rstrip("/")) for own in _OWN_PATHS):
            raise ValueError(
                "TELEGRAM_WEBHOOK_URL's path must not be /healthz, /readyz, /metrics or "
                "under /webhooks/ (the bot serves those itself), e.g. https://bot.example.com/tg"
            )
        return self

    @property
    def telegram_webhook_path(self) -> str | None:
        """The path the Telegram webhook is served at (TELEGRAM_WEBHOOK_URL's; "/" if none)."""
        if self.telegram_webhook_url is None:
            return None
        return urlsplit(self.telegram_webhook_url).path or "/"

    @property
    def serves_http(self) -> bool:
        """Whether the bot runs its HTTP server (webhooks, /healthz, /readyz, /metrics): with
        either webhook URL, or when WEBHOOK_PORT is given."""
        return bool(
            self.telegram_webhook_url
            or self.webhook_base_url
            or "webhook_port" in self.model_fields_set
        )

    def telegram_secret_token(self) -> str | None:
        """What Telegram sends in X-Telegram-Bot-Api-Secret-Token: TELEGRAM_WEBHOOK_SECRET, else
        an HMAC of the bot token (so every replica computes the same)."""
        if self.telegram_webhook_secret is not None:
            return self.telegram_webhook_secret.get_secret_value()
        if self.bot_token is None:
            return None
        key = self.bot_token.get_secret_value().encode()
        return hmac.new(key, b"telegram-webhook", hashlib.sha256).hexdigest()

    @property
    def wallets_on(self) -> bool:
        """Whether users pay from their wallets (public mode, or private mode if asked)."""
        return self.access_mode is AccessMode.PUBLIC or self.wallet_in_private_mode

    def webhook_secret(self) -> str | None:
        """The secret part of the webhook path, derived from the bot token (stable)."""
        if self.bot_token is None:
            return None
        key = self.bot_token.get_secret_value().encode()
        return hmac.new(key, b"smsonline-webhook", hashlib.sha256).hexdigest()[:32]

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for log redaction."""
        fields = (
            self.bot_token,
            self.getsms_api_key,
            self.smsbus_token,
            self.beesms_token,
            self.smsonline_api_key,
        )
        values = [s.get_secret_value() for s in fields if s is not None]
        telegram = self.telegram_secret_token()  # set or derived: the webhook's header
        values += [telegram] if telegram else []
        webhook = self.webhook_secret()
        return tuple(
            values
            + ([webhook] if webhook else [])
            + self._redis_passwords()
            + self._database_passwords()
        )

    def _database_passwords(self) -> list[str]:
        """The password in DATABASE_URL, as written and percent-decoded."""
        if self.database_url is None:
            return []
        password = urlsplit(self.database_url.get_secret_value().strip()).password
        return sorted({password, unquote(password)}) if password else []

    def database_location(self) -> str:
        """What ``Database.open`` takes: DATABASE_URL when set, else the SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value().strip()
        return str(self.database_path)

    def _redis_passwords(self) -> list[str]:
        """The password in REDIS_URL (``:password@`` or ``?password=``), as written and
        percent-decoded (the client decodes it)."""
        if self.redis_url is None:
            return []
        parts = urlsplit(self.redis_url.get_secret_value().strip())
        found = [*parse_qs(parts.query).get("password", []), parts.password or ""]
        return sorted({form for p in found if p for form in (p, unquote(p))})


_SECRET_NAME = re.compile(r"token|key|password|passwd|secret", re.IGNORECASE)


def _error_line(error: Any) -> str:
    """``NAME: what is wrong``: never the value (a key pasted into the wrong setting is still a
    key), and for a secret-looking setting nothing a validator may have quoted either."""
    name = ".".join(str(p) for p in error["loc"]).upper() or "settings"
    message = str(error["msg"]).removeprefix("Value error, ")
    given = error.get("input")
    if isinstance(given, str) and len(given.strip()) >= 3:
        message = message.replace(given.strip(), "…").replace(given, "…")
    if _SECRET_NAME.search(name) and ("'" in message or '"' in message):
        message = "is not valid (the value is not shown)"
    return f"{name}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; raise :class:`SettingsError` with one line per problem, each
    naming the setting and what is wrong, never its value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_error_line(error) for error in exc.errors(include_url=False)]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
