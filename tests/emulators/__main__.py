"""Start the four provider emulators for a manual run of the bot: ``make emulators``.

Prints the settings for ``.env`` (keys are the emulators' test keys, not secrets) as lines that
can be appended to it as they are (``KEY=value``; everything else is a ``#`` comment), e.g.
``make emulators | tee -a .env``, then serves until Ctrl+C. Get-SMS activations receive a code
20 s after purchase so the whole flow can be tried by hand; the other emulators take SMS only
from tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
from collections.abc import Mapping

from tests.emulators.base import WallClock
from tests.emulators.suite import EmulatorSuite

_PLAIN = re.compile(r"[A-Za-z0-9_./:@,=+-]*")


def env_lines(env: Mapping[str, str]) -> list[str]:
    """``.env`` lines: a ``#`` comment saying what they are, then ``KEY=value`` (quoted only
    when the value has characters a ``.env`` reader would take otherwise)."""
    lines = ["# Provider emulators (make emulators): their test keys, not secrets."]
    for name, value in env.items():
        shown = value if _PLAIN.fullmatch(value) else '"' + value.replace('"', '\\"') + '"'
        lines.append(f"{name}={shown}")
    return lines


async def serve(first_port: int) -> None:
    suite = EmulatorSuite(WallClock())
    suite.getsms.auto_sms_after = 20.0
    await suite.start(first_port)
    for line in env_lines(suite.env()):
        print(line)
    print("# Add BOT_TOKEN and ADMIN_IDS yourself. Ctrl+C stops the emulators.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await suite.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators", description=__doc__)
    parser.add_argument(
        "--port",
        type=int,
        default=18001,
        help="first port; the four emulators take it and the next three (0: any free ports)",
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
