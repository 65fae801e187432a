"""Charging users' wallets around a provider call: hold, then capture or release; refunds.

Used by purchases and renewals alike. Users for whom ``pays`` is false (admins, or everyone
when wallets are off) are never charged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.money import Money
from bot.services.wallet import Hold, NotEnoughBalance, WalletService


@dataclass
class Charge:
    """A hold being spent; ``order_id`` set inside the block is what the money paid for."""

    hold: Hold | None
    order_id: int | None = field(default=None)


@dataclass(frozen=True, slots=True)
class Billing:
    wallet: WalletService | None = None
    pays: Callable[[int], bool] = lambda _user_id: False

    def charges(self, user_id: int) -> bool:
        return self.wallet is not None and self.pays(user_id)

    @asynccontextmanager
    async def charged(self, user_id: int, price: Money | None) -> AsyncIterator[Charge]:
        """Hold ``price`` for the block; captured for ``charge.order_id`` if the block set it,
        released if it raised (NotEnoughBalance before it runs if the wallet is short)."""
        if self.wallet is None or not self.pays(user_id):
            yield Charge(None)
            return
        if price is None:
            raise ValueError("a paying user's price must be known")
        hold = await self.wallet.hold(user_id, price)
        if hold is None:
            raise NotEnoughBalance(price, await self.wallet.balance(user_id))
        charge = Charge(hold)
        try:
            yield charge
        except BaseException:
            await self.wallet.release(hold)  # nothing bought (or not known to be)
            raise
        if charge.order_id is None:
            await self.wallet.release(hold)
        else:
            await self.wallet.capture(hold, charge.order_id)

    async def refund(self, order_id: int) -> Money | None:
        """After the provider confirmed a cancel (or an expiry without SMS): once."""
        return None if self.wallet is None else await self.wallet.refund(order_id)


FREE = Billing()  # nobody is charged
