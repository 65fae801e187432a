"""The merged catalog: which (service, country) pairs some enabled provider sells.

Each provider's catalog is fetched concurrently and cached; a provider that fails keeps its last
good catalog (or contributes nothing) and is reported.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import SYSTEM_CLOCK, Clock
from bot.providers import identifiers
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
    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        clock: Clock = SYSTEM_CLOCK,
        cache_seconds: float = 600.0,
    ) -> None:
        self._providers = providers
        self._clock = clock
        self._ttl = timedelta(seconds=cache_seconds)
        self._last_good: dict[str, ProviderCatalog] = {}
        self._merged: MergedCatalog | None = None
        self._lock = asyncio.Lock()

    async def sells(self, service: str, country: str) -> bool:
        """Whether some enabled provider sells ``service`` in ``country``, from the merged
        catalog (no provider call while it is cached): call it before asking any provider
        about a pair that came from a button, so a forged pair costs no provider requests."""
        if not plausible_pair(service, country):
            return False
        return (await self.get()).sells(service, country)

    async def get(self, *, fresh: bool = False) -> MergedCatalog:
        async with self._lock:
            merged = self._merged
            if (
                not fresh
                and merged is not None
                and merged.fetched_at is not None
                and self._clock.now() - merged.fetched_at < self._ttl
            ):
                return merged
            ids = list(self._providers)
            answers = await asyncio.gather(
                *(self._providers[pid].catalog() for pid in ids), return_exceptions=True
            )
            failed: list[str] = []
            for pid, answer in zip(ids, answers, strict=True):
                if isinstance(answer, ProviderError):
                    log.warning("catalog from %s failed: %s", pid, answer)
                    failed.append(pid)
                elif isinstance(answer, BaseException):
                    raise answer
                else:
                    self._last_good[pid] = answer
            result = merge(self._last_good, tuple(failed))
            self._merged = MergedCatalog(
                result.by_service, result.names, result.failed, fetched_at=self._clock.now()
            )
            return self._merged
