"""The offers benchmark runs to the end and prints its figures (its times are not checked)."""

from __future__ import annotations

import itertools

from benchmarks.harness import PROVIDERS
from benchmarks.offers import GOALS, HEADER, QUICK_RUNS
from tests.helpers import run_quick_benchmark


def test_offers_benchmark_quick_run_prints_the_table_and_the_goals() -> None:
    out = run_quick_benchmark("benchmarks.offers", timeout=180)
    lines = out.splitlines()
    table = itertools.takewhile(bool, lines[lines.index(HEADER) + 1 :])
    rows = {line.split()[0]: line.split() for line in table}
    assert list(rows) == ["cold", "cached"]
    assert rows["cold"][1] == str(QUICK_RUNS)
    assert rows["cached"][1] == str(QUICK_RUNS)
    assert "failed providers: none." in out
    assert "per cached tap: 0." in out
    goals = list(itertools.takewhile(bool, lines[lines.index(GOALS) + 1 :]))
    labels = ["cold tap to offers p95", *(f"{p} requests per cold tap" for p in PROVIDERS)]
    for label in labels:
        (line,) = [g for g in goals if g.strip().startswith(label)]
        assert line.endswith((" met", " NOT met")), line
