"""Small helpers the adapter, story and benchmark tests share."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
from aiohttp import web

from bot.providers.http import ProviderHttp, RetryPolicy

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on (now): for refused connections or a new server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def provider_http(
    provider: str,
    client: httpx.AsyncClient,
    base_url: str,
    key: str,
    retry: RetryPolicy,
    timeout: float = 5.0,
) -> ProviderHttp:
    """The shared HTTP rules for one provider, as the registry builds them, with the test key."""
    return ProviderHttp(provider, client, base_url, secrets=(key,), timeout=timeout, retry=retry)


async def serve_locally(runner: web.AppRunner) -> str:
    """Start ``runner`` on a free port of 127.0.0.1; its base URL."""
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"http://127.0.0.1:{port}"


def run_quick_benchmark(module: str, timeout: float = 120) -> str:
    """``python -W error -m <module> --quick`` from the project's root: what it printed.

    It must exit with 0 and write nothing to standard error: no warnings, unclosed resources or
    logged failures, in it or in the processes it starts.
    """
    done = subprocess.run(  # noqa: S603 - this interpreter, one of our benchmark modules
        [sys.executable, "-W", "error", "-m", module, "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    return done.stdout
