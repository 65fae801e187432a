"""The merged catalog: which (service, country) pairs some enabled provider sells.

Each provider's catalog is fetched concurrently and cached; a provider that fails keeps its last
good catalog (or contributes nothing) and is reported.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import SYSTEM_CLOCK, Clock
from bot.providers import country_names, identifiers
from bot.providers.base import Provider, ProviderCatalog, ProviderError

log = logging.getLogger(__name__)

MAX_QUERY = 64  # a search text longer than this is no service's or country's name
MAX_CODE = 40  # service and country codes in buttons are shorter (bot.callbacks.Code)


def search_query(text: str | None) -> str | None:
    """What a user typed to search for a service or country, if it can be a search: one line,
    1..MAX_QUERY characters; else None (answer "nothing found" without searching)."""
    if text is None:
        return None
    query = " ".join(text.split())
    return query if 0 < len(query) <= MAX_QUERY else None


def plausible_pair(service: str, country: str) -> bool:
    """A cheap shape check before any lookup: codes are short printable ASCII."""
    return all(
        0 < len(code) <= MAX_CODE and code.isascii() and code.isprintable()
        for code in (service, country)
    )


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What a free-text search found among what is sold: services and countries, the best
    grade of match only (a whole name, code or alias beats the start of a name, across both:
    "Telegram" finds the service, not a country whose name starts so)."""

    query: str
    services: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.services and not self.countries


def _service_matches(query: str, names: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(exact, prefix) service codes for ``query`` among ``names`` (code -> display name).

    Exact: the code, an alias of it, or the whole name. Prefix: the start of the name or of
    a word in it ("tele", "gmail"), or of an alias of four letters or more ("телег")."""
    q = country_names.fold(query)
    if len(q) < 2:
        return [], []
    aliased = identifiers.canonical_service(q)
    exact = [c for c in names if c == aliased or country_names.fold(names[c]) == q]
    needle = " " + q
    by_alias = {
        code
        for alias, code in identifiers.service_aliases().items()
        if len(alias) >= 4 and country_names.fold(alias).startswith(q)
    }
    prefix = [
        c
        for c in names
        if c not in exact
        and (c in by_alias or (" " + country_names.fold(names[c])).find(needle) >= 0)
    ]
    return exact, prefix


@dataclass(frozen=True, slots=True)
class MergedCatalog:
    by_service: Mapping[str, frozenset[str]]  # service -> ISO countries
    names: Mapping[str, str]  # service -> display name
    failed: tuple[str, ...] = ()  # providers whose catalog could not be read
    fetched_at: datetime | None = field(default=None, compare=False)

    def services(self) -> list[str]:
        """Popular services first (in their order), then the rest by name."""
        popular = [s for s in identifiers.popular_services() if s in self.by_service]
        rest = sorted(
            (s for s in self.by_service if s not in popular), key=lambda s: self.name(s).casefold()
        )
        return popular + rest

    def countries(self, service: str, language: str = "en") -> list[str]:
        """Countries selling ``service``, by their name in ``language``."""
        return sorted(
            self.by_service.get(service, frozenset()),
            key=lambda iso: identifiers.country_name(iso, language).casefold(),
        )

    def name(self, service: str) -> str:
        return identifiers.service_name(service, self.names.get(service))

    def sells(self, service: str, country: str) -> bool:
        return country.upper() in self.by_service.get(service, frozenset())

    def sold_countries(self) -> frozenset[str]:
        """Every country where some service is sold."""
        return frozenset().union(*self.by_service.values())

    def services_in(self, country: str) -> list[str]:
        """Services sold in ``country``: popular first, then by name (as :meth:`services`)."""
        country = country.upper()
        return [s for s in self.services() if country in self.by_service[s]]

    def search_services(self, text: str | None, country: str) -> tuple[str, ...]:
        """Services sold in ``country`` matching ``text``, the best grade of match only."""
        query = search_query(text)
        if query is None:
            return ()
        sold = self.services_in(country)
        exact, prefix = _service_matches(query, {code: self.name(code) for code in sold})
        best = set(exact or prefix)
        return tuple(code for code in sold if code in best)

    def search(self, text: str | None, languages: tuple[str, ...] = ("en",)) -> SearchResult:
        """Services and countries (sold ones only) matching what a user typed, each kind in
        the catalog's order (services popular first; countries by name in ``languages[0]``).
        Country names are matched in every one of ``languages`` and English, with the names
        people type (``country_names``); case, accents and ё/е do not matter."""
        query = search_query(text)
        if query is None:
            return SearchResult(text or "")
        names = {code: self.name(code) for code in self.by_service}
        exact_services, prefix_services = _service_matches(query, names)
        sold = self.sold_countries()
        found = country_names.find(query, languages)
        exact_countries = [iso for iso in found.exact if iso in sold]
        prefix_countries = [iso for iso in found.prefix if iso in sold]
        if exact_services or exact_countries:
            services, countries = exact_services, exact_countries
        else:
            services, countries = prefix_services, prefix_countries
        order = {code: i for i, code in enumerate(self.services())}
        language = languages[0] if languages else "en"
        return SearchResult(
            query,
            tuple(sorted(services, key=order.__getitem__)),
            tuple(
                sorted(
                    countries,
                    key=lambda iso: identifiers.country_name(iso, language).casefold(),
                )
            ),
        )


def merge(catalogs: Mapping[str, ProviderCatalog], failed: tuple[str, ...] = ()) -> MergedCatalog:
    by_service: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for catalog in catalogs.values():
        for service, country in catalog.pairs:
            by_service.setdefault(service, set()).add(country.upper())
        for code, name in catalog.service_names.items():
            names.setdefault(code, name)
    return MergedCatalog({s: frozenset(c) for s, c in by_service.items()}, names, failed)


class CatalogService:
    """The merged catalog, cached: each provider's catalog is asked again after
    ``cache_seconds``; one that failed (or had not answered within ``deadline`` seconds) is
    asked again after ``failed_cache_seconds``, its last good catalog standing in meanwhile.
    A call still running past the deadline is not repeated: its answer is merged when it
    comes."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        clock: Clock = SYSTEM_CLOCK,
        cache_seconds: float = 600.0,
        failed_cache_seconds: float = 60.0,
        deadline: float | None = None,
    ) -> None:
        self._providers = providers
        self._clock = clock
        self._ttl = timedelta(seconds=cache_seconds)
        self._failed_ttl = timedelta(seconds=min(cache_seconds, failed_cache_seconds))
        self._deadline = deadline
        self._last_good: dict[str, ProviderCatalog] = {}
        self._asked_at: dict[str, datetime] = {}  # the last call's start, per provider
        self._failed: set[str] = set()  # failed (or still running) at the last call
        self._calls: dict[str, asyncio.Task[ProviderCatalog]] = {}  # running past a deadline
        self._merged: MergedCatalog | None = None
        self._lock = asyncio.Lock()

    async def search(self, text: str | None, languages: tuple[str, ...] = ("en",)) -> SearchResult:
        """:meth:`MergedCatalog.search` on the cached catalog (no provider call while cached);
        a text that cannot be a name (too long, empty) searches nothing."""
        if search_query(text) is None:
            return SearchResult(text or "")
        return (await self.get()).search(text, languages)

    async def sells(self, service: str, country: str) -> bool:
        """Whether some enabled provider sells ``service`` in ``country``, from the merged
        catalog (no provider call while it is cached): call it before asking any provider
        about a pair that came from a button, so a forged pair costs no provider requests."""
        if not plausible_pair(service, country):
            return False
        return (await self.get()).sells(service, country)

    def _due(self, pid: str, fresh: bool) -> bool:
        if pid in self._calls:
            return False  # still running: its answer is merged when it comes
        asked = self._asked_at.get(pid)
        if fresh or asked is None:
            return True
        ttl = self._failed_ttl if pid in self._failed else self._ttl
        return self._clock.now() - asked >= ttl

    async def get(self, *, fresh: bool = False) -> MergedCatalog:
        async with self._lock:
            due = [pid for pid in self._providers if self._due(pid, fresh)]
            if not due and self._merged is not None:
                return self._merged
            now = self._clock.now()
            asked: dict[str, asyncio.Task[ProviderCatalog]] = {}
            for pid in due:
                self._asked_at[pid] = now
                call = asyncio.create_task(self._providers[pid].catalog())
                call.add_done_callback(functools.partial(self._answered, pid))
                self._calls[pid] = asked[pid] = call
            if asked:
                await asyncio.wait(asked.values(), timeout=self._deadline)
            for pid, call in asked.items():
                if not call.done():
                    log.warning("catalog from %s: no answer within %s s", pid, self._deadline)
                    self._failed.add(pid)
                    continue
                error = call.exception()
                if error is not None and not isinstance(error, ProviderError):
                    raise error  # a bug, not a provider failure: let it surface
            return self._merge(now)

    async def drain(self) -> None:
        """Wait for the calls still running past a deadline (tests; shutdown)."""
        while self._calls:
            await asyncio.gather(*self._calls.values(), return_exceptions=True)

    def _answered(self, pid: str, call: asyncio.Task[ProviderCatalog]) -> None:
        """A provider's catalog call ended (within the deadline or later)."""
        if call.cancelled():
            return
        error = call.exception()
        if isinstance(error, ProviderError):
            log.warning("catalog from %s failed: %s", pid, error)
            self._failed.add(pid)
        elif error is None:
            self._last_good[pid] = call.result()
            self._failed.discard(pid)
        if self._calls.get(pid) is call:
            del self._calls[pid]
            if self._merged is not None and not self._lock.locked():
                # A late answer (past a deadline): merged into the catalog users see.
                self._merge(self._merged.fetched_at or self._clock.now())

    def _merge(self, fetched_at: datetime) -> MergedCatalog:
        failed = tuple(pid for pid in self._providers if pid in self._failed)
        result = merge(self._last_good, failed)
        self._merged = MergedCatalog(
            result.by_service, result.names, result.failed, fetched_at=fetched_at
        )
        return self._merged
