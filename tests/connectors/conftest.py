"""Fixtures for the connector tests: a runtime and app whose outbound guard lets loopback
through (the fakes live there), a fake platform served per test, and data factories."""

import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from models import PriceList, PriceListItem
from pim.runtime import Runtime
from pim.settings import Settings
from resolvers.product_writes import WriteItem, write_products
from service.api import create_app
from service.runtime import build_runtime
from tests.conftest import Key
from tests.connectors.fakes.faults import Faults
from tests.connectors.fakes.stores import FAKES, StoreFake
from tests.jobs_helper import run_jobs
from tests.loopback import serve

PLATFORMS = sorted(FAKES)


@pytest.fixture(scope="session")
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The test stack, except that connectors may reach loopback over http, and retries
    do not wait (a platform's Retry-After: 0 is honoured as is)."""
    opened = settings.model_copy(
        update={
            "outbound_allowed_networks": ["127.0.0.0/8"],
            "outbound_allow_http": True,
            "connector_retry_base_delay": 0.0,
            "connector_retry_max_delay": 0.0,
            # Long enough for a loaded test machine, short enough for hang faults.
            "connector_timeout_seconds": 2.0,
        }
    )
    runtime = build_runtime(opened)
    yield runtime
    await runtime.close()


@pytest.fixture(scope="session")
def open_app(open_runtime: Runtime) -> FastAPI:
    return create_app(open_runtime.settings, open_runtime)


@pytest.fixture
async def open_client(open_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=open_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class Store:
    fake: StoreFake
    url: str
    faults: Faults

    @property
    def platform(self) -> str:
        return str(self.fake.connector(self.url)["platform"])

    def fields(self, **extra: Any) -> dict[str, Any]:
        return {"name": f"Boutique {self.platform}", **self.fake.connector(self.url), **extra}


@asynccontextmanager
async def served(platform: str) -> AsyncIterator[Store]:
    """The platform's fake on loopback, behind faults a test may schedule."""
    fake, faults = FAKES[platform](), Faults(hang_seconds=2.5)
    async with serve(faults.wrap(fake.app())) as url:
        yield Store(fake, url, faults)


@pytest.fixture(params=PLATFORMS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async with served(request.param) as served_store:
        yield served_store


@pytest.fixture
async def woo() -> AsyncIterator[Store]:
    async with served("woocommerce") as served_store:
        yield served_store


def ean13(seed: int | None = None) -> str:
    body = f"376{(seed if seed is not None else random.randrange(10**9)):09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


async def make_products(runtime: Runtime, key: Key, count: int) -> list[uuid.UUID]:
    """Products with EAN, reference, price and stock, in id order."""
    base = random.randrange(10**8)
    items = [
        WriteItem(
            {
                "ean": ean13(base + i),
                "name": f"Produit {i}",
                "reference": f"REF-{base}-{i}",
                "price": 10.0 + i,
                "stock": i,
            }
        )
        for i in range(count)
    ]
    async with runtime.db.transaction() as session:
        result = await write_products(session, key.caller(), items=items)
    assert all(r.ok for r in result.results)
    return result.product_ids


async def make_price_list(
    runtime: Runtime, key: Key, channel: str, prices: dict[uuid.UUID, float]
) -> None:
    async with runtime.db.transaction() as session:
        price_list = PriceList(
            id=uuid.uuid4(), account_id=key.account_id, name=channel, channel=channel
        )
        session.add(price_list)
        await session.flush()
        session.add_all(
            PriceListItem(
                id=uuid.uuid4(),
                account_id=key.account_id,
                price_list_id=price_list.id,
                product_id=pid,
                channel_price=price,
            )
            for pid, price in prices.items()
        )


async def create_connector(
    client: httpx.AsyncClient, key: Key, fields: dict[str, Any], prefix: str = "/api/v1/connectors"
) -> dict[str, Any]:
    response = await client.post(f"{prefix}/", json=fields, headers=key.bearer)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def sync(
    client: httpx.AsyncClient,
    runtime: Runtime,
    key: Key,
    connector_id: str,
    kind: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start a sync through REST, let the connectors queue run it, return the finished job."""
    response = await client.post(
        f"/api/v1/connectors/{connector_id}/sync/{kind}", json=body, headers=key.bearer
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    await run_jobs(runtime, queue="connectors")
    job = await client.get(
        f"/api/v1/connectors/{connector_id}/sync/jobs/{response.json()['job_id']}",
        headers=key.bearer,
    )
    assert job.status_code == 200, job.text
    result: dict[str, Any] = job.json()
    return result
