"""Operator commands: ``doctor`` (is everything configured and reachable?) and ``offers``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import aiosqlite
import httpx
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer

from bot.config import Settings
from bot.money import CurrencyConverter, MissingExchangeRate, Money
from bot.providers import identifiers
from bot.providers.base import Provider, ProviderError, Unsupported
from bot.providers.registry import PROVIDER_TITLES, build_providers
from bot.services.audit import audit_ledger
from bot.services.offers import OfferService, OffersResult
from bot.services.pricecheck import outliers
from storage.db import Database
from storage.notices import NoticesRepo

# Offers compared across providers by ``doctor`` (a misstated currency is ~90x off).
PRICE_SAMPLES = (("tg", "RU"), ("tg", "US"), ("wa", "RU"))


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    warn: bool = False  # worth fixing, but the bot runs (printed WARN, exit code unchanged)

    @property
    def mark(self) -> str:
        return "FAIL" if not self.ok else "WARN" if self.warn else "OK  "


# --- doctor ---------------------------------------------------------------------------------


async def doctor(settings: Settings, out: TextIO = sys.stdout, *, ledger: bool = False) -> int:
    """Print one row per check; return 1 if any failed. ``ledger``: also audit the wallet
    ledger against the orders and the providers' lists, one line per difference."""
    async with httpx.AsyncClient() as client:
        checks = [
            await _check_token(settings, client),
            _check_admins(settings),
            await (
                _check_postgres(settings)
                if settings.database_url is not None
                else _check_database(settings.database_path)
            ),
        ]
        if settings.redis_url is not None:
            checks.append(await _check_redis(settings))
        providers = build_providers(settings, client)
        checks.append(
            Check(
                "providers",
                bool(providers),
                ", ".join(p.title for p in providers.values())
                or "none enabled: set at least one provider key",
            )
        )
        converter = CurrencyConverter(settings.display_currency, settings.exchange_rates)
        checks += await asyncio.gather(
            *(_check_provider(p, converter) for p in providers.values())
        )
        if len(providers) > 1:
            checks.append(await _check_prices(OfferService(providers, converter)))
        checks += await _check_notices(settings)
        if ledger:
            checks.append(await _check_ledger(settings, providers))
    width = max(len(c.name) for c in checks)
    for check in checks:
        out.write(f"{check.mark}  {check.name:<{width}}  {check.detail}\n")
    return 0 if all(c.ok for c in checks) else 1


async def _check_token(settings: Settings, client: httpx.AsyncClient) -> Check:
    """Ask Telegram who the token is (getMe at ``TELEGRAM_API_URL``); never print the token
    (nor a URL or an error message that could hold it)."""
    name = "bot token"
    if settings.bot_token is None:
        return Check(name, False, "BOT_TOKEN is missing: the bot cannot start")
    server = (
        TelegramAPIServer.from_base(settings.telegram_api_url)
        if settings.telegram_api_url
        else PRODUCTION
    )
    url = server.api_url(settings.bot_token.get_secret_value(), "getMe")
    where = settings.telegram_api_url or "api.telegram.org"
    try:
        response = await client.get(url, timeout=settings.provider_timeout)
        body = response.json()
    except httpx.HTTPError as exc:
        return Check(name, False, f"Telegram ({where}) not reachable: {type(exc).__name__}")
    except ValueError:
        return Check(name, False, f"{where} answered HTTP {response.status_code}, not the Bot API")
    if response.status_code == 401 or (isinstance(body, dict) and body.get("error_code") == 401):
        return Check(name, False, "Telegram refused the token (401 Unauthorized): check BOT_TOKEN")
    result = body.get("result") if isinstance(body, dict) and body.get("ok") else None
    if not isinstance(result, dict):
        return Check(name, False, f"getMe failed: HTTP {response.status_code}")
    return Check(name, True, f"accepted by Telegram: @{result.get('username', '?')}")


def _check_admins(settings: Settings) -> Check:
    if not settings.admin_ids:
        return Check(
            "admins",
            True,
            "ADMIN_IDS is empty: nobody can use /admin (and in private mode nobody may buy); "
            "put your Telegram user id in .env",
            warn=True,
        )
    return Check("admins", True, f"{len(settings.admin_ids)} in ADMIN_IDS")


async def _check_notices(settings: Settings) -> list[Check]:
    """What the running bot learned that you must fix (e.g. SMS.online's real date zone)."""
    if settings.database_url is None and not settings.database_path.exists():
        return []
    try:
        db = await Database.open(settings.database_location())
    except Exception:  # the database check says why
        return []
    try:
        found = await NoticesRepo(db).all()
    finally:
        await db.close()
    return [Check(f"{PROVIDER_TITLES.get(pid, pid)} notice", False, text) for pid, text in found]


async def _check_ledger(settings: Settings, providers: Mapping[str, Provider]) -> Check:
    try:
        db = await Database.open(settings.database_location())
    except Exception as exc:  # the database check above says more
        return Check("ledger", False, f"database cannot be opened: {type(exc).__name__}")
    try:
        problems = await audit_ledger(db, providers, datetime.now(UTC))
    finally:
        await db.close()
    if not problems:
        return Check("ledger", True, "the ledger, the orders and the providers' lists agree")
    return Check("ledger", False, f"{len(problems)} differences:\n  - " + "\n  - ".join(problems))


async def _check_postgres(settings: Settings) -> Check:
    """DATABASE_URL: connect, migrate, name the server (never the password)."""
    try:
        db = await Database.open(settings.database_location())
    except Exception as exc:
        return Check("database", False, f"PostgreSQL: {type(exc).__name__}: {exc}")
    try:
        return Check("database", True, f"{db.path} (schema v{await db.schema_version()})")
    finally:
        await db.close()


async def _check_redis(settings: Settings) -> Check:
    """REDIS_URL: one PING (never the URL: it may hold a password)."""
    assert settings.redis_url is not None
    from bot.redis_backends import connect  # redis is imported only when it is used

    client = connect(settings.redis_url.get_secret_value())
    try:
        await client.ping()
    except Exception as exc:
        return Check("redis", False, f"does not answer: {type(exc).__name__}")
    finally:
        await client.aclose()
    return Check("redis", True, f"answers (keys under {settings.redis_prefix}:)")


async def _check_database(path: Path) -> Check:
    name = "database"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            return Check(name, False, f"{path.parent} is not writable")
        async with aiosqlite.connect(path) as db:
            await db.execute("PRAGMA user_version")
    except (OSError, aiosqlite.Error) as exc:
        return Check(name, False, f"{path}: {exc}")
    return Check(name, True, str(path))


async def _check_provider(provider: Provider, converter: CurrencyConverter) -> Check:
    name = provider.title
    try:
        converter.to_display(Money(Decimal(0), provider.currency))
    except MissingExchangeRate as exc:
        return Check(name, False, str(exc))
    try:
        balance = await provider.balance()
    except Unsupported:
        try:
            catalog = await provider.catalog()
        except ProviderError as exc:
            return Check(name, False, _describe(exc))
        return Check(
            name,
            True,
            f"key accepted; {len(catalog.pairs)} service/country pairs "
            "(the API has no balance call)",
        )
    except ProviderError as exc:
        return Check(name, False, _describe(exc))
    detail = f"key accepted; balance {balance.quantize()}"
    if provider.id == "getsms":
        # The docs leave the account currency uncertain: the operator compares with the site.
        detail += " (in GETSMS_CURRENCY: check it is what get-sms.com shows)"
    return Check(name, True, detail)


async def _check_prices(offers: OfferService) -> Check:
    """Flag a provider whose prices are an order of magnitude off the others' (currency?)."""
    flagged: list[str] = []
    for service, country in PRICE_SAMPLES:
        flagged += [o.describe() for o in outliers(await offers.offers(service, country))]
    if flagged:
        return Check(
            "prices",
            False,
            "; ".join(flagged) + " (a wrong provider currency setting, e.g. GETSMS_CURRENCY?)",
        )
    pairs = ", ".join(f"{s}/{c}" for s, c in PRICE_SAMPLES)
    return Check("prices", True, f"no provider 10x off the others ({pairs})")


def _describe(exc: ProviderError) -> str:
    return f"{type(exc).__name__}" + (f": {exc.detail}" if exc.detail else "")


# --- offers ---------------------------------------------------------------------------------


class UsageError(ValueError):
    pass


def resolve_service(text: str) -> str:
    matches = identifiers.find_services(text)
    exact = [m for m in matches if m == identifiers.canonical_service(text)] or [
        m for m in matches if identifiers.service_name(m).casefold() == text.strip().casefold()
    ]
    if exact:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"unknown service {text!r}: use a code like tg or a name like Telegram")
    names = ", ".join(f"{m} ({identifiers.service_name(m)})" for m in matches[:8])
    raise UsageError(f"service {text!r} is ambiguous: {names}")


def resolve_country(text: str) -> str:
    if identifiers.is_country(text.strip()):
        return text.strip().upper()
    matches = identifiers.find_countries(text)
    folded = text.strip().casefold()
    exact = [m for m in matches if identifiers.country_name(m).casefold() == folded]
    if exact:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"unknown country {text!r}: use an ISO code like US or an English name")
    names = ", ".join(f"{m} ({identifiers.country_name(m)})" for m in matches[:8])
    raise UsageError(f"country {text!r} is ambiguous: {names}")


def offers_as_json(result: OffersResult) -> list[dict[str, object]]:
    return [
        {
            "provider": p.offer.provider,
            "kind": str(p.offer.kind),
            "duration_hours": p.offer.duration_hours,
            "price": str(p.offer.price.amount),
            "currency": p.offer.price.currency,
            "display_price": str(p.display_price.amount),
            "display_currency": p.display_price.currency,
            "stock": p.offer.stock,
        }
        for p in result.offers
    ]


def offers_as_table(result: OffersResult) -> str:
    header = ("provider", "kind", "price", "display", "stock")
    rows = [header]
    for p in result.offers:
        kind = str(p.offer.kind)
        if p.offer.duration_hours:
            kind += f" {_hours(p.offer.duration_hours)}"
        rows.append(
            (
                PROVIDER_TITLES.get(p.offer.provider, p.offer.provider),
                kind,
                str(p.offer.price),
                str(p.display_price.quantize()),
                "?" if p.offer.stock is None else str(p.offer.stock),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def _hours(hours: int) -> str:
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


async def offers(
    settings: Settings,
    service_text: str,
    country_text: str,
    *,
    as_json: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    try:
        service, country = resolve_service(service_text), resolve_country(country_text)
    except UsageError as exc:
        err.write(f"error: {exc}\n")
        return 2
    async with httpx.AsyncClient() as client:
        providers = build_providers(settings, client)
        if not providers:
            err.write("error: no provider enabled: set at least one provider key\n")
            return 2
        service_offers = OfferService(
            providers, CurrencyConverter(settings.display_currency, settings.exchange_rates)
        )
        result = await service_offers.offers(service, country)
    for failure in result.failures:
        title = PROVIDER_TITLES.get(failure.provider, failure.provider)
        err.write(f"{title}: failed: {failure.error}\n")
    for outlier in outliers(result):
        err.write(f"warning: price far off the other providers': {outlier.describe()}\n")
    if as_json:
        json.dump(offers_as_json(result), out, indent=2)
        out.write("\n")
    elif result.offers:
        out.write(
            f"{identifiers.service_name(service)} in {identifiers.country_name(country)}"
            f" ({country}), cheapest first:\n{offers_as_table(result)}\n"
        )
    else:
        out.write(f"no offers for {service} in {country}\n")
    return 1 if result.failures and not result.offers else 0
