"""Delta sync with the spec's own polling loop: it sees every product, it terminates when
more products than a page share a timestamp, and it misses nothing written by a
transaction that commits while it polls."""

from datetime import timedelta

import httpx
from sqlalchemy import update

from jobs.demo import ean13
from models import Product
from pim.runtime import Runtime
from pim.timeutil import parse_iso8601
from resolvers import products
from resolvers.product_writes import WriteItem, write_products
from tests.conftest import Key
from tests.ext_helper import BASE, bulk_create, poll
from tests.query_count import count_queries


async def test_since_is_required(client: httpx.AsyncClient, key: Key) -> None:
    response = await client.get(f"{BASE}/products/delta", headers=key.headers)
    assert response.status_code == 422
    assert response.json()["errors"] == ["since : champ obligatoire"]


async def test_the_loop_sees_every_product_once_in_order(
    client: httpx.AsyncClient, key: Key
) -> None:
    await bulk_create(client, key, 1, 23)
    seen, _, calls = await poll(client, key, "2020-01-01T00:00:00Z", page_size=5)
    assert sorted(p["ean"] for p in seen) == sorted(ean13(n) for n in range(1, 24))
    assert len(seen) == 23 and calls == 5
    stamps = [p["updated_at"] for p in seen]
    assert stamps == sorted(stamps)


async def test_the_loop_terminates_when_a_page_worth_of_products_share_a_timestamp(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await bulk_create(client, key, 100, 12)
    # As if an import chunk had stamped every row with one transaction time.
    async with runtime.db.transaction() as session:
        shared = parse_iso8601("2026-06-19T10:00:00Z")
        await session.execute(
            update(Product).where(Product.account_id == key.account_id).values(updated_at=shared)
        )
    seen, high_water, _ = await poll(client, key, "2026-06-19T09:00:00Z", page_size=5)
    assert sorted(p["ean"] for p in seen) == sorted(ean13(n) for n in range(100, 112))
    assert parse_iso8601(high_water) > shared
    again, _, calls = await poll(client, key, high_water, page_size=5)
    assert again == [] and calls == 1


async def test_a_transaction_committing_during_the_poll_is_not_skipped(
    client: httpx.AsyncClient, key: Key, runtime: Runtime, backend: str
) -> None:
    await bulk_create(client, key, 200, 3)
    caller = key.caller("ext:products:write")
    async with runtime.db.transaction() as slow:
        # The slow writer stamps its row now but commits only after the poll below.
        await write_products(slow, caller, items=[WriteItem({"ean": ean13(300), "name": "Lent"})])
        if backend == "postgres":
            # A fast writer commits meanwhile (SQLite has one writer at a time).
            await bulk_create(client, key, 400, 2)
        seen, high_water, _ = await poll(client, key, "2020-01-01T00:00:00Z", page_size=50)
        assert ean13(300) not in {p["ean"] for p in seen}
        assert {ean13(200), ean13(201), ean13(202)} <= {p["ean"] for p in seen}
    later, _, _ = await poll(client, key, high_water, page_size=50)
    assert ean13(300) in {p["ean"] for p in later}


async def test_deletions_appear_as_tombstones(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await bulk_create(client, key, 500, 2)
    _, high_water, _ = await poll(client, key, "2020-01-01T00:00:00Z", page_size=50)
    caller = key.caller("products:write", "products:read")
    async with runtime.db.transaction() as session:
        await products.delete_product(session, caller, ean=ean13(500))
    seen, _, _ = await poll(client, key, high_water, page_size=50)
    assert [(p["ean"], p["status"]) for p in seen] == [(ean13(500), "deleted")]
    assert seen[0]["deleted_at"] is not None
    gone = await client.get(f"{BASE}/products/{ean13(500)}", headers=key.headers)
    assert gone.status_code == 404


async def test_high_water_never_runs_ahead_of_the_clock(
    client: httpx.AsyncClient, key: Key
) -> None:
    await bulk_create(client, key, 600, 1)
    response = await client.get(
        f"{BASE}/products/delta", params={"since": "2020-01-01T00:00:00Z"}, headers=key.headers
    )
    meta = response.json()["meta"]
    assert parse_iso8601(meta["updated_at"]) - parse_iso8601(
        response.json()["data"][-1]["updated_at"]
    ) >= timedelta(0)
    assert meta["page_size"] == 100 and meta["total"] == 1


async def test_each_page_tells_how_many_changes_remain(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await bulk_create(client, key, 700, 12)

    async def page(since: str) -> dict:
        response = await client.get(
            f"{BASE}/products/delta", params={"since": since, "page_size": 5}, headers=key.headers
        )
        return response.json()

    first = await page("2020-01-01T00:00:00Z")
    assert first["meta"]["total"] == 12 and len(first["data"]) == 5
    second = await page(first["meta"]["updated_at"])
    assert second["meta"]["total"] == 7  # from what the first page left, no recount
    # A write in between makes the next page count again rather than trust the memo.
    await client.post(
        f"{BASE}/products", json={"ean": ean13(700), "name": "Changé"}, headers=key.headers
    )
    third = await page(second["meta"]["updated_at"])
    assert third["meta"]["total"] == 3  # 2 left in the window + the product just changed
    assert [p["ean"] for p in third["data"]][-1] == ean13(700)


async def test_pages_walked_from_one_since_follow_each_other(
    client: httpx.AsyncClient, key: Key
) -> None:
    await bulk_create(client, key, 800, 12)

    async def page(number: int) -> dict:
        response = await client.get(
            f"{BASE}/products/delta",
            params={"since": "2020-01-01T00:00:00Z", "page": number, "page_size": 5},
            headers=key.headers,
        )
        assert response.status_code == 200, response.text
        return response.json()

    pages = [await page(n) for n in (1, 2, 3, 4)]
    assert [len(p["data"]) for p in pages] == [5, 5, 2, 0]
    assert [p["meta"]["page"] for p in pages] == [1, 2, 3, 4]
    assert [p["meta"]["total"] for p in pages] == [12, 12, 12, 12]
    walked = [product["ean"] for p in pages for product in p["data"]]
    assert walked == [ean13(n) for n in range(800, 812)]


async def test_a_page_of_row_changes_reads_its_products_in_its_walk(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await bulk_create(client, key, 900, 12)
    with count_queries(runtime) as statements:
        response = await client.get(
            f"{BASE}/products/delta",
            params={"since": "2020-01-01T00:00:00Z", "page_size": 5},
            headers=key.headers,
        )
    assert [p["ean"] for p in response.json()["data"]] == [ean13(n) for n in range(900, 905)]
    # No product changed by a stamp: none is read again by id after the walks.
    assert not [s for s in statements if "products.id = ANY" in s or "products.id IN (" in s]
    # The walk reads the columns the surface shows, not every column of the wide rows.
    walk = next(s for s in statements if "products.ean" in s and "LIMIT" in s)
    assert "products.name" in walk and "technical_specs" not in walk
