"""Who pays from a wallet, and their balance. Holds, captures and refunds are written with the
intents they belong to (:mod:`storage.intents`), so each is one transaction with its outcome.

Users for whom ``pays`` is false (admins, or everyone when wallets are off) are never charged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.money import Money
from bot.services.wallet import WalletService


@dataclass(frozen=True, slots=True)
class Billing:
    wallet: WalletService | None = None
    pays: Callable[[int], bool] = lambda _user_id: False

    def charges(self, user_id: int) -> bool:
        return self.wallet is not None and self.pays(user_id)

    async def balance(self, user_id: int) -> Money:
        if self.wallet is None:
            raise ValueError("no wallets: nobody has a balance")
        return await self.wallet.balance(user_id)


FREE = Billing()  # nobody is charged
