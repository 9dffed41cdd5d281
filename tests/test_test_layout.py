"""The test tree's own rule: what tests share lives in helper modules named after what they
hold (fixtures in conftest.py), never in a test module that another module imports: the
shared code would hide where nobody looks for it, and pytest would collect the imported
test module's fixtures and names a second time under another module."""

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)


def imported_test_modules(source: str, module: str) -> set[str]:
    """The test modules (tests.….test_*) that `source`, the text of `module`, imports,
    however it spells the import (absolute, relative, or the module as a name)."""
    package = module.split(".")[:-1]
    candidates: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            candidates |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            parent = ".".join([*base, *([node.module] if node.module else [])])
            candidates |= {f"{parent}.{alias.name}" for alias in node.names}
    found = set()
    for name in candidates:
        parts = name.split(".")
        tests = [i for i, part in enumerate(parts) if part.startswith("test_")]
        if parts[0] == "tests" and tests:
            found.add(".".join(parts[: tests[0] + 1]))
    return found


def test_no_module_of_the_tests_imports_a_test_module() -> None:
    offenders = {
        module_name(path): sorted(imported_test_modules(path.read_text(), module_name(path)))
        for path in sorted(TESTS.rglob("*.py"))
    }
    assert {module: names for module, names in offenders.items() if names} == {}


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import tests.test_cli", {"tests.test_cli"}),
        ("from tests.connectors.test_medusa import x", {"tests.connectors.test_medusa"}),
        ("from tests.connectors import test_sfcc", {"tests.connectors.test_sfcc"}),
        ("from ..test_fnac import y", {"tests.connectors.test_fnac"}),
        ("from . import test_cli", {"tests.connectors.fakes.test_cli"}),
        ("from tests.connectors.helpers import products", set()),
        ("from tests.conftest import Key", set()),
        ("import pytest", set()),
    ],
)
def test_the_check_sees_every_spelling_of_such_an_import(source: str, found: set[str]) -> None:
    assert imported_test_modules(source, "tests.connectors.fakes.probe") == found
