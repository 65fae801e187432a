"""The offers benchmark runs to the end and prints its figures (its times are not checked)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import PROVIDERS
from benchmarks.offers import GOALS, HEADER, QUICK_RUNS

ROOT = Path(__file__).resolve().parents[1]


def test_offers_benchmark_quick_run_prints_the_table_and_the_goals() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "benchmarks.offers", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # no warnings, unclosed resources or logged provider failures
    lines = done.stdout.splitlines()
    table = itertools.takewhile(bool, lines[lines.index(HEADER) + 1 :])
    rows = {line.split()[0]: line.split() for line in table}
    assert list(rows) == ["cold", "cached"]
    assert rows["cold"][1] == str(QUICK_RUNS)
    assert rows["cached"][1] == str(QUICK_RUNS)
    assert "failed providers: none." in done.stdout
    assert "per cached tap: 0." in done.stdout
    goals = list(itertools.takewhile(bool, lines[lines.index(GOALS) + 1 :]))
    labels = ["cold tap to offers p95", *(f"{p} requests per cold tap" for p in PROVIDERS)]
    for label in labels:
        (line,) = [g for g in goals if g.strip().startswith(label)]
        assert line.endswith((" met", " NOT met")), line
