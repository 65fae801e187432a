"""A provider whose prices are far off the others' (a wrong account currency) is flagged to
the admins, once a day per offer."""

from __future__ import annotations

from pathlib import Path

from bot.services.price_alerts import PriceAlerts
from tests.stack import running_stack

ALERT = "⚠️ A provider's price looks wrong"


async def test_a_price_far_off_the_others_is_told_to_admins_once_a_day(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({1001})) as stack:
        admin = stack.client(1001)
        await admin.send("/start")
        # Read in the wrong currency, Get-SMS's US activation looks 90 times dearer.
        for pool in ("ssha", "usavirt"):  # both of its US pools
            stack.suite.getsms.set_stock("tg", pool, price="90.00", count=10)
        alerts: PriceAlerts = stack.app.dp["price_alerts"]

        await admin.send("/buy")
        await admin.click(admin.last_message(), "Telegram")
        await admin.send("united")
        await admin.click(admin.last_message(), "🇺🇸 United States")
        offers = admin.last_message()
        await alerts.drain()
        told = [m.text or "" for m in admin.messages() if (m.text or "").startswith(ALERT)]
        assert len(told) == 1
        assert "getsms tg/US activation" in told[0]

        stack.clock.advance(minutes=5)  # the cache is stale: the offers are fetched again
        await admin.click(offers, "🔄 Refresh")
        await alerts.drain()
        again = [m.text or "" for m in admin.messages() if (m.text or "").startswith(ALERT)]
        assert len(again) == 1  # not twice in a day

        stack.clock.advance(days=1, minutes=1)
        await admin.click(offers, "🔄 Refresh")
        await alerts.drain()
        later = [m.text or "" for m in admin.messages() if (m.text or "").startswith(ALERT)]
        assert len(later) == 2
