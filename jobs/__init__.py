"""Background job functions. Each takes (ctx, *ids), reloads what it needs and is idempotent."""

from jobs.automations import run_automation, schedule_due_automations
from jobs.demo import load_demo_catalog
from jobs.imports import run_import
from pim.jobs import JobFunction

REGISTRY: dict[str, JobFunction] = {
    "load_demo_catalog": load_demo_catalog,
    "run_automation": run_automation,
    "schedule_due_automations": schedule_due_automations,
    "run_import": run_import,
}
