"""Prometheus metrics: what is counted, and the functions the code calls to count it.

Several processes (uvicorn workers, arq workers on the same host) share one view through
prometheus-client's multiprocess mode: with `PROMETHEUS_MULTIPROC_DIR` set before start,
each process writes its samples to files there and `/metrics` adds them up (`pim serve
--workers N` sets a fresh directory itself). A worker on another host serves its own
(`PIM_WORKER_METRICS_PORT`). Queue depths and the webhook backlog are read from Redis and
the database when scraped, so they are right whichever process answers.
"""

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

CONTENT_TYPE = CONTENT_TYPE_LATEST
# The *_created series (when each labelled series first appeared) double the output for
# nothing a dashboard here reads.
disable_created_metrics()
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "pim_http_requests_total",
    "HTTP requests served, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "pim_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GRAPHQL_OPERATIONS = Counter(
    "pim_graphql_operations_total",
    "GraphQL operations, by operation name and outcome (ok, error).",
    ["operation", "outcome"],
)
GRAPHQL_COST = Histogram(
    "pim_graphql_query_cost",
    "Computed cost of the GraphQL operations admitted, by operation name.",
    ["operation"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
RATE_LIMITED = Counter(
    "pim_rate_limited_requests_total", "Requests refused because their key's rate limit was hit."
)
JOB_RUNS = Counter(
    "pim_job_runs_total",
    "Job runs ended, by job function and outcome (ok, retry, failed).",
    ["function", "outcome"],
)
JOB_DURATION = Histogram(
    "pim_job_duration_seconds",
    "Time one run of a job took, by job function.",
    ["function"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
)
IMPORT_ROWS = Counter(
    "pim_import_rows_total",
    "Import rows written, by outcome (created, updated, unchanged, failed).",
    ["outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "pim_webhook_deliveries_total",
    "Webhook delivery attempts ended, by outcome (succeeded, failed: will retry, dead).",
    ["outcome"],
)
CONNECTOR_ITEMS = Counter(
    "pim_connector_items_total",
    "Products a connector sync handled, by platform and outcome (ok, failed, skipped).",
    ["platform", "outcome"],
)
DB_POOL_IN_USE = Gauge(
    "pim_db_pool_connections_in_use",
    "Database connections checked out of the pool (summed over live processes).",
    multiprocess_mode="livesum",
)

# Client-chosen GraphQL operation names would make series without end: the first few
# hundred distinct names of a process are kept, later ones are counted as "other".
MAX_OPERATION_NAMES = 200
_OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_operation_names: set[str] = set()


def operation_label(name: str | None) -> str:
    if not name:
        return "anonymous"
    if not _OPERATION_NAME.fullmatch(name):
        return "invalid"
    if name in _operation_names:
        return name
    if len(_operation_names) >= MAX_OPERATION_NAMES:
        return "other"
    _operation_names.add(name)
    return name


# The labelled children of the per-request metrics, kept: looking one up through
# `labels()` (a lock, a tuple of strings) cost more than counting.
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    children = _request_children.get((route, method, status))
    if children is None:
        children = (
            HTTP_REQUESTS.labels(route, method, str(status)),
            HTTP_DURATION.labels(route, method),
        )
        _request_children[route, method, status] = children
    children[0].inc()
    children[1].observe(seconds)


def observe_graphql(operation: str | None, outcome: str, cost: float | None = None) -> None:
    """One GraphQL operation ended with `outcome` ("ok" or "error"); `cost` is its computed
    query cost when the cost analysis ran."""
    label = operation_label(operation)
    GRAPHQL_OPERATIONS.labels(label, outcome).inc()
    if cost is not None:
        GRAPHQL_COST.labels(label).observe(cost)


def rate_limited() -> None:
    RATE_LIMITED.inc()


def observe_job(function: str, outcome: str, seconds: float) -> None:
    JOB_RUNS.labels(function, outcome).inc()
    JOB_DURATION.labels(function).observe(seconds)


def import_rows(*, rows: int, created: int, updated: int, failed: int) -> None:
    """Count a written chunk of `rows` rows; those neither failed, created nor updated were
    left unchanged (or skipped by the import's mode)."""
    unchanged = rows - created - updated - failed
    for outcome, count in (
        ("created", created), ("updated", updated), ("unchanged", unchanged), ("failed", failed)
    ):  # fmt: skip
        if count:
            IMPORT_ROWS.labels(outcome).inc(count)


def webhook_deliveries(outcomes: Iterable[str]) -> None:
    for outcome in outcomes:
        WEBHOOK_DELIVERIES.labels(outcome).inc()


def connector_items(platform: str, *, ok: int, failed: int, skipped: int) -> None:
    for outcome, count in (("ok", ok), ("failed", failed), ("skipped", skipped)):
        if count:
            CONNECTOR_ITEMS.labels(platform, outcome).inc(count)


def watch_pool(engine: AsyncEngine) -> None:
    """Keep DB_POOL_IN_USE up to date from the pool's own checkout and checkin events."""
    event.listen(engine.sync_engine, "checkout", lambda *_: DB_POOL_IN_USE.inc())
    event.listen(engine.sync_engine, "checkin", lambda *_: DB_POOL_IN_USE.dec())


@dataclass(frozen=True, slots=True)
class QueueState:
    queue: str
    depth: int
    oldest_age_seconds: float


@dataclass(frozen=True, slots=True)
class LiveState:
    """What is read from Redis and the database at scrape time."""

    queues: list[QueueState]
    webhook_backlog: int | None
    # Unfinished jobs that have not progressed for PIM_JOB_STUCK_AFTER_SECONDS, by kind.
    stuck_jobs: dict[str, int] | None = None


class LiveCollector(Collector):
    def __init__(self, state: LiveState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "pim_job_queue_depth", "Jobs queued or running, by queue.", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "pim_job_queue_oldest_age_seconds",
            "Age of the oldest job queued or running (due, not deferred), by queue.",
            labels=["queue"],
        )
        for queue in self.state.queues:
            depth.add_metric([queue.queue], queue.depth)
            oldest.add_metric([queue.queue], queue.oldest_age_seconds)
        yield depth
        yield oldest
        if self.state.webhook_backlog is not None:
            yield GaugeMetricFamily(
                "pim_webhook_backlog",
                "Webhook deliveries not delivered yet (pending or failed and due for a retry).",
                value=self.state.webhook_backlog,
            )
        if self.state.stuck_jobs is not None:
            stuck = GaugeMetricFamily(
                "pim_jobs_stuck",
                "Unfinished jobs that have not progressed for PIM_JOB_STUCK_AFTER_SECONDS.",
                labels=["kind"],
            )
            for kind, count in sorted(self.state.stuck_jobs.items()):
                stuck.add_metric([kind], count)
            yield stuck


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


def _process_metrics() -> CollectorRegistry:
    """This process's metrics, or in multiprocess mode those of every process."""
    if not multiprocess_dir():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def serve(port: int) -> None:
    """Serve the metrics on a port of their own, from a thread (a `pim worker` on a host
    of its own)."""
    start_http_server(port, registry=_process_metrics())


def exposition(live: LiveState | None = None) -> bytes:
    """The text exposition of every process's metrics, then the live ones."""
    text = generate_latest(_process_metrics())
    if live is not None:
        extra = CollectorRegistry()
        extra.register(LiveCollector(live))
        text += generate_latest(extra)
    return text
