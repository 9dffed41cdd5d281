"""Driving the Imports API (/api/v1/imports) as a client does: upload a file, run its
job, read the job back, and the account's products the import left."""

from typing import Any

import httpx

from pim.runtime import Runtime
from resolvers import products
from tests.conftest import Key
from tests.jobs_helper import run_jobs

BASE = "/api/v1/imports"


async def upload(
    client: httpx.AsyncClient, key: Key, name: str, content: bytes, **form: str
) -> httpx.Response:
    return await client.post(
        f"{BASE}/jobs", headers=key.bearer, files={"file": (name, content)}, data=form
    )


async def imported(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, name: str, content: bytes, **form: str
) -> dict[str, Any]:
    """Upload, run the job, and return the job as GET /jobs/{id} shows it."""
    created = await upload(client, key, name, content, **form)
    assert created.status_code == 201, created.text
    await run_jobs(runtime)
    return await job(client, key, created.json()["id"])


async def job(client: httpx.AsyncClient, key: Key, job_id: str) -> dict[str, Any]:
    response = await client.get(f"{BASE}/jobs/{job_id}", headers=key.bearer)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def catalog(runtime: Runtime, key: Key) -> dict[str, Any]:
    """EAN → product of the key's account."""
    async with runtime.db.transaction() as session:
        page = await products.list_products(session, key.caller(), limit=500)
    return {row.product.ean: row for row in page.rows}
