"""Work that one replica at a time does: a round of the reconciler, of keep-trying plans, of
stock alerts, of the daily summary. Every replica runs these loops; before each round it holds
the round's named lease (``storage.leases``), and a replica that does not hold it skips the
round. The lease outlives a round, so the holder keeps it round after round; when it dies, the
lease runs out and another replica takes the next round; when it stops, it lets go at once.

Each of these services also guards its own writes (conditional updates, unique keys): the lease
keeps two replicas from doing the same round's provider calls and messages twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.clock import Clock
from storage.leases import LeasesRepo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OneReplica:
    leases: LeasesRepo
    replica: str  # this process's name (REPLICA_ID)
    clock: Clock
    lease: timedelta = timedelta(seconds=60)  # at least: a round's lease is longer than it

    async def holds(self, name: str, interval: float = 0.0) -> bool:
        """True if this replica may do ``name``'s round now (held until well past the next
        one: the longer of ``lease`` and two ``interval``)."""
        lease = max(self.lease, timedelta(seconds=2 * interval + 30))
        return await self.leases.hold(name, self.replica, self.clock.now(), lease)

    async def release(self, name: str) -> None:
        """This replica stops: another may take ``name`` at once."""
        try:
            await self.leases.release(name, self.replica)
        except Exception:  # it runs out by itself
            log.exception("could not let go of the %s lease", name)
