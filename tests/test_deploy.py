"""The deployment files agree with the bot: Dockerfile, compose.yaml, the systemd unit.

No Docker engine runs where these tests run, so the image is never built here: the tests read
the files (the Dockerfile's instructions, compose.yaml as YAML), run the image's HEALTHCHECK
command against a real HTTP server, and ask ``systemd-analyze verify`` about the unit.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "sms-bot.service"
RUN = ["python", "-m", "bot"]  # the README's run: `make run` is `.venv/bin/python -m bot`


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def args(name: str) -> list[str]:
    return [rest for word, rest in instructions() if word == name]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last:]


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_cmd_is_the_readme_run() -> None:
    assert [json.loads(cmd) for cmd in args("CMD")] == [RUN]
    assert "make run     # runs the bot" in (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "\nrun: $(STAMP)\n\t$(BIN)/python -m bot\n" in makefile
    exec_start = re.search(r"^ExecStart=(.+)$", UNIT.read_text(), re.MULTILINE)
    assert exec_start is not None
    assert shlex.split(exec_start.group(1))[1:] == RUN[1:]


def test_two_stages_on_python_311_slim() -> None:
    assert args("ARG")[0] == "PYTHON_IMAGE=python:3.11-slim"
    assert args("FROM") == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    assert "--from=build /opt/venv /opt/venv" in [a for w, a in final_stage() if w == "COPY"]


def test_installs_the_lock_with_hashes_then_the_project_without_deps() -> None:
    runs = args("RUN")
    assert "requirements.lock ./" in args("COPY")
    assert "pip install --require-hashes --only-binary=:all: -r requirements.lock" in runs
    assert "pip install --no-deps ." in runs
    assert not [r for r in runs if "pip install" in r and "requirements-dev" in r]
    assert args("COPY").index("requirements.lock ./") < args("COPY").index("bot ./bot")


def test_runs_as_a_non_root_user_in_app_with_a_data_volume() -> None:
    stage = final_stage()
    users = [a for w, a in stage if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert [a for w, a in stage if w == "WORKDIR"] == ["/app"]
    database = Settings.model_fields["database_path"].default
    assert not database.is_absolute()
    volume = str(PurePosixPath("/app") / database.parent)
    assert [json.loads(a) for w, a in stage if w == "VOLUME"] == [[volume]]
    assert f"mkdir {database.parent} && chown bot:bot {database.parent}" in [
        a for w, a in stage if w == "RUN"
    ]


def test_exposes_the_webhook_port_it_sets() -> None:
    port = str(Settings.model_fields["webhook_port"].default)
    assert args("EXPOSE") == [port]
    # Set explicitly, the HTTP server (and /healthz) runs in polling mode too.
    env = " ".join(a for w, a in final_stage() if w == "ENV").split()
    assert f"WEBHOOK_PORT={port}" in env


def healthcheck() -> list[str]:
    (check,) = args("HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(command)
    assert isinstance(argv, list) and argv[:2] == ["python", "-c"]
    return [sys.executable, *argv[1:]]


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
async def test_the_healthcheck_asks_healthz_on_webhook_port(status: int, healthy: bool) -> None:
    asked: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        asked.append(f"{request.host} {request.path}")
        return web.Response(status=status, text="ok" if status == 200 else "not ready")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        process = await asyncio.create_subprocess_exec(
            *healthcheck(),
            # A proxy in the environment (nothing listens on port 9) must not be asked.
            env={"WEBHOOK_PORT": str(port), "http_proxy": "http://127.0.0.1:9", "PATH": "/bin"},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        await runner.cleanup()
    assert asked == [f"127.0.0.1:{port} /healthz"]
    assert (code == 0) is healthy


def test_dockerignore_keeps_secrets_and_state_out_but_not_what_the_image_copies() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".env", "data", ".git", ".mypy_cache", ".pytest_cache"} <= ignored
    for copy in args("COPY"):
        if copy.startswith("--from="):
            continue
        for source in copy.split()[:-1]:
            assert (ROOT / source).exists(), source
            assert source not in ignored


def test_compose_bot_service() -> None:
    services = compose()["services"]
    bot = services["bot"]
    assert bot["build"] == "."
    assert bot["env_file"] == ".env"
    assert "profiles" not in bot
    assert "bot-data:/app/data" in bot["volumes"]
    (port,) = bot["ports"]
    assert port.startswith("127.0.0.1:") and port.endswith(":8080")
    assert bot["restart"] == "unless-stopped"
    assert bot["depends_on"] == {
        name: {"condition": "service_healthy", "required": False} for name in ("postgres", "redis")
    }
    assert bot["read_only"] is True and bot["cap_drop"] == ["ALL"]


def test_compose_postgres_and_redis_are_profiles_with_healthchecks() -> None:
    data = compose()
    services = data["services"]
    assert services["postgres"]["profiles"] == ["postgres"]
    assert services["redis"]["profiles"] == ["redis"]
    assert services["proxy"]["profiles"] == ["proxy"]
    for name in ("postgres", "redis"):
        service = services[name]
        assert service["restart"] == "unless-stopped"
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in data["volumes"], volume
    text = (ROOT / "compose.yaml").read_text()
    assert "DATABASE_URL=postgresql://bot:" in text and "@postgres:5432/bot" in text
    assert "REDIS_URL=redis://redis:6379/0" in text
    assert "--scale bot=2" in text
    caddyfile = data["configs"]["caddyfile"]["content"]
    for private in ("/healthz", "/readyz", "/metrics"):
        assert f"respond {private}* 404" in caddyfile
    assert "reverse_proxy bot:8080" in caddyfile


def test_systemd_unit_fields() -> None:
    text = UNIT.read_text()
    for line in (
        "User=smsbot",
        "WorkingDirectory=/opt/sms-bot",
        "EnvironmentFile=/opt/sms-bot/.env",
        "ExecStart=/opt/sms-bot/.venv/bin/python -m bot",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/opt/sms-bot/data",
    ):
        assert f"\n{line}\n" in text, line


def verify(unit: Path) -> str:
    """What ``systemd-analyze verify`` says about ``unit``, with its exit status unless 0."""
    result = subprocess.run(  # noqa: S603 - fixed arguments
        ["systemd-analyze", "verify", str(unit)],  # noqa: S607 - found on PATH (skipif)
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    status = f"exit {result.returncode}: " if result.returncode else ""
    return status + result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # The unit as installed in this checkout: verify checks that ExecStart's file exists.
    text = UNIT.read_text().replace("/opt/sms-bot/.venv/bin/python", sys.executable)
    installed = tmp_path / "sms-bot.service"
    installed.write_text(text.replace("/opt/sms-bot", str(ROOT)))
    assert verify(installed) == ""
    # verify warns (exit 0) about an unknown key or value: the warning must be seen.
    broken = tmp_path / "broken.service"
    broken.write_text(installed.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    assert "Failed to parse service restart specifier" in verify(broken)
