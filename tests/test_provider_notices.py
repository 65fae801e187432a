"""What an adapter learns at run time that the operator must fix (SMS.online dates in another
zone than SMSONLINE_TIMEZONE says) reaches the admins once and `doctor` until it is fixed."""

from __future__ import annotations

import io
import re
from datetime import timedelta, timezone
from pathlib import Path

from bot.cli import doctor
from tests.stack import running_stack, stack_settings
from tests.test_flow_orders import SMSONLINE, buy

NOTE = "SMS.online dates are UTC+03:00, not UTC+00:00 as SMSONLINE_TIMEZONE says"


async def test_a_server_zone_that_disagrees_is_told_to_admins_once_and_by_doctor(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({1001})) as stack:
        stack.suite.smsonline.server_zone = timezone(timedelta(hours=3))
        admin = stack.client(1001)
        _, order = await buy(stack, admin, SMSONLINE)
        # Read right despite the setting: 4 hours from now, not 7.
        assert order.expires_at == stack.clock.now() + timedelta(hours=4)

        await stack.app.watcher.tick()
        await stack.app.watcher.tick()

        told = [m.text or "" for m in admin.messages() if NOTE in (m.text or "")]
        assert len(told) == 1
        out = io.StringIO()
        settings = stack_settings(stack.suite, tmp_path / "bot.sqlite3")
        assert await doctor(settings, out) == 1
        assert re.search(rf"FAIL  SMS\.online notice +{re.escape(NOTE)}", out.getvalue())
