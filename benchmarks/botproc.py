"""``python -m benchmarks.botproc``: ``python -m bot`` with the delivery benchmark's instruments.

The delivery benchmark runs the bot as ``python -m bot``; only with ``--trace`` or ``--profile``
does it run this instead, which is the same ``bot.__main__.main()`` with, from the environment:

* ``BENCH_TRACE=path``: every request start the watcher's rate caps grant
  (``bot.services.scheduler`` at debug level), one ``request start <provider> <monotonic>`` a
  line in ``path`` (not in the bot's log), to compare the bot's own pacing with the arrival
  times the emulators record;
* ``BENCH_PROFILE=path``: a cProfile of the whole process, written to ``path`` when the bot has
  stopped (``python -m pstats path``).
"""

from __future__ import annotations

import cProfile
import logging
import os
import sys


def main() -> int:
    trace = os.environ.get("BENCH_TRACE")
    if trace:
        handler = logging.FileHandler(trace, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("bot.services.scheduler")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        logger.propagate = False
    from bot.__main__ import main as bot_main

    profile_to = os.environ.get("BENCH_PROFILE")
    if not profile_to:
        return bot_main(["run"])
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return bot_main(["run"])
    finally:
        profiler.disable()
        profiler.dump_stats(profile_to)


if __name__ == "__main__":
    sys.exit(main())
