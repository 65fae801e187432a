"""tools/lockcheck.py (run by ``make lint``): the locks must be compiled from pyproject.toml.

Each case runs the script as ``make lint`` does, on a copy of the repository's own pyproject.toml
and locks, changed the way a developer would forget to follow with ``make lock``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "lockcheck.py"
FILES = ("pyproject.toml", "requirements.lock", "requirements-dev.lock")


def lockcheck(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(SCRIPT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name in FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_the_repository_locks_match_pyproject() -> None:
    result = lockcheck(ROOT)
    assert result.returncode == 0, result.stderr


def test_locks_cover_the_production_dependencies() -> None:
    for name in FILES[1:]:
        pinned = set(re.findall(r"^([a-z0-9-]+)==", (ROOT / name).read_text(), re.MULTILINE))
        assert {"asyncpg", "redis", "prometheus-client", "aiogram"} <= pinned, name
        text = (ROOT / name).read_text()
        assert "--hash=sha256:" in text
        # every pin carries hashes: pip --require-hashes refuses the file otherwise
        assert len(re.findall(r"^\S+==\S+", text, re.MULTILINE)) == len(
            re.findall(r"==\S+(?: ;[^\\]*)? \\\n    --hash=sha256:", text)
        ), name


def test_a_changed_specifier_fails_both_locks(copy: Path) -> None:
    edit(copy / "pyproject.toml", '"redis>=5.0"', '"redis>=5.1"')
    result = lockcheck(copy)
    assert result.returncode == 1
    for lock in ("requirements.lock", "requirements-dev.lock"):
        assert f"{lock}: pyproject.toml requires 'redis>=5.1'" in result.stderr
        assert f"{lock}: compiled from 'redis>=5.0'" in result.stderr


def test_an_added_runtime_dependency_fails_until_locked(copy: Path) -> None:
    edit(copy / "pyproject.toml", '"redis>=5.0",', '"redis>=5.0",\n    "orjson>=3",')
    result = lockcheck(copy)
    assert result.returncode == 1
    assert "requirements.lock: pyproject.toml requires 'orjson>=3'" in result.stderr
    # Headers rewritten without compiling (as if uv were skipped): the missing pin still fails.
    result = lockcheck(copy, "--write")
    assert result.returncode == 1
    assert "requirements.lock: orjson is not pinned" in result.stderr
    assert "requirements-dev.lock: orjson is not pinned" in result.stderr


def test_a_removed_dev_dependency_fails_only_the_dev_lock(copy: Path) -> None:
    edit(copy / "pyproject.toml", '    "hypothesis>=6.100",\n', "")
    result = lockcheck(copy)
    assert result.returncode == 1
    assert "requirements-dev.lock: compiled from 'hypothesis>=6.100'" in result.stderr
    assert "requirements.lock:" not in result.stderr


def test_a_pin_outside_its_specifier_fails(copy: Path) -> None:
    edit(copy / "requirements.lock", "\nasyncpg==0.32.0 \\", "\nasyncpg==0.28.0 \\")
    result = lockcheck(copy)
    assert result.returncode == 1
    assert "requirements.lock: asyncpg==0.28.0 is outside >=0.29" in result.stderr
    assert "asyncpg is 0.28.0 in requirements.lock but 0.32.0 in requirements-dev.lock" in (
        result.stderr
    )


def test_a_missing_lock_fails(copy: Path) -> None:
    (copy / "requirements-dev.lock").unlink()
    result = lockcheck(copy)
    assert result.returncode == 1
    assert "requirements-dev.lock is missing: run `make lock`" in result.stderr


def test_the_stamp_installs_from_the_hashed_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    stamp = makefile.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    assert stamp.startswith(" pyproject.toml requirements.lock requirements-dev.lock\n")
    assert "pip install --quiet --require-hashes -r requirements-dev.lock" in stamp
    assert "pip install --quiet --no-deps -e ." in stamp
    assert "tools/lockcheck.py" in makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
