"""What the admins see: provider balances, figures, and low-balance alerts.

A provider's balance is checked at most every ``check_every``; an alert goes to the admins once
when it falls below its ``LOW_BALANCE_ALERT`` threshold, and again only after it recovered and
fell once more (the state is kept in memory, so a restart may repeat one alert).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from bot.clock import Clock
from bot.money import Money
from bot.providers.base import Provider, ProviderError
from bot.services.export import CsvFile, export_all
from storage.models import User
from storage.stats import Stats, StatsRepo
from storage.users import UsersRepo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BalanceLine:
    provider: str
    balance: Money | None
    error: str | None = None  # why there is no balance (no such call, provider down)


async def find_user(users: UsersRepo, text: str) -> User | None:
    """The user an admin named: a numeric Telegram id or an @username (the @ optional)."""
    raw = text.strip()
    if raw.isascii() and raw.isdigit():
        if len(raw) > 19 or not 0 < int(raw) < 2**63:  # outside SQLite's INTEGER: nobody
            return None
        return await users.get(int(raw))
    name = raw.removeprefix("@")
    if name and name.isascii() and name.replace("_", "").isalnum():  # Telegram's alphabet
        return await users.find_by_username(name)
    return None


class AdminService:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        stats: StatsRepo,
        clock: Clock,
        thresholds: Mapping[str, Decimal],
        check_every: timedelta = timedelta(minutes=10),
    ) -> None:
        self._providers = providers
        self._stats = stats
        self._clock = clock
        self._thresholds = thresholds
        self._check_every = check_every
        self._low: set[str] = set()
        self._checked_at: datetime | None = None

    async def balances(self) -> list[BalanceLine]:
        ids = list(self._providers)
        answers = await asyncio.gather(
            *(self._providers[pid].balance() for pid in ids), return_exceptions=True
        )
        lines = []
        for pid, answer in zip(ids, answers, strict=True):
            if isinstance(answer, Money):
                lines.append(BalanceLine(pid, answer))
            elif isinstance(answer, ProviderError):
                lines.append(BalanceLine(pid, None, type(answer).__name__))
            else:
                raise answer
        return lines

    async def stats(self) -> Stats:
        return await self._stats.stats()

    async def export(self) -> list[CsvFile]:
        """Orders and ledger as CSV files on disk; the caller sends them, then removes them."""
        return await export_all(self._stats, self._clock.now().strftime("%Y%m%d-%H%M%S"))

    async def requested_users(self) -> list[int]:
        return [user_id for user_id, _ in await self._stats.requested_users()]

    async def low_balances(self) -> list[BalanceLine]:
        """Providers that just fell below their threshold (each once per crossing)."""
        now = self._clock.now()
        if not self._thresholds or (
            self._checked_at is not None and now - self._checked_at < self._check_every
        ):
            return []
        self._checked_at = now
        fell: list[BalanceLine] = []
        for line in await self.balances():
            limit = self._thresholds.get(line.provider)
            if limit is None or line.balance is None:
                continue
            if line.balance.amount < limit:
                if line.provider not in self._low:
                    self._low.add(line.provider)
                    fell.append(line)
            else:
                self._low.discard(line.provider)
        return fell
