"""The delivery benchmark runs to the end and prints its table (its times are not checked)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

from benchmarks.delivery import HEADER, PLANS, QUICK_ORDERS, QUICK_SMS

ROOT = Path(__file__).resolve().parents[1]


def test_delivery_benchmark_quick_run_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "benchmarks.delivery", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warnings, unclosed resources or logged provider failures
    lines = done.stdout.splitlines()
    assert HEADER in lines
    table = itertools.takewhile(bool, lines[lines.index(HEADER) + 1 :])
    rows = {line.split()[0]: line.split() for line in table}
    assert list(rows) == [plan.provider for plan in PLANS] + ["all"]
    assert rows["all"][1:3] == [str(QUICK_ORDERS), str(QUICK_SMS)]
    assert f"{QUICK_SMS} sent, each exactly once" in done.stdout
    assert "failed polls 0." in done.stdout
