"""The top-level packages are layers: each is built on those beneath it and knows nothing
of those above, so none can be read, tested or loaded without the ones it names here.

Each package is imported alone, every module of it, in a fresh interpreter; what lands
in `sys.modules` is what it really depends on, lazy imports inside functions aside.
"""

import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.base import PLATFORMS, adapter_class

ROOT = Path(__file__).resolve().parent.parent

# What each package may load, directly or through another: the one table of the layers.
# `service` is the composition root; nothing loads it.
BENEATH: dict[str, set[str]] = {
    "pim": set(),
    "models": {"pim"},
    "connectors": {"pim"},
    "resolvers": {"pim", "models", "connectors"},
    "jobs": {"pim", "models", "connectors", "resolvers"},
    "schema": {"pim", "models", "connectors", "resolvers"},
    "rest_compat": {"pim", "models", "connectors", "resolvers"},
    "service": {"pim", "models", "connectors", "resolvers", "jobs", "schema", "rest_compat"},
}

# Imports every module of one package and prints the project packages then loaded.
# Alembic loads pim/alembic/ by file path (its env.py runs the migrations on import): a
# script directory, not a module of `pim`.
_LOAD_ALONE = """
import importlib, json, pkgutil, sys
name, packages = sys.argv[1], set(sys.argv[2:])
package = importlib.import_module(name)
for module in pkgutil.walk_packages(package.__path__, name + "."):
    if not module.name.startswith("pim.alembic"):
        importlib.import_module(module.name)
print(json.dumps(sorted({loaded.split(".")[0] for loaded in sys.modules} & packages - {name})))
"""


@pytest.fixture(scope="module")
def loaded_alone() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in BENEATH:
        result = subprocess.run(
            [sys.executable, "-c", _LOAD_ALONE, package, *BENEATH],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        graph[package] = set(json.loads(result.stdout))
    return graph


def test_each_package_loads_only_the_layers_beneath_it(loaded_alone: dict[str, set[str]]) -> None:
    beyond = {package: loaded - BENEATH[package] for package, loaded in loaded_alone.items()}
    assert beyond == {package: set() for package in BENEATH}


def test_no_package_loads_one_that_loads_it_back(loaded_alone: dict[str, set[str]]) -> None:
    order = list(graphlib.TopologicalSorter(loaded_alone).static_order())  # CycleError if not
    assert (order[0], order[-1]) == ("pim", "service")


def test_every_platform_module_registers_the_adapter_of_its_name() -> None:
    for platform, module in PLATFORMS.items():
        adapter = adapter_class(platform)
        assert (adapter.platform, adapter.__module__) == (platform, module)
    on_disk = {
        f"connectors.{path.stem}"
        for path in (ROOT / "connectors").glob("*.py")
        if "@register" in path.read_text()
    }
    assert on_disk == set(PLATFORMS.values())
