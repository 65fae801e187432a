"""Named crash points for crash tests: the process SIGKILLs itself where ``BOT_CRASH_AT`` says.

``BOT_CRASH_AT=after_hold`` (a comma-separated list) makes :func:`crash_point` kill the running
process at that point, exactly as a power cut would, so tests can prove that the write-ahead
records and the reconciler leave no money held and no order unowned. Unset, it does nothing.
"""

from __future__ import annotations

import os
import signal

ENV = "BOT_CRASH_AT"


def crash_point(name: str) -> None:
    wanted = os.environ.get(ENV)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
