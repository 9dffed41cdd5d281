"""Run by tests/test_tracing.py in a process of its own (OpenTelemetry's provider and
its instrumentations are global to a process): serve a request that enqueues a job, run
the job, print every finished span as one JSON line. Its argument: an account name.

Settings come from the PIM_* environment: SQLite and in-process jobs, or PostgreSQL and
Redis with a real arq worker in burst mode.
"""

import asyncio
import sys

import httpx
import orjson
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pim import tracing
from pim.migrate import upgrade_async
from pim.settings import Settings
from resolvers import keys
from service.api import create_app
from service.runtime import build_runtime
from tests.jobs_helper import run_jobs


async def main() -> None:
    exporter = InMemorySpanExporter()
    tracing.setup("pim-probe", exporter=exporter)
    settings = Settings(outbound_allowed_networks=["127.0.0.0/8"], outbound_allow_http=True)
    await upgrade_async(settings)
    runtime = build_runtime(settings)
    try:
        async with runtime.db.transaction() as session:
            account = await keys.get_or_create_account(session, sys.argv[1])
            created = await keys.create_key(
                session, account=account, name="probe",
                scopes=["ext:products:write", "settings:manage"],
            )  # fmt: skip
        headers = {"X-API-Key": created.plain}
        transport = httpx.ASGITransport(app=create_app(settings, runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            hook = await client.post(
                "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=headers
            )
            assert hook.status_code == 201, hook.text
            batch = await client.post(
                "/api/v1/ext/products/batch",
                json={"products": [{"ean": "3760000000019", "name": "Lampe"}]},
                headers={**headers, "X-Request-ID": "probe-batch"},
            )
            assert batch.status_code == 200, batch.text
            await run_jobs(runtime)
            # Its failed delivery would otherwise stay due for the suite's later senders.
            gone = await client.delete(f"/api/v1/webhooks/{hook.json()['id']}", headers=headers)
            assert gone.status_code == 200, gone.text
    finally:
        await runtime.close()
    for span in exporter.get_finished_spans():
        context = span.get_span_context()
        assert context is not None
        line = {
            "name": span.name,
            "kind": span.kind.name,
            "trace_id": f"{context.trace_id:032x}",
            "span_id": f"{context.span_id:016x}",
            "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
            "attributes": {k: str(v) for k, v in (span.attributes or {}).items()},
        }
        sys.stdout.write(orjson.dumps(line).decode() + "\n")


if __name__ == "__main__":
    asyncio.run(main())
