"""Background job functions. Each takes (ctx, *ids), reloads what it needs and is idempotent."""

from jobs.automations import run_automation, schedule_due_automations
from jobs.demo import load_demo_catalog
from jobs.imports import run_import
from jobs.sync import run_connector_sync
from jobs.webhooks import deliver_webhooks
from pim.job_telemetry import observe_all
from pim.jobs import JobFunction

REGISTRY: dict[str, JobFunction] = {
    "load_demo_catalog": load_demo_catalog,
    "run_connector_sync": run_connector_sync,
    "deliver_webhooks": deliver_webhooks,
    "run_automation": run_automation,
    "schedule_due_automations": schedule_due_automations,
    "run_import": run_import,
}
# Each run logs with its job id and the id of what it works on, and is counted and timed.
REGISTRY = observe_all(
    REGISTRY,
    {"run_import": "import_id", "run_connector_sync": "sync_id", "run_automation": "automation_id"},
)

# Seconds a job may run before arq gives up on it (the worker's default is 300): a push
# of a large catalog takes longer, and checkpoints per chunk make a re-run cheap. Only a
# bound on one run: a dead worker's job is taken over when its lease lapses (pim.leases),
# not when arq's in-progress key (this timeout + 10 s) expires.
TIMEOUTS: dict[str, int] = {
    "run_connector_sync": 6 * 3600,
}
