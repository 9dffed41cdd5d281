"""Driving the products API (/api/v1/ext) as an ERP does: create products in batches,
and poll the delta feed with the loop of spec/ext-api.txt."""

import httpx

from jobs.demo import ean13
from tests.conftest import Key

BASE = "/api/v1/ext"


async def poll(
    client: httpx.AsyncClient, key: Key, since: str, page_size: int
) -> tuple[list[dict], str, int]:
    """The loop of spec/ext-api.txt, verbatim in spirit: feed meta.updated_at back, stop on a short page."""
    seen: list[dict] = []
    calls = 0
    while True:
        calls += 1
        assert calls < 100, "the polling loop does not terminate"
        response = await client.get(
            f"{BASE}/products/delta",
            params={"since": since, "page_size": page_size},
            headers=key.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        products = body["data"]
        since = body["meta"]["updated_at"]
        seen.extend(products)
        if len(products) < page_size:
            return seen, since, calls


async def bulk_create(client: httpx.AsyncClient, key: Key, first: int, count: int) -> None:
    items = [{"ean": ean13(n), "name": f"Produit {n}"} for n in range(first, first + count)]
    response = await client.post(
        f"{BASE}/products/batch", json={"products": items}, headers=key.headers
    )
    assert response.json()["data"]["created"] == count
