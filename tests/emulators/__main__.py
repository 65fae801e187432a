"""Start the four provider emulators for a manual run of the bot: ``make emulators``.

Prints the settings to paste into ``.env`` (keys are the emulators' test keys, not secrets),
then serves until Ctrl+C. Get-SMS activations receive a code 20 s after purchase so the whole
flow can be tried by hand; the other emulators take SMS only from tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from tests.emulators.base import WallClock
from tests.emulators.suite import EmulatorSuite


async def serve(first_port: int) -> None:
    suite = EmulatorSuite(WallClock())
    suite.getsms.auto_sms_after = 20.0
    await suite.start(first_port)
    print("Provider emulators are up. Put these lines in .env:\n")
    for name, value in suite.env().items():
        print(f"{name}={value}")
    print("\nCtrl+C stops them.", flush=True)
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
