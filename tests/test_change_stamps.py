"""Stock and price batches reach delta sync through narrow change stamps: the wide
product rows stay untouched, yet every surface shows the product's latest change and the
delta loop returns it once, in order."""

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import column, select, update

from jobs.demo import ean13
from models import Product
from pim.clock import MICROSECOND
from pim.runtime import Runtime
from pim.timeutil import parse_iso8601
from resolvers import changes
from tests.conftest import Key, gql
from tests.ext_helper import bulk_create, poll

EXT = "/api/v1/ext"
WINDEV = "/api/v1/windev"
SINCE = "2020-01-01T00:00:00Z"


async def stored_rows(runtime: Runtime, key: Key, backend: str) -> dict[str, tuple[Any, ...]]:
    """Each product's stored updated_at, and on PostgreSQL the transaction that wrote
    its row version (xmin): any rewrite of the row changes it."""
    columns: list[Any] = [Product.ean, Product.updated_at]
    if backend == "postgres":
        columns.append(column("xmin"))
    async with runtime.db.read() as session:
        rows = await session.execute(
            select(*columns).select_from(Product).where(Product.account_id == key.account_id)
        )
        return {row[0]: tuple(row[1:]) for row in rows}


async def windev(client: httpx.AsyncClient, key: Key, path: str, items: list[dict]) -> None:
    response = await client.post(f"{WINDEV}/{path}", json=items, headers=key.headers)
    assert response.status_code == 200, response.text
    assert all(item["updated"] for item in response.json()["data"])


async def shown_updated_at(client: httpx.AsyncClient, key: Key, ean: str) -> set[str]:
    """updated_at as the External API, the Products API and GraphQL show it."""
    ext = (await client.get(f"{EXT}/products/{ean}", headers=key.headers)).json()["data"]
    listed = await client.get("/api/v1/products", params={"search": ean}, headers=key.headers)
    graphql = await gql(client, '{ product(ean: "%s") { updatedAt } }' % ean, key)
    stamps = {
        ext["updated_at"],
        listed.json()["items"][0]["updated_at"],
        graphql["data"]["product"]["updatedAt"],
    }
    return {parse_iso8601(s).isoformat() for s in stamps}


async def test_a_stock_batch_rewrites_no_product_row_yet_delta_returns_the_products(
    client: httpx.AsyncClient, key: Key, runtime: Runtime, backend: str
) -> None:
    await bulk_create(client, key, 1, 3)
    _, high_water, _ = await poll(client, key, SINCE, page_size=50)
    before = await stored_rows(runtime, key, backend)

    await windev(
        client, key, "stock/update", [{"ean": ean13(1), "stock": 7}, {"ean": ean13(3), "stock": 9}]
    )

    assert await stored_rows(runtime, key, backend) == before
    seen, _, _ = await poll(client, key, high_water, page_size=50)
    assert [p["ean"] for p in seen] == [ean13(1), ean13(3)]
    for product in seen:
        assert parse_iso8601(product["updated_at"]) >= parse_iso8601(high_water)
        assert await shown_updated_at(client, key, product["ean"]) == {
            parse_iso8601(product["updated_at"]).isoformat()
        }


async def test_a_price_batch_keeps_the_row_stamp_yet_delta_returns_the_product(
    client: httpx.AsyncClient, key: Key, runtime: Runtime, backend: str
) -> None:
    await bulk_create(client, key, 10, 2)
    _, high_water, _ = await poll(client, key, SINCE, page_size=50)
    before = await stored_rows(runtime, key, backend)

    await windev(client, key, "prices/update", [{"ean": ean13(11), "price_ttc": 12.5}])

    after = await stored_rows(runtime, key, backend)
    assert [after[e][0] for e in sorted(after)] == [before[e][0] for e in sorted(before)]
    seen, _, _ = await poll(client, key, high_water, page_size=50)
    assert [(p["ean"], p["updated_at"] > before[ean13(11)][0].isoformat()) for p in seen] == [
        (ean13(11), True)
    ]


async def test_the_loop_orders_row_changes_and_stamps_together_and_returns_each_once(
    client: httpx.AsyncClient, key: Key
) -> None:
    await bulk_create(client, key, 20, 3)
    a, b, c = ean13(20), ean13(21), ean13(22)
    _, high_water, _ = await poll(client, key, SINCE, page_size=50)

    await windev(client, key, "stock/update", [{"ean": a, "stock": 1}])
    rewrite = await client.post(
        f"{EXT}/products", json={"ean": b, "title": "B2"}, headers=key.headers
    )
    assert rewrite.status_code == 200, rewrite.text
    await windev(client, key, "stock/update", [{"ean": c, "stock": 2}])
    # B's row changed before C's stock, but its stock after: B comes last, once.
    await windev(client, key, "stock/update", [{"ean": b, "stock": 3}])

    seen, last_mark, calls = await poll(client, key, high_water, page_size=1)
    assert [p["ean"] for p in seen] == [a, c, b]
    assert calls == 4
    stamps = [parse_iso8601(p["updated_at"]) for p in seen]
    assert stamps == sorted(stamps) and parse_iso8601(last_mark) > stamps[-1]
    again, _, _ = await poll(client, key, last_mark, page_size=1)
    assert again == []

    # A product row written after its stamp: the row's time wins, and it comes back once.
    rewrite = await client.post(
        f"{EXT}/products", json={"ean": a, "title": "A2"}, headers=key.headers
    )
    assert rewrite.status_code == 200, rewrite.text
    later, _, _ = await poll(client, key, last_mark, page_size=1)
    assert [(p["ean"], p["title"]) for p in later] == [(a, "A2")]


async def test_updated_since_and_its_order_count_stamps(
    client: httpx.AsyncClient, key: Key
) -> None:
    await bulk_create(client, key, 30, 3)
    _, high_water, _ = await poll(client, key, SINCE, page_size=50)
    await windev(client, key, "stock/update", [{"ean": ean13(31), "stock": 4}])
    await windev(client, key, "stock/update", [{"ean": ean13(30), "stock": 5}])
    response = await client.get(
        f"{EXT}/products", params={"updated_since": high_water}, headers=key.headers
    )
    body = response.json()
    assert [p["ean"] for p in body["data"]] == [ean13(31), ean13(30)]
    assert body["meta"]["total"] == 2


async def test_an_ext_write_changing_only_the_stock_stamps_instead_of_rewriting_the_row(
    client: httpx.AsyncClient, key: Key, runtime: Runtime, backend: str
) -> None:
    await bulk_create(client, key, 40, 2)
    _, high_water, _ = await poll(client, key, SINCE, page_size=50)
    before = await stored_rows(runtime, key, backend)

    response = await client.post(
        f"{EXT}/products/batch",
        json={"products": [{"ean": ean13(41), "stock": 12}]},
        headers=key.headers,
    )
    assert response.status_code == 200, response.text

    assert await stored_rows(runtime, key, backend) == before
    seen, _, _ = await poll(client, key, high_water, page_size=50)
    assert [p["ean"] for p in seen] == [ean13(41)]
    assert await shown_updated_at(client, key, ean13(41)) == {
        parse_iso8601(seen[0]["updated_at"]).isoformat()
    }


async def test_a_page_merges_rows_and_stamps_in_order_and_keeps_ties_across_both_together(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await bulk_create(client, key, 50, 6)
    eans = [ean13(n) for n in range(50, 56)]
    shared = parse_iso8601("2026-06-19T10:00:00Z")
    second = timedelta(seconds=1)
    async with runtime.db.transaction() as session:
        found = select(Product.ean, Product.id).where(
            Product.account_id == key.account_id, Product.ean.in_(eans)
        )
        ids = dict((await session.execute(found)).all())
        rows = {eans[0]: shared - second, eans[1]: shared, eans[2]: shared, eans[3]: shared - second,
                eans[4]: shared - 2 * second, eans[5]: shared + second}  # fmt: skip
        for ean, at in rows.items():
            await session.execute(
                update(Product).where(Product.id == ids[ean]).values(updated_at=at)
            )
        # Two stamps at the rows' shared time, one before it: the walks of both sides
        # meet in one page, in (at, id) order.
        stamps = {eans[3]: shared, eans[0]: shared, eans[4]: shared - 2 * second + MICROSECOND}
        await changes.stamp(session, key.account_id, {ids[e]: at for e, at in stamps.items()})

    seen, high_water, calls = await poll(client, key, "2026-06-19T09:00:00Z", page_size=2)
    tied = sorted((eans[0], eans[1], eans[2], eans[3]), key=lambda e: ids[e])
    assert [p["ean"] for p in seen] == [eans[4], *tied, eans[5]]
    assert [parse_iso8601(p["updated_at"]) for p in seen][:5] == [
        shared - 2 * second + MICROSECOND, shared, shared, shared, shared
    ]  # fmt: skip
    # The first page of two ends inside the tie: all four tied go in it, and the mark
    # moves past them.
    assert calls == 2
    assert parse_iso8601(high_water) > shared + second
