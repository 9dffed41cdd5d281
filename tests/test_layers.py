"""The layers' import rules: one admission path and one copy of every operation hold only
while the surfaces do not reach into each other and resolvers/ stays free of HTTP."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_packages(package: str) -> dict[str, set[str]]:
    """For each module of `package`, the top-level packages it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("schema", {"rest_compat"}),
        ("rest_compat", {"schema"}),
        ("resolvers", {"fastapi", "starlette", "strawberry", "schema", "rest_compat"}),
    ],
)
def test_a_layer_does_not_import_its_siblings_or_the_web_frameworks(
    package: str, forbidden: set[str]
) -> None:
    offenders = {
        module: sorted(names & forbidden)
        for module, names in imported_packages(package).items()
        if names & forbidden
    }
    assert offenders == {}


def _opens_transaction(node: ast.AST) -> bool:
    return any(
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "transaction"
        for call in ast.walk(node)
    )


def test_graphql_fields_open_transactions_only_through_run_mutation() -> None:
    opening = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "schema").rglob("*.py"))
        if _opens_transaction(ast.parse(path.read_text()))
    ]
    assert opening == ["schema/errors.py"]


def test_rest_reads_never_open_a_write_transaction() -> None:
    offenders = []
    for path in sorted((ROOT / "rest_compat").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.AsyncFunctionDef):
                continue
            routes = [d for d in node.decorator_list if isinstance(d, ast.Call)]
            if any(getattr(d.func, "attr", None) == "get" for d in routes) and _opens_transaction(
                node
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert offenders == []
