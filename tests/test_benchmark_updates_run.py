"""The updates benchmark runs to the end and prints its figures (its rates are not checked)."""

from __future__ import annotations

import itertools
import re

from benchmarks.harness import PROVIDERS
from benchmarks.updates import GOALS, HEADER, QUICK, SESSION
from tests.helpers import run_quick_benchmark


def test_updates_benchmark_quick_run_answers_every_update_and_prints_the_goals() -> None:
    out = run_quick_benchmark("benchmarks.updates")
    lines = out.splitlines()
    assert re.search(r"CPU cores available: \d+", out)
    assert "RATE_LIMIT_COUNT=30 per RATE_LIMIT_WINDOW=10 s" in out
    assert "none can be limited" in out
    # The mix: one row per step of the session, adding up to every update of a run.
    start = next(i for i, line in enumerate(lines) if "Mix (x" in line) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("in all"))
    counts = [int(line.split()[-2]) for line in lines[start:end]]
    assert len(counts) == len({step.label for step in SESSION})
    assert sum(counts) == int(lines[end].split()[-1]) == QUICK.updates
    # Every update of both runs answered, none refused.
    table = list(itertools.takewhile(bool, lines[lines.index(HEADER) + 1 :]))
    rows = {line.split()[0]: line.split() for line in table}
    assert list(rows) == ["echo", "bot"]
    for row in rows.values():
        assert row[1:4] == [str(QUICK.updates), str(QUICK.updates), "0"], row
        assert float(row[5]) > 0  # updates/s
    assert "NOT ANSWERED" not in out
    assert out.count("exited with 0 on SIGTERM") == 2
    # The catalogs came from the warm-up: no provider was asked while measuring.
    assert ", ".join(f"{p} 0" for p in PROVIDERS) in out
    goals = list(itertools.takewhile(bool, lines[lines.index(GOALS) + 1 :]))
    labels = ["bot vs echo updates/s", "fake Telegram CPU, echo", "fake Telegram CPU, bot"]
    for label in labels:
        (line,) = [g for g in goals if g.strip().startswith(label)]
        assert line.endswith((" met", " NOT met")), line
