"""OpenTelemetry traces, with an in-memory exporter in a process of its own: the request
that enqueues a job and the job's spans make one trace, SQL, Redis and httpx included."""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

from pim.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _spans(settings: Settings) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIM_", "OTEL_"))}
    # The suite's own data directory: the same secret key (the sender of later tests must
    # read what the probe encrypts) and, on the embedded default, the same database.
    env["PIM_DATA_DIR"] = str(settings.data_dir)
    env["PIM_LOG_LEVEL"] = "WARNING"
    if settings.database_url:
        env["PIM_DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        env["PIM_REDIS_URL"] = settings.redis_url
    result = subprocess.run(
        [sys.executable, "-m", "tests.tracing_probe", f"acct-{uuid.uuid4().hex[:12]}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_a_job_continues_the_trace_of_the_request_that_enqueued_it(settings: Settings) -> None:
    spans = _spans(settings)
    (request,) = [s for s in spans if s["name"] == "POST /api/v1/ext/products/batch"]
    assert request["kind"] == "SERVER"
    trace = [s for s in spans if s["trace_id"] == request["trace_id"]]
    (job,) = [s for s in trace if s["name"] == "job deliver_webhooks"]
    assert job["kind"] == "CONSUMER"
    assert job["parent_id"] == request["span_id"]
    # The delivery's HTTP call, made by the job, is in the same trace under the job.
    deliveries = [s for s in trace if s["kind"] == "CLIENT" and s["name"] == "POST"]
    assert deliveries
    assert {s["parent_id"] for s in deliveries} <= {job["span_id"]}
    statements = [s for s in trace if s["attributes"].get("db.system") in ("sqlite", "postgresql")]
    assert any(s["name"].startswith("INSERT") for s in statements)
    if settings.redis_url:
        assert any(s["attributes"].get("db.system") == "redis" for s in trace)


def test_without_an_endpoint_no_tracing_code_is_loaded(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIM_", "OTEL_"))}
    env["PIM_DATA_DIR"] = str(tmp_path)
    script = (
        "import sys\n"
        "from service.api import create_app\n"
        "create_app()\n"
        "loaded = [m for m in sys.modules if m.startswith(("
        "'opentelemetry.sdk', 'opentelemetry.instrumentation', 'opentelemetry.exporter'))]\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert result.stdout.decode().strip() == "[]"
