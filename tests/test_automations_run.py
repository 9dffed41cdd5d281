"""Running automations end to end: the scheduler tick or "run now" queues the run job, which
downloads the file from a real loopback server and starts an import job linked to the
automation; failures are recorded on the automation."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobs.automations import schedule_due_automations
from models import Automation
from pim.runtime import Runtime
from tests.conftest import Key
from tests.jobs_helper import run_jobs
from tests.loopback import serve

BASE = "/api/v1/imports/automations"
CSV = b"EAN;Titre;Prix HT\n3760000000001;Support TV;29,99\n"


@pytest.fixture
async def supplier_site() -> AsyncIterator[tuple[str, list[str]]]:
    hits: list[str] = []

    async def products(request: Request) -> Response:
        hits.append(request.url.path)
        return Response(CSV, media_type="text/csv")

    async with serve(Starlette(routes=[Route("/exports/products.csv", products)])) as base:
        yield base, hits


def http_automation(base: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": "Supplier A over HTTP",
        "supplier_code": "SUPPLIER_A",
        "schedule": "0 2 * * *",
        "file_source": {"type": "http", "url": f"{base}/exports/products.csv"},
        "mapping": {"EAN": "ean", "Titre": "name", "Prix HT": "price"},
        **changes,
    }


async def stored(runtime: Runtime, automation_id: str) -> Automation:
    async with runtime.db.transaction() as session:
        row = await session.scalar(select(Automation).where(Automation.id == _uuid(automation_id)))
    assert row is not None
    return row


def _uuid(value: str) -> Any:
    import uuid

    return uuid.UUID(value)


async def import_jobs_of(runtime: Runtime, automation_id: str) -> list[Any]:
    from models.imports import ImportJob

    async with runtime.db.transaction() as session:
        rows = await session.scalars(
            select(ImportJob).where(ImportJob.automation_id == _uuid(automation_id))
        )
        return list(rows)


async def test_run_now_downloads_the_file_and_starts_a_linked_import(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, loopback_allowed: None,
    supplier_site: tuple[str, list[str]],
) -> None:  # fmt: skip
    base, hits = supplier_site
    created = (await client.post(BASE, json=http_automation(base), headers=key.bearer)).json()
    response = await client.post(f"{BASE}/{created['id']}/run", headers=key.bearer)
    assert response.status_code == 202
    assert response.json() == {"id": created["id"], "status": "queued"}
    await run_jobs(runtime)
    assert hits == ["/exports/products.csv"]
    automation = await stored(runtime, created["id"])
    assert automation.last_status == "started", automation.last_error
    assert automation.last_run_at is not None and automation.last_error is None
    jobs = await import_jobs_of(runtime, created["id"])
    assert [(j.id, j.file_name, j.supplier_code) for j in jobs] == [
        (automation.last_import_job_id, "products.csv", "SUPPLIER_A")
    ]
    assert jobs[0].mapping == {"EAN": "ean", "Titre": "name", "Prix HT": "price"}
    assert (jobs[0].status, jobs[0].products_created) == ("completed", 1), jobs[0].last_error
    body = (await client.get(f"{BASE}/{created['id']}", headers=key.bearer)).json()
    assert body["last_status"] == "started"
    assert body["last_import_job_id"] == str(automation.last_import_job_id)


async def test_a_source_resolving_to_a_private_address_fails_the_run(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, supplier_site: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    base, hits = supplier_site
    # Saved while loopback was allowed; by run time it is not: the name is checked after
    # resolution, at connect time, not when it was saved.
    monkeypatch.setattr(runtime.settings, "outbound_allowed_networks", ["127.0.0.1/32", "::1/128"])
    monkeypatch.setattr(runtime.settings, "outbound_allow_http", True)
    body = http_automation(base.replace("127.0.0.1", "localhost"))
    response = await client.post(BASE, json=body, headers=key.bearer)
    assert response.status_code == 201, response.text
    created = response.json()
    monkeypatch.setattr(runtime.settings, "outbound_allowed_networks", [])
    await client.post(f"{BASE}/{created['id']}/run", headers=key.bearer)
    await run_jobs(runtime)
    assert hits == []
    automation = await stored(runtime, created["id"])
    assert automation.last_status == "failed"
    assert "non publique" in (automation.last_error or "")
    assert automation.last_import_job_id is None


async def test_the_scheduler_starts_a_due_run_once_whatever_the_number_of_schedulers(
    runtime: Runtime, client: httpx.AsyncClient, key: Key, loopback_allowed: None,
    supplier_site: tuple[str, list[str]],
) -> None:  # fmt: skip
    base, hits = supplier_site
    created = (await client.post(BASE, json=http_automation(base), headers=key.bearer)).json()
    fire = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Automation).where(Automation.id == _uuid(created["id"])).values(next_run_at=fire)
        )
    # Two workers' cron ticks at once: both see the run due, with one job id between them.
    ctx = {"runtime": runtime}
    counts = await asyncio.gather(schedule_due_automations(ctx), schedule_due_automations(ctx))
    assert sum(counts) >= 1
    await run_jobs(runtime)
    await schedule_due_automations(ctx)  # a later tick: no longer due
    await run_jobs(runtime)
    assert hits == ["/exports/products.csv"]
    automation = await stored(runtime, created["id"])
    assert automation.last_status == "started", automation.last_error
    assert automation.last_fire_at == fire
    assert automation.next_run_at is not None and automation.next_run_at.hour == 2
    assert len(await import_jobs_of(runtime, created["id"])) == 1


async def test_the_scheduler_runs_where_the_jobs_run(runtime: Runtime) -> None:
    """Real stack: an arq cron on every worker, each minute. Embedded default: a task of the
    API process, started and stopped with the app."""
    from jobs.automations import embedded_scheduler

    def scheduler_tasks() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "automation-scheduler"]

    async with embedded_scheduler(runtime):
        running = scheduler_tasks()
    assert scheduler_tasks() == []
    if runtime.settings.redis_url:
        from service.worker import worker_for

        assert running == []
        worker = worker_for(runtime.settings)  # burst workers (tests) run no cron
        [cron] = [c for c in worker.cron_jobs if c.name == "cron:schedule_due_automations"]
        assert (cron.minute, cron.hour, cron.second) == (None, None, 0)
    else:
        assert len(running) == 1 and running[0].done()


async def test_credentials_sealed_with_a_retired_key_fail_the_run_clearly(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, loopback_allowed: None,
    supplier_site: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    base, hits = supplier_site
    body = http_automation(base)
    body["file_source"] |= {"username": "user", "password": "secret"}
    created = (await client.post(BASE, json=body, headers=key.bearer)).json()
    monkeypatch.setattr(runtime.settings, "secret_key", "a-new-secret-without-the-old-one")
    await client.post(f"{BASE}/{created['id']}/run", headers=key.bearer)
    await run_jobs(runtime)
    assert hits == []
    automation = await stored(runtime, created["id"])
    assert (automation.last_status, automation.last_error) == (
        "failed", "identifiants illisibles : ressaisissez le mot de passe",
    )  # fmt: skip
    # The source can still be edited: the client gives the password again.
    response = await client.patch(
        f"{BASE}/{created['id']}", json={"file_source": {"password": "secret"}}, headers=key.bearer
    )
    assert response.status_code == 200, response.text
    assert response.json()["file_source"]["url"] == body["file_source"]["url"]
