"""Background job functions. Each takes (ctx, *ids), reloads what it needs and is idempotent."""

from jobs.demo import load_demo_catalog
from jobs.imports import run_import
from pim.jobs import JobFunction

REGISTRY: dict[str, JobFunction] = {
    "load_demo_catalog": load_demo_catalog,
    "run_import": run_import,
}
