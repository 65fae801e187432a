"""The offers benchmark runs to the end and prints its table (its times are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.offers import HEADER, QUICK_RUNS

ROOT = Path(__file__).resolve().parents[1]


def test_offers_benchmark_quick_run_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "benchmarks.offers", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warnings, unclosed resources or logged provider failures
    lines = done.stdout.splitlines()
    assert HEADER in lines
    rows = {line.split()[0]: line.split() for line in lines[lines.index(HEADER) + 1 :] if line}
    assert rows["cold"][1] == str(QUICK_RUNS)
    assert rows["cached"][1] == str(QUICK_RUNS)
    assert "failed providers: none." in done.stdout
    assert "per cached tap: 0." in done.stdout
