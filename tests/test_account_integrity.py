"""The hot tables (products, stock, events, change stamps) keep account_id without a
foreign key: every write path refuses a caller whose account does not exist, even when
this process still holds the key in its cache (docs/data-integrity.md)."""

from typing import Any

import httpx
from sqlalchemy import delete, func, select

from jobs.demo import ean13
from models import Account, Event, Product, ProductChange, ProductStock
from pim.auth import hash_key
from pim.runtime import Runtime
from resolvers import keys
from tests.conftest import Key

EAN = ean13(77)
GRAPHQL_WRITES = (
    ('mutation { upsertProduct(input: {ean: "%s", name: "X"}) { product { id } } }' % EAN),
    ('mutation { updateStock(items: [{ean: "%s", stock: 3}]) { updated } }' % EAN),
    ('mutation { updatePrices(items: [{ean: "%s", price: 9.5}]) { updated } }' % EAN),
)
REST_WRITES: tuple[tuple[str, str, Any], ...] = (
    ("POST", "/api/v1/ext/products", {"ean": EAN, "title": "X", "stock": 2}),
    ("POST", "/api/v1/ext/products/batch", {"products": [{"ean": EAN, "title": "X"}]}),
    ("POST", "/api/v1/products", {"ean": EAN, "name": "X"}),
    ("POST", "/api/v1/windev/products/sync", [{"reference": "R", "ean": EAN, "name": "X"}]),
    ("POST", "/api/v1/windev/stock/update", [{"ean": EAN, "stock": 4}]),
    ("POST", "/api/v1/windev/prices/update", [{"ean": EAN, "price_ttc": 3.5}]),
)


async def rows_of(runtime: Runtime, key: Key) -> int:
    async with runtime.db.read() as session:
        counts = [
            await session.scalar(
                select(func.count()).select_from(model).where(model.account_id == key.account_id)
            )
            for model in (Product, ProductStock, Event, ProductChange)
        ]
    return sum(c or 0 for c in counts)


async def test_no_write_path_accepts_a_caller_whose_account_is_gone(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    async with runtime.db.transaction() as session:
        caller = await keys.authenticate(session, key.plain)
        await session.execute(delete(Account).where(Account.id == key.account_id))

    def refused(response: httpx.Response) -> bool:
        return response.status_code == 401

    for method, path, body in REST_WRITES:
        # As if another process had deleted the account while this one still trusts the key.
        keys.recent_callers.put(hash_key(key.plain), caller)
        response = await client.request(method, path, json=body, headers=key.headers)
        assert refused(response), (path, response.status_code, response.text)
    for query in GRAPHQL_WRITES:
        keys.recent_callers.put(hash_key(key.plain), caller)
        response = await client.post("/graphql", json={"query": query}, headers=key.headers)
        body = response.json()
        assert body["data"] is None, query
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    keys.recent_callers.put(hash_key(key.plain), caller)
    upload = await client.post(
        "/api/v1/imports/jobs",
        headers=key.headers,
        files={"file": ("p.csv", f"ean;name\n{EAN};X\n".encode())},
    )
    assert refused(upload), upload.text

    # Without the cached key, admission itself refuses: the key went with its account.
    keys.recent_callers.forget(hash_key(key.plain))
    response = await client.post(*REST_WRITES[0][1:2], json=REST_WRITES[0][2], headers=key.headers)
    assert refused(response)
    assert await rows_of(runtime, key) == 0
