"""The delivery benchmark runs to the end and prints its figures (its times are not checked)."""

from __future__ import annotations

import itertools

from benchmarks.delivery import GOALS, HEADER, QUICK
from benchmarks.harness import PROVIDERS
from tests.helpers import run_quick_benchmark


def test_delivery_benchmark_quick_run_sends_every_code_once_and_prints_the_goals() -> None:
    out = run_quick_benchmark("benchmarks.delivery")
    lines = out.splitlines()
    table = list(itertools.takewhile(bool, lines[lines.index(HEADER) + 1 :]))
    rows = {line.split()[0]: line.split() for line in table}
    assert list(rows) == [*PROVIDERS, "all"]
    assert rows["all"][2] == str(QUICK.sms)
    assert all(int(rows[p][2]) > 0 for p in PROVIDERS)  # every provider got SMS
    assert f"{QUICK.sms} sent, each exactly once; 0 other messages." in out
    assert "NOT SENT" not in out
    assert "exited with 0 on SIGTERM" in out
    goals = list(itertools.takewhile(bool, lines[lines.index(GOALS) + 1 :]))
    labels = ["hot SMS-to-chat p95", *(f"{p} requests/s" for p in PROVIDERS), "bot peak RSS"]
    for label in labels:
        (line,) = [g for g in goals if g.strip().startswith(label)]
        assert line.endswith((" met", " NOT met")), line
    assert any(g.strip().startswith("bot CPU") for g in goals)
