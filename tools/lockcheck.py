"""Keep the lock files honest about pyproject.toml, offline.

``make lock`` compiles ``requirements.lock`` (the ``[project]`` dependencies) and
``requirements-dev.lock`` (those plus the ``dev`` extra) with uv, then runs this with ``--write``:
it puts the requirements each lock was compiled from at its top, one ``# lockcheck:`` line each.
``make lint`` runs it without arguments and fails, naming the difference, when

- pyproject.toml's requirements are not those lines (a dependency added, removed or changed
  since the last ``make lock``),
- a requirement has no pin in its lock, or a pin its specifier refuses,
- the two locks pin a package they share at different versions.

Only the standard library and ``packaging`` (which the dev lock pins, via pytest) are used, and no
network: CI cannot re-run the resolver against its own result.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PREFIX = "# lockcheck: "
INTRO = PREFIX + "compiled from these pyproject.toml requirements (`make lint` compares them)"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


@dataclass(frozen=True)
class Lock:
    """A lock file and the pyproject.toml requirements it must be compiled from."""

    name: str
    requirements: tuple[str, ...]


def normalise(text: str) -> str:
    """One spelling per requirement: canonical name, sorted extras and specifiers, marker."""
    req = Requirement(text)
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{canonicalize_name(req.name)}{extras}{req.specifier}{marker}"


def expected_locks(pyproject: Path) -> list[Lock]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    runtime = tuple(project.get("dependencies", []))
    dev = tuple(project.get("optional-dependencies", {}).get("dev", []))
    return [Lock("requirements.lock", runtime), Lock("requirements-dev.lock", runtime + dev)]


def header_lines(lock: Lock) -> list[str]:
    return [INTRO] + [PREFIX + line for line in sorted(map(normalise, lock.requirements))]


def recorded(text: str) -> set[str]:
    """The requirements a lock's header says it was compiled from."""
    lines = (line.strip() for line in text.splitlines())
    return {line.removeprefix(PREFIX) for line in lines if line.startswith(PREFIX)} - {
        INTRO.removeprefix(PREFIX)
    }


def pins(text: str) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` line."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def problems(root: Path) -> list[str]:
    """Every way the locks under ``root`` disagree with its pyproject.toml (empty: they agree)."""
    found: list[str] = []
    pinned: dict[str, dict[str, str]] = {}
    for lock in expected_locks(root / "pyproject.toml"):
        path = root / lock.name
        if not path.exists():
            found.append(f"{lock.name} is missing: run `make lock`")
            continue
        text = path.read_text(encoding="utf-8")
        want = {normalise(line) for line in lock.requirements}
        have = recorded(text)
        found += [
            f"{lock.name}: pyproject.toml requires {req!r}, the lock was not compiled from it "
            "(run `make lock`)"
            for req in sorted(want - have)
        ]
        found += [
            f"{lock.name}: compiled from {req!r}, which pyproject.toml no longer requires "
            "(run `make lock`)"
            for req in sorted(have - want)
        ]
        pinned[lock.name] = versions = pins(text)
        for line in lock.requirements:
            req = Requirement(line)
            version = versions.get(canonicalize_name(req.name))
            if version is None:
                found.append(f"{lock.name}: {req.name} is not pinned (run `make lock`)")
            elif not req.specifier.contains(Version(version), prereleases=True):
                found.append(f"{lock.name}: {req.name}=={version} is outside {req.specifier}")
    if len(pinned) == 2:
        runtime, dev = pinned["requirements.lock"], pinned["requirements-dev.lock"]
        found += [
            f"{name} is {runtime[name]} in requirements.lock but {dev[name]} in "
            "requirements-dev.lock (run `make lock`)"
            for name in sorted(runtime.keys() & dev.keys())
            if runtime[name] != dev[name]
        ]
    return found


def write_headers(root: Path) -> None:
    """Put (or replace) the ``# lockcheck:`` lines at the top of each lock."""
    for lock in expected_locks(root / "pyproject.toml"):
        path = root / lock.name
        kept = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.startswith(PREFIX)
        ]
        path.write_text("\n".join([*header_lines(lock), *kept]) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--write", action="store_true", help="write the headers (make lock)")
    args = parser.parse_args(argv)
    try:
        if args.write:
            write_headers(args.root)
        found = problems(args.root)
    except (OSError, KeyError, tomllib.TOMLDecodeError, InvalidRequirement, InvalidVersion) as e:
        found = [f"cannot read pyproject.toml or the locks: {e!r}"]
    for line in found:
        sys.stderr.write(f"lockcheck: {line}\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
