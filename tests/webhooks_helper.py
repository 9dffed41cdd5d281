"""What the webhook test modules share: the REST base path, a product's EAN, and
creating endpoints, writing products and running the sender at a chosen time."""

from datetime import datetime
from typing import Any

import httpx

from jobs import webhooks as sender
from pim.runtime import Runtime
from tests.conftest import Key

BASE = "/api/v1/webhooks"


def ean13(n: int) -> str:
    body = f"376{n:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


async def create_endpoint(
    client: httpx.AsyncClient, key: Key, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "description": "ERP mirror"}
    if events is not None:
        body["events"] = events
    response = await client.post(BASE, json=body, headers=key.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def write_products(client: httpx.AsyncClient, key: Key, *products: dict[str, Any]) -> None:
    response = await client.post(
        "/api/v1/ext/products/batch", json={"products": list(products)}, headers=key.headers
    )
    assert response.status_code == 200, response.text


async def deliveries(
    client: httpx.AsyncClient, key: Key, endpoint_id: str, **params: Any
) -> list[dict]:
    response = await client.get(
        f"{BASE}/{endpoint_id}/deliveries", params=params, headers=key.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    return items


async def deliver_at(runtime: Runtime, when: datetime) -> None:
    """Run the sender as if the clock said `when` (retries come due without sleeping)."""
    await sender.run(runtime, now=when)
