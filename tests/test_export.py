"""/export (issue #11): orders and the wallet ledger as two CSV documents for the admin."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from aiogram.methods import SendDocument

from bot.services.export import cell
from tests.stack import running_stack

ADMIN = 1001


def leftovers() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("export-*.csv"))


async def test_export_sends_orders_and_ledger_as_csv(tmp_path: Path) -> None:
    async with running_stack(tmp_path, admin_ids=frozenset({ADMIN})) as stack:
        admin = stack.client(ADMIN, username="boss")
        await admin.send("/buy")
        await admin.click(admin.last_message(), "Telegram")
        await admin.click(admin.last_message(), "🇷🇺 Russia")
        await admin.click(admin.last_message(), lambda b: "Get-SMS · activation" in b.text)
        await admin.click(admin.last_message(), "✅ Buy")
        await stack.client(5005).send("/start")
        await admin.send("/credit 5005 3 =HYPERLINK(evil)")
        await admin.send("/debit 5005 1")

        admin.reset()
        before = leftovers()
        await admin.send("/export")
        calls = [c for c in stack.api.calls(SendDocument) if c.chat_id == ADMIN]
        assert [c.error for c in calls] == [None, None]
        files = {name: data for c in calls for name, data in c.files.values()}
        orders_name, ledger_name = sorted(files, key=lambda n: not str(n).startswith("orders"))
        assert str(orders_name).startswith("orders-20260101-")
        assert str(ledger_name).startswith("ledger-")

        orders = list(csv.DictReader(io.StringIO(files[orders_name].decode())))
        assert len(orders) == 1
        assert orders[0]["user_id"] == str(ADMIN) and orders[0]["username"] == "boss"
        assert (orders[0]["provider"], orders[0]["service"], orders[0]["country"]) == (
            "getsms",
            "tg",
            "RU",
        )
        assert (orders[0]["price"], orders[0]["currency"]) == ("0.50", "USD")

        ledger = list(csv.DictReader(io.StringIO(files[ledger_name].decode())))
        assert [(r["user_id"], r["kind"], r["amount"]) for r in ledger] == [
            ("5005", "adjust", "3.00"),
            ("5005", "adjust", "-1.00"),  # a number stays a number
        ]
        assert ledger[0]["reason"] == "'=HYPERLINK(evil)"  # never run as a formula
        captions = [c.method.caption for c in calls if isinstance(c.method, SendDocument)]
        assert captions == ["📄 Orders: 1 order (CSV)", "📄 Wallet ledger: 2 rows (CSV)"]
        assert leftovers() == before  # the temporary files are removed once sent

        user = stack.client(5005)
        await user.send("/export")
        assert (user.last_message().text or "") == "This command is for the bot's admins."


def test_cells_never_start_a_formula() -> None:
    assert [cell(v) for v in (None, "-0.50", "+7 999", "@x", "plain", 12)] == [
        "",
        "-0.50",
        "'+7 999",
        "'@x",
        "plain",
        "12",
    ]
