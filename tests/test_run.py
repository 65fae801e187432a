"""``python -m bot`` as operators run it: fails fast on bad settings, else polls a Bot API.

The process talks to a local fake Bot API (``TELEGRAM_API_URL``) and the provider emulators.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.emulators.suite import EmulatorSuite
from tests.fakes.bot_server import FakeBotServer
from tests.stack import PROVIDER_ENV_NAMES

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_"


def clean_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_ENV_NAMES}
    env.update(PYTHONPATH=str(ROOT), DATABASE_PATH=str(tmp_path / "bot.sqlite3"))
    env.update(values)
    return env


async def spawn_bot(tmp_path: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """``python -m bot`` in ``tmp_path`` (no stray .env), output and errors in one pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def run_bot(tmp_path: Path, env: dict[str, str]) -> tuple[int, str]:
    process = await spawn_bot(tmp_path, env)
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"GETSMS_API_KEY": "k", "GETSMS_CURRENCY": "USD"}, "BOT_TOKEN is missing"),
        (
            {"BOT_TOKEN": "not-a-token", "GETSMS_API_KEY": "k", "GETSMS_CURRENCY": "USD"},
            "BOT_TOKEN: does not look like",
        ),
        ({"BOT_TOKEN": TOKEN}, "no provider is enabled"),
        (
            {
                "BOT_TOKEN": TOKEN,
                "GETSMS_API_KEY": "k",
                "GETSMS_CURRENCY": "USD",
                "GETSMS_BASE_URL": "ftp://x",
            },
            "GETSMS_BASE_URL",
        ),
        ({"BOT_TOKEN": TOKEN, "GETSMS_API_KEY": "k"}, "GETSMS_CURRENCY is required"),
    ],
)
async def test_start_fails_fast_with_a_clear_message(
    tmp_path: Path, values: dict[str, str], expected: str
) -> None:
    code, output = await run_bot(tmp_path, clean_env(tmp_path, **values))
    assert code == 2
    assert expected in output
    assert "Traceback" not in output
    assert "not-a-token" not in output and TOKEN.split(":")[1] not in output


async def test_the_bot_polls_the_configured_bot_api_and_answers(tmp_path: Path) -> None:
    suite = EmulatorSuite()
    await suite.start()
    api = FakeBotServer()
    await api.start()
    env = clean_env(tmp_path, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api.base_url, **suite.env())
    process = await spawn_bot(tmp_path, env)
    try:
        commands = await api.wait_for("setMyCommands")
        # Everyone's menu in the default language; private mode: no /wallet nor /paysupport.
        assert "language_code" not in commands.params
        menu = {c["command"]: c["description"] for c in commands.params["commands"]}
        assert list(menu) == [
            "start",
            "buy",
            "numbers",
            "alerts",
            "help",
            "language",
            "settings",
            "support",
            "terms",
        ]
        assert (menu["start"], menu["alerts"], menu["settings"]) == (
            "Main menu",
            "My alerts",
            "Time zone",
        )
        api.push(
            {
                "message": {
                    "message_id": 1,
                    "date": 1767268800,
                    "chat": {"id": 777, "type": "private"},
                    "from": {"id": 777, "is_bot": False, "first_name": "Eve"},
                    "text": "/start",
                    "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                }
            }
        )
        sent = await api.wait_for("sendMessage")
        assert sent.params["chat_id"] == 777
        assert str(sent.params["text"]).startswith("Hi, Eve!")
        assert {c.token for c in api.log} == {TOKEN}  # the path carries it, as Telegram's does
    finally:
        process.terminate()
        output, _ = await asyncio.wait_for(process.communicate(), 30)
        await api.stop()
        await suite.stop()
    log = output.decode()
    assert TOKEN.split(":")[1] not in log
    for secret in suite.env().values():
        if "://" not in secret:
            assert secret not in log
