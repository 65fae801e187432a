"""How well offers deliver, from what past orders told (``storage.offer_stats``): badges, the
best pick among offers, and the admins' table of the best and worst offers.

An offer is judged by its recent outcomes (the last ``RECENT_WINDOW`` orders of the same
provider, service, country and kind):

* **unknown** with fewer than ``min_samples`` of them: no badge, and never counted as bad;
* **delivers well** when at least ``good_share`` of them got a code;
* **delivers poorly** otherwise.

The best pick is the cheapest offer that delivers well; with none, the cheapest unknown one
(it may well deliver); with only poor ones, the one that delivered most often.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.services.offers import PricedOffer, sort_key
from storage.offer_stats import RECENT_WINDOW, OfferFigures, OfferRef, OfferStatsRepo


@dataclass(frozen=True, slots=True)
class Badge:
    """What an offer's recent orders say: the share that got a code and the typical time."""

    share: float  # 0..1
    samples: int  # recent outcomes behind it (at least the minimum)
    typical_seconds: int | None  # median time from purchase to the first SMS; None: no code
    good: bool  # delivers well (share at least the "good" share)

    @property
    def percent(self) -> int:
        return round(self.share * 100)


class BestReason(enum.StrEnum):
    DELIVERS_WELL = "delivers_well"  # the cheapest of the offers that deliver well
    UNKNOWN = "unknown"  # none is known to deliver well; the cheapest not known to fail
    LEAST_BAD = "least_bad"  # every offer delivers poorly; this one most often


@dataclass(frozen=True, slots=True)
class Best:
    priced: PricedOffer
    reason: BestReason
    badge: Badge | None  # None with BestReason.UNKNOWN


@dataclass(frozen=True, slots=True)
class TableRow:
    figures: OfferFigures
    badge: Badge


@dataclass(frozen=True, slots=True)
class DeliveryTable:
    """For the admins: offers with enough recent orders, the best and the worst."""

    best: tuple[TableRow, ...]
    worst: tuple[TableRow, ...]
    min_samples: int


def ref_of(priced: PricedOffer) -> OfferRef:
    offer = priced.offer
    return OfferRef(offer.provider, offer.service, offer.country, str(offer.kind))


class OfferStatsService:
    def __init__(
        self, repo: OfferStatsRepo, *, min_samples: int = 20, good_share: float = 0.7
    ) -> None:
        if not 1 <= min_samples <= RECENT_WINDOW:
            raise ValueError(f"min_samples must be within 1..{RECENT_WINDOW}")
        if not 0 < good_share <= 1:
            raise ValueError("good_share must be within (0, 1]")
        self._repo = repo
        self.min_samples = min_samples
        self.good_share = good_share

    def judge(self, figures: OfferFigures | None) -> Badge | None:
        """The badge the figures earn; None for too few recent outcomes."""
        if figures is None or figures.recent < self.min_samples:
            return None
        share = figures.recent_share
        return Badge(share, figures.recent, figures.typical_seconds, share >= self.good_share)

    async def badge(self, provider: str, service: str, country: str, kind: str) -> Badge | None:
        return self.judge(await self._repo.get(OfferRef(provider, service, country, str(kind))))

    async def badges(self, offers: Iterable[PricedOffer]) -> dict[OfferRef, Badge]:
        """The badges of ``offers`` (those with enough recent outcomes), one read per pair."""
        pairs = {(p.offer.service, p.offer.country) for p in offers}
        badges: dict[OfferRef, Badge] = {}
        for service, country in sorted(pairs):
            for ref, figures in (await self._repo.for_pair(service, country)).items():
                judged = self.judge(figures)
                if judged is not None:
                    badges[ref] = judged
        return badges

    async def best(self, offers: Sequence[PricedOffer]) -> Best | None:
        """The offer to recommend, and why (None without offers)."""
        return self.pick(offers, await self.badges(offers))

    def pick(self, offers: Sequence[PricedOffer], badges: dict[OfferRef, Badge]) -> Best | None:
        """:meth:`best` with the badges already read (the offers screen shows them too)."""
        if not offers:
            return None
        well = [p for p in offers if (b := badges.get(ref_of(p))) is not None and b.good]
        if well:
            chosen = min(well, key=sort_key)
            return Best(chosen, BestReason.DELIVERS_WELL, badges[ref_of(chosen)])
        unknown = [p for p in offers if ref_of(p) not in badges]
        if unknown:
            return Best(min(unknown, key=sort_key), BestReason.UNKNOWN, None)

        def least_bad(priced: PricedOffer) -> tuple[object, ...]:
            return (-badges[ref_of(priced)].share, *sort_key(priced))

        chosen = min(offers, key=least_bad)
        return Best(chosen, BestReason.LEAST_BAD, badges[ref_of(chosen)])

    async def table(self, limit: int = 5) -> DeliveryTable:
        """The ``limit`` best and worst offers by recent share (worst without the best)."""
        best = await self._repo.ranked(self.min_samples, limit)
        shown = {f.ref for f in best}
        worst = [
            f
            for f in await self._repo.ranked(self.min_samples, 2 * limit, worst=True)
            if f.ref not in shown
        ][:limit]
        return DeliveryTable(self._rows(best), self._rows(worst), self.min_samples)

    def _rows(self, figures: Iterable[OfferFigures]) -> tuple[TableRow, ...]:
        rows: list[TableRow] = []
        for item in figures:
            judged = self.judge(item)
            if judged is not None:
                rows.append(TableRow(item, judged))
        return tuple(rows)


async def pick(ranking: OfferStatsService | None, offers: Sequence[PricedOffer]) -> PricedOffer:
    """The offer to buy or suggest: the best that delivers (with stats), else the cheapest."""
    if ranking is not None:
        best = await ranking.best(offers)
        if best is not None:
            return best.priced
    return min(offers, key=sort_key)
