"""doctor asks Telegram about the token (getMe) and warns without admins; ``make emulators``
prints lines that can go into ``.env`` as they are (issue #11)."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from dotenv import dotenv_values

from bot.cli import doctor
from bot.config import Settings
from tests.emulators.base import EmulatorServer
from tests.fakes.bot_server import FakeBotServer

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class RefusingBotApi(EmulatorServer):
    """Telegram's answer to a revoked token."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_route("*", "/bot{token}/{method}", self._refuse)

    async def _refuse(self, request: web.Request) -> web.Response:
        body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
        return web.json_response(body, status=401)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeBotServer]:
    server = FakeBotServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def settings(tmp_path: Path, url: str, **values: Any) -> Settings:
    return Settings(
        _env_file=None,
        bot_token=TOKEN,
        telegram_api_url=url,
        database_path=tmp_path / "bot.sqlite3",
        **values,
    )


def rows(out: str) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        match = re.match(r"^(OK|WARN|FAIL)\s+(bot token|admins)\s+(.*)$", line)
        if match:
            found[match[2]] = (match[1], match[3])
    return found


async def test_doctor_names_the_bot_and_warns_without_admins(
    tmp_path: Path, telegram: FakeBotServer
) -> None:
    out = io.StringIO()
    await doctor(settings(tmp_path, telegram.base_url), out)
    found = rows(out.getvalue())
    assert found["bot token"] == ("OK", "accepted by Telegram: @numbers_bot")
    assert [(c.method, c.token) for c in telegram.log] == [("getMe", TOKEN)]
    assert found["admins"][0] == "WARN" and "ADMIN_IDS is empty" in found["admins"][1]
    assert TOKEN not in out.getvalue() and TOKEN.split(":")[1] not in out.getvalue()

    out = io.StringIO()
    await doctor(settings(tmp_path, telegram.base_url, admin_ids=frozenset({7, 8})), out)
    assert rows(out.getvalue())["admins"] == ("OK", "2 in ADMIN_IDS")


async def test_doctor_fails_a_token_telegram_refuses(tmp_path: Path) -> None:
    refusing = RefusingBotApi()
    await refusing.start()
    try:
        out = io.StringIO()
        code = await doctor(settings(tmp_path, refusing.base_url), out)
    finally:
        await refusing.stop()
    assert code == 1
    status, detail = rows(out.getvalue())["bot token"]
    assert status == "FAIL" and "Telegram refused the token (401 Unauthorized)" in detail
    assert TOKEN.split(":")[1] not in out.getvalue()


async def test_doctor_says_when_telegram_is_not_reachable(tmp_path: Path) -> None:
    unused = EmulatorServer()  # started and stopped: nothing listens on its port any more
    await unused.start()
    url = unused.base_url
    await unused.stop()
    out = io.StringIO()
    assert await doctor(settings(tmp_path, url), out) == 1
    status, detail = rows(out.getvalue())["bot token"]
    assert status == "FAIL" and detail.startswith(f"Telegram ({url}) not reachable: ")
    assert TOKEN.split(":")[1] not in out.getvalue()


async def test_make_emulators_prints_lines_for_dotenv() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.emulators",
        "--port",
        "0",
        cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not lines or not lines[-1].startswith("# Add BOT_TOKEN"):
                lines.append((await proc.stdout.readline()).decode().rstrip("\n"))
    finally:
        proc.terminate()
        await proc.wait()
    for line in lines:  # every line is a comment or KEY=value, as a .env takes it
        assert line.startswith("#") or re.fullmatch(r"[A-Z][A-Z0-9_]*=\S+", line), line
    values = dotenv_values(stream=io.StringIO("\n".join(lines)))
    assert {"GETSMS_API_KEY", "SMSBUS_BASE_URL", "BEESMS_TOKEN", "SMSONLINE_BASE_URL"} <= set(
        values
    )
    assert all(v and not v.startswith("#") for v in values.values())
    assert str(values["GETSMS_BASE_URL"]).startswith("http://127.0.0.1:")
    given: dict[str, Any] = {k.lower(): v for k, v in values.items()}
    Settings(_env_file=None, **given)  # accepted as is
