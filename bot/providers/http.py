"""Shared HTTP rules for every adapter: timeouts, bounded retries on safe calls, no secrets leaked.

An adapter calls :meth:`ProviderHttp.call` with a parser. The parser turns the response into a
typed result or raises a typed :class:`ProviderError`; a :class:`ProviderUnavailable` from it (or
a transport failure) is retried with jittered exponential backoff, but only when the call is
``safe`` (a read). A money-moving call is sent once: if its answer is lost after it may have
reached the provider, :class:`PurchaseOutcomeUnknown` is raised for reconciliation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot.logs import log_context
from bot.metrics import NO_METRICS, Metrics, kind_of
from bot.providers.base import ProviderError, ProviderUnavailable, PurchaseOutcomeUnknown
from bot.redact import RedactingFilter, Redactor

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = Mapping[str, str | int]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # total tries for a safe call
    initial_delay: float = 0.5
    max_delay: float = 5.0  # also caps a provider's Retry-After


class ProviderHttp:
    """One provider's view of the shared ``httpx.AsyncClient``."""

    def __init__(
        self,
        provider: str,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        secrets: tuple[str, ...] = (),
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.provider = provider
        self._metrics = metrics
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._redact = Redactor(secrets)
        _guard_library_logs(secrets)
        self._timeout = httpx.Timeout(timeout)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def url(self, path: str) -> str:
        return f"{self._base_url}/{path.lstrip('/')}"

    async def call(
        self,
        path: str,
        params: Params,
        parse: Callable[[httpx.Response], T],
        *,
        safe: bool,
    ) -> T:
        """GET ``path`` with ``params`` and parse the answer. ``safe`` calls are retried."""
        if not safe:
            return await self._once(path, params, parse, safe=False)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(ProviderUnavailable),
            stop=stop_after_attempt(self._retry.attempts),
            wait=self._wait,
            reraise=True,
            sleep=self._sleep or asyncio.sleep,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(path, params, parse, safe=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_exponential_jitter(
            multiplier=self._retry.initial_delay, max=self._retry.max_delay
        )(state)
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, int | float) and hint > 0:
            return float(min(max(backoff, hint), self._retry.max_delay))
        return float(backoff)

    async def _once(
        self, path: str, params: Params, parse: Callable[[httpx.Response], T], *, safe: bool
    ) -> T:
        """One request, counted by action and outcome (``ok``, or the typed error's name)."""
        method = str(params.get("method") or params.get("action") or path)
        started, outcome = time.perf_counter(), "cancelled"  # unless it ends otherwise
        try:
            with log_context(provider=self.provider):
                result = await self._request(method, path, params, parse, safe=safe)
            outcome = "ok"
            return result
        except ProviderError as exc:
            outcome = kind_of(exc)
            raise
        except Exception:
            outcome = "error"  # a parser's own failure, not a typed answer
            raise
        finally:
            seconds = time.perf_counter() - started
            self._metrics.provider_request(self.provider, method, outcome, seconds)

    async def _request(
        self,
        method: str,
        path: str,
        params: Params,
        parse: Callable[[httpx.Response], T],
        *,
        safe: bool,
    ) -> T:
        try:
            response = await self._client.get(
                self.url(path),
                params={k: str(v) for k, v in params.items()},
                timeout=self._timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Nothing reached the provider: not ambiguous even for a purchase.
            raise ProviderUnavailable(self.provider, f"{method}: cannot connect") from _clean(exc)
        except httpx.TimeoutException as exc:
            raise self._lost(method, "timed out", safe) from _clean(exc)
        except httpx.HTTPError as exc:
            raise self._lost(method, f"transport error ({type(exc).__name__})", safe) from _clean(
                exc
            )
        if response.status_code == 429:
            raise self._lost(method, "rate limited (HTTP 429)", safe, _retry_after(response))
        try:
            return parse(response)
        except ProviderUnavailable as exc:
            if safe or not exc.answer_lost or isinstance(exc, PurchaseOutcomeUnknown):
                raise
            raise self._lost(method, exc.detail, safe=False, retry_after=exc.retry_after) from None

    def _lost(
        self, method: str, why: str, safe: bool, retry_after: float | None = None
    ) -> ProviderUnavailable:
        detail = self._redact(f"{method}: {why}")
        if safe:
            return ProviderUnavailable(self.provider, detail, retry_after, answer_lost=True)
        return PurchaseOutcomeUnknown(self.provider, detail, retry_after, answer_lost=True)

    def unavailable(self, response: httpx.Response, why: str) -> ProviderUnavailable:
        """For parsers: an unusable answer (5xx, garbage), with a short redacted excerpt."""
        excerpt = self._redact(response.text[:120].replace("\n", " "))
        return ProviderUnavailable(
            self.provider,
            f"{why} (HTTP {response.status_code}: {excerpt!r})",
            _retry_after(response),
            answer_lost=True,
        )

    def json(self, response: httpx.Response) -> Any:
        """Decode a JSON body or raise :class:`ProviderUnavailable` (never ``{}`` on garbage)."""
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            if response.status_code >= 500:
                raise self.unavailable(response, "server error") from None
            self._refused_before_api(response)
            raise self.unavailable(response, "unparsable body") from None

    def text(self, response: httpx.Response) -> str:
        """A plain-text body, trimmed; 5xx with no usable text is unavailable."""
        body = response.text.strip()
        if response.status_code >= 500 and not body:
            raise self.unavailable(response, "server error")
        if body.startswith("<"):
            self._refused_before_api(response)
        return body

    def _refused_before_api(self, response: httpx.Response) -> None:
        """A 4xx whose body is not the API's (a Cloudflare/WAF/proxy HTML page): the request was
        refused in front of the API, so nothing was done, even for a purchase. Raises a
        :class:`ProviderUnavailable` that is not ``answer_lost``."""
        if not 400 <= response.status_code < 500 or response.status_code == 429:
            return
        cloudflare = (
            "cf-ray" in response.headers
            or "cloudflare" in response.headers.get("server", "").lower()
        )
        front = "Cloudflare" if cloudflare else "the provider's front end"
        excerpt = self._redact(response.text[:80].replace("\n", " "))
        raise ProviderUnavailable(
            self.provider,
            f"refused by {front} before the API (HTTP {response.status_code}: {excerpt!r}); "
            "nothing was done",
            _retry_after(response),
        )


_LIBRARY_REDACTOR = Redactor()


def _guard_library_logs(secrets: tuple[str, ...]) -> None:
    """httpx logs every request URL (the key is in its query): redact at the source loggers."""
    _LIBRARY_REDACTOR.add(*secrets)
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter(_LIBRARY_REDACTOR))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _clean(exc: httpx.HTTPError) -> Exception:
    """httpx errors carry the request URL (with the key in the query): keep only the type."""
    return RuntimeError(type(exc).__name__)
