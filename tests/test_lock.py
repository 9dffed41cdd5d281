"""The lock is what installs use (make install, the image, CI): it must say what
pyproject.toml asks for, and its exports must pin what it pins. Fails until `make lock`
has been run after a dependency change."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "pixee-pim"
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_key(requirement: Requirement, extra: str | None) -> tuple[str, str, str]:
    marker = str(requirement.marker) if requirement.marker else ""
    if extra is not None:
        clause = f'extra == "{extra}"'
        marker = f"({marker}) and {clause}" if marker else clause
    extras = ",".join(sorted(requirement.extras))
    return (f"{_normal(requirement.name)}[{extras}]", str(requirement.specifier), marker)


def _asked() -> set[tuple[str, str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    asked = {_requirement_key(Requirement(r), None) for r in project["dependencies"]}
    for extra, requirements in project.get("optional-dependencies", {}).items():
        asked |= {_requirement_key(Requirement(r), extra) for r in requirements}
    return asked


def _lock() -> dict:
    return tomllib.loads((ROOT / "uv.lock").read_text())


def _locked_project(lock: dict) -> dict:
    return next(p for p in lock["package"] if p["name"] == PROJECT)


def _recorded(project: dict) -> set[tuple[str, str, str]]:
    recorded = set()
    for entry in project["metadata"]["requires-dist"]:
        extras = ",".join(sorted(entry.get("extras", [])))
        text = f"{entry['name']}[{extras}]{entry.get('specifier', '')}"
        if "marker" in entry:
            text += f"; {entry['marker']}"
        requirement = Requirement(text)
        recorded.add(_requirement_key(requirement, None))
    return recorded


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[_normal(match[1])] = match[2]
    return pins


def test_the_lock_records_exactly_the_dependencies_of_pyproject() -> None:
    recorded = _recorded(_locked_project(_lock()))
    asked = _asked()
    assert recorded == asked, (
        f"uv.lock is stale, run `make lock`: only in pyproject {sorted(asked - recorded)}, "
        f"only in uv.lock {sorted(recorded - asked)}"
    )


def test_every_export_pins_the_locked_version_of_each_package() -> None:
    locked = {_normal(p["name"]): p["version"] for p in _lock()["package"]}
    for export in ("requirements.txt", "requirements-dev.txt"):
        pins = _pins(ROOT / export)
        assert pins, export
        assert {name: locked.get(name) for name in pins} == pins, f"{export}: run `make lock`"
    dev_only = set(_pins(ROOT / "requirements-dev.txt")) - set(_pins(ROOT / "requirements.txt"))
    assert {"pytest", "mypy", "ruff"} <= dev_only


def test_each_pinned_package_carries_a_hash() -> None:
    for export in ("requirements.txt", "requirements-dev.txt"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / export).read_text())
        pinned = [entry for entry in entries if _PIN.match(entry)]
        assert pinned
        unhashed = [entry.split()[0] for entry in pinned if "--hash=sha256:" not in entry]
        assert unhashed == [], f"{export}: pins without a hash"
