"""A bot process killed (SIGKILL) at every point of a purchase loses no money and no order.

Each case runs a real bot process (``tests/crash_worker.py``) against the emulators of this
test, on its own SQLite file, and kills it: by itself at a named crash point (after the hold,
after the provider's answer, after the commit) or from here while its purchase request is in
flight at the provider (which then completes it anyway). The bot is then started again here,
its reconciler and watcher run once the providers' windows are over, and:

* no hold is open and no write-ahead intent is left open;
* every order the provider charged for has its owner in the bot;
* what the user paid, net of refunds, is exactly what the providers kept (no markup here).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from bot.providers.http import RetryPolicy
from bot.services.wallet import WalletService
from storage.intents import IntentsRepo
from storage.ledger import LedgerRepo
from storage.orders import OrdersRepo
from tests.emulators.base import EmulatorServer
from tests.emulators.suite import EmulatorSuite
from tests.fakes.telegram import TOKEN, FakeBotApi
from tests.services import fresh_postgres_schema
from tests.stack import stack_settings

ROOT = Path(__file__).resolve().parent.parent
USER = 5005
CREDIT = Decimal("20.00")
WAIT = 60.0  # seconds: a bound on every wait for the worker process


@dataclass(frozen=True)
class Spec:
    name: str
    provider: str
    service: str
    country: str
    kind: str
    hours: int | None
    request: str  # the purchase request's name at the emulator (for the in-flight kill)

    def job(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "service": self.service,
            "country": self.country,
            "kind": self.kind,
            "hours": self.hours,
        }


SPECS = {
    "getsms-activation": Spec(
        "getsms-activation", "getsms", "tg", "RU", "activation", None, "getnumber"
    ),
    "getsms-rental": Spec("getsms-rental", "getsms", "tg", "RU", "rental", 24, "getnumber"),
    "smsbus": Spec("smsbus", "smsbus", "tg", "US", "activation", None, "number"),
}
POINTS = ("after_hold", "in_flight", "after_answer", "after_commit")


def settings_values(
    suite: EmulatorSuite, db: Path, database_url: str | None = None
) -> dict[str, Any]:
    values: dict[str, Any] = {k.lower(): v for k, v in suite.env(("getsms", "smsbus")).items()}
    values.update(
        bot_token=TOKEN,
        database_path=str(db),
        database_url=database_url,
        provider_timeout=2.0,
        admin_ids=[1],
        access_mode="public",
        price_markup_percent=0,
    )
    return values


def kept(suite: EmulatorSuite, initial: dict[str, Decimal]) -> Decimal:
    """What the providers kept of the operator's money (every account is in USD here)."""
    getsms = initial["getsms"] - suite.getsms.balance_of() - suite.getsms.reserved_of()
    smsbus = initial["smsbus"] - suite.smsbus.balance - suite.smsbus.frozen
    return getsms + smsbus


def charged_orders(suite: EmulatorSuite) -> set[tuple[str, str]]:
    """Provider orders that cost money now: charged activations and unrefunded rentals."""
    found = {("getsms", a.id) for a in suite.getsms.activations.values() if a.charged}
    found |= {("getsms", r.id) for r in suite.getsms.rentals.values() if r.status != 2}
    found |= {("smsbus", str(r.id)) for r in suite.smsbus.orders.values() if r.code}
    return found


def end_every_lifetime(suite: EmulatorSuite) -> None:
    """The providers close every activation still waiting (no SMS came: nothing charged)."""
    for act in list(suite.getsms.activations.values()):
        if act.status == "active":
            suite.getsms.expire(act.id)
    for request in list(suite.smsbus.orders.values()):
        if request.status == "waiting":
            suite.smsbus.expire(request.id)


async def run_worker(job_file: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.crash_worker",
        str(job_file),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def scenario(
    workdir: Path,
    purchases: list[Spec],
    crash_on: int,
    point: str,
    database_url: str | None = None,
) -> None:
    """``database_url``: on PostgreSQL (else the SQLite file in ``workdir``)."""
    suite = EmulatorSuite()
    await suite.start()
    try:
        db = workdir / "bot.sqlite3"
        values = settings_values(suite, db, database_url)
        initial = {"getsms": suite.getsms.balance_of(), "smsbus": suite.smsbus.balance}
        job: dict[str, Any] = {
            "settings": values,
            "now": suite.clock.now().isoformat(),
            "user_id": USER,
            "credit": str(CREDIT),
            "purchases": [p.job() for p in purchases],
            "crash_on": crash_on,
            "crash_at": point if point != "in_flight" else "",
        }
        job_file = workdir / "job.json"
        job_file.write_text(json.dumps(job), encoding="utf-8")
        victim = purchases[crash_on] if crash_on < len(purchases) else None
        server: EmulatorServer | None = None
        if point == "in_flight" and victim is not None:
            server = suite.servers[victim.provider]
            earlier = sum(
                1
                for p in purchases[:crash_on]
                if (p.provider, p.request) == (victim.provider, victim.request)
            )
            server.gate(victim.request, skip=earlier)
        process = await run_worker(job_file)
        if server is not None:
            await asyncio.wait_for(server.gated_arrived.wait(), WAIT)
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.wait(), WAIT)
            server.open_gate()  # the provider completes the purchase nobody waits for now
            await asyncio.wait_for(server.gated_done.wait(), WAIT)
        else:
            await asyncio.wait_for(process.wait(), WAIT)
        out, err = await process.communicate()
        if victim is not None:
            assert process.returncode == -signal.SIGKILL, (out, err)
        else:
            assert process.returncode == 0, (out, err)

        await check_recovery(suite, db, initial, database_url)
    finally:
        await suite.stop()


async def check_recovery(
    suite: EmulatorSuite, db: Path, initial: dict[str, Decimal], database_url: str | None
) -> None:
    """The bot starts again: reconciler and watcher finish everything; then the invariants."""
    settings = stack_settings(
        suite,
        db,
        ("getsms", "smsbus"),
        database_url=database_url,
        admin_ids=frozenset({1}),
        access_mode="public",
        price_markup_percent=0,
    )
    app = await create_app(
        settings,
        session=FakeBotApi(clock=suite.clock),
        clock=suite.clock,
        retry=RetryPolicy(attempts=2, initial_delay=0.001, max_delay=0.01),
    )
    try:
        suite.clock.advance(hours=2)  # past every provider's window for an unused number
        await app.reconciler.tick()
        await app.watcher.tick()
        end_every_lifetime(suite)
        await app.watcher.tick()  # the ends are seen, unused activations refunded

        assert await LedgerRepo(app.db).open_holds() == []
        assert await IntentsRepo(app.db).list_open() == []
        orders = OrdersRepo(app.db)
        for provider, order_id in charged_orders(suite):
            stored = await orders.get_by_provider(provider, order_id)
            assert stored is not None, f"{provider} order {order_id} was paid for by nobody"
            assert stored.user_id == USER
        wallet: WalletService = app.dp["wallet"]
        paid = CREDIT - (await wallet.balance(USER)).amount
        assert paid == kept(suite, initial), (paid, kept(suite, initial))
    finally:
        await app.close()


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("spec", list(SPECS.values()), ids=lambda s: s.name)
async def test_a_purchase_killed_at_any_point_is_finished_after_restart(
    tmp_path: Path, spec: Spec, point: str
) -> None:
    await scenario(tmp_path, [spec], 0, point)


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("spec", list(SPECS.values()), ids=lambda s: s.name)
async def test_a_purchase_killed_at_any_point_is_finished_on_postgresql(
    tmp_path: Path, spec: Spec, point: str
) -> None:
    """The same SIGKILLs with the books in PostgreSQL (the replicas' database)."""
    async with fresh_postgres_schema() as database_url:
        await scenario(tmp_path, [spec], 0, point, database_url)


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    purchases=st.lists(st.sampled_from(sorted(SPECS)), min_size=1, max_size=3),
    crash=st.integers(min_value=0, max_value=3),
    point=st.sampled_from(POINTS),
)
def test_random_purchases_with_a_kill_anywhere_keep_the_books(
    purchases: list[str], crash: int, point: str
) -> None:
    """Random interleavings: a few purchases in one process, killed at a random one (or none,
    when ``crash`` is past the last)."""
    with tempfile.TemporaryDirectory() as workdir:
        asyncio.run(scenario(Path(workdir), [SPECS[p] for p in purchases], crash, point))
