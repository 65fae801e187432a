"""A bot process for crash tests: buys what it is told, and dies where it is told.

``python -m tests.crash_worker JOB.json`` wires the real app (``create_app``) against the
emulators named in the job, on the job's SQLite file, then runs each purchase through the
purchase service exactly as the Buy button does (quote, then buy). Before purchase number
``crash_on`` it sets ``BOT_CRASH_AT`` to ``crash_at``, so :func:`bot.failpoints.crash_point`
SIGKILLs this process at that point. It prints one line per purchase it lived through, and
``ready <n>`` before purchase n, so a test can also kill it from outside at a moment it knows.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.app import create_app
from bot.config import Settings
from bot.domain import OrderKind
from bot.failpoints import ENV
from bot.money import Money
from bot.providers.base import ProviderError
from bot.providers.http import RetryPolicy
from bot.services.purchase import PurchaseService, PurchaseUnconfirmed
from bot.services.wallet import WalletService
from storage.users import UsersRepo
from tests.emulators.base import FakeClock
from tests.fakes.telegram import FakeBotApi


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(job: dict[str, Any]) -> None:
    clock = FakeClock(datetime.fromisoformat(job["now"]))
    settings = Settings(_env_file=None, **job["settings"])
    app = await create_app(
        settings,
        session=FakeBotApi(clock=clock),
        clock=clock,
        retry=RetryPolicy(attempts=2, initial_delay=0.001, max_delay=0.01),
    )
    try:
        user_id = int(job["user_id"])
        users: UsersRepo = app.dp["users"]
        await users.ensure(user_id, "en", clock.now())
        if job.get("credit"):
            wallet: WalletService = app.dp["wallet"]
            amount = Money(Decimal(job["credit"]), settings.display_currency)
            await wallet.credit(user_id, amount, actor=1, reason="crash test")
        purchases: PurchaseService = app.dp["purchases"]
        for number, wanted in enumerate(job["purchases"]):
            if number == job.get("crash_on"):
                os.environ[ENV] = job["crash_at"]
            say(f"ready {number}")
            result = await app.dp["offers"].offers(
                wanted["service"], wanted["country"], fresh=True
            )
            priced = next(
                p
                for p in result.offers
                if p.offer.provider == wanted["provider"]
                and p.offer.kind is OrderKind(wanted["kind"])
                and (p.offer.duration_hours or None) == wanted.get("hours")
            )
            quote = await purchases.quote(user_id, priced)
            try:
                stored = await purchases.buy(user_id, quote.id, tap=quote.id)
            except PurchaseUnconfirmed as exc:
                say(f"unconfirmed {exc.intent.id}")
            except ProviderError as exc:
                say(f"refused {type(exc).__name__}")
            else:
                say(f"bought {stored.id} {stored.provider_order_id}")
            os.environ.pop(ENV, None)
        say("done")
    finally:
        await app.close()


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as file:
        asyncio.run(main(json.load(file)))
