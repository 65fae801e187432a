"""Small helpers the adapter and story tests share."""

from __future__ import annotations

import socket

import httpx

from bot.providers.http import ProviderHttp, RetryPolicy


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on (now): for refused connections or a new server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def provider_http(
    provider: str,
    client: httpx.AsyncClient,
    base_url: str,
    key: str,
    retry: RetryPolicy,
    timeout: float = 5.0,
) -> ProviderHttp:
    """The shared HTTP rules for one provider, as the registry builds them, with the test key."""
    return ProviderHttp(provider, client, base_url, secrets=(key,), timeout=timeout, retry=retry)
