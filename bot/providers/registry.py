"""Build the enabled providers from settings: one shared ``httpx.AsyncClient``, an adapter each."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import httpx

from bot.clock import SYSTEM_CLOCK, Clock
from bot.config import Settings
from bot.metrics import NO_METRICS, Metrics
from bot.providers.base import Provider
from bot.providers.beesms import BeeSmsProvider
from bot.providers.getsms import GetSmsProvider
from bot.providers.http import ProviderHttp, RetryPolicy, Sleep
from bot.providers.smsbus import SmsBusProvider
from bot.providers.smsonline import RentalHook, SmsOnlineProvider

PROVIDER_IDS = ("getsms", "smsbus", "beesms", "smsonline")
PROVIDER_TITLES = MappingProxyType(
    {"getsms": "Get-SMS", "smsbus": "SMS-BUS", "beesms": "BEE-SMS", "smsonline": "SMS.online"}
)


def enabled_provider_ids(settings: Settings) -> list[str]:
    keys = {
        "getsms": settings.getsms_api_key,
        "smsbus": settings.smsbus_token,
        "beesms": settings.beesms_token,
        "smsonline": settings.smsonline_api_key,
    }
    return [pid for pid in PROVIDER_IDS if keys[pid] is not None]


def build_providers(
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    clock: Clock = SYSTEM_CLOCK,
    retry: RetryPolicy | None = None,
    sleep: Sleep | None = None,
    webhook_url: RentalHook | None = None,
    metrics: Metrics = NO_METRICS,
) -> Mapping[str, Provider]:
    """Every provider whose key is set, in a stable order."""
    retry = retry or RetryPolicy(attempts=settings.provider_retries)

    def http(pid: str, base_url: str, key: str) -> ProviderHttp:
        return ProviderHttp(
            pid,
            client,
            base_url,
            secrets=(key,),
            timeout=settings.provider_timeout,
            retry=retry,
            sleep=sleep,
            metrics=metrics,
        )

    providers: dict[str, Provider] = {}
    if settings.getsms_api_key is not None:
        key = settings.getsms_api_key.get_secret_value()
        if settings.getsms_currency is None:  # Settings refuses a key without it
            raise ValueError("GETSMS_CURRENCY is required when GETSMS_API_KEY is set")
        providers["getsms"] = GetSmsProvider(
            http("getsms", settings.getsms_base_url, key),
            key,
            currency=settings.getsms_currency,
            clock=clock,
        )
    if settings.smsbus_token is not None:
        key = settings.smsbus_token.get_secret_value()
        providers["smsbus"] = SmsBusProvider(
            http("smsbus", settings.smsbus_base_url, key), key, clock=clock
        )
    if settings.beesms_token is not None:
        key = settings.beesms_token.get_secret_value()
        providers["beesms"] = BeeSmsProvider(
            http("beesms", settings.beesms_base_url, key), key, clock=clock
        )
    if settings.smsonline_api_key is not None:
        key = settings.smsonline_api_key.get_secret_value()
        providers["smsonline"] = SmsOnlineProvider(
            http("smsonline", settings.smsonline_base_url, key),
            key,
            currency=settings.smsonline_currency,
            zone=settings.smsonline_zone(),
            clock=clock,
            webhook_url=webhook_url,
        )
    return MappingProxyType(providers)
