"""Admins' delivery table and daily summary (issue #12): /admin → 📊 Delivery shows the offers
that deliver best and worst (share of code, typical time, samples), with a toggle for a daily
summary that is sent once a day at ADMIN_SUMMARY_HOUR (UTC), to the admins who turned it on
only, and never twice: not on a second tick, nor by a restarted app on the same database."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from aiogram.types import Message

from bot.app import create_app
from bot.callbacks import AdminAction, AdminCb
from bot.domain import Order, OrderKind, Sms
from bot.money import Money
from storage.admin_summaries import AdminSummariesRepo
from storage.models import OrderStatus
from storage.offer_stats import OfferRef
from tests.stack import Stack, running_stack

ADMIN = 1001
OTHER_ADMIN = 1002


class Outcomes:
    """Orders bought and told about through the storage API (as tests/test_offer_stats.py)."""

    def __init__(self, stack: Stack, user_id: int = ADMIN) -> None:
        self.stack, self.user_id, self.count = stack, user_id, 0

    async def order(self, ref: OfferRef, price: Money, *, code_after: float | None) -> None:
        """One order of ``ref``: a code after ``code_after`` seconds, or none (it expires)."""
        self.count += 1
        dp, clock = self.stack.app.dp, self.stack.clock
        order = Order(
            provider=ref.provider,
            order_id=f"P-{self.count}",
            kind=OrderKind(ref.kind),
            phone="12025550123",
            service=ref.service,
            country=ref.country,
            price=price,
        )
        stored = await dp["order_repo"].create(self.user_id, order, None, clock.now())
        if code_after is not None:
            clock.advance(seconds=code_after)
            await dp["messages_repo"].add_new(
                stored.id, [Sms(str(self.count), "code 12345", "12345")], clock.now()
            )
        status = OrderStatus.FINISHED if code_after is not None else OrderStatus.EXPIRED
        await dp["order_repo"].set_status(stored.id, status, None, clock.now())

    async def offer(self, ref: OfferRef, codes: int, failures: int, seconds: float = 40) -> None:
        for _ in range(codes):
            await self.order(ref, USD, code_after=seconds)
        for _ in range(failures):
            await self.order(ref, USD, code_after=None)


USD = Money(Decimal("0.50"), "USD")


def at(stack: Stack, moment: datetime) -> None:
    """Move the fake clock forward to ``moment``."""
    assert moment >= stack.clock.now()
    stack.clock.advance(seconds=(moment - stack.clock.now()).total_seconds())


def text(message: Message) -> str:
    return message.text or ""


async def test_the_delivery_table_in_russian_shows_best_and_worst_offers(tmp_path: Path) -> None:
    async with running_stack(
        tmp_path, admin_ids=frozenset({ADMIN}), offer_stats_min_samples=2
    ) as stack:
        admin = stack.client(ADMIN, language_code="ru")
        await admin.send("/start")
        outcomes = Outcomes(stack)
        await outcomes.offer(OfferRef("smsbus", "tg", "US", "activation"), 21, 0, seconds=40)
        await outcomes.offer(OfferRef("getsms", "wa", "RU", "activation"), 2, 0, seconds=150)
        await outcomes.offer(OfferRef("beesms", "tg", "RU", "rental"), 2, 1)
        await outcomes.offer(OfferRef("smsbus", "wa", "US", "activation"), 1, 1)
        await outcomes.offer(OfferRef("getsms", "tg", "GB", "activation"), 2, 3)
        await outcomes.offer(OfferRef("smsonline", "tg", "US", "activation"), 1, 3)
        await outcomes.offer(OfferRef("smsbus", "vk", "RU", "activation"), 0, 2)
        await outcomes.offer(OfferRef("getsms", "vk", "US", "activation"), 0, 1)  # too few

        await admin.send("/admin")
        panel = admin.last_message()
        assert "📊 Доставка" in admin.buttons(panel)
        await admin.click(panel, "📊 Доставка")
        screen = admin.last_message()
        assert screen.message_id == panel.message_id  # the panel is edited in place
        lines = text(screen).splitlines()
        assert lines[0] == "📊 Доставка (предложения, у которых не меньше 2 недавних заказов)"
        best = lines[lines.index("Лучшие") + 1 : lines.index("Худшие") - 1]
        worst = lines[lines.index("Худшие") + 1 : lines.index("Худшие") + 3]
        # Best share first, ties to more samples; Russian plurals for 21, 2, 3 and 5 orders.
        assert [line.split(": ", 1)[1] for line in best] == [
            "✅ 100% · ~40 с (21 недавний заказ)",
            "✅ 100% · ~2 мин (2 недавних заказа)",
            "⚠️ 67% · ~40 с (3 недавних заказа)",
            "⚠️ 50% · ~40 с (2 недавних заказа)",
            "⚠️ 40% · ~40 с (5 недавних заказов)",
        ]
        assert best[0].startswith("• SMS-BUS · Telegram · ")
        assert "аренда" in best[2]
        # The worst first; an offer with one outcome (under the minimum) is in neither list.
        assert [line.split(": ", 1)[1] for line in worst] == [
            "⚠️ 0% (2 недавних заказа)",
            "⚠️ 25% · ~40 с (4 недавних заказа)",
        ]
        assert "Get-SMS · VK" not in text(screen) and len(lines) == lines.index("Худшие") + 5
        assert lines[-1].startswith("🔕 Ежедневная сводка выключена.")
        assert admin.buttons(screen) == ["🔕 Ежедневная сводка: выкл.", "« Админка"]

        await admin.click(screen, "« Админка")
        assert "Заказы: 40 заказов" in text(admin.last_message())
        assert admin.last_message().message_id == panel.message_id


async def test_the_daily_summary_toggle_is_per_admin(tmp_path: Path) -> None:
    async with running_stack(
        tmp_path, admin_ids=frozenset({ADMIN, OTHER_ADMIN}), admin_summary_hour=7
    ) as stack:
        admin, other = stack.client(ADMIN), stack.client(OTHER_ADMIN)
        await admin.send("/admin")
        await admin.click(admin.last_message(), "📊 Delivery")
        screen = admin.last_message()
        assert text(screen).startswith("📊 Delivery: no offer has 20 recent orders yet.")
        assert text(screen).endswith(
            "🔕 Daily summary: off. Turn it on to get yesterday's orders and money, and these "
            "offers, every day at 07:00 UTC."
        )
        await admin.click(screen, "🔕 Daily summary: off")
        assert admin.answers()[-1] == "🔔 Daily summary on: every day at 07:00 UTC."
        screen = admin.last_message()
        assert admin.buttons(screen) == ["🔔 Daily summary: on", "« Admin"]
        assert text(screen).endswith(
            "🔔 You get a daily summary at 07:00 UTC: yesterday's "
            "orders and money, and these offers."
        )
        summary = stack.app.daily_summary
        assert await summary.enabled(ADMIN) and not await summary.enabled(OTHER_ADMIN)

        await other.send("/admin")  # another admin's setting is their own
        await other.click(other.last_message(), "📊 Delivery")
        assert other.buttons() == ["🔕 Daily summary: off", "« Admin"]

        await admin.click(screen, "🔔 Daily summary: on")
        assert admin.answers()[-1] == "🔕 Daily summary off."
        assert admin.buttons() == ["🔕 Daily summary: off", "« Admin"]
        assert not await summary.enabled(ADMIN)

        stranger = stack.client(5005)
        await stranger.send("/start")
        await stranger.click_data(
            stranger.last_message(), AdminCb(action=AdminAction.SUMMARY).pack()
        )
        assert stranger.answers()[-1] == "This command is for the bot's admins."
        assert not await summary.enabled(5005)


async def test_the_daily_summary_is_sent_once_at_the_hour_even_after_a_restart(
    tmp_path: Path,
) -> None:
    async with running_stack(
        tmp_path,
        admin_ids=frozenset({ADMIN, OTHER_ADMIN}),
        offer_stats_min_samples=2,
        admin_summary_hour=9,
    ) as stack:
        clock = stack.clock
        admin, other = stack.client(ADMIN), stack.client(OTHER_ADMIN, language_code="ru")
        await admin.send("/start")
        await other.send("/start")
        outcomes = Outcomes(stack)
        tg_us = OfferRef("smsbus", "tg", "US", "activation")
        # 1 January (the fake clock starts at noon): three orders in two currencies.
        await outcomes.order(tg_us, USD, code_after=30)
        await outcomes.order(tg_us, USD, code_after=50)
        await outcomes.order(
            OfferRef("getsms", "tg", "RU", "activation"),
            Money(Decimal(30), "RUB"),
            code_after=None,
        )
        at(stack, datetime(2026, 1, 2, 7, tzinfo=UTC))  # an order of today is not yesterday's
        await outcomes.order(tg_us, USD, code_after=20)

        await admin.send("/admin")  # before the hour: today's summary is still to come
        await admin.click(admin.last_message(), "📊 Delivery")
        await admin.click(admin.last_message(), "🔕 Daily summary: off")
        seen_by_admin, seen_by_other = len(admin.messages()), len(other.messages())

        summary = stack.app.daily_summary
        assert await summary.tick() == 0
        at(stack, datetime(2026, 1, 2, 8, 59, 59, tzinfo=UTC))
        assert await summary.tick() == 0
        at(stack, datetime(2026, 1, 2, 9, tzinfo=UTC))
        assert await summary.tick() == 1
        sent = admin.messages()[seen_by_admin:]
        assert len(sent) == 1
        lines = text(sent[0]).splitlines()
        assert lines[0] == "📅 Daily summary for 1 January 2026 (UTC)"
        assert "Orders: 3 orders · got a code 2 (67%)" in lines
        assert "Revenue from wallets: —" in lines  # admins do not pay from wallets
        assert "Spent at providers: ₽30.00, $1.00" in lines
        assert "Profit: -₽30.00, -$1.00" in lines
        assert "Best" in lines
        assert any(line.endswith("✅ 100% · ~30 s (3 recent orders)") for line in lines)
        assert lines[-1] == "To stop it: /admin → 📊 Delivery."
        assert sent[0].reply_markup is None

        clock.advance(minutes=5)
        assert await summary.tick() == 0  # the day is taken
        restarted = await create_app(stack.app.settings, session=stack.api, clock=clock)
        try:
            again = restarted.daily_summary
            assert await again.tick() == 0  # a new process on the same database: still once
            assert len(admin.messages()) == seen_by_admin + 1

            # Turned on after the hour, the other admin's first summary comes the next day.
            await other.send("/admin")
            await other.click(other.last_message(), "📊 Доставка")
            await other.click(other.last_message(), "🔕 Ежедневная сводка: выкл.")
            seen_by_other = len(other.messages())
            assert await again.tick() == 0 and await summary.tick() == 0

            clock.advance(days=1)  # 3 January, 09:05: both, each once, each in their language
            # Both processes at once: each admin's day is claimed by one of them only.
            assert sum(await asyncio.gather(again.tick(), summary.tick())) == 2
            assert await summary.tick() == 0 and await again.tick() == 0
        finally:
            await restarted.close()
        mine = admin.messages()[seen_by_admin + 1 :]
        assert [text(m).splitlines()[0] for m in mine] == [
            "📅 Daily summary for 2 January 2026 (UTC)"
        ]
        assert "Orders: 1 order · got a code 1 (100%)" in text(mine[0])
        theirs = other.messages()[seen_by_other:]
        assert [text(m).splitlines()[0] for m in theirs] == ["📅 Сводка за 2 января 2026 (UTC)"]
        assert "Заказы: 1 заказ · получили код 1 (100%)" in text(theirs[0])


async def test_admins_who_did_not_opt_in_get_no_summary(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN, OTHER_ADMIN})) as stack:
        admin, other = stack.client(ADMIN), stack.client(OTHER_ADMIN)
        await admin.send("/start")
        await other.send("/start")
        await admin.send("/admin")
        await admin.click(admin.last_message(), "📊 Delivery")
        await admin.click(admin.last_message(), "🔕 Daily summary: off")  # on...
        await admin.click(admin.last_message(), "🔔 Daily summary: on")  # ...and off again
        seen = len(admin.messages()), len(other.messages())

        stack.clock.advance(days=1)  # past 09:00 the next day
        assert await stack.app.daily_summary.tick() == 0
        assert (len(admin.messages()), len(other.messages())) == seen


async def test_a_day_is_claimed_once_and_only_by_an_admin_who_wants_it(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        repo, now = AdminSummariesRepo(stack.app.db), stack.clock.now()
        day = date(2026, 1, 2)
        assert not await repo.claim(ADMIN, day, now)  # never turned on
        await repo.set_enabled(ADMIN, True, now, done=date(2026, 1, 1))
        assert await repo.pending([ADMIN, OTHER_ADMIN], day) == [ADMIN]
        assert await repo.claim(ADMIN, day, now)
        assert not await repo.claim(ADMIN, day, now)  # the same day again
        assert not await repo.claim(ADMIN, date(2026, 1, 1), now)  # an earlier day
        assert await repo.pending([ADMIN], day) == []
        await repo.set_enabled(ADMIN, False, now, done=date(2026, 1, 1))
        await repo.set_enabled(ADMIN, True, now, done=date(2026, 1, 1))  # keeps the later day
        assert await repo.pending([ADMIN], day) == []
        assert await repo.pending([OTHER_ADMIN], date(2026, 1, 3)) == []  # never turned on: no row
        await repo.set_enabled(ADMIN, False, now)
        assert not await repo.claim(ADMIN, date(2026, 1, 3), now)  # turned off
